"""`r3lab train sft --lora-r ...` on r3-tiny, `r3lab export --merge`, and `r3lab eval` of the merged folder."""

import json

import pytest
import torch

pytest.importorskip("peft")

from r3lab.cli.app import main  # noqa: E402
from r3lab.data.dataset import save_dataset  # noqa: E402
from r3lab.model.adapters import is_adapted  # noqa: E402
from r3lab.model.policy import load_policy  # noqa: E402
from r3lab.testing import toy_samples  # noqa: E402


def test_lora_sft_through_the_cli_then_merged_export_evaluates(tmp_path, capsys):
    ds = save_dataset(toy_samples(4), tmp_path / "ds")
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "sft",
                "--data",
                str(ds),
                "--steps",
                "2",
                "--batch-size",
                "2",
                "--lr-lm",
                "0.01",
                "--lora-r",
                "4",
                "--lora-alpha",
                "8",
                "--lora-targets",
                "lm,merger",
                "--out-dir",
                str(run),
            ]
        )
        == 0
    )
    state = json.loads((run / "step_000002" / "state.json").read_text())
    assert state["config"]["lora"] == {"r": 4, "alpha": 8.0, "dropout": 0.0, "targets": "lm,merger", "bits": 0}
    adapted = load_policy(run)
    assert is_adapted(adapted.model)
    assert main(["export", "--policy", str(run), "--out", str(tmp_path / "plain"), "--merge"]) == 0
    assert "merged its LoRA adapters" in capsys.readouterr().out
    plain = load_policy(tmp_path / "plain")
    assert not is_adapted(plain.model) and (tmp_path / "plain" / "model.safetensors").is_file()
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        assert (plain.model(input_ids=ids).logits - adapted.model(input_ids=ids).logits).abs().max() < 1e-4
    assert (
        main(
            [
                "eval",
                "--policy",
                str(tmp_path / "plain"),
                "--data",
                str(ds),
                "--max-new-tokens",
                "8",
                "--out",
                str(tmp_path / "ev"),
            ]
        )
        == 0
    )
    assert (tmp_path / "ev" / "results.json").is_file()
    with pytest.raises(FileExistsError, match="not empty"):
        main(["export", "--policy", str(run), "--out", str(tmp_path / "plain"), "--merge"])
