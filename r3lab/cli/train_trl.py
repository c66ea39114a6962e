"""`r3lab train trl`: r3lab's samples, crop environment and rewards on TRL's GRPOTrainer (`pip install r3lab[trl]`).

Writes into --out-dir: `trl_log.jsonl` (TRL's log, one row per logged step), `trajectories.jsonl` (every
batch's rollouts as r3lab Trajectories, without pixels: `r3lab dashboard` reads the folder) and `final/`
(the trained policy, which `--policy` accepts). With `--necessity-every N --necessity-data HELD_OUT`, tool necessity
on held-out questions joins `trl_log.jsonl` every N steps (`r3lab.integrations.TRLNecessity`).
"""

from __future__ import annotations

import json
from pathlib import Path

from ..integrations.trl_env import require_trl
from ..integrations.trl_train import TRLConfig, train_trl
from .args import add_dataclass_arguments, dataclass_from_args
from .inputs import (
    add_necessity_arguments,
    add_policy_arguments,
    check_data,
    check_necessity_arguments,
    load_samples,
    load_start_policy,
)

NECESSITY = (
    "tool necessity (--necessity-every): the trained model answers the held-out questions between two "
    "optimizer steps through r3lab's engine, greedily, with its own crops and with crops off / blank / "
    "coarse / a random box / the ground-truth box, prompted as TRL trains it (Qwen's tool grammar in "
    "--coords, TRL's instruction); the keys join that step's row of trl_log.jsonl, which `r3lab dashboard "
    "OUT/trl_log.jsonl` draws. Only the main process evaluates, while the others wait."
)


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, TRLConfig)
    add_necessity_arguments(parser, log="trl_log.jsonl")
    parser.epilog = ((parser.epilog + "\n\n") if parser.epilog else "") + NECESSITY


def run(args) -> int:
    cfg = dataclass_from_args(TRLConfig, args).validate()
    check_data(cfg.data)
    check_necessity_arguments(args)
    require_trl()  # before a model is loaded
    out = Path(cfg.out_dir)
    if (out / "trl_log.jsonl").exists() or (out / "trajectories.jsonl").exists():
        raise FileExistsError(
            f"{out} already holds a TRL run (trl_log.jsonl / trajectories.jsonl): pass another "
            "--out-dir, or delete that folder"
        )
    policy = load_start_policy(args.policy, args.dtype, args.attn)
    callbacks = []
    if args.necessity_every:
        from ..integrations.trl_necessity import TRLNecessity, trl_prompt

        held = load_samples(args.necessity_data, policy.view, trl_prompt(policy, cfg.coords).calls)
        callbacks.append(TRLNecessity(policy, held, args.necessity_every, cfg, n=args.necessity_n))
    run_ = train_trl(
        policy, load_samples(cfg.data, policy.view), cfg, record=str(out / "trajectories.jsonl"), callbacks=callbacks
    )
    (out / "trl_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in run_.log))
    policy.save(out / "final")
    last = next((r for r in reversed(run_.log) if "reward" in r), {})
    print(
        f"TRL GRPO: {len(run_.log)} log rows; last reward {last.get('reward')}, crops/rollout "
        f"{last.get('rewards/crops/mean')}; policy in {out / 'final'}"
    )
    return 0
