"""`r3lab export`: a policy folder written anew; `--merge` folds LoRA adapters into a plain policy."""

from __future__ import annotations

from pathlib import Path

from .args import DTYPES


def add_arguments(parser) -> None:
    parser.add_argument(
        "--policy",
        required=True,
        help="checkpoint folder or training run (out_dir: its latest checkpoint), with or without LoRA adapters",
    )
    parser.add_argument("--out", required=True, help="folder to write (must not exist, or be empty)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="fold LoRA adapters into the base weights: a plain "
        "policy folder that load_policy, r3lab eval and transformers read without peft",
    )
    parser.add_argument(
        "--dtype",
        default="",
        choices=DTYPES,
        metavar="DTYPE",
        help="write the weights as float32 / bfloat16 / float16 (default: as saved)",
    )


def run(args) -> int:
    from ..model.adapters import is_adapted, merge
    from ..model.policy import load_policy

    out = Path(args.out)
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty: export into a new folder")
    policy = load_policy(args.policy, dtype=args.dtype or None)
    adapted = is_adapted(policy.model)
    if adapted and args.merge:
        policy = merge(policy)
    policy.meta = {k: v for k, v in policy.meta.items() if k != "path"}
    policy.save(out)
    what = (
        "merged its LoRA adapters into a plain policy"
        if adapted and args.merge
        else "wrote its LoRA adapter (base: " + str(policy.meta.get("base")) + "); --merge writes a plain policy"
        if adapted
        else "wrote a plain policy"
    )
    print(f"{args.policy}: {what} at {out}")
    return 0
