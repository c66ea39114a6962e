"""Statistics of VLIR datasets: families, crops per sample, answers, box sizes and rationale lengths.

`dataset_stats` counts them over a list of samples; `r3lab.viz.datasets` draws them.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field

from ..core.regions import Frame, ViewConfig
from ..core.trajectory import IMAGE, MODEL
from .vlir import image_size


@dataclass
class DatasetStats:
    """Counts over a list of samples (box sizes in the main image's model-input pixels)."""

    n: int = 0
    families: Counter = field(default_factory=Counter)
    crops: dict = field(default_factory=lambda: defaultdict(Counter))  # family -> Counter(crops per sample)
    answers: dict = field(default_factory=lambda: defaultdict(Counter))  # family -> Counter(canonical answer)
    box_sides: list = field(default_factory=list)  # (w, h) of every crop box, model-input pixels
    box_area: list = field(default_factory=list)  # crop box area / image area
    image_sizes: Counter = field(default_factory=Counter)  # original (w, h)
    rationale_chars: list = field(default_factory=list)  # characters of model text per sample
    rationale_tokens: list = field(default_factory=list)  # model-text tokens per sample (when a tokenizer is given)

    def to_dict(self) -> dict:
        return {
            "n": self.n,
            "families": dict(self.families),
            "crops": {f: {str(k): v for k, v in c.items()} for f, c in self.crops.items()},
            "answers": {f: dict(c) for f, c in self.answers.items()},
            "box_sides": [list(b) for b in self.box_sides],
            "box_area": self.box_area,
            "image_sizes": {f"{w}x{h}": c for (w, h), c in self.image_sizes.items()},
            "rationale_chars": self.rationale_chars,
            "rationale_tokens": self.rationale_tokens,
        }

    def __str__(self) -> str:
        lines = [f"{self.n} samples"]
        lines.append(f"  {'family':<14}{'n':>6}  {'crops/sample':<16}{'answers (most common)'}")
        for fam, n in sorted(self.families.items()):
            crops = ", ".join(f"{k}:{v}" for k, v in sorted(self.crops[fam].items()))
            ans = ", ".join(f"{a} {c}" for a, c in self.answers[fam].most_common(6))
            lines.append(f"  {fam or '?':<14}{n:>6}  {crops:<16}{ans}")
        if self.box_sides:
            ws = sorted(max(b) for b in self.box_sides)
            lines.append(
                f"  crop box side (model-input px): min {ws[0]:g}, median {ws[len(ws) // 2]:g}, "
                f"max {ws[-1]:g}; mean area {sum(self.box_area) / len(self.box_area):.1%} of the image"
            )
        lines.append("  image sizes: " + ", ".join(f"{w}x{h}: {c}" for (w, h), c in self.image_sizes.most_common()))
        if self.rationale_chars:
            lines.append(
                f"  rationale: mean {sum(self.rationale_chars) / len(self.rationale_chars):.0f} characters"
                + (
                    f", {sum(self.rationale_tokens) / len(self.rationale_tokens):.1f} tokens"
                    if self.rationale_tokens
                    else ""
                )
            )
        return "\n".join(lines)

    def _repr_pretty_(self, p, cycle):
        p.text(str(self))


def dataset_stats(samples, view: ViewConfig | None = None, tokenizer=None) -> DatasetStats:
    """Statistics of `samples`; `tokenizer` (anything with `encode`) adds rationale token counts."""
    view = view or ViewConfig()
    st = DatasetStats()
    for s in samples:
        st.n += 1
        st.families[s.family] += 1
        st.answers[s.family][s.answer] += 1
        size = tuple(image_size(s))
        st.image_sizes[size] += 1
        frame = Frame.of(size, view)
        boxes = [p.info.box_input for p in s.rationale or [] if p.kind == IMAGE]
        st.crops[s.family][len(boxes)] += 1
        for b in boxes:
            st.box_sides.append((b[2] - b[0], b[3] - b[1]))
            st.box_area.append((b[2] - b[0]) * (b[3] - b[1]) / (frame.input_w * frame.input_h))
        if s.rationale:
            text = "".join(p.text for p in s.rationale if p.kind == MODEL)
            st.rationale_chars.append(len(text))
            if tokenizer is not None:
                st.rationale_tokens.append(len(tokenizer.encode(text)))
    return st
