"""Held-out evaluation during training (EvalEvery), chance levels, and the figures that draw them."""

import pytest
import torch

from r3lab.data.tasks import TaskConfig
from r3lab.data.world import WorldConfig
from r3lab.evaluation.evaluation import EvalConfig, evaluate
from r3lab.evaluation.progress import EvalEvery, chance_levels
from r3lab.testing import tiny_policy, toy_samples
from r3lab.train import SFTConfig, train_sft
from r3lab.viz.results import ROW_COLOURS, plot_table, row_colour
from r3lab.viz.training import plot_eval_curve

FAST = EvalConfig(rollout={"max_new_tokens": 6, "max_segment_tokens": 6, "max_crops": 1})


def test_chance_levels_count_the_answers_each_question_allows():
    assert chance_levels(families=("read_one", "compare_two", "control", "count")) == pytest.approx(
        {"read_one": 1 / 5, "compare_two": 0.5, "control": 0.5, "count": 1 / 4}
    )  # 5 patterns; left/right
    mixed = chance_levels(TaskConfig(read_kinds=("pattern", "colour")), WorldConfig(), ("read_one",))
    assert mixed["read_one"] == pytest.approx(2 / 11)  # (5 patterns x 1/5 + 6 colours x 1/6) / 11 questions
    ctrl = chance_levels(TaskConfig(control_kinds=("side", "shape")), families=("control",))["control"]
    assert ctrl == pytest.approx(4 / 8 * 1 / 2 + 4 / 8 * 1 / 4)  # 4 sides (2 options each), 4 shapes (4 options)
    with pytest.raises(ValueError, match="glyph"):
        chance_levels(families=("glyph",))


def test_eval_every_evaluates_on_schedule_and_leaves_training_untouched(tmp_path):
    policy = tiny_policy(fresh=True)
    samples = toy_samples(4, policy.view)
    before = evaluate(policy, samples[:2], FAST, progress=False)
    evals = EvalEvery(samples[:2], every=2, config=FAST, total=3, before=before)
    assert before._repr_markdown_() == before.table()  # Jupyter renders a result as its table
    cfg = SFTConfig(steps=3, batch_size=2, warmup=0, seed=0)
    log = train_sft(policy, samples, cfg, callbacks=[evals])
    assert sorted(evals.results) == [0, 2, 3] and evals.results[0] is before  # every 2 steps and the last
    assert [r["step"] for r in evals.log] == [0, 2, 3] and "read_one/accuracy" in evals.log.keys()
    assert evals.last is evals.results[3]
    twin = tiny_policy(fresh=True)  # the same run without the callback: the same losses, bit for bit
    plain = train_sft(twin, samples, cfg)
    assert [r["loss"] for r in plain] == [r["loss"] for r in log]
    assert all(torch.equal(a, b) for a, b in zip(twin.model.parameters(), policy.model.parameters()))
    fig = plot_eval_curve(evals, chance=chance_levels(families=("read_one",)))
    acc = fig.axes[0]
    assert [list(ln.get_xdata()) for ln in acc.lines][:1] == [[0, 2, 3]]
    assert any(ln.get_linestyle() == "--" and ln.get_ydata()[0] == pytest.approx(0.2) for ln in acc.lines)
    with pytest.raises(ValueError, match="every"):
        EvalEvery(samples, every=0)
    with pytest.raises(ValueError, match="no evaluations"):
        plot_eval_curve(EvalEvery(samples, every=1))


def _rows(names):
    return {
        r: {
            f: {
                "n": 10,
                "accuracy": 0.5,
                "accuracy_lo": 0.2,
                "accuracy_hi": 0.8,
                "crop_rate": 0.1,
                "crops": 1.0,
                "crop_iou": 0.3,
                "invalid_crop_rate": 0.0,
            }
            for f in ("read_one", "compare_two", "all")
        }
        for r in names
    }


def test_each_row_keeps_its_colour_and_the_table_draws_chance():
    from matplotlib.colors import to_hex

    both = plot_table({"config": {"families": "read_one,compare_two"}, "rows": _rows(["sft", "random"])})
    one = plot_table({"config": {"families": "read_one,compare_two"}, "rows": _rows(["random"])})
    assert {to_hex(p.get_facecolor()) for p in one.axes[0].patches} == {ROW_COLOURS["random"]}
    assert to_hex(both.axes[0].patches[-1].get_facecolor()) == ROW_COLOURS["random"]  # not the second colour
    chance = sorted(
        round(seg[0][1], 6) for c in both.axes[0].collections if c.get_gid() == "chance" for seg in c.get_segments()
    )
    assert chance == [20.0, 50.0]  # read_one 1 in 5, compare_two 1 in 2, in percent
    assert "chance" in [t.get_text() for t in both.legends[0].get_texts()]
    bare = plot_table({"config": {"families": "read_one"}, "rows": _rows(["sft"])}, chance=False)
    assert not [c for c in bare.axes[0].collections if c.get_gid() == "chance"]
    assert row_colour("mine") == row_colour("mine") and row_colour("mine") not in ROW_COLOURS.values()


def test_necessity_every_writes_the_keys_into_the_training_log_and_the_dashboard_draws_them(tmp_path):
    from r3lab.evaluation.necessity import KEYS
    from r3lab.evaluation.progress import NecessityEvery
    from r3lab.train.metrics import MetricLog
    from r3lab.viz.dashboard import crop_dashboard

    policy = tiny_policy(fresh=True)
    samples = toy_samples(4, policy.view)
    nec = NecessityEvery(samples[2:], every=2, config=FAST, total=3, n=1)
    assert len(nec.samples) == 1 and nec.config.necessity and not FAST.necessity  # the caller's config is left alone
    cfg = SFTConfig(steps=3, batch_size=2, warmup=0, seed=0, out_dir=str(tmp_path / "run"))
    train_sft(policy, samples[:2], cfg, callbacks=[nec])
    saved = MetricLog.load_jsonl(tmp_path / "run" / "log.jsonl")
    measured = [r["step"] for r in saved if "tool_gain" in r]
    assert measured == [2, 3] and all(set(KEYS) <= set(r) for r in saved if r["step"] in measured)
    assert "tool_gain" not in saved.rows[0] and "loss" in saved.rows[1]  # joined step 2's own row
    fig = crop_dashboard(tmp_path / "run")
    names = {tr.name for tr in fig.data}
    assert {"tool_gain", "tool_harm", "zooming_gap"} <= names and "tool necessity" not in fig.layout.meta["missing"]
    with pytest.raises(ValueError, match="n must be"):
        NecessityEvery(samples, every=1, n=-1)
