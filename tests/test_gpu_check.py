"""benchmarks/gpu_check.sh's checks run end to end in their CPU smoke mode (r3-tiny sizes, Qwen2.5-VL and SmolVLM):
the engine's exactness in bf16 and fp32, rollouts, capture, one SFT and one R-GRPO step, full and LoRA."""
import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_smoke_mode_passes_every_check(tmp_path):
    pytest.importorskip("peft")
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "gpu.json"
    assert mod.main(["--smoke", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    assert res["smoke"] and res["failed"] == [] and set(res["shapes"]) == {"qwen2_5_vl", "smolvlm"}
    qwen, smol = res["shapes"]["qwen2_5_vl"], res["shapes"]["smolvlm"]
    assert smol["exactness_fp32"]["max_abs_diff"] < 1e-4 and smol["exactness_fp32"]["crops"] == 2
    for r in (qwen, smol):
        assert r["exactness_bf16"]["argmax_agreement"] >= 0.98 and r["rollouts_bf16"]["same_tokens"]
    assert set(qwen["train_bf16"]) >= {"full", "lora"} and "skipped" in res["nccl"]
    assert (ROOT / "benchmarks" / "gpu_check.sh").read_text().count("gpu_check.py") == 1
