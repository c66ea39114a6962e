"""The model card's audit block: the audit of the shipped checkpoints (`research/audit/miniature.sh` writes their
results.json files to assets/checkpoints/audit/), written between two markers of MODEL_CARD.md by this code alone.

`python -m r3lab.audit.audit_card` rewrites the block from the files; `audit_block` is the markdown,
`predictions` the world's predictions checked against each model's numbers (what lesson 47 asserts too).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from ..core.env import SHIPPED
from ..evaluation.cost import PARTS
from .audit import SETTINGS, WHAT

START = "<!-- audit: written by python -m r3lab.audit.audit_card; do not edit by hand -->"
END = "<!-- /audit -->"
AUDIT = SHIPPED / "audit"  # sft.json, rgrpo.json: `r3lab eval --audit` results of the shipped checkpoints
LABELS = {"sft": "VLIR SFT", "rgrpo": "SFT + R-GRPO"}
FAMILIES = ("read_one", "compare_two", "control")


def load_audits(folder: str | Path = AUDIT) -> dict[str, dict]:
    """label -> results.json of each audited checkpoint in `folder` (sft first, then rgrpo, then any other)."""
    folder = Path(folder)
    files = sorted(folder.glob("*.json"), key=lambda p: (list(LABELS).index(p.stem) if p.stem in LABELS else 9, p.stem))
    if not files:
        raise FileNotFoundError(f"{folder} holds no audit results: run research/audit/miniature.sh")
    return {LABELS.get(p.stem, p.stem): json.loads(p.read_text()) for p in files}


def _n(v, digits: int = 3) -> str:
    return (
        "–"
        if v is None or (isinstance(v, float) and math.isnan(v))
        else (str(v) if isinstance(v, int) else f"{v:.{digits}f}")
    )


def _ci(row: dict, key: str) -> str:
    lo, hi = row.get(f"{key}_lo"), row.get(f"{key}_hi")
    return _n(row.get(key)) + ("" if lo is None or hi is None else f" [{_n(lo)}, {_n(hi)}]")


def predictions(audits: dict[str, dict]) -> list[dict]:
    """The world's predictions, each checked on every model: the grating cannot be read without its pixels, so
    format-only and dummy crops are no better than chance on read_one (the interval's low end at or under chance);
    control needs no crop (no-crop accuracy within 5 points of the model's own, or their intervals overlapping)."""
    out = []
    for label, res in audits.items():
        rows = res["rows"]
        r = rows.get("read_one", {})
        for key in ("acc_format_only", "acc_dummy_crop"):
            if key in r:
                out.append(
                    {
                        "model": label,
                        "claim": f"{key[4:]} on read_one no better than chance",
                        "holds": r[f"{key}_lo"] <= r[f"{key}_chance"],
                        "value": r[key],
                        "chance": r[f"{key}_chance"],
                    }
                )
        c = rows.get("control", {})
        if "acc_no_crop" in c:
            overlap = c["acc_no_crop_hi"] >= (c.get("accuracy_lo") or c["accuracy"]) - 1e-9
            out.append(
                {
                    "model": label,
                    "claim": "control answered as well without crops",
                    "holds": abs(c["acc_no_crop"] - c["accuracy"]) <= 0.05 or overlap,
                    "value": c["acc_no_crop"],
                    "own": c["accuracy"],
                }
            )
    return out


def accuracy_table(audits: dict[str, dict], families: tuple = FAMILIES) -> str:
    """Markdown: per model and family, the chance level, the accuracy with its own crops and with each setting."""
    cols = ["accuracy", *(f"acc_{s}" for s in SETTINGS)]
    lines = ["| model | family | chance | own crops | " + " | ".join(SETTINGS) + " |", "|---" * (len(cols) + 3) + "|"]
    for label, res in audits.items():
        for f in families:
            if r := res["rows"].get(f):
                lines.append(f"| {label} | {f} | {_n(r.get('chance'))} | " + " | ".join(_ci(r, c) for c in cols) + " |")
    return "\n".join(lines)


def tool_only_table(audits: dict[str, dict], families: tuple = FAMILIES) -> str:
    """Markdown: the tool-only solved set, the share also solved without crops and pass@k, each with chance."""
    k = _k(audits)
    lines = [
        "| model | family | tool_only (chance) | also solved without crops, of those solved (chance) | "
        f"pass@{k} no crops (chance) |",
        "|---|---|---|---|---|",
    ]
    for label, res in audits.items():
        for f in families:
            r = res["rows"].get(f)
            if r and "tool_only" in r:
                lines.append(
                    f"| {label} | {f} | {_ci(r, 'tool_only')} ({_n(r['tool_only_chance'])}) | "
                    f"{_ci(r, 'also_solved_without')} ({_n(r['also_solved_without_chance'])}) | "
                    f"{_ci(r, 'pass_at_k_no_crop')} ({_n(r['pass_at_k_no_crop_chance'])}) |"
                )
    return "\n".join(lines)


def attention_table(audits: dict[str, dict], families: tuple = ("read_one", "compare_two")) -> str:
    """Markdown: the 2x2 of attention peak and written box on the ground-truth region, per model and family."""
    lines = [
        "| model | family | both | attention only | box only | neither | peak on the region (chance) |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, res in audits.items():
        for f in families:
            r = res["rows"].get(f, {})
            if r.get("attn_box_n"):
                lines.append(
                    f"| {label} | {f} | "
                    + " | ".join(_n(r[f"attn_box_{c}"]) for c in ("both", "attention_only", "box_only", "neither"))
                    + f" | {_ci(r, 'attn_in_region')} ({_n(r['attn_in_region_chance'])}) |"
                )
    return "\n".join(lines)


COST_DIGITS = {"tokens": 1, "crops": 2, "vision_s": 3, "wall_s": 3}  # what each part's noise leaves meaningful


def cost_table(audits: dict[str, dict], family: str = "all") -> str:
    """Markdown: per model and setting, tokens, crops, vision-encoder and wall seconds per correct answer."""
    lines = ["| model | setting | " + " | ".join(PARTS) + " |", "|---|---|" + "---|" * len(PARTS)]
    for label, res in audits.items():
        r = res["rows"].get(family, {})
        for s in ("own", *SETTINGS):
            if f"tokens_per_correct_{s}" in r:
                lines.append(
                    f"| {label} | {s} | "
                    + " | ".join(_n(r.get(f"{p}_per_correct_{s}"), COST_DIGITS[p]) for p in PARTS)
                    + " |"
                )
    return "\n".join(lines)


def audit_block(audits: dict[str, dict]) -> str:
    """The card's audit section: accuracies per setting and family with 95 % intervals against chance, the tool-only
    solved set, attention vs box, cost per correct answer, and the predictions checked."""
    first = next(iter(audits.values()))
    n = {f: first["rows"].get(f, {}).get("n") for f in FAMILIES}
    k = _k(audits)
    head = [
        "## Audit: did the crop matter? (held-out, `r3lab eval --audit`)",
        "",
        f"{', '.join(f'{v} {f}' for f, v in n.items() if v)} held-out questions on a seed no stage draws from "
        "(`research/audit/miniature.sh`); greedy unless a setting samples; intervals: 95 % Wilson (accuracy: "
        "bootstrap). Each setting shows the model something else where its own rollout shows a crop:",
        "",
    ]
    head += [f"- `{s}`: {WHAT[s]}" for s in SETTINGS]
    lines = [
        "",
        accuracy_table(audits),
        "",
        f"Tool-only solved set (right with its own crops, wrong both greedy "
        f"without crops and by the majority of {k} sampled answers without crops) and pass@{k} without crops, "
        "each beside what a guessing model scores:",
        "",
        tool_only_table(audits),
        "",
        "Attention vs box per crop call with a ground-truth region (the attention of the call and the 8 tokens "
        "before it, last layer; box on the region: IoU >= 0.5):",
        "",
        attention_table(audits),
        "",
        "Cost per correct answer, all families (seconds on the shared 2-core CPU the run had):",
        "",
        cost_table(audits),
        "",
        "The world's predictions, checked:",
        "",
    ]
    lines += [
        f"- {p['model']}: {p['claim']}: {'yes' if p['holds'] else 'no'} ({_n(p['value'])}"
        + (f" against chance {_n(p['chance'])})" if "chance" in p else f" against {_n(p['own'])} with crops)")
        for p in predictions(audits)
    ]
    return "\n".join([START, *head, *lines, END])


def _k(audits: dict[str, dict]) -> int:
    return next(iter(audits.values())).get("config", {}).get("audit_settings", {}).get("k", 5)


def write_audit_block(card: str | Path, block: str) -> Path:
    """Put `block` between the card's markers (appended with them when the card has none); the rest stays as is."""
    card = Path(card)
    text = card.read_text()
    if (START in text) != (END in text):
        raise ValueError(f"{card}: one audit marker without the other; restore both or remove both")
    if START in text:
        text = text.split(START)[0] + block + text.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    card.write_text(text)
    return card


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="write the model card's audit block from the audit results")
    p.add_argument("--audit", default=str(AUDIT), help="folder of the audited checkpoints' results.json files")
    p.add_argument("--card", default=str(SHIPPED / "MODEL_CARD.md"), help="the model card to write into")
    a = p.parse_args(argv)
    print(f"wrote {write_audit_block(a.card, audit_block(load_audits(a.audit)))}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
