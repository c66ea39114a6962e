"""r3-tiny's tokenizer: byte-level BPE trained locally on `corpus.txt`, with the Qwen special tokens.

`corpus.txt` (beside this file, one training line per line) is the synthetic world's text: the
prompt, its words and the questions and rationales of a few hundred samples. It is written by
`python -m r3lab.data.vocab r3lab/model/corpus.txt` (a test keeps the two equal), so the model layer
trains its tokenizer without depending on the data generator, as a real model ships its vocabulary.
Digits never merge by default (one token per digit, as Qwen's own tokenizers split numbers);
`max_number` makes every whole number up to it one token instead (location tokens written as numbers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

CORPUS = Path(__file__).with_name("corpus.txt")

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]
TAG_TOKENS = ["<think>", "</think>", "<answer>", "</answer>"]  # plain text, but one token each in r3-tiny
# SmolVLM's (SmolLM2's tokenizer plus Idefics3's image tokens): the tiny SmolVLM is built with these instead
SMOLVLM_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<fake_token_around_image>",
    "<image>",
    "<global-img>",
    "<end_of_utterance>",
] + [f"<row_{i}_col_{j}>" for i in range(1, 7) for j in range(1, 7)]
# SmolVLM-Instruct's chat template (Idefics3): "<|im_start|>User:<image>...<end_of_utterance>\nAssistant:"
SMOLVLM_CHAT_TEMPLATE = (
    "<|im_start|>{% for message in messages %}{{message['role'] | capitalize}}"
    "{% if message['content'][0]['type'] == 'image' %}{{':'}}{% else %}{{': '}}{% endif %}"
    "{% for line in message['content'] %}{% if line['type'] == 'text' %}{{line['text']}}"
    "{% elif line['type'] == 'image' %}{{ '<image>' }}{% endif %}{% endfor %}<end_of_utterance>\n{% endfor %}"
    "{% if add_generation_prompt %}{{ 'Assistant:' }}{% endif %}"
)

# Qwen2-VL's chat template (same token layout as the released Qwen2/2.5-VL templates).
CHAT_TEMPLATE = (
    "{% set image_count = namespace(value=0) %}{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'image' or 'image' in content or 'image_url' in content %}"
    "{% set image_count.value = image_count.value + 1 %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}{% endfor %}<|im_end|>\n"
    "{% endif %}{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def corpus_lines() -> list[str]:
    """The lines r3-tiny's tokenizer is trained on (`corpus.txt`)."""
    return CORPUS.read_bytes().decode("utf-8").split("\n")[:-1]  # bytes: no newline translation


def build_tokenizer(
    lines: Iterable[str] | None = None, vocab_size: int = 1024, max_number: int = 0, family: str = "qwen"
):
    """Byte-level BPE trained on `lines` (default: `corpus_lines()`).

    max_number 0: digits never merge; max_number N: every whole number 0..N, bare and after a space,
    is one token (the corpus gets each often enough that BPE merges it). family "smolvlm": SmolVLM's
    special tokens and chat template instead of Qwen's.
    """
    smol = family == "smolvlm"
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    splits = [] if max_number else [pre_tokenizers.Digits(individual_digits=True)]
    tok.pre_tokenizer = pre_tokenizers.Sequence(splits + [pre_tokenizers.ByteLevel(add_prefix_space=False)])
    lines = list(lines if lines is not None else corpus_lines())
    if max_number:
        nums = [str(n) for n in range(max_number + 1)]
        lines += [" ".join(nums)] * 40 + ["[" + n + "," for n in nums] * 20
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SMOLVLM_TOKENS if smol else SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(lines, trainer=trainer)
    extra = (
        {
            "image_token": "<image>",
            "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        }
        if smol
        else {
            "image_token": "<|image_pad|>",
            "video_token": "<|video_pad|>",
            "vision_bos_token": "<|vision_start|>",
            "vision_eos_token": "<|vision_end|>",
        }
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token="<end_of_utterance>" if smol else "<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        extra_special_tokens=extra,
    )
    fast.add_tokens(TAG_TOKENS)
    fast.chat_template = SMOLVLM_CHAT_TEMPLATE if smol else CHAT_TEMPLATE
    fast.model_max_length = 32768
    return fast
