"""How fast the VLIR builder makes samples, renders their images, filters and saves them.

    python benchmarks/build_samples.py [--n 5000]

Target: building 5,000 samples (every image rendered once) in under a minute on the 2-core CPU.
Prints the rates and writes benchmarks/results/build_samples.json. Saving PNGs is measured on a
subset (`--save-n`) and extrapolated; `images="scene"` saving is measured on all samples.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from r3lab.core.regions import ViewConfig
from r3lab.data.dataset import save_dataset
from r3lab.data.filters import filter_samples
from r3lab.data.legible import coarse_residual, legibility
from r3lab.data.tasks import make_task
from r3lab.data.vlir import build_samples
from r3lab.data.world import WorldConfig


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--save-n", type=int, default=200, help="samples saved as PNG for the PNG rate")
    args = ap.parse_args(argv)
    view = ViewConfig()

    t0 = time.perf_counter()
    samples = build_samples(args.n, seed=0, view=view, progress=False)
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    for s in samples:
        s.load_image()
    t_render = time.perf_counter() - t0
    t0 = time.perf_counter()
    kept, report = filter_samples(samples, view, progress=False)
    t_filter = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        save_dataset(samples, Path(tmp) / "scene", images="scene", progress=False)
        t_scene = time.perf_counter() - t0
        t0 = time.perf_counter()
        save_dataset(samples[: args.save_n], Path(tmp) / "png", images="png", progress=False)
        t_png = (time.perf_counter() - t0) / args.save_n
        png_bytes = sum(p.stat().st_size for p in (Path(tmp) / "png" / "images").iterdir()) / args.save_n

    residual = [coarse_residual(make_task("read_one", 0, i).scene, view) for i in range(40)]
    res = {
        "n": args.n,
        "build_s": round(t_build, 3),
        "render_s": round(t_render, 3),
        "build_and_render_s": round(t_build + t_render, 3),
        "samples_per_s": round(args.n / (t_build + t_render), 1),
        "target_s_for_5000": 60.0,
        "ratio_to_target": round((t_build + t_render) * 5000 / args.n / 60.0, 3),
        "filter_s": round(t_filter, 3),
        "filter_kept": report.kept,
        "save_scene_s": round(t_scene, 3),
        "save_png_ms_per_sample": round(t_png * 1e3, 2),
        "png_kb_per_sample": round(png_bytes / 1024, 1),
        "legibility": legibility(WorldConfig(), view),
        "coarse_residual_mean": sum(r["coarse_max"] for r in residual) / len(residual),
        "zoomed_residual_mean": sum(r["zoomed_max"] for r in residual) / len(residual),
    }
    print(
        f"built {args.n} samples in {t_build:.2f} s, rendered every image in {t_render:.2f} s: "
        f"{res['samples_per_s']} samples/s ({res['ratio_to_target']:.2f} of the 60 s budget for 5,000)"
    )
    print(
        f"filters: {t_filter:.2f} s, kept {report.kept}/{args.n}; save (scenes): {t_scene:.2f} s; "
        f"save (PNG): {res['save_png_ms_per_sample']} ms and {res['png_kb_per_sample']} KB per sample"
    )
    for k, v in res["legibility"].items():
        print(f"{k:>5}: {v['coarse_px']:.2f} px at the coarse view, >= {v['zoomed_px']:.2f} px after crop-and-zoom")
    print(
        f"largest pixel change made by the details (0-255): coarse view {res['coarse_residual_mean']:.0f}, "
        f"zoomed crop {res['zoomed_residual_mean']:.0f} (mean over 40 read_one scenes)"
    )
    out = Path(__file__).parent / "results" / "build_samples.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(res, indent=1))
    return res


if __name__ == "__main__":
    main()
