"""Coarse-view separability of the detail's answer classes for candidate pattern tiles (and the colour marks).

python research/probes/separability.py [N] [SEED] [OUT]   (defaults: 400 5 research/miniature/separability.json)
"""

import json
import sys

from r3lab.data.legible import class_separability
from r3lab.data.tasks import TaskConfig
from r3lab.data.world import WorldConfig


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    out = sys.argv[3] if len(sys.argv) > 3 else "research/miniature/separability.json"
    CANDIDATES = {
        "18 px, Tukey edge 5 px, random phase (default)": dict(world={}),
        "18 px, Tukey edge 5 px, fixed phase": dict(world=dict(pattern_phase="fixed")),
        "20 px, Hann window, random phase": dict(world=dict(pattern_size=20, pattern_taper=10)),
        "20 px, Hann window, fixed phase": dict(world=dict(pattern_size=20, pattern_taper=10, pattern_phase="fixed")),
        "colour marks (11 px, 6 colours)": dict(
            world={}, tasks=dict(read_kinds=("colour",), compare_kind="colour"), n=60
        ),
    }
    rows = {}
    for name, c in CANDIDATES.items():
        r = class_separability(
            WorldConfig(**c["world"]),
            tasks=TaskConfig(**c["tasks"]) if "tasks" in c else None,
            n=c.get("n", n),
            seed=seed,
        )
        rows[name] = {k: v for k, v in r.items() if k != "classes"}
        print(name, rows[name], flush=True)
    json.dump({"n": n, "seed": seed, "rows": rows}, open(out, "w"), indent=1)


if __name__ == "__main__":
    main()
