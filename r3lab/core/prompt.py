"""What frames each question: the system turn, the instruction suffix and where the main image goes."""
from __future__ import annotations

import re
from dataclasses import dataclass

SYSTEM_PROMPT = "You are a helpful assistant."
# The official suffix says the same at greater length; r3-tiny pays for every prompt token on a CPU.
INSTRUCTION = (
    'Think in <think> </think>; to look closer, crop with {"bbox_2d": [x1, y1, x2, y2]} '
    "in image pixels; answer in <answer> </answer>."
)

# r3-tiny learns from nothing, so a constant instruction tells it nothing; the short one saves ~50 tokens
# (about a third of a grounding question) on every sample the recipe trains and evaluates.
TINY_INSTRUCTION = "Look closer if needed."


# Qwen's control tokens all read `<|name|>`; their text in a question would be tokenised as the token
# itself (an image placeholder, the end of a turn), so text from users and datasets may not hold it.
CONTROL_TEXT = re.compile(r"<\|[A-Za-z0-9_]+\|>")


def control_text_in(text: str) -> list[str]:
    """The control-token texts (`<|im_end|>`, `<|image_pad|>`, ...) that occur in `text`, in order, once each."""
    return list(dict.fromkeys(CONTROL_TEXT.findall(text)))


def check_plain_text(text: str, what: str) -> None:
    """ValueError naming `what` (e.g. "sample 'x': its question") when `text` holds control-token text."""
    if found := control_text_in(text):
        raise ValueError(f"{what} holds {', '.join(map(repr, found))}, the text of the model's control "
                         f"token{'s' if len(found) > 1 else ''}; user and dataset text must never act as one. "
                         "Remove it, or write it another way (e.g. 'im_end' without the '<|' and '|>')")


@dataclass
class PromptConfig:
    """What frames each question (the official layout: default system turn + question + suffix)."""

    system: str = SYSTEM_PROMPT
    instruction: str = INSTRUCTION  # appended to the question after a newline
    question_first: bool = False  # user turn "question, image, instruction" (else "image, question + instruction")

    def __post_init__(self):  # a checkpoint's r3lab.json may carry these: they are user text too
        check_plain_text(self.system, "PromptConfig.system")
        check_plain_text(self.instruction, "PromptConfig.instruction")

    def head_tail(self, question: str) -> tuple[str, str]:
        """Prompt text before and after the main image."""
        head = f"<|im_start|>system\n{self.system}<|im_end|>\n<|im_start|>user\n"
        end = "<|im_end|>\n<|im_start|>assistant\n"
        if self.question_first:  # image tokens can attend to the question (causal attention)
            return f"{head}{question}\n", f"\n{self.instruction}{end}"
        return head, f"{question}\n{self.instruction}{end}"
