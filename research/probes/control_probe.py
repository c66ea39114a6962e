"""Control probe: can SFT teach the control family (a large landmark's colour or shape, no crop)?

    python research/probes/control_probe.py START STEPS KINDS OUT [SHARE]

START: a checkpoint (e.g. assets/checkpoints/r3-tiny-sft); STEPS: SFT steps of 32 samples at lr 5e-4;
KINDS: control kinds ("colour,shape", "shape", "colour"); SHARE: share of control samples (rest: read_one,
compare_two in equal parts). Held-out: 200 control questions per kind, seed 999, greedy. Writes OUT.json.
"""

import json
import sys
import time

import r3lab
from r3lab.data.tasks import TaskConfig
from r3lab.data.vlir import build_samples
from r3lab.train import SFTConfig


def main() -> None:
    r3lab.configure_threads()
    start, steps, kinds, out = sys.argv[1], int(sys.argv[2]), sys.argv[3].split(","), sys.argv[4]
    share = float(sys.argv[5]) if len(sys.argv) > 5 else 1.0
    tasks = TaskConfig(control_kinds=tuple(kinds))
    pol = r3lab.load_policy(start)
    rec = {"start": start, "steps": steps, "kinds": kinds, "share": share, "evals": []}

    def measure(step):
        res = {}
        for k in kinds:
            ev = build_samples(
                200, seed=999, families=["control"], tasks=TaskConfig(control_kinds=(k,)), view=pol.view, progress=False
            )
            r = r3lab.evaluate(pol, ev, r3lab.EvalConfig(max_new_tokens=64), progress=False)
            res[k] = {
                "acc": r.rows["control"]["accuracy"],
                "crops": r.rows["control"].get("crops_per_sample"),
                "answers": [t.final_answer() for t in r.trajectories[:8]],
                "truth": [s.answers[0] for s in ev[:8]],
            }
        rec["evals"].append({"step": step, **res})
        print(json.dumps(rec["evals"][-1]), flush=True)

    measure(0)
    weights = {"control": share / (1 - share) * 2} if share < 1 else None
    fams = ["control"] if share >= 1 else ["control", "read_one", "compare_two"]
    train = build_samples(
        steps * 32, seed=1, families=fams, tasks=tasks, view=pol.view, progress=False, weights=weights
    )
    t0 = time.time()
    for chunk in range(4):
        cfg = SFTConfig(
            steps=steps // 4,
            batch_size=32,
            lr_lm=5e-4,
            lr_merger=5e-4,
            lr_vision=5e-4,
            autocast=True,
            warmup=5,
            seed=chunk,
            log_every=50,
        )
        r3lab.train_sft(pol, train[chunk * len(train) // 4 : (chunk + 1) * len(train) // 4], cfg)
        measure((chunk + 1) * steps // 4)
    rec["seconds"] = time.time() - t0
    json.dump(rec, open(out + ".json", "w"), indent=1)


if __name__ == "__main__":
    main()
