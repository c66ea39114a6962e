"""How recipe_guard.json and recipe_guard.safetensors were made: format 1 (commit 619ce44, the recipe before its
curriculum was data) runs the guard scenario, and its checkpoints are sketched (../recipe_guard.py) on any machine:

    git worktree add /tmp/w619 619ce44
    OMP_NUM_THREADS=1 PYTHONPATH=/tmp/w619 .venv/bin/python tests/recipe/data/make_recipe_guard.py OUT

The scenario: the tiny recipe in float32 with every phase and check on, every bar at 100 (each check adds its one
phase, then fails), the bars dropped to 0 one check at a time, then every row evaluated. Kept: each run's error
class, every check record, every row and the recipe.json format 1 wrote, exactly; each checkpoint file's sketch.
"""

import json
import subprocess
import sys
from pathlib import Path

import torch

import r3lab
from r3lab.replication.recipe import Recipe, RecipeConfig  # format 1's module (619ce44)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from recipe_guard import save_reference, sketch  # noqa: E402  (no r3lab import: the same on both commits)

torch.set_num_threads(1)
out, here = Path(sys.argv[1]), Path(__file__).parent
GUARD = dict(
    n_base=24,
    base_steps=2,
    base_batch=4,
    ground_check=2,
    ground_early=0.5,
    ground_more=1,
    ground_rounds=1,
    pairs_steps=1,
    read_first_steps=1,
    read_focus_steps=1,
    read_steps=1,
    read_check=2,
    read_more=1,
    read_rounds=1,
    compare_drill_steps=1,
    drill_check=2,
    drill_more=1,
    drill_rounds=1,
    compare_steps=1,
    compare_check=2,
    compare_more=1,
    compare_rounds=1,
    n_train=24,
    n_eval=3,
    sft_steps=2,
    sft_batch=4,
    sft_check=2,
    sft_more=1,
    sft_rounds=1,
    sft_read_rounds=1,
    sft_read_more=1,
    rgrpo_steps=1,
    group_size=2,
    rgrpo_batch=4,
    train_rollout={"max_new_tokens": 24},
    eval_rollout={"max_new_tokens": 24},
    view={"crop_max_pixels": 98 * 98},
    parallel=1,
    autocast=False,
)
bars = dict(ground_min=100.0, read_min=100.0, drill_min=100.0, compare_min=100.0, sft_min=100.0, sft_read_min=100.0)
errors = []
for drop in [
    None,
    ("ground_min",),
    ("read_min",),
    ("drill_min",),
    ("compare_min", "compare_ground_min"),
    ("sft_min",),
    ("sft_read_min",),
]:
    for k in drop or ():
        bars[k] = 0.0
    try:
        Recipe(RecipeConfig(out=str(out), **GUARD, **bars), progress=False).run()
        errors.append(None)
    except Exception as e:  # noqa: BLE001
        errors.append(type(e).__name__)
        print(type(e).__name__, str(e)[:200])
commit = subprocess.run(
    ["git", "rev-parse", "--short", "HEAD"], cwd=Path(r3lab.__file__).parent, text=True, capture_output=True
).stdout.strip()
how = (
    f"Made by make_recipe_guard.py (its docstring) on commit {commit}, torch {torch.__version__}, one thread. "
    "recipe_guard.safetensors: each checkpoint file's layout and sketch (recipe_guard.py); here each run's error, "
    "every check record and row, and the recipe.json format 1 wrote."
)
checks = {p.name: json.loads(p.read_text()) for p in sorted((out / "logs").glob("*_checks.json"))}
rows = {p.stem: json.loads(p.read_text())["rows"] for p in sorted((out / "eval").glob("*.json"))}
recipe_json = json.loads((out / "recipe.json").read_text())
(here / "recipe_guard.json").write_text(
    json.dumps(
        dict(how=how, errors=errors, checks=checks, rows=rows, recipe_json=recipe_json), indent=1, sort_keys=True
    )
    + "\n"
)
save_reference(sketch(out), here / "recipe_guard.safetensors")
