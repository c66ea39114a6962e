"""The model card's audit block: written between its markers from the audit results, replaced in place, and the
world's predictions checked on each model's numbers."""

import pytest

from r3lab.audit.audit import audit_table
from r3lab.audit.audit_card import END, START, audit_block, predictions, write_audit_block


def results(read_format_only):
    n = 10
    groups = ["read_one"] * n + ["control"] * n
    acc = {
        "own": [1.0] * 2 * n,
        "format_only": read_format_only + [1.0] * n,
        "dummy_crop": [0.0] * 2 * n,
        "result_only": [0.0] * 2 * n,
        "no_crop": [0.0] * n + [1.0] * n,
        "majority_no_crop": [0.0] * 2 * n,
        "pass_at_k_no_crop": [0.0] * 2 * n,
    }
    rows = audit_table(groups, acc, 5, {"read_one": 0.2, "control": 0.5})
    for f in ("read_one", "control"):
        rows[f].update(n=n, accuracy=1.0, accuracy_lo=1.0, accuracy_hi=1.0, attn_box_n=0)
    return {"rows": rows, "config": {"audit_settings": {"k": 5}}}


def test_the_block_is_written_between_markers_and_replaced_in_place(tmp_path):
    card = tmp_path / "MODEL_CARD.md"
    card.write_text("# card\n\nbefore\n")
    write_audit_block(card, audit_block({"SFT": results([0.0] * 10)}))
    first = card.read_text()
    assert first.startswith("# card\n\nbefore\n") and first.count(START) == 1 and first.rstrip().endswith(END)
    assert "| SFT | read_one | 0.200 |" in first and "format_only on read_one no better than chance: yes" in first
    card.write_text(first + "after\n")
    write_audit_block(card, audit_block({"SFT": results([1.0] * 10)}))  # a model that reads without pixels
    second = card.read_text()
    assert second.count(START) == 1 and second.endswith("after\n") and "chance: no" in second
    card.write_text(second.replace(END, ""))
    with pytest.raises(ValueError, match="marker"):
        write_audit_block(card, "x")


def test_predictions_name_each_model_and_claim():
    got = predictions({"A": results([0.0] * 10), "B": results([1.0] * 10)})
    fmt = {(p["model"], p["claim"]): p["holds"] for p in got}
    assert fmt[("A", "format_only on read_one no better than chance")] is True
    assert fmt[("B", "format_only on read_one no better than chance")] is False
    assert fmt[("A", "control answered as well without crops")] is True


def test_the_cost_table_rounds_each_part_to_what_it_can_tell():
    from r3lab.audit.audit_card import cost_table

    res = results([0.0] * 10)
    res["rows"]["all"] = {
        "tokens_per_correct_own": 54.7939,
        "crops_per_correct_own": 1.151,
        "vision_s_per_correct_own": 0.02581,
        "wall_s_per_correct_own": 0.16549,
    }
    assert cost_table({"SFT": res}).splitlines()[-1] == "| SFT | own | 54.8 | 1.15 | 0.026 | 0.165 |"
