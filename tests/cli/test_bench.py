"""`r3lab bench` on a miniature V* copy with r3-tiny: every output is written; a missing copy is named before
loading."""

import json

import pytest

from r3lab.cli.app import main
from r3lab.testing.mini_benchmarks import write_benchmark


def test_bench_writes_the_table_the_items_and_the_figure(tmp_path, capsys):
    data = write_benchmark("vstar", tmp_path)
    out = tmp_path / "run"
    assert main(["bench", "vstar", "--data", str(data), "--n", "2", "--out", str(out), "--max-new-tokens", "8"]) == 0
    assert {p.name for p in out.iterdir()} >= {"table.md", "results.json", "items.jsonl", "figure.png"}
    res = json.loads((out / "results.json").read_text())
    assert res["benchmark"] == "vstar" and res["rows"]["all"]["n"] == 2 and res["config"]["seed"] == 0
    assert "| all | 2 |" in capsys.readouterr().out


def test_bench_names_a_missing_copy_before_loading_a_model(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data .* does not exist"):
        main(["bench", "treebench", "--data", str(tmp_path / "TreeBench.tsv")])
    with pytest.raises(SystemExit):
        main(["bench", "mmbench", "--data", str(tmp_path)])


def test_bench_necessity_flag_adds_the_keys_to_every_row(tmp_path):
    data = write_benchmark("treebench", tmp_path)
    out = tmp_path / "run"
    assert (
        main(
            [
                "bench",
                "treebench",
                "--data",
                str(data),
                "--n",
                "2",
                "--out",
                str(out),
                "--max-new-tokens",
                "6",
                "--necessity",
                "true",
            ]
        )
        == 0
    )
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert set(rows) >= {"all"} and all(
        {"acc_no_crop", "acc_gt_box", "tool_gain", "zooming_gap"} <= set(r) for r in rows.values()
    )
    assert rows["all"]["crop_rate_need"] is not None  # TreeBench names its target boxes: every question needs a crop
