"""What train and eval commands share: the --policy / --dtype / --attn flags, loading data and policy, a run."""

from __future__ import annotations

from pathlib import Path

import torch

from ..core.crop_calls import CallStyle
from ..core.settings import short
from ..data.call_styles import restyle
from ..data.dataset import load_samples as load_dataset_samples
from ..data.dataset import refuse_foreign
from ..evaluation.evaluation import EvalConfig
from ..evaluation.progress import NecessityEvery
from ..model.policy import Policy, load_policy
from ..model.tiny import build_tiny
from ..train import dist
from .args import DTYPES, dataclass_from_args


def add_policy_arguments(parser) -> None:
    """--policy / --dtype / --attn: which model to start from and how to load it (shared by train and eval)."""
    parser.add_argument(
        "--policy",
        default="",
        help="checkpoint folder to start from: r3-tiny, an r3lab checkpoint "
        "or a Qwen2-VL / Qwen2.5-VL / Qwen3-VL / Qwen3.5 folder (default: a fresh r3-tiny)",
    )
    parser.add_argument(
        "--dtype",
        default="",
        choices=DTYPES,
        metavar="DTYPE",
        help="load the weights as float32 / bfloat16 / float16 (default: as saved; GPU recipe: bfloat16)",
    )
    parser.add_argument(
        "--attn", default="", help="attention implementation, e.g. sdpa or eager (default: the model's own)"
    )
    parser.add_argument(
        "--calls",
        default="",
        help="crop-call style COORDS-GRAMMAR: absolute|relative (0-1000) and "
        "json|tool (Qwen3-VL's image_zoom_in_tool), e.g. relative-tool (default: the checkpoint's own, "
        "from its r3lab.json, else its family's: relative for Qwen3-VL / Qwen3.5); --data is converted",
    )


def check_attn(name: str) -> None:
    """An attention implementation transformers knows ("" = the model's own); ValueError naming them."""
    if not name:
        return
    from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

    known = sorted({"eager", *ALL_ATTENTION_FUNCTIONS.valid_keys()} - {"paged|eager"})
    if name not in known:
        raise ValueError(
            f"--attn {short(name)} is not an attention implementation transformers knows: choose one of "
            f"{', '.join(known)} (or leave it out for the model's own)"
        )


def check_data(path: str) -> str:
    """Fail fast, before any model is loaded, when the data path is missing."""
    if not path:
        raise ValueError(
            "no data given: pass --data <dataset folder or samples.jsonl> "
            "(build one with `r3lab data build --out <folder>`)"
        )
    if not Path(path).exists():
        raise FileNotFoundError(
            f"data path {path} does not exist: build a dataset with `r3lab data build --out {path}`"
        )
    if Path(path).is_file():
        refuse_foreign(path)  # an official file given as --data: name the import command now
    return path


def load_samples(path: str, view=None, calls: CallStyle | None = None) -> list:
    """Samples of an r3lab dataset folder or samples.jsonl, with crop boxes in `view`'s frame, and their crop
    calls written in `calls` (the policy's style) when given."""
    samples = load_dataset_samples(check_data(path), view=view)
    return [restyle(s, calls, view) for s in samples] if calls is not None else list(samples)


def parse_calls(text: str) -> CallStyle:
    """`relative-tool` -> CallStyle("relative", "tool"); a ValueError names the allowed values."""
    coords, _, grammar = text.partition("-")
    try:
        return CallStyle(coords, grammar or "json")
    except ValueError as e:
        raise ValueError(
            f"--calls {short(text)}: {e} (write COORDS-GRAMMAR, e.g. absolute-json or relative-tool)"
        ) from None


def load_start_policy(path: str, dtype: str = "", attn: str = "", calls: str = "", bits: int = 0) -> Policy:
    """The policy a CLI run starts from, on this process's device (cuda:LOCAL_RANK under torchrun);
    `bits=4` loads its base in 4 bits for QLoRA (a clear error where bitsandbytes or CUDA is missing)."""
    style = parse_calls(calls) if calls else None
    check_attn(attn)
    check_bits(bits, path)
    if not path:
        policy = build_tiny()
        policy.model.to(device=dist.device(), dtype=getattr(torch, dtype) if dtype else None)
    else:
        policy = load_policy(
            path, dtype=dtype or None, device=dist.device(), attn_implementation=attn or None, bits=bits
        )
    if style is not None:
        policy.prompt = policy.prompt.with_calls(style)
    return policy


def check_bits(bits: int, path: str) -> None:
    """QLoRA's needs, before anything loads: bitsandbytes, a CUDA GPU and a real checkpoint folder."""
    if not bits:
        return
    from ..model.adapters import qlora_problem

    if why := qlora_problem():
        raise ValueError(why + "; train plain LoRA here (--lora-bits 0)")
    if not path:
        raise ValueError("QLoRA (--lora-bits 4) quantises a real checkpoint: pass --policy FOLDER")


def add_necessity_arguments(parser, log: str = "log.jsonl") -> None:
    """--necessity-every / --necessity-data / --necessity-n: the opt-in tool-necessity callback of training, whose
    keys join the training log `log`."""
    parser.add_argument(
        "--necessity-every",
        type=int,
        default=0,
        metavar="N",
        help="every N steps, tool necessity on held-out questions (--necessity-data) joins that "
        f"step's row of {log} (tool_gain, tool_harm, zooming_gap, crop rates; `r3lab dashboard` draws "
        "them); six greedy rollouts per question each time (default: 0, off)",
    )
    parser.add_argument(
        "--necessity-data",
        default="",
        metavar="PATH",
        help="held-out dataset folder or samples.jsonl for --necessity-every (never the training data)",
    )
    parser.add_argument(
        "--necessity-n",
        type=int,
        default=16,
        metavar="N",
        help="held-out questions per necessity evaluation (default: 16; 0: all)",
    )


def necessity_callbacks(args, policy, total: int) -> list:
    """[NecessityEvery] when --necessity-every is set, else []."""
    every = getattr(args, "necessity_every", 0)
    if not every:
        return []
    held = load_samples(args.necessity_data, policy.view, policy.prompt.calls)
    return [NecessityEvery(held, every, EvalConfig.for_policy(policy), total=total, n=args.necessity_n)]


def check_necessity_arguments(args) -> None:
    """The necessity flags agree, before any model is loaded."""
    every, n = getattr(args, "necessity_every", 0), getattr(args, "necessity_n", 0)
    if every < 0 or n < 0:
        raise ValueError(
            f"--necessity-every {short(every)} / --necessity-n {short(n)}: give 0 (off / all) or a positive number"
        )
    if every:
        if not args.necessity_data:
            raise ValueError("--necessity-every needs --necessity-data: a held-out dataset folder or samples.jsonl")
        check_data(args.necessity_data)


def run_training(args, config_cls, train, summary) -> int:
    """`r3lab train ...`: the stage's config from the flags, data and policy loaded, `train`, a summary line."""
    cfg = dataclass_from_args(config_cls, args).validate()
    check_bits(cfg.lora.bits, args.policy)
    check_attn(args.attn)
    check_data(cfg.data)
    check_necessity_arguments(args)
    policy = load_start_policy(args.policy, args.dtype, args.attn, args.calls, bits=cfg.lora.bits)
    log = train(
        policy,
        load_samples(cfg.data, policy.view, policy.prompt.calls),
        cfg,
        callbacks=necessity_callbacks(args, policy, cfg.steps),
    )
    if dist.info().is_main:
        print(summary(log))
    dist.shutdown()
    if log.interrupted:  # saved, but not the run asked for: `train && eval` must not go on
        print(
            f"interrupted: the checkpoint in {cfg.out_dir or '(no out_dir)'} holds a partial run; continue it with "
            "--resume true"
        )
        return 130
    return 0
