"""`r3lab explain`: the files it writes, faithfulness.json's shape, the report, and its bad inputs."""

import json

import plotly.graph_objects as go
import pytest

from r3lab.cli.app import main
from r3lab.data.dataset import save_dataset
from r3lab.explain import runs
from r3lab.explain.record import WhyConfig
from r3lab.explain.runs import explain_trajectories
from r3lab.testing import tiny_policy, toy_samples, toy_trajectory
from r3lab.viz.explain import plot_faithfulness, plot_record

FAST = ["--steps", "2", "--curve-steps", "2", "--targets", "box", "--swaps", "blank"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    save_dataset(toy_samples(3), folder)
    return folder


def test_explain_writes_records_faithfulness_and_a_report(data, tmp_path, monkeypatch, capsys):
    # the untrained r3-tiny never crops: its rollouts are replaced by the samples' reference rationales
    def references(policy, samples, cfg, progress=None):
        return [s.reference(policy.view, policy.prompt).tokenize(policy) for s in samples]

    monkeypatch.setattr(runs, "rollout", references)
    out = tmp_path / "why"
    assert main(["explain", "--data", str(data), "--n", "2", "--out", str(out), *FAST]) == 0
    faith = json.loads((out / "faithfulness.json").read_text())
    assert set(faith) == {"methods"} and "random" in faith["methods"]
    for name, m in faith["methods"].items():
        assert set(m) == {"pointing_game", "deletion_auc", "insertion_auc", "n"} and m["n"] == 2, name
    recs = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(recs) == 2 and recs[0]["methods"]["integrated_gradients"]["box"]["available"]
    page = (out / "report.html").read_text()
    assert page.count("<html") == 1 and "plotly" in page and 'id="faithfulness"' not in page
    assert "id='faithfulness'" in page and 'src="http' not in page  # self-contained: nothing fetched
    assert (out / "figure.html").exists() and json.loads((out / "summary.json").read_text())["crops"] == 2
    assert "integrated_gradients" in capsys.readouterr().out


def test_a_policy_that_never_crops_is_reported_not_crashed(data, tmp_path, capsys):
    out = tmp_path / "none"
    assert main(["explain", "--data", str(data), "--n", "1", "--out", str(out), *FAST]) == 0
    info = json.loads((out / "summary.json").read_text())
    assert info["crops"] == 0 and info["no_crop"] == 1 and "nothing to explain" in capsys.readouterr().out
    assert json.loads((out / "faithfulness.json").read_text()) == {"methods": {}}


def test_bad_flags_fail_before_the_model_loads(data, tmp_path):
    with pytest.raises(ValueError, match="unknown explanation method"):
        main(["explain", "--data", str(data), "--out", str(tmp_path), "--methods", "attention,saliency"])
    with pytest.raises(ValueError, match="--out"):
        main(["explain", "--data", str(data)])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        main(["explain", "--data", str(tmp_path / "missing"), "--out", str(tmp_path)])


def test_figures_greyscale_the_scene_and_draw_every_map():
    policy = tiny_policy()
    trajs = [toy_trajectory(policy), toy_trajectory(policy, crop="square")]
    run = explain_trajectories(policy, trajs, WhyConfig(steps=2, curve_steps=2, targets=("box",)), progress=False)
    fig = plot_record(run.records[0], trajs[0].main.image)
    assert isinstance(fig, go.Figure)
    images = [t for t in fig.data if isinstance(t, go.Image)]
    assert len(images) == 4 and all((im.z[..., 0] == im.z[..., 1]).all() for im in images)  # grey: not recoloured
    assert sum(isinstance(t, go.Contour) for t in fig.data) == 4
    assert isinstance(plot_faithfulness(run.summary), go.Figure)
    with pytest.raises(ValueError, match="no methods"):
        plot_faithfulness({"methods": {}})
