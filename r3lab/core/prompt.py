"""What frames each question: the system turn, the instruction suffix and where the main image goes."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace

from .crop_calls import TOOL_CLOSE, TOOL_NAME, TOOL_OPEN, CallStyle
from .settings import short

IM_END = "<|im_end|>"  # the end of a chat turn; a rationale's last text ends with it (it is trained)
SYSTEM_PROMPT = "You are a helpful assistant."
# The official suffix says the same at greater length; r3-tiny pays for every prompt token on a CPU.
INSTRUCTION = (
    'Think in <think> </think>; to look closer, crop with {"bbox_2d": [x1, y1, x2, y2]} '
    "in image pixels; answer in <answer> </answer>."
)

# the same instruction for the other styles (the default one above is absolute pixels, bare JSON)
_WHERE = {"absolute": "in image pixels", "relative": "in coordinates from 0 to 1000"}
_HOW = {"json": 'crop with {"bbox_2d": [x1, y1, x2, y2]}', "tool": f"call {TOOL_NAME} with bbox_2d [x1, y1, x2, y2]"}


def instruction_for(style: CallStyle) -> str:
    """The default instruction suffix of a crop-call style."""
    return (
        f"Think in <think> </think>; to look closer, {_HOW[style.grammar]} {_WHERE[style.coords]}; "
        "answer in <answer> </answer>."
    )


def tools_block(style: CallStyle) -> str:
    """Qwen's chat-template text declaring image_zoom_in_tool in the system turn (tool grammar only)."""
    where = "absolute pixel" if style.coords == "absolute" else "relative (0-1000)"
    spec = {
        "type": "function",
        "function": {
            "name": TOOL_NAME,
            "description": "Zoom in on a region of the image and return the cropped, enlarged view.",
            "parameters": {
                "type": "object",
                "required": ["bbox_2d"],
                "properties": {
                    "bbox_2d": {
                        "type": "array",
                        "items": {"type": "number"},
                        "minItems": 4,
                        "maxItems": 4,
                        "description": f"[x1, y1, x2, y2] in {where} coordinates",
                    },
                    "label": {"type": "string", "description": "what is in the region"},
                },
            },
        },
    }
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
        f"{json.dumps(spec)}\n</tools>\n\nFor each function call, return a json object with function name "
        f"and arguments within {TOOL_OPEN}{TOOL_CLOSE} XML tags:\n{TOOL_OPEN}\n"
        '{"name": <function-name>, "arguments": <args-json-object>}\n' + TOOL_CLOSE
    )


# the chat template's tool turn around what the environment returns (tool grammar): the assistant turn
# ends after `</tool_call>`, a user turn holds the tool response, and a new assistant turn opens
TOOL_TURN = ("<|im_end|>\n<|im_start|>user\n<tool_response>\n", "\n</tool_response><|im_end|>\n<|im_start|>assistant\n")


# r3-tiny learns from nothing, so a constant instruction tells it nothing; the short one saves ~50 tokens
# (about a third of a grounding question) on every sample the recipe trains and evaluates.
TINY_INSTRUCTION = "Look closer if needed."


# Qwen's control tokens all read `<|name|>` (SmolVLM's: `<image>`, `<end_of_utterance>`, `<global-img>`, ...);
# their text in a question would be tokenised as the token itself (an image placeholder, the end of a turn),
# so text from users and datasets may not hold it.
CONTROL_TEXT = re.compile(
    r"<\|[A-Za-z0-9_]+\|>|<(?:image|end_of_utterance|fake_token_around_image|global-img|"
    r"row_\d+_col_\d+)>"
)
CHATS = ("chatml", "smolvlm")  # Qwen's ChatML turns; SmolVLM's "User:" / "Assistant:" turns


def control_text_in(text: str) -> list[str]:
    """The control-token texts (`<|im_end|>`, `<|image_pad|>`, ...) that occur in `text`, in order, once each."""
    return list(dict.fromkeys(CONTROL_TEXT.findall(text)))


MAX_TEXT_CHARS = 65_536  # one question or rationale text: far above any benchmark's; a longer one is a broken file
# (a 1.5 MB question asked attention for 810 GB) and is refused when the sample is made, naming it


def check_plain_text(text: str, what: str) -> None:
    """ValueError naming `what` (e.g. "sample 'x': its question") when `text` holds control-token text or is
    longer than MAX_TEXT_CHARS."""
    if len(text) > MAX_TEXT_CHARS:
        raise ValueError(
            f"{what} is {len(text):,} characters long, more than the {MAX_TEXT_CHARS:,} r3lab accepts "
            "for one text: is the file broken? Shorten it or drop the sample"
        )
    if found := control_text_in(text):
        raise ValueError(
            f"{what} holds {', '.join(map(repr, found))}, the text of the model's control "
            f"token{'s' if len(found) > 1 else ''}; user and dataset text must never act as one. "
            "Remove it, or write it another way (e.g. 'im_end' without the '<|' and '|>')"
        )


@dataclass
class PromptConfig:
    """What frames each question (the official layout: default system turn + question + suffix)."""

    system: str = SYSTEM_PROMPT
    instruction: str | None = None  # appended to the question after a newline; None: `instruction_for(calls)`
    question_first: bool = False  # user turn "question, image, instruction" (else "image, question + instruction")
    calls: CallStyle = field(default_factory=CallStyle)  # crop calls' frame and grammar (absolute, json by default)
    chat: str = "chatml"  # the family's turn format: "chatml" (Qwen) or "smolvlm" (SmolVLM / Idefics3);
    # set by the policy

    def __post_init__(self):  # a checkpoint's r3lab.json may carry these: they are user text too
        self.calls = CallStyle.of(self.calls)  # r3lab.json holds it as a dict; a checkpoint without it: absolute
        if self.instruction is None:  # resolved once: replace(prompt, calls=...) keeps the old instruction
            self.instruction = INSTRUCTION if self.calls == CallStyle() else instruction_for(self.calls)
        check_plain_text(self.system, "PromptConfig.system")
        check_plain_text(self.instruction, "PromptConfig.instruction")
        if self.chat not in CHATS:
            raise ValueError(f"PromptConfig.chat = {short(self.chat)}: use one of {', '.join(CHATS)}")
        if self.chat == "smolvlm" and self.calls.grammar == "tool":
            raise ValueError(
                "SmolVLM's chat has no tool-response turn: use the json crop-call grammar (CallStyle(coords, 'json'))"
            )

    def with_calls(self, calls: CallStyle) -> "PromptConfig":
        """This prompt for another crop-call style; a default instruction follows the style, a custom one stays."""
        default = INSTRUCTION if self.calls == CallStyle() else instruction_for(self.calls)
        return replace(self, calls=calls, instruction=None if self.instruction == default else self.instruction)

    def head_tail(self, question: str) -> tuple[str, str]:
        """Prompt text before and after the main image (the tool grammar declares its tool in the system turn)."""
        tools = tools_block(self.calls) if self.calls.grammar == "tool" else ""
        if self.chat == "smolvlm":  # SmolVLM's template: turns "Role: text<end_of_utterance>\n", images after "User:"
            head = f"<|im_start|>System: {self.system}<end_of_utterance>\nUser:"
            end = "<end_of_utterance>\nAssistant:"
        else:
            head = f"<|im_start|>system\n{self.system}{tools}<|im_end|>\n<|im_start|>user\n"
            end = "<|im_end|>\n<|im_start|>assistant\n"
        if self.question_first:  # image tokens can attend to the question (causal attention)
            return f"{head}{question}\n", f"\n{self.instruction}{end}"
        return head, f"{question}\n{self.instruction}{end}"
