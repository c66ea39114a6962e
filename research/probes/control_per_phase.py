"""Control accuracy (held-out, greedy, the SFT check's seed) at each saved SFT phase of a recipe folder.

python research/probes/control_per_phase.py OUT N PHASE...  (PHASE: a folder under OUT/logs, e.g. sft_sft_read1,
or a stage folder under OUT)
"""

import json
import sys
from pathlib import Path

from r3lab.data.vlir import build_samples
from r3lab.evaluation.evaluation import evaluate
from r3lab.recipe.recipe import load_policy
from r3lab.recipe.recipe_config import RecipeConfig
from r3lab.recipe.recipe_format import read_settings


def main() -> None:
    out = Path(sys.argv[1])
    n = int(sys.argv[2])
    phases = sys.argv[3:]
    saved = json.loads((out / "recipe.json").read_text())
    c = RecipeConfig.from_settings(**{**read_settings(saved), "out": str(out)})
    res = {}
    for ph in phases:
        d = out / "logs" / ph
        step = d / (d / "latest").read_text().strip() if (d / "latest").is_file() else out / ph
        pol = load_policy(step, view=c.view_config())
        s = build_samples(n, 40_000, ["control"], c.world_config(), view=pol.view, progress=False)
        r = evaluate(pol, s, c.eval_config("sft"), progress=False).rows["control"]
        res[ph] = {
            "step": str(step),
            "accuracy": round(100 * r["accuracy"], 1),
            "crop_rate": round(100 * r["crop_rate"], 1),
        }
        print(ph, res[ph], flush=True)
    print(json.dumps(res))


if __name__ == "__main__":
    main()
