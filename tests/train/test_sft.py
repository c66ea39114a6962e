import math

import pytest
import torch

from r3lab.cli.app import main as cli_main
from r3lab.core.batch import collate
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train.config import SFTConfig
from r3lab.train.optim import group_of, lr_factor, make_optimizer
from r3lab.train.sft import train


def _batch(policy, n=2):
    trajs = [s.reference(policy.view, policy.prompt).tokenize(policy) for s in toy_samples(n, policy.view)]
    return trajs, collate(trajs, policy)


def test_parameter_groups_and_learning_rates():
    policy = tiny_policy(fresh=True)
    cfg = SFTConfig(lr_vision=1e-5, lr_merger=2e-4, lr_lm=3e-3, freeze_vision=False, weight_decay=0.1)
    opt = make_optimizer(policy.model, cfg)
    by_name = {g["name"]: g for g in opt.param_groups}
    assert by_name["vision"]["lr"] == 1e-5 and by_name["merger"]["lr"] == 2e-4 and by_name["lm"]["lr"] == 3e-3
    assert by_name["lm_nodecay"]["weight_decay"] == 0.0 and by_name["lm"]["weight_decay"] == 0.1
    n_opt = sum(p.numel() for g in opt.param_groups for p in g["params"])
    assert n_opt == sum(p.numel() for p in policy.model.parameters())
    assert group_of("model.visual.merger.mlp.0.weight") == "merger" and group_of("visual.blocks.0.x") == "vision"
    assert group_of("model.language_model.layers.0.mlp.up_proj.weight") == "lm" and group_of("lm_head.weight") == "lm"
    make_optimizer(policy.model, SFTConfig(freeze_vision=True, freeze_merger=True))
    assert not any(p.requires_grad for n, p in policy.model.named_parameters() if "visual" in n)
    with pytest.raises(ValueError, match="frozen"):
        make_optimizer(policy.model, SFTConfig(freeze_vision=True, freeze_merger=True, lr_lm=0.0))


def test_schedules():
    assert [lr_factor(s, 10, 2, "constant") for s in (0, 1, 2, 9)] == [0.5, 1.0, 1.0, 1.0]
    cos = [lr_factor(s, 10, 0.2, "cosine", 0.1) for s in range(10)]
    assert cos[:2] == [0.5, 1.0] and cos[2] == pytest.approx(1.0) and cos[-1] > 0.1
    assert all(a >= b for a, b in zip(cos[1:], cos[2:])) and lr_factor(10, 10, 0.2, "cosine", 0.1) == pytest.approx(0.1)


def test_sft_learns_and_freezing_holds():
    policy = tiny_policy(fresh=True)
    samples = toy_samples(2, policy.view)
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    log = train(
        policy, samples, SFTConfig(steps=8, batch_size=2, lr_lm=3e-3, lr_merger=1e-3, warmup=1, freeze_vision=True)
    )
    losses = log.series("loss")[1]
    assert losses[-1] < 0.7 * losses[0]
    assert log.last["supervised_tokens"] == sum(
        int(s.reference(policy.view).tokenize(policy).loss_mask().sum()) for s in samples
    )
    for n, p in policy.model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        assert changed == ("visual" not in n or "merger" in n), n
    assert not policy.model.training  # handed back in eval mode
    walls = log.series("wall")[1]  # wall clock since the run started, per logged step
    assert 0 < walls[0] and all(a < b for a, b in zip(walls, walls[1:]))
    assert {"grad_norm_merger", "grad_norm_lm"} <= set(log.last) and "grad_norm_vision" not in log.last  # frozen


def test_grad_accumulation_gives_the_same_step():
    def one_step(accum):
        policy = tiny_policy(fresh=True)
        train(
            policy,
            toy_samples(4, policy.view),
            SFTConfig(
                steps=1,
                batch_size=4,
                grad_accum=accum,
                warmup=0,
                optimizer="sgd",
                lr_lm=1.0,
                lr_merger=1.0,
                lr_vision=1.0,
            ),
        )
        return dict(policy.model.named_parameters())

    a = one_step(1)
    for accum in (2, 4):  # micro-batches of rows of similar length: the same summed gradient
        b = one_step(accum)
        assert max((a[n] - b[n]).abs().max().item() for n in a) < 1e-5


def test_bad_configs_fail_fast(tmp_path):
    with pytest.raises(ValueError, match="multiple of grad_accum"):
        SFTConfig(batch_size=6, grad_accum=4).validate()
    with pytest.raises(ValueError, match="schedule"):
        SFTConfig(schedule="linear").validate()
    policy = tiny_policy()
    with pytest.raises(ValueError, match="reference rationales"):
        s = toy_samples(1, policy.view)[0]
        s.rationale = None
        train(policy, [s], SFTConfig(steps=1))
    with pytest.raises(FileNotFoundError, match="r3lab data build"):
        cli_main(["train", "sft", "--data", str(tmp_path / "missing")])
    with pytest.raises(ValueError, match="--data"):
        cli_main(["train", "rgrpo"])
    with pytest.raises(ValueError, match="group_size must be >= 2"):
        cli_main(["train", "rgrpo", "--data", str(tmp_path), "--group-size", "1"])
    with pytest.raises(ValueError, match="multiple of group_size"):
        cli_main(["train", "rgrpo", "--data", str(tmp_path), "--group-size", "4", "--batch-size", "6"])


def test_ctrl_c_waits_until_the_update_is_complete():
    import os
    import signal

    from r3lab.train.loop import defer_interrupt

    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN under nohup
    done = []
    with pytest.raises(KeyboardInterrupt):
        with defer_interrupt():
            os.kill(os.getpid(), signal.SIGINT)
            with defer_interrupt():  # nested blocks defer to the outermost one
                done.append("inner")
            done.append("outer")
    assert done == ["inner", "outer"]
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler is back


def test_training_on_boxes_of_another_view_is_refused_naming_the_fix(tmp_path):
    """The issue's case: official SFT samples (boxes for images of up to 1.6 M pixels) on r3-tiny's view."""
    import json

    from r3lab.data.formats import import_sft
    from r3lab.testing import toy_image

    toy_image((896, 672)).save(tmp_path / "main.png")
    toy_image((120, 100)).save(tmp_path / "crop.png")
    rec = {
        "image_path": "main.png",
        "question": "q?",
        "img_crop_list": ["crop.png"],
        "response_list": ['<think>{"bbox_2d": [170, 140, 240, 220]}', "</think><answer>yellow</answer>"],
    }
    (tmp_path / "sft.json").write_text(json.dumps([rec]))
    samples, _ = import_sft(tmp_path / "sft.json")
    policy = tiny_policy(fresh=True)
    with pytest.raises(
        ValueError,
        match=r"crop boxes of samples sft-000001 \(its boxes are in a 896x672 frame, the "
        r"policy sees its image at 112x84\) do not fit the policy's view .*"
        r"retarget them .*r3lab data import",
    ):
        train(policy, samples, SFTConfig(steps=1, batch_size=1))
    samples[0].provenance.pop("input_size")  # without provenance the boxes themselves are checked
    with pytest.raises(ValueError, match=r"its crop box \[170\.0, 140\.0, 240\.0, 220\.0\] lies outside the 112x84"):
        train(policy, samples, SFTConfig(steps=1, batch_size=1))


@pytest.mark.parametrize(
    "family,style",
    [
        ("qwen3_vl", ("absolute", "json")),
        ("qwen3_vl", ("relative", "tool")),
        ("qwen3_5", ("relative", "tool")),
        ("smolvlm", ("absolute", "json")),
    ],
)
def test_one_sft_step_trains_the_2026_families_in_either_grammar(family, style):
    """A Qwen3-VL (DeepStack) and a Qwen3.5 (Gated-DeltaNet) take an SFT step: every parameter moves and the
    loss falls on the same batch; the tool grammar's rationales come with their tool-response turns masked."""
    from r3lab.core.crop_calls import CallStyle
    from r3lab.core.prompt import PromptConfig
    from r3lab.data.call_styles import restyle
    from r3lab.model.tiny import TinyConfig, build_tiny

    calls = CallStyle(*style)
    policy = build_tiny(
        TinyConfig(patch_size=7, layers=4, deepstack=(0, 1), seed=2), family=family, prompt=PromptConfig(calls=calls)
    )
    samples = [restyle(s, calls, policy.view) for s in toy_samples(2, policy.view)]
    ref = samples[0].reference(policy.view, policy.prompt).tokenize(policy)
    assert sum(p.tag == "tool" for p in ref.pieces) == (2 if calls.grammar == "tool" else 0)
    assert not ref.loss_mask()[[i for i, p in enumerate(ref.piece_index()) if ref.pieces[p].tag == "tool"]].any()
    before = {n: p.detach().clone() for n, p in policy.model.named_parameters()}
    log = train(policy, samples, SFTConfig(steps=3, batch_size=2, lr_lm=3e-3, lr_merger=3e-3, lr_vision=3e-3, warmup=0))
    losses = log.series("loss")[1]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]
    unmoved = [n for n, p in policy.model.named_parameters() if torch.equal(before[n], p.detach())]
    assert not unmoved, unmoved
