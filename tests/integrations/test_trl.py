"""r3lab on TRL's GRPOTrainer: the crop environment, rewards, rows, and a few real training steps on CPU."""

import pytest

pytest.importorskip("trl", reason="TRL is not installed: pip install 'r3lab[trl]' (the dev extra installs it)")

import torch  # noqa: E402
from PIL import Image  # noqa: E402

from r3lab.core.crop_calls import parse_crop_call  # noqa: E402
from r3lab.core.regions import Frame, crop_and_zoom  # noqa: E402
from r3lab.data.vlir import build_samples  # noqa: E402
from r3lab.explain.contract import WhyConfig  # noqa: E402
from r3lab.explain.crops import explain_crops  # noqa: E402
from r3lab.integrations.trl_env import TOOL_NAME, CropEnvironment, to_trl_rows, trl_dataset  # noqa: E402
from r3lab.integrations.trl_probe import ForwardProbe  # noqa: E402
from r3lab.integrations.trl_rewards import accuracy_reward, region_iou_reward, reward_funcs  # noqa: E402
from r3lab.integrations.trl_script import Choice, ScriptedTurns, scripted  # noqa: E402
from r3lab.integrations.trl_train import TRLConfig, grpo_trainer  # noqa: E402
from r3lab.model.tiny import TinyConfig, build_tiny  # noqa: E402
from r3lab.viz.mpl import plot_trajectory  # noqa: E402
from r3lab.viz.page import export_html  # noqa: E402

BAD, GOOD = [50, 40, 10, 90], [0, 0, 60, 60]  # inverted; the top-left of a 112x112 view


def call(box) -> str:
    return '<tool_call>\n{"name": "%s", "arguments": {"bbox_2d": %s}}\n</tool_call>' % (TOOL_NAME, box)


@pytest.fixture(scope="module")
def samples():
    return build_samples(2, seed=0)


def test_the_zoom_tool_cuts_by_r3lab_rules_and_answers_bad_boxes_in_text(samples):
    env = CropEnvironment.factory(samples, max_crops=1)()
    env.reset(sample_id=samples[0].sample_id)
    frame = Frame.of(samples[0].load_image().size, env.view)
    got = env.image_zoom_in_tool(GOOD)
    want = crop_and_zoom(samples[0].load_image(), tuple(GOOD), env.view).image
    assert got[0]["type"] == "image" and got[0]["image"].tobytes() == want.tobytes()
    for bad in (BAD, [200, 200, 300, 300], [1, 2], ["a", 1, 2, 3]):
        text = env.image_zoom_in_tool(bad)
        verdict = parse_crop_call('{"bbox_2d": %s}' % str(bad).replace("'", '"'), frame, env.view.max_aspect)
        assert isinstance(text, str) and verdict.message in text and env.calls[-1].call.verdict is verdict.verdict
    assert env.image_zoom_in_tool(GOOD) == "crop refused: at most 1 crops per answer"  # the budget, in text
    hostiles = (None, {}, "[1, 2, 3, 4]", [10**400, 0, 1, 1], [float("nan"), 0, 1, 1], [True, 1, 2, 3], [[1], 2, 3, 4])
    for hostile in hostiles:
        assert env.image_zoom_in_tool(hostile).startswith("crop refused: ")  # never raised, always recorded
    assert env.verdicts[:6] == ["ok", "inverted", "outside_image", "wrong_arity", "non_numeric", "over_budget"]
    assert env.verdicts[6:] == ["wrong_arity"] * 3 + ["non_finite"] * 2 + ["non_numeric"] * 2
    rel = CropEnvironment.factory(samples, coords="relative")()
    rel.reset(sample_id=samples[0].sample_id)
    thousandths = [round(v * 1000 / 112) for v in GOOD]  # 0-1000 of the 112-px view's sides
    assert rel.image_zoom_in_tool(thousandths)[0]["image"].tobytes() == want.tobytes()
    with pytest.raises(ValueError, match="coords must be"):
        CropEnvironment.factory(samples, coords="normalised")


def test_rows_and_rewards_read_r3lab_samples_and_tool_rollouts(samples):
    rows = to_trl_rows(samples, CropEnvironment().view)
    assert rows[0]["image"].size == Frame.of(samples[0].load_image().size, CropEnvironment().view).input_size
    assert rows[0]["answers"] == samples[0].answers and rows[0]["gt_boxes"] == [list(map(float, samples[0].regions[0]))]
    ds = trl_dataset(samples, CropEnvironment().view)
    assert "image" not in ds.column_names and ds[0]["image"].tobytes() == rows[0]["image"].tobytes()  # made on read
    env = CropEnvironment.factory(samples)()
    env.reset(sample_id=samples[0].sample_id)
    env.image_zoom_in_tool(GOOD)
    comp = [
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [{"type": "function", "function": {"name": TOOL_NAME, "arguments": {"bbox_2d": GOOD}}}],
        },
        {"role": "tool", "name": TOOL_NAME, "content": "x"},
        {"role": "assistant", "content": "<answer>Yellow.</answer>"},
    ]
    assert accuracy_reward([None] * 2, [comp, comp], answers=[["yellow"], ["blue", "red"]]) == [1.0, 0.0]
    iou = region_iou_reward([None], [comp], environments=[env], gt_boxes=[rows[0]["gt_boxes"]])[0]
    assert 0 < iou < 1
    funcs, weights = reward_funcs("code")
    assert [f.__name__ for f in funcs] == ["accuracy", "format", "region_if_accuracy", "length"]
    assert weights == [1.0, 0.5, 0.5, 0.1]
    assert funcs[2]([None], [comp], answers=[["yellow"]])[0] == 1.0  # the tool call counts as a crop call


def test_grpo_trainer_steps_train_on_the_crops_pixels_with_tool_results_masked(samples, tmp_path):
    policy = build_tiny(TinyConfig(family="qwen3_vl"))
    answers = Choice(("horizontal", "vertical", "rising", "falling", "checked", "yes", "no"))
    script = ScriptedTurns(
        policy.tokenizer, [["<think>look</think>", "\n" + call(BAD)], [call(GOOD)], ["<answer>", answers, "</answer>"]]
    )
    before = {k: v.clone() for k, v in policy.model.state_dict().items()}
    cfg = TRLConfig(steps=2, prompts_per_step=2, group_size=4, learning_rate=1e-2, out_dir=str(tmp_path))
    trainer, recorder = grpo_trainer(policy, samples, cfg)
    with ForwardProbe(trainer, policy) as probe, scripted(policy.model, script):
        trainer.train()
    trajs = recorder.trajectories
    # a bad box became a text tool response, recorded as a refused crop event
    t = trajs[0]
    assert [e.call.verdict.value for e in t.events] == ["inverted", "ok"] and [e.ok for e in t.events] == [False, True]
    assert "crop refused: x2 must be larger" in t.pieces[t.events[0].piece + 1].text
    # the crop's pixels reach the training forward (not only the dataset's main image)
    assert probe.pixels, "the vision tower never ran with gradients: images did not reach the training forward"
    assert probe.holds(t.crops[0].image), "the crop's pixels are missing from the training forward"
    assert not probe.holds(Image.new("RGB", t.crops[0].image.size, "white"))  # the probe can say no
    # tool-result tokens are masked; what is left is exactly the model's text (r3lab's loss mask)
    texts = probe.texts()
    for kept, dropped in texts:
        assert "<tool_response>" in dropped and "<|image_pad|>" in dropped and "crop refused" in dropped
        assert "<tool_response>" not in kept and "<|image_pad|>" not in kept
    assert sorted(k for k, _ in texts) == sorted(t.model_text() for t in trajs)  # TRL shuffles rows before the loss
    assert sum(int(b["tool_mask"].mul(b["completion_mask"]).sum()) for b in probe.batches[-1:]) == sum(
        int(t.tokenize(policy).loss_mask().sum()) for t in trajs
    )
    # the parameters moved, the vision tower's included
    changed = {k for k, v in policy.model.state_dict().items() if not torch.equal(v, before[k])}
    assert any("visual" in k for k in changed) and any("language_model" in k for k in changed)
    # the rollouts read back as r3lab's own: explained, drawn and exported
    policy.model.eval()
    ex = explain_crops(policy, t, WhyConfig.quick(attention_layers=[-1]))
    assert [e.ok for e in ex] == [False, True] and ex[1].gt_iou is not None and ex[1].attention is not None
    plot_trajectory(t)
    assert export_html(t, tmp_path / "t.html").stat().st_size > 1000


def test_scripted_turns_choose_where_options_part():
    policy = build_tiny(TinyConfig(family="qwen3_vl"))
    s = ScriptedTurns(policy.tokenizer, [["a", Choice(("[0, 0, 56, 56]", "[0, 56, 56, 112]")), "b"]])
    start = policy.encode("<|im_start|>assistant\n")
    shared = policy.encode("[0, ")
    first = policy.encode("a")
    assert s.allowed(start + first + shared[:1]) == [shared[1]]  # the options share "[0, ": forced
    row = start + first + shared
    assert len(s.allowed(row)) == 2  # then the model chooses
    with pytest.raises(ValueError, match="prefix"):
        ScriptedTurns(policy.tokenizer, [[Choice(("ab", "abc"))]])


def test_r3lab_train_trl_writes_a_run_the_dashboard_reads(samples, tmp_path):
    from r3lab.cli.app import main
    from r3lab.data.dataset import save_dataset
    from r3lab.evaluation.behaviour import load_run

    data = save_dataset(samples, tmp_path / "data")
    out = tmp_path / "run"
    argv = [
        "train",
        "trl",
        "--data",
        str(data),
        "--steps",
        "1",
        "--group-size",
        "2",
        "--prompts-per-step",
        "2",
        "--max-new-tokens",
        "24",
        "--max-segment-tokens",
        "24",
        "--out-dir",
        str(out),
    ]
    assert main(argv) == 0
    assert (out / "final" / "config.json").is_file() and (out / "trl_log.jsonl").is_file()
    trajs = load_run(out)
    assert len(trajs) == 4 and all(t.meta["format"] == "trl" for t in trajs)
    with pytest.raises(FileExistsError, match="already holds a TRL run"):
        main(argv)


def test_the_only_tool_is_the_zoom_even_after_nnsight_is_imported():
    import inspect

    pytest.importorskip("nnsight", reason="the nnsight extra: pip install 'r3lab[nnsight]'")
    tools = [m for m, _ in inspect.getmembers(CropEnvironment, inspect.isfunction) if not m.startswith("_")]
    assert sorted(tools) == ["image_zoom_in_tool", "reset"]  # what TRL collects (reset is its hook, not a tool)


def test_r3lab_train_trl_measures_tool_necessity_into_its_log(samples, tmp_path):
    import json

    from r3lab.cli.app import main
    from r3lab.data.dataset import save_dataset
    from r3lab.viz.dashboard import crop_dashboard

    data = save_dataset(samples, tmp_path / "data")
    held = save_dataset(build_samples(2, seed=5), tmp_path / "held")
    out = tmp_path / "run"
    argv = [
        "train",
        "trl",
        "--data",
        str(data),
        "--steps",
        "2",
        "--group-size",
        "2",
        "--prompts-per-step",
        "1",
        "--max-new-tokens",
        "16",
        "--max-segment-tokens",
        "16",
        "--out-dir",
        str(out),
        "--log-every",
        "2",
    ]
    with pytest.raises(ValueError, match="--necessity-every needs --necessity-data"):
        main(argv + ["--necessity-every", "1"])
    assert main(argv + ["--necessity-every", "1", "--necessity-data", str(held), "--necessity-n", "1"]) == 0
    rows = [json.loads(x) for x in (out / "trl_log.jsonl").read_text().splitlines()]
    # step 2 joins TRL's own row of that step (its loss beside tool_gain);
    # step 1, which TRL did not log, a row of its own
    assert [(r["step"], "loss" in r) for r in rows if "tool_gain" in r] == [(1, False), (2, True)]
    assert all(0.0 <= r["crop_rate_need"] <= 1.0 and r["acc_no_crop"] in (0.0, 1.0) for r in rows if "tool_gain" in r)
    fig = crop_dashboard(out / "trl_log.jsonl")  # TRL's own keys too: executed crops, reward terms
    assert "tool necessity" not in fig.layout.meta["missing"]
    assert {"tool_gain", "crops", "reward/accuracy"} <= {tr.name for tr in fig.data}
    # the evaluations prompt the model as TRL trains it (tool grammar, TRL's instruction); the saved policy's own stays
    from r3lab.integrations import trl_prompt
    from r3lab.integrations.trl_env import tool_instruction
    from r3lab.model.policy import load_policy

    final = load_policy(out / "final")
    tool = trl_prompt(final, "relative")
    assert (tool.calls.coords, tool.calls.grammar, tool.instruction) == (
        "relative",
        "tool",
        tool_instruction("relative"),
    )
    assert final.prompt.calls.grammar == "json" and final.prompt.instruction != tool_instruction("absolute")
