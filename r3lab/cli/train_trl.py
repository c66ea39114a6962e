"""`r3lab train trl`: r3lab's samples, crop environment and rewards on TRL's GRPOTrainer (`pip install r3lab[trl]`).

Writes into --out-dir: `trl_log.jsonl` (TRL's log, one row per logged step), `trajectories.jsonl` (every
batch's rollouts as r3lab Trajectories, without pixels: `r3lab dashboard` reads the folder) and `final/`
(the trained policy, which `--policy` accepts).
"""
from __future__ import annotations

import json
from pathlib import Path

from ..integrations.trl_env import require_trl
from ..integrations.trl_train import TRLConfig, train_trl
from .args import add_dataclass_arguments, dataclass_from_args
from .inputs import add_policy_arguments, check_data, load_samples, load_start_policy


def add_arguments(parser) -> None:
    add_policy_arguments(parser)
    add_dataclass_arguments(parser, TRLConfig)


def run(args) -> int:
    cfg = dataclass_from_args(TRLConfig, args).validate()
    check_data(cfg.data)
    require_trl()  # before a model is loaded
    out = Path(cfg.out_dir)
    if (out / "trl_log.jsonl").exists() or (out / "trajectories.jsonl").exists():
        raise FileExistsError(f"{out} already holds a TRL run (trl_log.jsonl / trajectories.jsonl): pass another "
                              "--out-dir, or delete that folder")
    policy = load_start_policy(args.policy, args.dtype, args.attn)
    run_ = train_trl(policy, load_samples(cfg.data, policy.view), cfg, record=str(out / "trajectories.jsonl"))
    (out / "trl_log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in run_.log))
    policy.save(out / "final")
    last = next((r for r in reversed(run_.log) if "reward" in r), {})
    print(f"TRL GRPO: {len(run_.log)} log rows; last reward {last.get('reward')}, crops/rollout "
          f"{last.get('rewards/crops/mean')}; policy in {out / 'final'}")
    return 0
