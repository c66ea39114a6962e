import pytest
from matplotlib.figure import Figure

from r3lab.cli import app as cli
from r3lab.core.regions import ViewConfig
from r3lab.data.dataset import save_dataset
from r3lab.data.stats import dataset_stats
from r3lab.data.vlir import build_samples
from r3lab.testing import tiny_policy
from r3lab.viz.datasets import plot_sample, plot_samples, plot_stats
from r3lab.viz.mpl_fit import text_problems


@pytest.fixture(scope="module")
def samples():
    return build_samples(24, seed=1, families=["read_one", "compare_two", "count", "control"], progress=False)


def test_stats_count_families_crops_answers_and_boxes(samples):
    st = dataset_stats(samples)
    assert st.n == 24 and dict(st.families) == {"read_one": 6, "compare_two": 6, "count": 6, "control": 6}
    assert st.crops["compare_two"] == {2: 6} and st.crops["control"] == {0: 6} and st.crops["read_one"] == {1: 6}
    assert st.answers["compare_two"] == {"yes": 3, "no": 3}
    assert len(st.box_sides) == 6 * 2 + 6 + 6 == len(st.box_area)
    assert all(16 <= w <= 26 and 16 <= h <= 26 for w, h in st.box_sides)  # 100-130 px landmarks + margin at scale 1/6
    assert all(0.02 < a < 0.06 for a in st.box_area)
    assert sum(st.image_sizes.values()) == 24 and len(st.rationale_chars) == 24
    text = str(st)
    assert "compare_two" in text and "yes 3" in text and "crop box side" in text
    assert st.to_dict()["families"]["count"] == 6


def test_stats_with_a_tokenizer(samples):
    st = dataset_stats(samples[:4], tokenizer=tiny_policy().tokenizer)
    assert len(st.rationale_tokens) == 4 and all(10 < t < 100 for t in st.rationale_tokens)
    assert "tokens" in str(st)


def test_figures_are_returned(samples):
    st = dataset_stats(samples)
    fig = plot_stats(st)
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    family, box, answers = (
        next(a for a in fig.axes if a.get_title().startswith(w)) for w in ("samples", "crop", "answers")
    )
    assert family.get_ylabel() == "samples" and box.get_ylabel() == "crop boxes" and answers.get_xlabel() == "samples"
    kinds, fams = sorted({k for c in st.crops.values() for k in c}), sorted(st.families)
    heights = dict.fromkeys(fams, 0)  # the family panel's stacked bars: each family's samples, by crops per sample
    for bar, fam in zip(family.patches, fams * len(kinds)):
        heights[fam] += bar.get_height()
    assert heights == dict(st.families) and len(family.get_legend().texts) == len(kinds)
    fig.canvas.draw()
    assert not text_problems(fig)  # no label cut at the edge, the legend over no other text
    comp = next(s for s in samples if s.family == "compare_two")
    fig = plot_sample(comp)
    assert isinstance(fig, Figure) and len(fig.axes) == 4  # original, coarse view, two crops
    assert len(fig.axes[0].patches) == 2 + 2 + 2  # regions, details, crop boxes
    fig = plot_samples(samples[:4], ViewConfig())
    assert isinstance(fig, Figure) and len(fig.axes) == 3 + 4 + 3 + 2


def test_cli_stats_prints_and_saves_a_figure(samples, tmp_path, capsys):
    out = save_dataset(samples[:8], tmp_path / "ds", images="scene", progress=False)
    assert cli.main(["data", "stats", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "8 samples" in printed and (out / "stats.png").stat().st_size > 1000
    lines = (out / "samples.jsonl").read_text().splitlines()
    (out / "samples.jsonl").write_text("\n".join(lines[:3] + ["{oops"] + lines[3:]) + "\n")
    with pytest.raises(ValueError, match=":4: bad sample line"):
        cli.main(["data", "stats", str(out)])
    assert cli.main(["data", "stats", str(out), "--errors", "report", "--figure", str(tmp_path / "f.png")]) == 1
    assert "bad line 4" in capsys.readouterr().out and (tmp_path / "f.png").is_file()
