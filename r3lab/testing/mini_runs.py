"""Miniature runs of other systems, each in its exact output format, for lesson 70 and the tests.

`write_vlmr3_eval` (the official VLM-R3 evaluation), `write_deepeyes_eval` (DeepEyes' V* evaluation),
`write_agent_loop` (verl agent-loop rollouts over training steps, ids decoded with the tokenizer you
pass), `write_trl_completions` (TRL's logged completions) and `write_training_log` (an R-GRPO
`log.jsonl`) draw the scenes of `r3lab.testing.mini_benchmarks` and write what those systems would have
written about them (`r3lab.importers.traces`, `agent_loop` and `trl` document each format). With
`collapse=True` the runs over training steps stop cropping while their accuracy holds.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from ..core.crop_calls import format_crop_call
from ..core.regions import Frame, ViewConfig
from ..importers.traces import OFFICIAL_EVAL_VIEW
from .mini_benchmarks import scene

DEEPEYES_SYSTEM = (
    "You are a helpful assistant.\n\n# Tools\nYou may call one or more functions to assist with the "
    "user query. (image_zoom_in_tool: bbox_2d [x1, y1, x2, y2], label)"
)
DEEPEYES_USER = "\nThink first, call **image_zoom_in_tool** if needed, then answer."


def _scenes(folder: Path, n: int, seed: int) -> list[tuple[str, str, tuple]]:
    (folder / "images").mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        im, colour, box = scene(seed + i)
        name = f"images/scene_{seed + i}.jpg"
        im.save(folder / name, quality=90)
        out.append((name, colour, box))
    return out


def write_vlmr3_eval(folder: str | Path, n: int = 3) -> Path:
    """`vlmr3_eval.json`: one record per question, the first crops well, the second's crop file is gone, the
    last one's crop failed ("Invalid operation!")."""
    folder = Path(folder)
    records = []
    for i, (name, colour, box) in enumerate(_scenes(folder, n, 500)):
        frame = Frame.of((320, 240), OFFICIAL_EVAL_VIEW)
        b = [int(v) for v in frame.to_input(box)]
        call = format_crop_call(b)[:-2]  # the official stop strings "]}" end the segment; the loop appends "]}\n"
        crop = f"crops/sample_{i}_crop_1.png"
        if i == n - 1:
            segs = [
                "<think>Let me look. " + call + "]}\nInvalid operation!",
                f"It is {colour}.</think>\n<answer>{colour}</answer>\n",
            ]
            crops = []
        else:
            segs = [
                "<think>The disc is small. Let me crop it. " + call + "]}\n",
                f"The disc is {colour}.</think>\n<answer>{colour}</answer>\n",
            ]
            crops = [crop]
            if i == 0:
                (folder / "crops").mkdir(exist_ok=True)
                with Image.open(folder / name) as im:
                    im.crop(box).resize((112, 112)).save(folder / crop)
        records.append(
            {
                "image_path": name,
                "question": "What colour is the disc?",
                "response_list": segs,
                "img_crop_list": crops,
                "answer": colour,
                "category": "colour",
                "id": f"q{i}",
            }
        )
    path = folder / "vlmr3_eval.json"
    path.write_text(json.dumps(records, indent=1))
    return path


def write_deepeyes_eval(folder: str | Path, n: int = 3) -> Path:
    """`result_direct_attributes_demo.jsonl` as DeepEyes' `eval/eval_vstar.py` writes it (images blanked);
    every question but the last calls the zoom-in tool once."""
    folder = Path(folder)
    lines = []
    blank = {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,"}}
    for i, (name, colour, (x1, y1, x2, y2)) in enumerate(_scenes(folder, n, 600)):
        options = [colour, "gray", "white", "black"]
        prompt = (
            f"Question: What is the color of the disc?\nOptions: \nA. {colour}\nB. gray\nC. white\nD. black\n"
            + DEEPEYES_USER
        )
        msgs = [
            {"role": "system", "content": DEEPEYES_SYSTEM},
            {"role": "user", "content": [blank, {"type": "text", "text": prompt}]},
        ]
        if i < n - 1:
            call = json.dumps(
                {
                    "name": "image_zoom_in_tool",
                    "arguments": {"bbox_2d": [x1 - 4, y1 - 4, x2 + 4, y2 + 4], "label": "disc"},
                }
            )
            turn = f"<think>The disc is small.</think>\n<tool_call>\n{call}\n</tool_call>"
            msgs += [
                {"role": "assistant", "content": turn},
                {"role": "user", "content": [blank, {"type": "text", "text": DEEPEYES_USER}]},
            ]
        msgs.append({"role": "assistant", "content": f"<think>It is {colour}.</think>\n<answer>A. {colour}</answer>"})
        (folder / name).with_suffix(".json").write_text(
            json.dumps(  # the V* annotation beside the image
                {
                    "target_object": ["disc"],
                    "bbox": [[x1, y1, x2 - x1, y2 - y1]],
                    "question": "What is the color of the disc?",
                    "options": options,
                }
            )
        )
        lines.append(
            {
                "image": Path(name).name,
                "question": "What is the color of the disc?",
                "answer": options[0],
                "answer_choice": "A",
                "pred_ans": f"A. {colour}",
                "pred_output": msgs,
                "status": "success",
            }
        )
    path = folder / "result_direct_attributes_demo.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def _crops_at(step: int, steps: int, per_step: int, collapse: bool) -> int:
    """How many of a step's rollouts crop: falling to none when the run collapses, steady otherwise."""
    return round(per_step * (0.9 * (1 - step / max(1, steps - 1)) if collapse else 0.75))


def write_agent_loop(folder: str | Path, tokenizer, steps: int = 6, per_step: int = 4, collapse: bool = True) -> Path:
    """`rollouts.jsonl`: verl `AgentLoopOutput`s (ids from `tokenizer`), `per_step` rollouts per training step;
    three in four answer right whether or not they cropped."""
    folder = Path(folder)
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    enc = lambda s: tok.encode(s, add_special_tokens=False)  # noqa: E731
    vision = lambda: enc("<|vision_start|>") + enc("<|image_pad|>") * 4 + enc("<|vision_end|>")  # noqa: E731
    scenes = _scenes(folder, per_step, 700)
    (folder / "crops").mkdir(exist_ok=True)
    lines = []
    for step in range(steps):
        n_crop = _crops_at(step, steps, per_step, collapse)
        for i, (name, colour, (x1, y1, x2, y2)) in enumerate(scenes):
            answer = colour if i < per_step * 3 // 4 or per_step < 2 else "gray"
            prompt = (
                enc("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n")
                + vision()
                + enc("What colour is the disc?<|im_end|>\n<|im_start|>assistant\n")
            )
            resp, mask, images = [], [], [name]
            if i < n_crop:
                call = json.dumps({"name": "image_zoom_in_tool", "arguments": {"bbox_2d": [x1, y1, x2, y2]}})
                ids = enc(f"<think>Small disc.</think>\n<tool_call>\n{call}\n</tool_call><|im_end|>")
                obs = (
                    enc("\n<|im_start|>user\n<tool_response>\n")
                    + vision()
                    + enc(
                        f"Zoomed in on the image to the region {[x1, y1, x2, y2]}.</tool_response><|im_end|>\n"
                        "<|im_start|>assistant\n"
                    )
                )
                resp, mask = resp + ids + obs, mask + [1] * len(ids) + [0] * len(obs)
                crop = f"crops/step{step}_{i}.png"
                with Image.open(folder / name) as im:
                    im.crop((x1, y1, x2, y2)).save(folder / crop)
                images.append(crop)
            ids = enc(f"<think>It is {answer}.</think>\n<answer>{answer}</answer><|im_end|>")
            resp, mask = resp + ids, mask + [1] * len(ids)
            acc = float(answer == colour)
            lines.append(
                {
                    "prompt_ids": prompt,
                    "response_ids": resp,
                    "response_mask": mask,
                    "multi_modal_data": {"image": images},
                    "num_turns": 2 + 2 * (i < n_crop),
                    "reward_score": acc + 0.1 * (i < n_crop),
                    "ground_truth": colour,
                    "extra_fields": {
                        "global_steps": step,
                        "reward_extra_info": {"acc": acc, "tool": 0.1 * (i < n_crop)},
                    },
                    "id": f"step{step}-{i}",
                }
            )
    path = folder / "rollouts.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def write_trl_completions(
    folder: str | Path, steps: int = 3, per_step: int = 4, collapse: bool = False, view: ViewConfig | None = None
) -> Path:
    """`completions.jsonl`: TRL's completions table (step, prompt, completion, a column per reward function,
    advantage) plus the image path and the answer; crop calls in `view`'s model-input frame."""
    folder = Path(folder)
    view = view or ViewConfig()
    scenes = _scenes(folder, per_step, 800)
    lines = []
    for step in range(steps):
        n_crop = _crops_at(step, steps, per_step, collapse)
        for i, (name, colour, box) in enumerate(scenes):
            frame = Frame.of((320, 240), view)
            call = format_crop_call([int(v) for v in frame.to_input(box)])
            look = f" Let me look closer. {call}" if i < n_crop else ""
            completion = f"<think>The disc is small.{look} It is {colour}.</think><answer>{colour}</answer>"
            prompt = (
                "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                "<|vision_start|><|image_pad|><|vision_end|>What colour is the disc?<|im_end|>\n"
                "<|im_start|>assistant\n"
            )
            lines.append(
                {
                    "step": str(step),
                    "prompt": prompt,
                    "completion": completion,
                    "accuracy": 1.0,
                    "format": 1.0,
                    "advantage": 0.0,
                    "image": name,
                    "answer": colour,
                }
            )
    path = folder / "completions.jsonl"
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return path


def write_training_log(path: str | Path, steps: int = 12, collapse: bool = True) -> Path:
    """An R-GRPO `log.jsonl` (the rows `r3lab.train.rgrpo` logs); with `collapse` the crop rate decays to zero
    over the run while accuracy stays near 0.6."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    for s in range(1, steps + 1):
        rate = max(0.0, 0.8 * (1 - s / (0.75 * steps))) if collapse else 0.7 + 0.01 * (s % 3)
        acc = 0.6 + 0.02 * ((s * 7) % 3 - 1)
        rows.append(
            {
                "step": s,
                "loss": 0.1,
                "reward": acc + 0.2 * rate,
                "reward/accuracy": acc,
                "reward/format": 0.9,
                "accuracy": acc,
                "accuracy_crop": acc if rate else None,
                "accuracy_no_crop": acc,
                "crop_rate": rate,
                "crops_per_rollout": rate * 1.2,
                "invalid_crop_rate": 0.05 * rate,
                "crop_iou": 0.4 if rate else None,
            }
        )
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
