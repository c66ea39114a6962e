"""How recipe_guard.json was made, on commit 619ce44 (format-1 settings, one error class per check):
`OMP_NUM_THREADS=1 python make_recipe_guard.py OUT recipe_guard.json` (then its "how" and "recipe_json" were added).
On another kind of CPU (the bytes of bfloat16 autocast are the CPU's): `git worktree add W 619ce44`, run this script
there with `PYTHONPATH=W`, and add its hashes to recipe_guard.json under that CPU's `cpu_kind()` (test_curriculum.py).

The tiny recipe with every phase and check on, each check failing once past its one added phase, then its bar
dropped, until every row is evaluated: the sha256 of every checkpoint file, every check record and every row.
"""
import hashlib
import json
import sys
from pathlib import Path

import torch

from r3lab.recipe.recipe import Recipe, RecipeConfig

torch.set_num_threads(1)
out = Path(sys.argv[1])
GUARD = dict(n_base=24, base_steps=2, base_batch=4, ground_check=2, ground_early=0.5, ground_more=1, ground_rounds=1,
             pairs_steps=1, read_first_steps=1, read_focus_steps=1, read_steps=1, read_check=2, read_more=1,
             read_rounds=1, compare_drill_steps=1, drill_check=2, drill_more=1, drill_rounds=1, compare_steps=1,
             compare_check=2, compare_more=1, compare_rounds=1, n_train=24, n_eval=3, sft_steps=2, sft_batch=4,
             sft_check=2, sft_more=1, sft_rounds=1, sft_read_rounds=1, sft_read_more=1, rgrpo_steps=1, group_size=2,
             rgrpo_batch=4, train_rollout={"max_new_tokens": 24}, eval_rollout={"max_new_tokens": 24},
             view={"crop_max_pixels": 98 * 98}, parallel=1)
bars = dict(ground_min=100.0, read_min=100.0, drill_min=100.0, compare_min=100.0, sft_min=100.0, sft_read_min=100.0)
errors = []
for drop in [None, ("ground_min",), ("read_min",), ("drill_min",), ("compare_min", "compare_ground_min"), ("sft_min",),
             ("sft_read_min",)]:
    for k in drop or ():
        bars[k] = 0.0
    try:
        Recipe(RecipeConfig(out=str(out), **GUARD, **bars), progress=False).run()
        errors.append(None)
    except Exception as e:  # noqa: BLE001
        errors.append(type(e).__name__)
        print(type(e).__name__, str(e)[:200])
hashes = {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(out.rglob("*.safetensors"))}
checks = {p.name: json.loads(p.read_text()) for p in sorted((out / "logs").glob("*_checks.json"))}
rows = {p.stem: json.loads(p.read_text())["rows"] for p in sorted((out / "eval").glob("*.json"))}
print(json.dumps(dict(errors=errors, hashes=hashes, checks=checks, rows=rows), indent=1, sort_keys=True),
      file=open(sys.argv[2], "w"))
