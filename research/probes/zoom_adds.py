"""Does the zoom add information the coarse view lacked? Measured on a policy's own crops.

    python research/probes/zoom_adds.py [POLICY] [FAMILIES] [N] [SEED] [OUT]
    (defaults: assets/checkpoints/r3-tiny-sft read_one,compare_two 40 424242; run from the repository root)

For each crop the policy makes on N held-out questions per family, `explain_crops` scores the text the model
wrote right after the crop (score="read") three ways: with the real zoom, with a blank view, and with the coarse
view of the same box blown up (no new pixels). importance[v] = log p(read | real zoom) - log p(read | v).
"coarse" near 0 means the crop is a pointer, not a magnifier: the coarse pixels already held the answer.
A model that reads one of K equally likely classes from the zoom and nothing from the coarse view scores ~ln K.
"""

import json
import statistics
import sys

import r3lab


def main() -> None:
    r3lab.configure_threads()
    policy_path = sys.argv[1] if len(sys.argv) > 1 else "assets/checkpoints/r3-tiny-sft"
    families = (sys.argv[2] if len(sys.argv) > 2 else "read_one,compare_two").split(",")
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 40
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 424242
    out = sys.argv[5] if len(sys.argv) > 5 else ""

    pol = r3lab.load_policy(policy_path)
    report = {"policy": policy_path, "seed": seed, "n": n, "families": {}}
    for family in families:
        samples = r3lab.build_samples(n, seed=seed, families=[family], view=pol.view, progress=False)
        res = r3lab.evaluate(pol, samples, r3lab.EvalConfig.for_policy(pol), progress=False)
        imps = {"coarse": [], "blank": []}
        for t in res.trajectories:
            why = r3lab.WhyConfig.quick(importance_target="read", importance=("coarse", "blank"))
            for e in r3lab.explain_crops(pol, t, why):
                for k in imps:
                    if e.effect(k) is not None:
                        imps[k].append(e.effect(k))
        row = {"accuracy": res.rows[family]["accuracy"], "crops": len(imps["coarse"])}
        for k, v in imps.items():
            if v:
                row[k] = {
                    "mean": statistics.mean(v),
                    "median": statistics.median(v),
                    "share_over_0.5": sum(x > 0.5 for x in v) / len(v),
                }
        report["families"][family] = row
        print(family, json.dumps(row), flush=True)
    if out:
        with open(out, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
