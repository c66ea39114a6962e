"""The curriculum guard's reference: what format 1's tiny recipe trained, held to on any kind of CPU.

Checkpoint bytes are the CPU's: torch's vector kernels and MKL's code paths round differently on each kind, and
Adam's first steps (about lr * sign(gradient)) turn a rounding difference in a gradient near zero into a whole step.
So the reference (data/recipe_guard.safetensors, from format 1's run: data/make_recipe_guard.py) keeps per checkpoint
file its exact layout (names, shapes, dtypes) and, per group of tensors (the vision tower, the language model; Adam's
exp_avg, exp_avg_sq and step), its norm and a count sketch: each element added, with a sign, to one of BUCKETS sums,
both drawn from the tensor's name. Two runs' sketches estimate the distance between their tensors; the guard allows
TOL of the group's norm.

Measured with data/measure_recipe_guard.py (other kinds of CPU emulated on one machine: ATEN_CPU_CAPABILITY,
MKL_ENABLE_INSTRUCTIONS, ONEDNN_MAX_CPU_ISA), in float32 as the guard trains: another kind of CPU alone reads at most
1.9 % (Adam's moments at the end of SFT; the weights 0.36 %; the first run's files 1e-5), the sketches reading 0.7-1.3
x the true distance. A real change reads, in the first run alone (the grounding phase and its added phase): a learning
rate 10 % higher 18 %, another seed 58 %, one more step 123 % (and other files), and each over 120 % by the scenario's
end. TOL = 5 %: 2.6 x the first, 3.6 x below the second. The check records and rows are held exactly: in float32 they
agree on every kind tried, and every real change above alters them. Under bfloat16 autocast (the recipe's default) a
kind of CPU alone reads up to 115 % (R-GRPO's moments: its sampled rollouts differ; the weights 1.3 %) and MKL's AVX2
path beside oneDNN's AVX512 changed the no_crop row, so the guard trains in float32: what it guards is the recipe's
phases, not its precision. Its one R-GRPO step has equal rewards in every group and trains nothing there, so a change
to R-GRPO's learning rate cannot show.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

BUCKETS = 64  # sums per group: the sketch's reading of a distance spreads by about sqrt(2 / BUCKETS)
TOL = 0.05  # of a group's norm (the module's docstring: between 1.9 % across CPU kinds and 18 % for a real change)
_HASHES: dict[tuple[str, int], tuple[np.ndarray, np.ndarray]] = {}


def group(name: str) -> str:
    """A tensor's group: the first part of its name that is neither `model` nor an index."""
    return next((p for p in name.split(".") if p != "model" and not p.isdigit()), name)


def _hashes(name: str, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each element's bucket and sign, drawn from the tensor's name (numpy's PCG64: the same on every machine)."""
    if (name, n) not in _HASHES:
        rng = np.random.Generator(np.random.PCG64(int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big")))
        _HASHES[name, n] = rng.integers(0, BUCKETS, n, dtype=np.uint8), rng.integers(0, 2, n, dtype=np.int8) * 2 - 1
    return _HASHES[name, n]


def sketch_file(path: Path) -> tuple[str, dict[str, np.ndarray]]:
    """One checkpoint file: the sha256 of its layout, and per group [norm, the BUCKETS sums] (float64)."""
    layout, sums = [], {}
    with safe_open(str(path), "pt") as f:
        for name in sorted(f.keys()):
            t = f.get_tensor(name)
            layout.append([name, list(t.shape), str(t.dtype)])
            w = t.double().flatten().numpy()
            bucket, sign = _hashes(name, w.size)
            norm2, s = sums.get(group(name), (0.0, np.zeros(BUCKETS)))
            sums[group(name)] = norm2 + float(w @ w), s + np.bincount(bucket, sign * w, minlength=BUCKETS)
    return (
        hashlib.sha256(json.dumps(layout).encode()).hexdigest(),
        {g: np.array([norm2**0.5, *s]) for g, (norm2, s) in sorted(sums.items())},
    )


def sketch(folder: Path) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    """Every checkpoint file under `folder`: its path there -> `sketch_file`."""
    return {str(p.relative_to(folder)): sketch_file(p) for p in sorted(Path(folder).rglob("*.safetensors"))}


def save_reference(sketches: dict, path: Path) -> None:
    tensors = {f"{file}|{g}": torch.from_numpy(v) for file, (_, groups) in sketches.items() for g, v in groups.items()}
    layouts = {file: layout for file, (layout, _) in sketches.items()}
    save_file(tensors, str(path), metadata={"buckets": str(BUCKETS), "layouts": json.dumps(layouts)})


def load_reference(path: Path) -> dict[str, tuple[str, dict[str, np.ndarray]]]:
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
        assert int(meta["buckets"]) == BUCKETS, f"{path} holds sketches of {meta['buckets']} buckets, not {BUCKETS}"
        out = {file: (layout, {}) for file, layout in json.loads(meta["layouts"]).items()}
        for key in f.keys():
            file, g = key.rsplit("|", 1)
            out[file][1][g] = f.get_tensor(key)
    return out


def distances(got: dict, want: dict) -> dict[str, float]:
    """'file: group' -> the distance between the two runs' tensors (estimated from the sketches) over the group's
    norm in `want`; 'file: layout' -> inf where a file is in one run only or its names, shapes or dtypes differ."""
    out = {}
    for file in sorted(got.keys() | want.keys()):
        if file not in got or file not in want or got[file][0] != want[file][0]:
            out[f"{file}: layout"] = float("inf")
            continue
        for g, (norm, *s) in want[file][1].items():
            d = float(np.linalg.norm(got[file][1][g][1:] - np.asarray(s)))
            out[f"{file}: {g}"] = d / norm if norm else (0.0 if d == 0 else float("inf"))
    return out


def departures(got: dict, want: dict, tol: float = TOL) -> dict[str, float]:
    """What `distances` finds beyond `tol`, rounded for a message."""
    return {k: round(d, 4) for k, d in distances(got, want).items() if not d <= tol}
