"""The numbers behind the guard's tolerance (../recipe_guard.py): how far the guard recipe's checkpoints move when
only the kind of CPU changes, and when its training changes.

    OMP_NUM_THREADS=1 .venv/bin/python tests/recipe/data/measure_recipe_guard.py OUT [bf16]

Each run (today's code, the guard scenario of test_curriculum.py) goes to OUT/<name>, once (a folder already there is
reused). Other kinds of CPU are emulated on this one: torch's vector kernels (ATEN_CPU_CAPABILITY), MKL's code path
(MKL_ENABLE_INSTRUCTIONS) and oneDNN's (ONEDNN_MAX_CPU_ISA). Printed per run against `native`: the largest true
distance over a group's norm (per group), the largest the sketches read, and whether the check records and rows agree.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT))
from tests.recipe.recipe_guard import distances, group, sketch  # noqa: E402

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
RUNS = {  # name -> (environment, settings over the guard's)
    "native": ({}, {}),
    "avx2": (AVX2, {}),
    "mkl_avx2": ({"MKL_ENABLE_INSTRUCTIONS": "AVX2"}, {}),
    "onednn_avx512_core": ({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, {}),
    "mkl_avx2_onednn_avx512_core": ({"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}, {}),
    "lr_10_percent_higher": ({}, {"ground.lr": 1.1e-3}),
    "one_more_step": ({}, {"ground.steps": 3}),
    "another_seed": ({}, {"seed": 1}),
    "rgrpo_lr_10_percent_higher": ({}, {"rgrpo.lr": 2.2e-5}),
}
FIRST = ("logs/base/", "logs/base_ground1/")  # what the first run trains (test_the_guard_catches_a_real_change...)
RUN = """
import json, sys
from pathlib import Path
from r3lab.recipe.checks import CheckError
from r3lab.recipe.recipe import Recipe
from tests.recipe.test_curriculum import BARS, _guard
out, change = Path(sys.argv[1]), json.loads(sys.argv[2])
bars = {f"{p}.check.bar": 100.0 for p in BARS} | {"compare.check.ground_bar": 100.0}
for phase in BARS:
    try:
        Recipe(_guard(out, bars | change), progress=False).run()
    except CheckError:
        pass
    bars |= {f"{phase}.check.bar": 0.0} | ({"compare.check.ground_bar": 0.0} if phase == "compare" else {})
Recipe(_guard(out, bars | change), progress=False).run()
"""


def records(out: Path) -> str:
    checks = {p.name: json.loads(p.read_text()) for p in sorted((out / "logs").glob("*_checks.json"))}
    rows = {p.stem: json.loads(p.read_text())["rows"] for p in sorted((out / "eval").glob("*.json"))}
    return json.dumps([checks, rows], sort_keys=True)


def true_distances(a: Path, b: Path) -> dict[str, float]:
    out = {}
    for f in sorted(b.rglob("*.safetensors")):
        rel = str(f.relative_to(b))
        if not (a / rel).exists():
            continue
        x, y, num, den = load_file(a / rel), load_file(f), {}, {}
        for k in y:
            g = group(k)
            num[g] = num.get(g, 0.0) + float(np.sum((x[k].astype(np.float64) - y[k].astype(np.float64)) ** 2))
            den[g] = den.get(g, 0.0) + float(np.sum(y[k].astype(np.float64) ** 2))
        out |= {f"{rel}: {g}": (num[g] / den[g]) ** 0.5 if den[g] else (np.inf if num[g] else 0.0) for g in num}
    return out


def main(out: Path, autocast: bool = False) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    for name, (extra, change) in RUNS.items():
        if not (out / name).exists():
            subprocess.run(
                [sys.executable, "-c", RUN, str(out / name), json.dumps(change | {"autocast": autocast})],
                env={**env, **extra},
                check=True,
                capture_output=True,
            )
    ref, want = sketch(out / "native"), records(out / "native")
    for name in RUNS:
        if name == "native":
            continue
        true, read = true_distances(out / name, out / "native"), distances(sketch(out / name), ref)
        worst = {}
        for k, d in true.items():
            g = k.split(": ")[1]
            worst[g] = max(worst.get(g, 0.0), d)
        ratios = [read[k] / d for k, d in true.items() if 0 < d < np.inf and k in read]
        top = max(read.items(), key=lambda kv: kv[1])
        first = max(d for k, d in read.items() if k.startswith(FIRST) and not k.endswith("layout"))
        print(
            f"{name}: true max by group { ({g: f'{d:.3g}' for g, d in worst.items()}) }; sketches read at most "
            f"{top[1]:.3g} ({top[0]}; {first:.3g} in the first run's files), {min(ratios, default=1):.2f}-"
            f"{max(ratios, default=1):.2f} x the true distance; checks and rows "
            f"{'equal' if records(out / name) == want else 'DIFFER'}"
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), autocast=sys.argv[2:] == ["bf16"])
