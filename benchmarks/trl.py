"""r3lab's rollout engine against TRL's tool loop, side by side in one run: same model, prompts, group, sampling.

    python benchmarks/trl.py [--quick] [--threads 1] [--reps 3] [--prompts 2] [--group 4]

Both systems roll out P prompts x G episodes of a tiny Qwen3-VL (r3-tiny, family qwen3_vl) at
temperature 1, each episode making the same two crops of the same boxes and giving the same answer,
and each writing the same number of model tokens (the turns are forced token by token; the model runs
every forward pass):
(a) r3lab: `rollout()`, the whole group in one batch, the KV cache kept across crop insertions; the
    crop call is r3lab's inline `{"bbox_2d": ...}`, padded with filler tokens to the tool call's length;
(b) TRL: `GRPOTrainer`'s tool loop (transformers `generate`, `CropEnvironment` as `environment_factory`):
    one `generate` per turn, each re-prefilling the whole conversation, tool results in the chat
    template's wrapper. Only `GRPOTrainer._generate` is timed (learning rate 0: the model never changes).
The prompts are token for token the same: r3lab's system turn is set to the tool block TRL renders.
Prints model tokens/s of each and the ratio; writes benchmarks/results/trl.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

# run as a script, this file's folder leads sys.path and this file would be imported as the `trl` package
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import torch  # noqa: E402

from r3lab.core.crop_calls import format_crop_call  # noqa: E402
from r3lab.core.prompt import PromptConfig  # noqa: E402
from r3lab.data.vlir import build_samples  # noqa: E402
from r3lab.engine.config import RolloutConfig  # noqa: E402
from r3lab.engine.rollouts import rollout  # noqa: E402
from r3lab.integrations.trl_env import TOOL_NAME, tool_instruction  # noqa: E402
from r3lab.integrations.trl_script import ScriptedTurns, scripted  # noqa: E402
from r3lab.integrations.trl_train import TRLConfig, grpo_trainer  # noqa: E402
from r3lab.model.tiny import TinyConfig, build_tiny  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "trl.json"
BOXES = ([0, 0, 60, 60], [40, 40, 100, 100])  # two valid crops of the 112-px view
ANSWER = "<answer>yellow</answer>"


def tool_call(box) -> str:
    return '<tool_call>\n{"name": "%s", "arguments": {"bbox_2d": %s}}\n</tool_call>' % (TOOL_NAME, list(box))


def trl_turns() -> list[list[str]]:
    return [["<think>look</think>\n" + tool_call(BOXES[0])], [tool_call(BOXES[1])], [ANSWER]]


def r3lab_script(policy) -> list[str]:
    """r3lab's episode with as many model tokens as TRL's: each turn's tool call (and its <|im_end|>) becomes
    filler tokens then the inline crop call, which the engine acts on at its closing brace."""
    n = lambda t: len(policy.encode(t))  # noqa: E731
    filler = next(w for w in (" look", " the", ".", " ") if n(w) == 1)
    pieces = []
    for k, box in enumerate(BOXES):
        text = trl_turns()[k][0]
        call = " " + format_crop_call(box)
        pad = n(text) + 1 - n(call)  # + 1: TRL's turn ends with <|im_end|>, the engine's segment at "}"
        pieces += [filler] * pad + [call]
    return pieces + [ANSWER + "<|im_end|>"]


def time_trl(policy, samples, G: int, reps: int) -> dict:
    cfg = TRLConfig(
        steps=reps + 1,
        prompts_per_step=len(samples),
        group_size=G,
        learning_rate=0.0,
        rollout={"max_crops": 2, "max_new_tokens": 1024, "max_segment_tokens": 1024},
        out_dir="/tmp/r3lab-bench-trl",
    )
    trainer, recorder = grpo_trainer(policy, samples, cfg, disable_tqdm=True, logging_steps=10**6)
    times, tokens, generate = [], [], trainer._generate

    def timed(prompts):
        t0 = time.perf_counter()
        out = generate(prompts)
        times.append(time.perf_counter() - t0)
        tokens.append(sum(sum(m) for m in out[2]))  # tool_mask: 1 on the model's own tokens
        return out

    trainer._generate = timed
    with scripted(policy.model, ScriptedTurns(policy.tokenizer, trl_turns())):
        trainer.train()
    t = statistics.median(times[1:])
    crops = [len(tr.crops) for tr in recorder.trajectories]
    system = _system(recorder.trajectories[0].pieces[0].text)
    return {
        "rollout_s": t,
        "model_tokens": tokens[-1],
        "tokens_per_s": tokens[-1] / t,
        "episodes_per_s": len(crops) / t,
        "crops_per_episode": sum(crops) / len(crops),
        "times": times,
        "system": system,
    }


def _system(head: str) -> str:
    start = "<|im_start|>system\n"
    return head[len(start) : head.index("<|im_end|>")]


def time_r3lab(policy, samples, G: int, reps: int, system: str) -> dict:
    policy.prompt = PromptConfig(system=system, instruction=tool_instruction())
    script = r3lab_script(policy)
    cfg = RolloutConfig(group_size=G, max_crops=2, max_new_tokens=1024, max_segment_tokens=512, temperature=1.0)
    times, out = [], None
    for _ in range(reps + 1):
        t0 = time.perf_counter()
        out = rollout(policy, samples, cfg, scripts=[script] * len(samples), progress=False)
        times.append(time.perf_counter() - t0)
    t = statistics.median(times[1:])
    tokens = sum(int(t.loss_mask().sum()) for t in out)
    return {
        "rollout_s": t,
        "model_tokens": tokens,
        "tokens_per_s": tokens / t,
        "episodes_per_s": len(out) / t,
        "crops_per_episode": sum(len(x.crops) for x in out) / len(out),
        "times": times,
        "prompt_tokens": len(out[0].input_ids()) - int(out[0].loss_mask().sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="one timed repetition, G=2")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions after a warm-up (median reported)")
    ap.add_argument("--prompts", type=int, default=2)
    ap.add_argument("--group", type=int, default=4)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    reps, G = (1, 2) if args.quick else (args.reps, args.group)
    policy = build_tiny(TinyConfig(family="qwen3_vl"))
    samples = build_samples(args.prompts, seed=0, families=["read_one"], view=policy.view, progress=False)
    trl = time_trl(policy, samples, G, reps)
    r3 = time_r3lab(policy, samples, G, reps, trl.pop("system"))
    if r3["model_tokens"] != trl["model_tokens"] or r3["crops_per_episode"] != trl["crops_per_episode"]:
        raise SystemExit(
            f"unequal work: r3lab {r3['model_tokens']} tokens, {r3['crops_per_episode']} crops/episode; "
            f"TRL {trl['model_tokens']} tokens, {trl['crops_per_episode']} crops/episode"
        )
    res = {
        "machine": {
            "platform": platform.platform(),
            "threads": args.threads,
            "torch": torch.__version__,
            "trl": __import__("trl").__version__,
            "transformers": __import__("transformers").__version__,
        },
        "setting": {
            "prompts": args.prompts,
            "group_size": G,
            "crops_per_episode": 2,
            "temperature": 1.0,
            "model": "r3-tiny qwen3_vl",
            "model_params": sum(p.numel() for p in policy.model.parameters()),
        },
        "r3lab": r3,
        "trl": trl,
        "tokens_per_s_ratio": r3["tokens_per_s"] / trl["tokens_per_s"],
    }
    for name, r in (("r3lab engine", r3), ("TRL tool loop", trl)):
        print(
            f"{name:>14}: {r['rollout_s']:.2f} s per {len(samples)}x{G} episodes, {r['model_tokens']} model tokens, "
            f"{r['tokens_per_s']:.0f} tokens/s, {r['crops_per_episode']:.1f} crops/episode"
        )
    print(f"r3lab / TRL rollout tokens/s: {res['tokens_per_s_ratio']:.2f}x")
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2))
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
