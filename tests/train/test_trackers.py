"""`report_to`: TensorBoard and trackio get a real R-GRPO run's curves (loss, rollout-trainer mismatch, crop behaviour)
and its settings with a sweep run's point and seed as hyperparameters, locally; trackio with several writers at once."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from r3lab.cli.app import main
from r3lab.recipe.shipping import SHIPPED
from r3lab.train.config import RGRPOConfig, SFTConfig
from r3lab.train.trackers import hyperparameters, parse_report_to


def test_report_to_values_as_transformers_reads_them(monkeypatch):
    assert parse_report_to("none") == [] and parse_report_to("") == [] and parse_report_to(None) == []
    assert parse_report_to("tensorboard, trackio") == ["tensorboard", "trackio"]
    assert parse_report_to(["trackio", "trackio"]) == ["trackio"]
    assert set(parse_report_to("all")) <= {"tensorboard", "trackio", "wandb"}
    with pytest.raises(ValueError, match="'mlflow' is not a tracker.*none, all or some of tensorboard"):
        SFTConfig(report_to="mlflow")
    monkeypatch.setenv("R3LAB_SWEEP", json.dumps({"sweep": "sw", "run": "r1", "point": {"lr": 0.1}, "seed": 2}))
    hp = hyperparameters(RGRPOConfig(report_to="tensorboard"))
    assert hp["reward.region_weight"] == 0.0 and "lora.r" in hp and "rollout.max_crops" in hp  # nested, flat
    assert (hp["sweep.name"], hp["sweep.run"], hp["sweep.seed"], hp["sweep.point.lr"]) == ("sw", "r1", 2, 0.1)


def _events(folder: Path) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    acc.Reload()
    return acc


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    out = tmp_path_factory.mktemp("trackdata") / "train"
    assert main(["data", "build", "--out", str(out), "--n", "8", "--seed", "6", "--filter", "false"]) == 0
    return out


def test_an_rgrpo_run_reports_its_curves_and_settings_to_tensorboard_and_trackio(data, tmp_path):
    pytest.importorskip("tensorboard")
    pytest.importorskip("trackio")
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKIO")}
    env.update(
        OMP_NUM_THREADS="1",
        TRACKIO_SPACE_ID="someone/public-space",  # ignored: never a Space
        R3LAB_SWEEP=json.dumps({"sweep": "mysweep", "run": "w=1_seed=3", "point": {"w": 1.0}, "seed": 3}),
    )
    cmd = [
        sys.executable,
        "-m",
        "r3lab.cli",
        "train",
        "rgrpo",
        "--policy",
        str(SHIPPED / "r3-tiny-sft"),
        "--data",
        str(data),
        "--steps",
        "2",
        "--batch-size",
        "4",
        "--group-size",
        "2",
        "--seed",
        "3",
        "--out-dir",
        str(out),
        "--report-to",
        "tensorboard,trackio",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "TRACKIO_SPACE_ID is ignored" in done.stderr
    tb = out / "tensorboard"
    assert [p for p in tb.iterdir() if p.is_dir()] == []  # hyperparameters in the run's own folder
    acc = _events(tb)
    tags = set(acc.Tags()["scalars"])
    assert {
        "loss",
        "reward",
        "mismatch/kl",
        "mismatch/abs_max",
        "crop_rate",
        "crops_per_rollout",
        "invalid_crop_rate",
    } <= tags, tags
    assert [e.step for e in acc.Scalars("loss")] == [1, 2]
    assert acc.PluginTagToContent("hparams")  # the settings, beside the curves
    inbox = (out / "trackio" / "inbox").rglob("*.jsonl")
    records = [json.loads(ln) for f in inbox for ln in f.read_text().splitlines()]
    metrics = sorted((r for r in records if r["kind"] == "metric"), key=lambda r: r["step"])
    assert [r["step"] for r in metrics] == [1, 2] and {r["run"] for r in metrics} == {"w=1_seed=3"}
    assert {r["project"] for r in metrics} == {"mysweep"}
    config = metrics[0]["config"]
    assert config["seed"] == 3 and config["sweep.point.w"] == 1.0 and config["_Group"] == "mysweep"
    assert "mismatch/kl" in metrics[0]["metrics"] and "crop_rate" in metrics[0]["metrics"]


def test_an_sft_run_reports_to_tensorboard_and_the_recipe_hands_report_to_every_phase(tmp_path, monkeypatch):
    pytest.importorskip("tensorboard")
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.testing.toys import tiny_policy, toy_samples
    from r3lab.train.sft import train as sft_train

    monkeypatch.delenv("R3LAB_SWEEP", raising=False)
    policy = tiny_policy(fresh=True)
    out = tmp_path / "sft"
    cfg = SFTConfig(steps=2, batch_size=2, lr_lm=1e-3, out_dir=str(out), report_to="tensorboard")
    sft_train(policy, toy_samples(2, policy.view), cfg)
    acc = _events(out / "tensorboard")
    assert [e.step for e in acc.Scalars("loss")] == [1, 2] and acc.PluginTagToContent("hparams")
    configs = RecipeConfig(out=str(tmp_path / "recipe"), report_to="trackio").stage_configs()
    trained = {k: c.report_to for k, c in configs.items() if not k.startswith("eval:")}
    assert trained and set(trained.values()) == {"trackio"}, trained  # every phase, SFT and R-GRPO stages alike
    assert {"stage:rgrpo", "no_crop:no_crop"} <= set(trained)


WRITER = textwrap.dedent("""
    import sys
    from dataclasses import dataclass
    from r3lab.train.trackers import Trackers

    @dataclass
    class Cfg:
        out_dir: str
        report_to: str = "trackio"
        seed: int = 0

    t = Trackers(Cfg(sys.argv[1]))
    for step in range(1, 61):
        t(None, {"step": step, "loss": 1.0 / step})
    t.close()
""")


def test_several_runs_write_one_trackio_folder_at_once(tmp_path):
    trackio = pytest.importorskip("trackio")
    folder = tmp_path / "trackio"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("TRACKIO")},
        "TRACKIO_DIR": str(folder),
        "R3LAB_SWEEP": json.dumps({"sweep": "together"}),
    }
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(tmp_path / f"run{i}")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        for i in range(3)
    ]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stdout.read().decode()
    reader = textwrap.dedent("""
        from trackio.fragments import import_inbox_dir
        from trackio.sqlite_storage import SQLiteStorage
        import_inbox_dir()
        print(sorted(SQLiteStorage.get_runs("together")),
              [len(SQLiteStorage.get_logs("together", r)) for r in sorted(SQLiteStorage.get_runs("together"))])
    """)
    got = subprocess.run([sys.executable, "-c", reader], env=env, capture_output=True, text=True, timeout=300)
    assert got.returncode == 0, got.stderr
    assert got.stdout.strip().splitlines()[-1] == "['run0', 'run1', 'run2'] [60, 60, 60]", got.stdout
    assert trackio  # trackio's own reader took every writer's every row


def test_wandb_writes_an_offline_run_only(tmp_path):
    pytest.importorskip("wandb")  # not in r3lab's extras: `pip install wandb`, offline
    env = {**os.environ, "WANDB_MODE": "online", "WANDB_SILENT": "true"}  # r3lab forces offline whatever is set
    script = WRITER.replace('report_to: str = "trackio"', 'report_to: str = "wandb"')
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    runs = list((tmp_path / "run" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and "wandb sync" in done.stdout
