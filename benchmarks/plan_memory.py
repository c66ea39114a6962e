"""The memory planner (`r3lab plan`) against a measured peak, at real shapes, on this CPU.

    python benchmarks/plan_memory.py [--models smolvlm-256m qwen3-vl-2b]

For each published configuration (random weights in bfloat16: `r3lab.model.real.build_real`) and each phase,
a fresh subprocess (MALLOC_MMAP_THRESHOLD_=65536, so freed blocks go back to the OS and RSS tracks live
tensors; one thread) samples its RSS every 0.5 ms:
  forward    one bf16 forward without gradients over one trajectory (a 448x448 main image for Qwen3-VL, a
             1024x1024 image split into 4 tiles + the global view for SmolVLM, plus text)
  lora_sft   one LoRA SFT step as r3lab takes it: peft adapters (r=16) on the language model, the decoder's
             hidden states, lm_head at the supervised tokens only, NLL, backward, AdamW step
The measured peak is the RSS above the process's RSS before the model was built (weights included); the
planned one is `r3lab.train.plan` for the same token counts (forward_bytes; the SFT / lora / no-checkpointing
row). Target: within 20 %. Writes benchmarks/results/plan_cpu.json. One large model at a time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT, NEW, LORA_R = 120, 64, 16  # text tokens (the written ones among them), adapter rank


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Sampler(threading.Thread):
    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.stop = rss(), False

    def run(self):
        while not self.stop:
            self.peak = max(self.peak, rss())
            time.sleep(0.0005)


def inputs(name: str, model):
    """One trajectory's forward inputs and its token counts."""
    import torch

    cfg = model.config
    g = torch.Generator().manual_seed(0)
    vocab = cfg.get_text_config().vocab_size
    text = lambda n: torch.randint(10, min(vocab, 49000), (n,), generator=g)  # noqa: E731 (no special ids)
    if cfg.model_type == "idefics3":  # 1024x1024: 2x2 tiles of 512 + the global view, 64 tokens each
        n_img, per = 5, 64
        ids = torch.cat([text(TEXT - NEW)] + [torch.full((per,), cfg.image_token_id)] * n_img + [text(NEW)])
        kw = dict(
            pixel_values=torch.randn(1, n_img, 3, 512, 512, generator=g).bfloat16(),
            pixel_attention_mask=torch.ones(1, n_img, 512, 512, dtype=torch.bool),
        )
        return ids[None], kw, n_img * per
    from r3lab.core.rope import mrope_positions

    vc = cfg.vision_config
    side = 448 // vc.patch_size  # 28 x 28 patches, 196 merged tokens
    grid = (1, side, side)
    n = side * side // vc.spatial_merge_size**2
    ids = torch.cat(
        [
            text(TEXT - NEW - 2),
            torch.tensor([cfg.vision_start_token_id]),
            torch.full((n,), cfg.image_token_id),
            torch.tensor([cfg.vision_end_token_id]),
            text(NEW),
        ]
    )
    pos, _ = mrope_positions(ids, [grid], cfg.image_token_id, vc.spatial_merge_size)
    patch = 3 * vc.temporal_patch_size * vc.patch_size**2
    kw = dict(
        pixel_values=torch.randn(side * side, patch, generator=g).bfloat16(),
        image_grid_thw=torch.tensor([grid]),
        position_ids=pos[:, None],
    )
    return ids[None], kw, n


def child(name: str, phase: str) -> dict:
    import torch

    torch.set_num_threads(1)
    from r3lab.model.adapters import target_regex
    from r3lab.model.real import build_real

    before = rss()
    t0 = time.perf_counter()
    model = build_real(name, device="cpu", dtype=torch.bfloat16)
    built, build_s = rss(), time.perf_counter() - t0
    ids, kw, image_tokens = inputs(name, model)
    s = Sampler()
    s.start()
    t0 = time.perf_counter()
    if phase == "forward":
        with torch.no_grad():
            model(input_ids=ids, use_cache=False, **kw)
    else:
        import peft

        model = peft.get_peft_model(
            model,
            peft.LoraConfig(
                r=LORA_R, lora_alpha=2 * LORA_R, target_modules=target_regex(model.config.model_type, ("lm",))
            ),
        )
        base = model.get_base_model()
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        hidden = base.model(input_ids=ids, use_cache=False, **kw)[0]
        L = ids.shape[1]
        prev = torch.arange(L - NEW - 1, L - 1)  # the hidden states that predict the written tokens
        logits = base.lm_head(hidden[0, prev]).float()
        nll = -torch.log_softmax(logits, -1).gather(-1, ids[0, prev + 1, None]).mean()
        nll.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    seconds = time.perf_counter() - t0
    s.stop = True
    s.join()
    return dict(
        weights_measured=built - before,
        peak_measured=s.peak - before,
        seconds=seconds,
        build_s=build_s,
        tokens=int(ids.shape[1]),
        image_tokens=image_tokens,
    )


def planned(name: str, m: dict) -> dict:
    from r3lab.model.adapters import LoRAConfig
    from r3lab.train.plan import PlanConfig, forward_bytes, plan

    c = PlanConfig(
        policy=name,
        text_tokens=m["tokens"] - m["image_tokens"],
        image_tokens=m["image_tokens"],
        new_tokens=NEW,
        lora=LoRAConfig(r=LORA_R),
        reserve=0.0,
    )
    p = plan(c)
    sft = next(r for r in p.rows if r["stage"] == "SFT" and r["mode"] == "lora" and not r["checkpointing"])
    return dict(
        forward=forward_bytes(p.shape, c),
        lora_sft={k: sft[k] for k in ("weights", "grads", "optimizer", "activations", "total")},
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["smolvlm-256m", "qwen3-vl-2b"])
    ap.add_argument("--child", nargs=2, metavar=("MODEL", "PHASE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(*args.child)))
        return 0
    env = dict(os.environ, MALLOC_MMAP_THRESHOLD_="65536", OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    out = {
        "what": "planned vs measured peak memory (bytes above the RSS before the model was built), "
        "bf16 random weights, CPU, one thread",
        "models": {},
    }
    for name in args.models:
        row = {}
        for phase in ("forward", "lora_sft"):
            proc = subprocess.run(
                [sys.executable, __file__, "--child", name, phase],
                env=env,
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if proc.returncode:
                raise SystemExit(f"{name} {phase} failed:\n{proc.stderr[-3000:]}")
            row[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
        plan_ = planned(name, row["forward"])
        for phase, key in (("forward", "forward"), ("lora_sft", "lora_sft")):
            m = row[phase]
            m["peak_planned"] = plan_[key]["total"]
            m["planned"] = plan_[key]
            m["ratio"] = m["peak_planned"] / m["peak_measured"]
            m["within_20pct"] = abs(m["ratio"] - 1) <= 0.20
            print(
                f"{name:14} {phase:9} measured {m['peak_measured'] / 2**30:6.2f} GiB  planned "
                f"{m['peak_planned'] / 2**30:6.2f} GiB  ratio {m['ratio']:.3f}  ({m['seconds']:.1f} s, "
                f"{m['tokens']} tokens)",
                flush=True,
            )
        out["models"][name] = row
    path = ROOT / "benchmarks" / "results" / "plan_cpu.json"
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
