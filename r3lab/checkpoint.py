"""Checkpoints: an HF-loadable policy folder plus optimizer tensors (safetensors) and a JSON state.

Layout of `<out_dir>/step_000012/`:
  config.json, model.safetensors, tokenizer..., r3lab.json   (Policy.save: `load_policy` reads it)
  optimizer.safetensors                                       (every optimizer tensor)
  state.json                                                  (step, config, optimizer scalars, RNG, log)
`<out_dir>/latest` names the newest complete checkpoint. Everything is written into a temporary
folder that is renamed into place, and `latest` is replaced atomically, so an interrupted save
never leaves a half-written checkpoint behind.
"""
from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

LATEST = "latest"


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to a temporary file beside `path`, fsync it, then `os.replace` it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# -- RNG -------------------------------------------------------------------------------------------
def rng_state() -> dict:
    """Python, numpy, torch (and CUDA) generator states as JSON-ready values."""
    st = {"python": _b64(random.getstate()), "numpy": _b64(np.random.get_state()),
          "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode()}
    if torch.cuda.is_available():
        st["cuda"] = [base64.b64encode(s.numpy().tobytes()).decode() for s in torch.cuda.get_rng_state_all()]
    return st


def set_rng_state(st: dict) -> None:
    random.setstate(_unb64(st["python"]))
    np.random.set_state(_unb64(st["numpy"]))
    torch.set_rng_state(torch.frombuffer(bytearray(base64.b64decode(st["torch"])), dtype=torch.uint8))
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8)
                                      for s in st["cuda"]])


def _b64(obj) -> str:
    import pickle

    return base64.b64encode(pickle.dumps(obj)).decode()


def _unb64(s: str):
    import pickle

    return pickle.loads(base64.b64decode(s))  # only ever our own state.json


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


def save_checkpoint(out_dir: str | os.PathLike, policy, optimizer: torch.optim.Optimizer | None, step: int,
                    state: dict | None = None, keep: int | None = 3) -> Path:
    """Write `<out_dir>/step_<step>` atomically and point `latest` at it; keep the newest `keep`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"step_{step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=out_dir))
    try:
        with _quiet_hf():
            policy.save(tmp)
        meta = {"step": step, "rng": rng_state(), **(state or {})}
        if optimizer is not None:
            tensors, meta["optimizer"] = _optimizer_split(optimizer)
            save_file(tensors, str(tmp / "optimizer.safetensors"))
        atomic_write_text(tmp / "state.json", json.dumps(meta))
        if final.exists():  # re-saving the same step: move the old one aside first
            trash = Path(tempfile.mkdtemp(prefix=".trash.", dir=out_dir))
            os.replace(final, trash / final.name)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    atomic_write_text(out_dir / LATEST, final.name + "\n")
    if keep:
        for old in sorted(out_dir.glob("step_*"))[:-keep]:
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    return final


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
    raise FileNotFoundError(f"no checkpoint at {path}: expected a step_* folder with state.json or an output "
                            f"folder with a '{LATEST}' file (written by r3lab training)")


def load_checkpoint(path: str | os.PathLike, policy, optimizer: torch.optim.Optimizer | None = None,
                    restore_rng: bool = True) -> dict:
    """Load weights into `policy.model` (in place), optimizer state and RNG; returns state.json."""
    ckpt = find_checkpoint(path)
    meta = json.loads((ckpt / "state.json").read_text())
    # save_pretrained may rename keys to the released layout, so let from_pretrained map them back
    with _quiet_hf():
        loaded = type(policy.model).from_pretrained(ckpt, dtype=policy.model.dtype, local_files_only=True)
    result = policy.model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [m for m in result.missing_keys if m not in _tied(policy.model)]
    if missing or result.unexpected_keys:
        raise ValueError(f"checkpoint {ckpt} does not fit this model: missing {missing[:5]}, unexpected "
                         f"{result.unexpected_keys[:5]}")
    del loaded
    if optimizer is not None:
        if "optimizer" not in meta:
            raise ValueError(f"checkpoint {ckpt} holds no optimizer state (saved for inference only)")
        tensors = load_file(str(ckpt / "optimizer.safetensors"), device=str(policy.device))
        optimizer.load_state_dict(_optimizer_join(tensors, meta["optimizer"]))
    if restore_rng:
        set_rng_state(meta["rng"])
    meta["path"] = str(ckpt)
    return meta


def _tied(model) -> set[str]:
    keys = getattr(model, "_tied_weights_keys", None) or []
    if isinstance(keys, dict):
        keys = list(keys)
    return set(keys) | {"lm_head.weight"}
