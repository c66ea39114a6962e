"""LoRA through peft: per-family targets, the engine/scoring/capture on wrapped models, save/load/merge,
SFT and R-GRPO steps with adapters, resume, and QLoRA's refusal where bitsandbytes or CUDA is missing."""

import re

import pytest
import torch

peft = pytest.importorskip("peft")

from r3lab.core.batch import collate, model_inputs  # noqa: E402
from r3lab.engine.scoring import TokenScorer, token_logprobs  # noqa: E402
from r3lab.explain.capture import attention_maps  # noqa: E402
from r3lab.model.adapters import (  # noqa: E402
    TARGETS,
    LoRAConfig,
    add_lora,
    base_model,
    is_adapted,
    merge,  # noqa: E402
    qlora_problem,
    target_regex,
)
from r3lab.model.policy import load_policy  # noqa: E402
from r3lab.model.tiny import TinyConfig, build_tiny  # noqa: E402
from r3lab.testing import toy_samples, toy_trajectory  # noqa: E402
from r3lab.train.config import RGRPOConfig, SFTConfig  # noqa: E402

FAMILIES = ["qwen2_5_vl", "qwen3_vl", "qwen3_5", "smolvlm"]


def lora_policy(family="qwen2_5_vl", parts="lm", seed=1, r=4):
    p = build_tiny(TinyConfig(seed=seed, patch_size=7 if family != "qwen2_5_vl" else 14), family=family)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # A's init: the same whichever tests ran before on this worker
        add_lora(p, LoRAConfig(r=r, targets=parts))
    with torch.no_grad():  # fresh adapters are a no-op (B = 0): give them weight so tests see them
        for n, q in p.model.named_parameters():
            if "lora_B" in n:
                q.normal_(0, 0.2, generator=torch.Generator().manual_seed(len(n)))
    return p


@pytest.mark.parametrize("family", FAMILIES)
def test_targets_of_each_part_are_the_linear_layers_of_that_part(family):
    p = build_tiny(TinyConfig(seed=0, patch_size=7), family=family)
    linear = [n for n, m in p.model.named_modules() if isinstance(m, torch.nn.Linear)]
    hit = {part: [n for n in linear if re.fullmatch(TARGETS[family][part], n)] for part in ("lm", "vision", "merger")}
    assert all(hit.values()), {k: len(v) for k, v in hit.items()}
    assert not set(hit["lm"]) & set(hit["vision"]) and not set(hit["vision"]) & set(hit["merger"])
    left = set(linear) - set().union(*hit.values())
    assert left == {"lm_head"}  # every linear layer but the (tied) head belongs to exactly one part
    lm, vision = (".text_model.", ".vision_model.") if family == "smolvlm" else (".language_model.", ".visual.")
    assert all(lm in n for n in hit["lm"]) and all(vision in n for n in hit["vision"])


def test_lora_config_checks_and_clear_errors():
    assert LoRAConfig().enabled is False and LoRAConfig(r=8, targets="lm, merger").parts == ("lm", "merger")
    for bad in (
        dict(r=-1),
        dict(r=4, alpha=0),
        dict(r=4, dropout=1.0),
        dict(r=4, targets="lm,head"),
        dict(r=4, bits=8),
        dict(bits=4),
    ):
        with pytest.raises(ValueError, match="LoRAConfig|bits"):
            LoRAConfig(**bad)
    with pytest.raises(ValueError, match="no LoRA targets known for model_type 'llava'"):
        target_regex("llava")
    assert SFTConfig(lora={"r": 4}).lora == LoRAConfig(r=4)  # a saved state.json's dict reads back


def test_qlora_refuses_in_one_line_naming_what_is_missing():
    why = qlora_problem()
    if not why:
        pytest.skip("bitsandbytes and CUDA are both here")
    assert "\n" not in why and ("bitsandbytes" in why or "CUDA" in why)
    p = build_tiny(TinyConfig(seed=0))
    with pytest.raises(ValueError, match="QLoRA \\(bits=4\\) needs .*(bitsandbytes|CUDA)"):
        add_lora(p, LoRAConfig(r=4, bits=4))
    from r3lab.cli.app import main

    with pytest.raises(ValueError, match="QLoRA .*missing here; train plain LoRA"):
        main(["train", "sft", "--data", str(_dataset_dir()), "--lora-r", "4", "--lora-bits", "4", "--policy", "x"])


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl", "smolvlm"])
def test_scoring_and_capture_run_through_the_adapters(family):
    p = lora_policy(family, parts="lm,vision,merger")
    traj = toy_trajectory(p, size=(224, 168))
    b = collate([traj], p)
    with torch.no_grad():
        lp = token_logprobs(TokenScorer(p.model), b)
        off = token_logprobs(TokenScorer(p.model, adapters=False), b)
        full = torch.log_softmax(p.model(**model_inputs(b)).logits[0].float(), -1)
        with p.model.disable_adapter():
            plain = torch.log_softmax(base_model(p.model)(**model_inputs(b)).logits[0].float(), -1)
    idx = b["loss_mask"][0].nonzero().squeeze(-1)
    want = full[idx - 1].gather(-1, b["input_ids"][0, idx, None]).squeeze(-1)
    assert torch.allclose(lp[0, idx], want, atol=1e-5)
    base = plain[idx - 1].gather(-1, b["input_ids"][0, idx, None]).squeeze(-1)
    assert torch.allclose(off[0, idx], base, atol=1e-5) and (off[0, idx] - lp[0, idx]).abs().max() > 1e-3
    maps = attention_maps(p, traj, layers=[-1])
    assert maps.weights.shape[-1] == sum(len(q) for q in [range(s, e) for s, e in maps.spans])
    assert is_adapted(p.model)  # capture leaves the wrapper as it was


@pytest.mark.parametrize("family", FAMILIES)
def test_adapter_folder_round_trips_and_merges_into_a_plain_policy(family, tmp_path):
    p = lora_policy(family, parts="lm,merger")
    ids = torch.tensor([[5, 6, 7, 8, 9]])
    with torch.no_grad():
        want = p.model(input_ids=ids).logits
    p.save(tmp_path / "ad")
    files = {f.name for f in (tmp_path / "ad").iterdir()}
    assert {"adapter_model.safetensors", "adapter_config.json", "r3lab.json", "base"} <= files
    assert "config.json" not in files and not any(f.endswith(".bin") for f in files)
    q = load_policy(tmp_path / "ad")
    assert is_adapted(q.model) and q.meta["lora"]["r"] == 4
    with torch.no_grad():
        assert torch.equal(q.model(input_ids=ids).logits, want)
    merge(q).save(tmp_path / "merged")
    plain = load_policy(tmp_path / "merged")
    assert not is_adapted(plain.model) and "lora" not in plain.meta
    with torch.no_grad():
        assert (plain.model(input_ids=ids).logits - want).abs().max() < 1e-4
    (tmp_path / "ad" / "base" / "config.json").unlink()
    with pytest.raises(FileNotFoundError, match="base folder .* is missing"):
        load_policy(tmp_path / "ad")


def test_lora_sft_trains_only_adapters_checkpoints_them_and_resumes(tmp_path):
    from r3lab.train.sft import train

    samples = toy_samples(4)
    p = build_tiny(TinyConfig(seed=2))
    before = {n: q.detach().clone() for n, q in p.model.named_parameters()}
    cfg = SFTConfig(
        steps=2,
        batch_size=2,
        lr_lm=1e-2,
        out_dir=str(tmp_path / "run"),
        lora=LoRAConfig(r=4),
        schedule="constant",
        warmup=0.0,  # the lr of a step does not depend on the run length
        save_every=1,
    )
    log = train(p, samples, cfg)
    assert len(log) == 2 and is_adapted(p.model)
    base = base_model(p.model)
    for n, q in base.named_parameters():  # the base never moves; only adapters do
        if "lora_" not in n:
            assert torch.equal(q, before[n.replace(".base_layer.", ".")]), n
    step = tmp_path / "run" / "step_000002"
    assert (step / "adapter_model.safetensors").is_file() and not (step / "model.safetensors").exists()
    assert (tmp_path / "run" / "base" / "model.safetensors").is_file()  # the in-memory base, once per run
    # resume for two more steps: same result as four steps straight
    p2 = build_tiny(TinyConfig(seed=2))
    train(p2, samples, SFTConfig(**{**cfg.__dict__, "steps": 4, "resume": True, "lora": LoRAConfig(r=4)}))
    p3 = build_tiny(TinyConfig(seed=2))
    train(
        p3,
        samples,
        SFTConfig(**{**cfg.__dict__, "steps": 4, "out_dir": str(tmp_path / "straight"), "lora": LoRAConfig(r=4)}),
    )
    a = {n: q for n, q in p2.model.named_parameters() if "lora_" in n}
    b = {n: q for n, q in p3.model.named_parameters() if "lora_" in n}
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    loaded = load_policy(tmp_path / "run")  # the run folder: its latest adapter on its base
    ids = torch.tensor([[5, 6, 7]])
    with torch.no_grad():
        assert torch.allclose(loaded.model(input_ids=ids).logits, p2.model(input_ids=ids).logits, atol=1e-5)


def test_lora_rgrpo_step_with_kl_to_the_base_under_the_adapters(tmp_path):
    from r3lab.train.rgrpo import setup, train_step

    p = build_tiny(TinyConfig(seed=2))
    cfg = RGRPOConfig(
        steps=1,
        group_size=2,
        batch_size=2,
        beta=0.1,
        rollout={"max_new_tokens": 12, "max_segment_tokens": 12},
        lr_lm=1e-2,
        lora=LoRAConfig(r=4, alpha=8),
    )
    state = setup(p, cfg, n_samples=2)
    assert state.ref.model is p.model and state.ref.adapters is False  # no copy of the model
    row = train_step(state, toy_samples(2))
    assert row["kl"] is not None and torch.isfinite(torch.tensor(row["loss"]))
    assert any(q.grad is None and "lora_" in n for n, q in p.model.named_parameters())  # zeroed after the step
    assert all(not q.requires_grad for n, q in p.model.named_parameters() if "lora_" not in n)


def test_a_frozen_part_with_adapters_is_an_error():
    from r3lab.train.optim import make_optimizer

    p = lora_policy("qwen2_5_vl", parts="lm,vision")
    with pytest.raises(ValueError, match="LoRA adapters sit on the vision part.*freezes"):
        make_optimizer(p.model, RGRPOConfig(freeze_vision=True))


def _dataset_dir():
    return "/nonexistent-data-for-the-qlora-refusal"
