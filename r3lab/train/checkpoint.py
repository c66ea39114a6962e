"""Checkpoints: an HF-loadable policy folder plus optimizer tensors (safetensors) and a JSON state.

Layout of `<out_dir>/step_000012/`:
  config.json, model.safetensors, tokenizer..., r3lab.json   (Policy.save: `load_policy` reads it)
  optimizer.safetensors                                       (every optimizer tensor)
  state.json                                                  (step, config, optimizer scalars, RNG, log)
`<out_dir>/latest` names the newest complete checkpoint. Everything is written into a temporary
folder that is renamed into place, and `latest` is replaced atomically, so an interrupted save
never leaves a half-written checkpoint behind (`clean_partial` removes its temporary folder).
Loading reads JSON and safetensors only: nothing is unpickled, so a crafted file cannot run code.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from ..core.files import atomic_write_text, plain_mode, remove_entry, temp_dir
from ..core.settings import short
from ..model.adapters import ADAPTER_WEIGHTS, is_adapted, set_adapter_state
from ..model.folder import LATEST, adapter_base, check_files
from ..model.weights import read_json, strict_from_pretrained, tied_keys

BASE = "base"  # <out_dir>/base: the frozen weights under a LoRA run's adapters, when they came from no folder


# -- RNG -------------------------------------------------------------------------------------------
# Plain JSON (ints, floats, lists) only: loading a state.json must never run code, so nothing in it is
# pickled. Files of the old format (base64 pickles) are refused, see `set_rng_state`.
def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) generator states as JSON-ready values."""
    version, mt, gauss = random.getstate()
    name, keys, pos, has_gauss, cached = np.random.get_state(legacy=True)
    st = {
        "python": [version, list(mt), gauss],
        "numpy": {
            "name": name,
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        },
        "torch": torch.get_rng_state().tolist(),
    }
    if torch.cuda.is_available():
        st["cuda"] = [s.tolist() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict, source: str | os.PathLike = "state.json") -> None:
    """Restore `rng_state()`'s values; ValueError naming `source` when they are not in that form."""
    _parse_rng(st, source)()


def _parse_rng(st, source) -> Callable[[], None]:
    """Check `st` fully first, so that a bad file changes nothing; returns the function that applies it."""
    try:
        if not isinstance(st, dict) or not isinstance(st.get("python"), list):
            raise TypeError("not the JSON RNG layout")
        version, mt, gauss = st["python"]
        py = (int(version), tuple(_ints(mt)), None if gauss is None else float(gauss))
        n = st["numpy"]
        nps = (
            str(n["name"]),
            np.asarray(_ints(n["keys"]), dtype=np.uint32),
            int(n["pos"]),
            int(n["has_gauss"]),
            float(n["cached_gaussian"]),
        )
        th = _bytes(st["torch"])
        cuda = [_bytes(s) for s in st["cuda"]] if "cuda" in st and torch.cuda.is_available() else None
        # each state tried on a generator of its own first: a short or foreign one fails here, changing nothing
        random.Random().setstate(py)
        np.random.RandomState().set_state(nps)
        torch.Generator().set_state(th)
        if cuda is not None and len(cuda) != torch.cuda.device_count():
            raise ValueError(f"{len(cuda)} CUDA generator states for {torch.cuda.device_count()} devices")
    except (TypeError, ValueError, KeyError, OverflowError, RuntimeError) as e:
        raise ValueError(
            f"{source}: the RNG state is not r3lab's JSON layout ({e}). Files written by older r3lab "
            "versions (pickled RNG state) are refused because unpickling can run code: start the run "
            "afresh (overwrite=True / --overwrite true) or load only its weights with load_policy"
        ) from None

    def apply():
        random.setstate(py)
        np.random.set_state(nps)
        torch.set_rng_state(th)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)

    return apply


def _ints(xs) -> list[int]:
    if not isinstance(xs, list) or not all(type(x) is int for x in xs):
        raise TypeError("expected a list of ints")
    return xs


def _bytes(xs) -> torch.Tensor:
    if any(not 0 <= x < 256 for x in _ints(xs)):
        raise ValueError("expected bytes (0..255)")
    return torch.tensor(xs, dtype=torch.uint8)


# -- finiteness ------------------------------------------------------------------------------------
def nonfinite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of the parameters holding NaN or inf (empty when the model is sound)."""
    return [n for n, p in model.named_parameters() if not bool(torch.isfinite(p.detach()).all())]


# -- optimizer -------------------------------------------------------------------------------------
def _optimizer_split(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars[f"{idx}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _optimizer_join(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, v in list(tensors.items()) + list(meta["scalars"].items()):
        idx, name = key.split(".", 1)
        state.setdefault(int(idx), {})[name] = v
    return {"state": state, "param_groups": meta["param_groups"]}


# -- save / load -----------------------------------------------------------------------------------
@contextlib.contextmanager
def _quiet_hf():
    """No transformers progress bars ("Writing model shards") inside training loops and notebooks."""
    from transformers.utils import logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def save_checkpoint(
    out_dir: str | os.PathLike,
    policy,
    optimizer: torch.optim.Optimizer | None,
    step: int,
    state: dict | None = None,
    keep: int | None = 3,
) -> Path:
    """Write `<out_dir>/step_<step>` atomically and point `latest` at it; keep the newest `keep`."""
    out_dir = Path(out_dir)
    if bad := nonfinite_parameters(policy.model):  # a diverged model must never replace a good checkpoint
        raise FloatingPointError(
            f"not saving step {step} to {out_dir}: parameters {bad[:3]} hold NaN/inf "
            f"(the run diverged; lower the learning rates or set grad_clip)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"step_{step:06d}"
    tmp = temp_dir(f".{final.name}.", out_dir)
    try:
        with _quiet_hf():
            policy.save(tmp)
        meta = {"step": step, "rng": rng_state(), **(state or {})}
        if optimizer is not None:
            tensors, meta["optimizer"] = _optimizer_split(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
            plain_mode(tmp / "optimizer.safetensors")
        atomic_write_text(tmp / "state.json", json.dumps(meta))
        if final.exists():  # re-saving the same step: move the old one aside first
            trash = Path(tempfile.mkdtemp(prefix=".trash.", dir=out_dir))
            os.replace(final, trash / final.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, (OSError, SafetensorError)):  # a full disk, a quota, a vanished mount
            raise OSError(
                f"could not write step {step} to {out_dir} ({type(e).__name__}: {e}); {last_good(out_dir)}. "
                "Free space (or choose another out_dir) and continue with resume=True (--resume true)"
            ) from None
        raise
    atomic_write_text(out_dir / LATEST, final.name + "\n")
    if keep:
        for old in sorted(out_dir.glob("step_*"))[:-keep]:
            if old != final:
                remove_entry(old)  # a linked step_* folder: the link goes, never what it points at
    return final


MAX_STEP = 10**9  # no run takes more steps; a larger one in state.json was edited


def check_state(meta: dict, source: Path, optimizer: torch.optim.Optimizer | None = None) -> None:
    """Everything of a state.json that resuming uses, checked before anything is applied: the step, the log rows
    and the optimizer's layout; ValueError naming the file."""

    def bad(what: str):
        return ValueError(
            f"{source}: {what}; the file was edited or damaged: resume from another step_* folder "
            "(write its name into 'latest'), or start afresh (--overwrite true)"
        )

    step = meta.get("step")
    if type(step) is not int or not 0 <= step <= MAX_STEP:
        raise bad(f"step = {short(step)} is not a step count (an integer in [0, {MAX_STEP:,}])")
    log = meta.get("log", [])
    if not isinstance(log, list) or not all(isinstance(r, dict) and type(r.get("step")) is int for r in log):
        raise bad("log is not a list of rows with integer steps")
    if optimizer is None or "optimizer" not in meta:
        return
    opt = meta["optimizer"]
    try:
        groups, scalars = opt["param_groups"], opt["scalars"]
        sizes = [len(g["params"]) for g in groups]
        n = sum(len(g["params"]) for g in optimizer.param_groups)
        idx = {int(k.split(".", 1)[0]) for k in scalars}
    except (TypeError, KeyError, ValueError, AttributeError) as e:
        raise bad(f"its optimizer state is not r3lab's layout ({type(e).__name__}: {e})") from None
    if sizes != [len(g["params"]) for g in optimizer.param_groups] or not all(0 <= i < n for i in idx):
        raise bad(
            f"its optimizer state holds parameter groups of {sizes} parameters, this run's optimizer "
            f"{[len(g['params']) for g in optimizer.param_groups]}"
        )


def last_good(out_dir: str | os.PathLike) -> str:
    """Where a run that stops on an error can be continued from, as a phrase for that error's message."""
    try:
        return f"the last good checkpoint is {find_checkpoint(out_dir)}"
    except (FileNotFoundError, OSError):
        return f"no checkpoint was written to {out_dir} yet"


def has_run(out_dir: str | os.PathLike) -> bool:
    """Whether `out_dir` already holds a training run (a log, a `latest` pointer or step_* checkpoints)."""
    out_dir = Path(out_dir)
    return (out_dir / LATEST).exists() or (out_dir / "log.jsonl").exists() or any(out_dir.glob("step_*"))


def clean_partial(out_dir: str | os.PathLike) -> list[Path]:
    """Remove what a killed save left behind (temporary .step_*/.trash.* folders, *.tmp files); returns them."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    gone = [
        *out_dir.glob(".step_*"),
        *out_dir.glob(".trash.*"),
        *out_dir.glob(f".{LATEST}.*.tmp"),
        *out_dir.glob(".log.jsonl.*.tmp"),
    ]
    for p in gone:
        remove_entry(p)
    return gone


def remove_run(out_dir: str | os.PathLike) -> None:
    """Delete a run's own files (log.jsonl, latest, step_*, reference/, partial saves); nothing else in the folder."""
    out_dir = Path(out_dir)
    clean_partial(out_dir)
    for p in [out_dir / LATEST, out_dir / "log.jsonl", *out_dir.glob("step_*"), out_dir / "reference", out_dir / BASE]:
        remove_entry(p)  # links are removed, never followed out of the folder


def find_checkpoint(path: str | os.PathLike) -> Path:
    """A checkpoint folder itself, or the one an output folder's `latest` names."""
    path = Path(path)
    if (path / "state.json").is_file():
        return path
    if (path / LATEST).is_file():
        ckpt = path / (path / LATEST).read_text().strip()
        if (ckpt / "state.json").is_file():
            return ckpt
        raise FileNotFoundError(f"{path / LATEST} names {ckpt.name}, which is missing or incomplete")
    raise FileNotFoundError(
        f"no checkpoint at {path}: expected a step_* folder with state.json or an output "
        f"folder with a '{LATEST}' file (written by r3lab training)"
    )


def load_checkpoint(
    path: str | os.PathLike, policy, optimizer: torch.optim.Optimizer | None = None, restore_rng: bool = True
) -> dict:
    """Load weights into `policy.model` (in place), optimizer state and RNG; returns state.json."""
    ckpt = find_checkpoint(path)
    check_files(ckpt)  # every JSON file parses, every safetensors header covers its file: named if not
    meta = read_json(ckpt / "state.json")
    check_state(meta, ckpt / "state.json", optimizer)
    apply_rng = _parse_rng(meta.get("rng"), ckpt / "state.json") if restore_rng else None  # before any change
    adapter = (ckpt / ADAPTER_WEIGHTS).is_file()
    if adapter != is_adapted(policy.model):
        raise ValueError(
            f"{ckpt} holds {'a LoRA adapter' if adapter else 'full weights'}, but this run trains "
            f"{'LoRA adapters' if is_adapted(policy.model) else 'the full model'}: resume with the run's "
            "own lora settings (--lora-r as saved), or start a new run (--overwrite true)"
        )
    want = policy.model.config.model_type
    got = want if adapter else read_json(ckpt / "config.json").get("model_type")
    if got != want:
        raise ValueError(
            f"{ckpt / 'config.json'} holds a {short(got)} model, but this run trains a "
            f"{short(want)} one: resume "
            "with the policy the run started from, or start a new run (--overwrite true)"
        )
    if optimizer is not None and ("optimizer" not in meta or not (ckpt / "optimizer.safetensors").is_file()):
        raise ValueError(
            f"checkpoint {ckpt} holds no optimizer state (saved for inference only, or "
            "optimizer.safetensors is missing): resume from another step_* folder, or start afresh"
        )
    if adapter:
        return _load_adapter_checkpoint(ckpt, meta, policy, optimizer, apply_rng)
    # save_pretrained may rename keys to the released layout, so let from_pretrained map them back
    with _quiet_hf():
        loaded = strict_from_pretrained(type(policy.model), ckpt, dtype=policy.model.dtype)  # never a pickled *.bin
    if bad := nonfinite_parameters(loaded):  # checked before anything of the policy changes
        raise ValueError(
            f"{ckpt}: parameters {bad[:3]} hold NaN/inf, so this checkpoint cannot be resumed; resume "
            "from an earlier step_* folder (write its name into 'latest') or start afresh"
        )
    result = policy.model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [m for m in result.missing_keys if m not in tied_keys(policy.model)]
    if missing or result.unexpected_keys:
        raise ValueError(
            f"checkpoint {ckpt} does not fit this model: missing {missing[:5]}, unexpected {result.unexpected_keys[:5]}"
        )
    del loaded
    if optimizer is not None:
        tensors = load_file(str(ckpt / "optimizer.safetensors"), device=str(policy.device))
        optimizer.load_state_dict(_optimizer_join(tensors, meta["optimizer"]))
    if restore_rng:
        apply_rng()
    meta["path"] = str(ckpt)
    return meta


def _load_adapter_checkpoint(ckpt: Path, meta: dict, policy, optimizer, apply_rng) -> dict:
    """Resume a LoRA run: the adapter tensors into the wrapped model (the base is the run's own, frozen)."""
    tensors = load_file(str(ckpt / ADAPTER_WEIGHTS), device=str(policy.device))
    if bad := [k for k, v in tensors.items() if not bool(torch.isfinite(v).all())][:3]:
        raise ValueError(
            f"{ckpt}: adapter tensors {bad} hold NaN/inf, so this checkpoint cannot be resumed; resume "
            "from an earlier step_* folder (write its name into 'latest') or start afresh"
        )
    set_adapter_state(policy.model, tensors)
    if optimizer is not None:
        optimizer.load_state_dict(
            _optimizer_join(
                load_file(str(ckpt / "optimizer.safetensors"), device=str(policy.device)), meta["optimizer"]
            )
        )
    if apply_rng is not None:
        apply_rng()
    policy.meta["base"] = str(adapter_base(ckpt))  # the next checkpoints name the same base
    meta["path"] = str(ckpt)
    return meta
