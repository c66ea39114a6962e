"""The memory planner: parameter counts of the published shapes on the meta device, the rows' arithmetic,
what fits, and `r3lab plan` on a checkpoint folder. (Planned vs measured peaks: benchmarks/plan_memory.py.)"""

import json

import pytest

from r3lab.cli.app import main
from r3lab.model.adapters import LoRAConfig
from r3lab.train.plan import GIB, PlanConfig, model_shape, plan


@pytest.mark.parametrize(
    "name,billions,layers", [("qwen2.5-vl-3b", 3.75, 36), ("qwen3-vl-2b", 2.13, 28), ("smolvlm-256m", 0.2565, 30)]
)
def test_published_shapes_count_their_parameters_without_weights(name, billions, layers):
    s = model_shape(name)
    assert abs(s.total / 1e9 - billions) / billions < 0.005 and s.layers == layers
    assert all(s.lora_params[p] > 0 for p in ("lm", "vision", "merger"))


def test_rows_add_up_and_order_as_expected():
    p = plan(PlanConfig(policy="qwen2.5-vl-3b", gpu_memory=24))
    row = {(r["stage"], r["mode"], r["checkpointing"]): r for r in p.rows}
    full, lora = row["SFT", "full", False], row["SFT", "lora", False]
    assert full["total"] == pytest.approx(sum(full[k] for k in ("weights", "grads", "optimizer", "activations")))
    assert full["optimizer"] == 2 * full["grads"] and lora["grads"] < full["grads"] / 50
    assert full["fits"] == 0 and lora["fits"] >= 1  # the 3B: full fine-tuning does not fit a 24 GiB card, LoRA does
    assert row["SFT", "lora", True]["activations"] < lora["activations"] / 3  # checkpointing keeps layer inputs only
    assert row["SFT", "lora", True]["fits"] > lora["fits"]
    assert row["R-GRPO", "full", False]["grads"] < full["grads"]  # R-GRPO freezes vision and merger by default
    big = plan(PlanConfig(policy="qwen2.5-vl-3b", gpu_memory=80), shape=p.shape)
    assert all(b["fits"] >= a["fits"] for a, b in zip(p.rows, big.rows)) and big.rows[0]["fits"] >= 1
    kl = plan(PlanConfig(policy="qwen2.5-vl-3b", beta=0.04), shape=p.shape)
    ref = {(r["mode"], r["checkpointing"]): r["reference"] for r in kl.rows if r["stage"] == "R-GRPO"}
    assert ref["full", False] == full["weights"] and ref["lora", False] == 0  # LoRA's reference is its base
    assert "does not fit" in p.table() and "group" in p.table()


def test_the_static_cache_kept_through_the_update_is_counted():
    """The KV pool (and its logits buffer and captured steps) stays allocated between rollouts: R-GRPO's update holds
    it. 64 rows of 3,000 slots at the 3B shape: about 7 GB, as the engine allocates it."""
    shape = model_shape("qwen2.5-vl-3b")
    c = PlanConfig(group_size=64, text_tokens=750, image_tokens=1500, new_tokens=256, holes=0.25)
    rows = {(r["stage"], r["mode"], r["checkpointing"]): r for r in plan(c, shape).rows}
    grpo = rows["R-GRPO", "lora", True]
    kv = 2 * 36 * 2 * 128 * 2 * 3000  # K and V x layers x KV heads x head_dim x bf16 bytes x slots
    assert grpo["kv"] == pytest.approx(kv) and 64 * kv <= grpo["pool"] <= 64 * kv + 0.2 * GIB
    assert 6.5 * GIB < grpo["pool"] < 7.3 * GIB and rows["SFT", "lora", True]["pool"] == 0
    update = grpo["weights"] + grpo["grads"] + grpo["optimizer"] + grpo["activations"]
    assert grpo["total"] >= update + grpo["pool"]  # the update runs with the pool held
    dynamic = {
        (r["stage"], r["mode"], r["checkpointing"]): r
        for r in plan(
            PlanConfig(group_size=64, text_tokens=750, image_tokens=1500, new_tokens=256, cache="dynamic"), shape
        ).rows
    }
    assert dynamic["R-GRPO", "lora", True]["pool"] == 0 and dynamic["R-GRPO", "lora", True]["fits"] >= grpo["fits"]
    assert " pool " in plan(c, shape).table()
    with pytest.raises(ValueError, match="PlanConfig.cache"):
        PlanConfig(cache="paged")


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="neither a checkpoint folder"):
        plan(PlanConfig(policy="/no/such/folder"))
    with pytest.raises(ValueError, match="PlanConfig.dtype"):
        PlanConfig(dtype="int8")
    with pytest.raises(ValueError, match="lora.r must be > 0"):
        PlanConfig(lora=LoRAConfig(r=0))
    with pytest.raises(ValueError, match=r"PlanConfig\.gpu_memory = -5 is not allowed: .* in \(0, inf\)"):
        PlanConfig(gpu_memory=-5)
    with pytest.raises(ValueError, match=r"PlanConfig\.holes = 1\.0 is not allowed: .* \[0, 1\)"):
        PlanConfig(holes=1.0)
    with pytest.raises(ValueError, match=r"PlanConfig\.group_size = 1 is not allowed"):
        PlanConfig(group_size=1)


def test_cli_plans_a_checkpoint_folder(tmp_path, capsys):
    from r3lab.model.tiny import build_tiny

    build_tiny().save(tmp_path / "tiny")
    assert main(["plan", "--policy", str(tmp_path / "tiny"), "--gpu-memory", "8", "--lora-r", "4", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["lora"]["r"] == 4 and out["shape"]["model_type"] == "qwen2_5_vl"
    assert len(out["rows"]) == 8 and all(r["total"] < 8 * GIB for r in out["rows"])
    from r3lab.model.adapters import LoRAConfig as Lora
    from r3lab.model.adapters import add_lora

    tiny = build_tiny()
    add_lora(tiny, Lora(r=4))
    tiny.save(tmp_path / "adapter")  # a LoRA folder is planned at its base's shape
    assert main(["plan", "--policy", str(tmp_path / "adapter"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"]["params"] == out["shape"]["params"]
    assert main(["plan", "--policy", "smolvlm-256m", "--gpu-memory", "24"]) == 0
    assert "smolvlm-256m (idefics3)" in capsys.readouterr().out
