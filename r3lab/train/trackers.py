"""`report_to`, as transformers and TRL read it: where a training run's curves go. `none` (default), `tensorboard`,
`trackio`, `wandb`, `all` (those installed) or a comma-separated list. Every tracker writes locally:

* tensorboard: event files in `<out_dir>/tensorboard` (the hyperparameters in the same folder, not a timestamped
  one beside it; `tensorboard --logdir <out_dir>/tensorboard`);
* trackio: `TRACKIO_DIR` (default `<out_dir>/trackio`) in its append-only JSONL mode, so several runs may write one
  folder at once (a sweep's runs share `<sweep>/trackio`); never a Hugging Face Space: TRACKIO_SPACE_ID /
  TRACKIO_SERVER_URL are ignored (`trackio show`, then `trackio sync` if you want it online);
* wandb: offline only (`WANDB_MODE=offline`; `wandb sync <dir>` later).

Each logged row's numbers go as curves: the loss and learning rates, R-GRPO's reward terms, the rollout-trainer
mismatch (`mismatch/*`) and crop behaviour (crop rate, crops per rollout, invalid crops, crop IoU). The run's
settings are its hyperparameters, with a sweep run's point and seed (R3LAB_SWEEP, set by `r3lab sweep`).
The crop dashboard (`r3lab dashboard`) stays r3lab's own view of the same log.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import math
import os
import time
import warnings
from pathlib import Path

from ..core.settings import short

TRACKERS = ("tensorboard", "trackio", "wandb")
_MODULES = {"tensorboard": "tensorboard", "trackio": "trackio", "wandb": "wandb"}
SWEEP_ENV = "R3LAB_SWEEP"  # a sweep run's {"sweep", "run", "point", "seed"}, set by r3lab sweep


def parse_report_to(value) -> list[str]:
    """The trackers a `report_to` value names ([] for none); ValueError naming the choices for anything else.
    `all`: the installed ones."""
    names = value if isinstance(value, (list, tuple)) else str(value or "none").replace(" ", "").split(",")
    names = [str(n).strip().lower() for n in names if str(n).strip()]
    if names in ([], ["none"]):
        return []
    if names == ["all"]:
        return [t for t in TRACKERS if importlib.util.find_spec(_MODULES[t]) is not None]
    if bad := [n for n in names if n not in TRACKERS]:
        raise ValueError(
            f"report_to {short(value)}: {short(bad[0])} is not a tracker r3lab reports to; choose none, all or "
            f"some of {', '.join(TRACKERS)} (comma-separated)"
        )
    return list(dict.fromkeys(names))


def hyperparameters(config) -> dict:
    """A config's settings as flat hyperparameters (nested settings as `lora.r`), with a sweep run's point and seed."""
    flat = {}

    def walk(prefix, value):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(f"{prefix}{k}.", v)
        elif isinstance(value, (bool, int, float, str)) or value is None:
            flat[prefix[:-1]] = value
        else:
            flat[prefix[:-1]] = json.dumps(value, default=str)

    walk("", dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config))
    if sweep := sweep_run():
        flat.update(
            {
                "sweep.name": sweep.get("sweep"),
                "sweep.run": sweep.get("run"),
                "sweep.seed": sweep.get("seed"),
                **{
                    f"sweep.point.{k}": (v if isinstance(v, (bool, int, float, str)) else json.dumps(v))
                    for k, v in (sweep.get("point") or {}).items()
                },
            }
        )
    return flat


def sweep_run() -> dict:
    try:
        return json.loads(os.environ.get(SWEEP_ENV, "") or "{}")
    except ValueError:
        return {}


class Trackers:
    """The trackers of one run, as a callback of the training loop (`cb(state, row)`); `close()` at its end."""

    def __init__(self, config, kind: str = ""):
        self.names = parse_report_to(getattr(config, "report_to", "none"))
        out = (
            Path(config.out_dir)
            if getattr(config, "out_dir", "")
            else Path("runs") / "trackers" / time.strftime("%Y%m%d-%H%M%S")
        )
        sweep = sweep_run()
        self.run_name = sweep.get("run") or out.name
        self.project = sweep.get("sweep") or "r3lab"
        self.hparams = hyperparameters(config)
        self.kind = kind or type(config).__name__
        self.open = []
        try:
            for name in self.names:
                self.open.append({"tensorboard": _TensorBoard, "trackio": _Trackio, "wandb": _Wandb}[name](self, out))
        except BaseException:
            self.close()
            raise

    def __call__(self, state, row: dict) -> None:
        step = int(row["step"] if "step" in row else state.step)
        values = {
            k: float(v)
            for k, v in row.items()
            if k != "step" and isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))
        }
        for t in self.open:
            t.log(values, step)

    def close(self) -> None:
        for t in self.open:
            try:
                t.close()
            except Exception as e:  # a tracker that fails to close must not hide how the run ended
                warnings.warn(f"report_to: closing {type(t).__name__.strip('_').lower()} failed: {e}", stacklevel=2)
        self.open = []


def _need(name: str):
    if importlib.util.find_spec(_MODULES[name]) is None:
        raise ImportError(
            f"report_to={short(name)} needs {name}: pip install 'r3lab[tracking]'"
            + (" (wandb: pip install wandb)" if name == "wandb" else "")
        )


class _TensorBoard:
    def __init__(self, run: Trackers, out: Path):
        _need("tensorboard")
        from torch.utils.tensorboard import SummaryWriter
        from torch.utils.tensorboard.summary import hparams

        self.writer = SummaryWriter(log_dir=str(out / "tensorboard"))
        # the hparams summaries written into this run's own folder (add_hparams would open a timestamped one)
        values = {
            k: v if isinstance(v, (bool, int, float, str)) else str(v) for k, v in run.hparams.items() if v is not None
        }
        for summary in hparams(values, {}):
            self.writer.file_writer.add_summary(summary)
        self.writer.add_text("run", json.dumps({"kind": run.kind, "name": run.run_name, "project": run.project}))

    def log(self, values: dict, step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class _Trackio:
    def __init__(self, run: Trackers, out: Path):
        _need("trackio")
        for var in ("TRACKIO_SPACE_ID", "TRACKIO_SERVER_URL"):  # never a Space or a server: a local folder
            if os.environ.pop(var, None):
                warnings.warn(
                    f"report_to=trackio logs locally; {var} is ignored (publish later with trackio sync)", stacklevel=3
                )
        os.environ.setdefault("TRACKIO_DIR", str((out / "trackio").resolve()))
        os.environ.setdefault("TRACKIO_STORAGE_MODE", "jsonl")  # append-only fragments: writers never share a file
        import trackio

        self.trackio = trackio
        self.run = trackio.init(
            project=run.project,
            name=run.run_name,
            group=run.hparams.get("sweep.name"),
            space_id=None,
            config=run.hparams,
            auto_log_gpu=False,
            auto_log_cpu=False,
        )

    def log(self, values: dict, step: int) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        self.run.finish()


class _Wandb:
    def __init__(self, run: Trackers, out: Path):
        _need("wandb")
        os.environ["WANDB_MODE"] = "offline"  # never online from r3lab: `wandb sync` later
        import wandb

        folder = out / "wandb"
        folder.mkdir(parents=True, exist_ok=True)
        self.run = wandb.init(
            project=run.project,
            name=run.run_name,
            group=run.hparams.get("sweep.name"),
            config=run.hparams,
            dir=str(folder),
            mode="offline",
            reinit="finish_previous",
        )

    def log(self, values: dict, step: int) -> None:
        self.run.log(values, step=step)

    def close(self) -> None:
        path = getattr(self.run, "dir", "")
        self.run.finish()
        print(f"wandb: an offline run in {path}; upload it with `wandb sync {Path(path).parent}`")
