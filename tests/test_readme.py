"""The README's commands and tour must match the code."""

import inspect
import re
import shlex
from pathlib import Path

import pytest

from r3lab.cli.app import build_parser

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def command_lines() -> list[str]:
    lines = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if " r3lab.cli " in line:
                line = "r3lab " + line.split(" r3lab.cli ", 1)[1]
            if line.startswith("r3lab "):
                lines.append(line)
    return lines


def test_readme_starts_with_the_two_commands_ci_runs():
    first = blocks("bash")[0].splitlines()
    assert [ln.split()[:2] for ln in first] == [["make", "main"], ["make", "test"]]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


@pytest.mark.parametrize("line", command_lines())
def test_every_cli_line_in_the_readme_parses(line):
    args = build_parser().parse_args(shlex.split(line)[1:])
    assert args._module.startswith("r3lab.")


def test_the_readme_lists_several_cli_lines():
    assert len(command_lines()) >= 8


@pytest.mark.slow
def test_the_python_tour_runs(tmp_path, monkeypatch):
    (code,) = blocks("python")
    monkeypatch.chdir(ROOT)
    code = code.replace('"runs/tour', '"' + str(tmp_path))  # the tour's files go to a temporary folder
    code = code.replace("SFTConfig(steps=50)", "SFTConfig(steps=5)")  # the tour's training, shortened
    exec(compile(code, "README.md", "exec"), {})
    assert (tmp_path / "trajectory.html").stat().st_size > 1000 and (tmp_path / "vlir" / "samples.jsonl").is_file()


def test_the_tour_uses_exactly_the_top_level_names():
    import r3lab

    (code,) = blocks("python")
    used = set(re.findall(r"\br3lab\.([A-Za-z_]\w*)", code))
    assert used == set(r3lab.__all__), (
        f"in the tour, not exported: {sorted(used - set(r3lab.__all__))}; "
        f"exported, not in the tour: {sorted(set(r3lab.__all__) - used)}"
    )


def _card_numbers() -> set[str]:
    """The results of the model card's table: accuracies, intervals, IoUs (not the 0s and 1s of a layout)."""
    import json

    from r3lab.recipe.report import markdown_table

    card = json.loads((ROOT / "assets" / "checkpoints" / "card_results.json").read_text())
    rows = [line for line in markdown_table(card).splitlines() if line.startswith("| (")]
    nums = {n for line in rows for n in re.findall(r"\d+\.\d+", line)}
    nums |= {f"{float(n):.2f}" for n in nums if len(n.split(".")[1]) == 3}  # an IoU of 0.422 quoted as 0.42
    # two significant digits at least, and not a round number that other prose may well hold (50.0, 0.2)
    return {n for n in nums if len(n.replace(".", "").lstrip("0")) >= 2 and float(n) % 10}


def _outside_the_generated_tables(text: str) -> str:
    """The prose: the generated blocks (the card's table, the course table's lesson times) taken out."""
    from r3lab.course.syllabus import BLOCKS

    for start, end in BLOCKS.values():
        if start in text and end in text:
            text = text.split(start)[0] + text.split(end, 1)[-1]
    return text


@pytest.mark.parametrize("doc", ["README.md", "DEVELOPERS.md", "notebooks/README.md"])
def test_the_cards_numbers_live_in_the_card_only(doc):
    text = _outside_the_generated_tables((ROOT / doc).read_text())  # the README's copy of the card is generated
    repeated = sorted(n for n in _card_numbers() if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", text))
    assert not repeated, f"{doc} repeats the model card's results {repeated}: link to the card instead"
    assert "MODEL_CARD.md" in text or doc != "README.md"


def test_the_notebooks_link_to_the_card_instead_of_repeating_it():
    import nbformat

    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        md = "\n".join(c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "markdown")
        md = re.sub(r"<!-- expected:.*?<!-- /expected -->", "", md, flags=re.S)  # a run's output, recorded from it
        repeated = sorted(n for n in _card_numbers() if re.search(rf"(?<![\d.]){re.escape(n)}(?![\d])", md))
        assert not repeated, f"{path.name} repeats the model card's results {repeated}"


def test_the_readme_is_a_front_door():
    lines = README.splitlines()
    assert len(lines) <= 205, f"README.md has {len(lines)} lines; move reference material to docs/guide/"
    assert not re.search(r"(?i)\bsession \d", README), "research history belongs in research/, not the README"
    for needed in (
        "JupyterLab",
        "Binder",
        "Colab",
        "docs/instructor/",
        "notebooks/solutions/",
        "MODEL_CARD.md",
        "docs/real-models.md",
    ):
        assert needed in README, f"the README should point at {needed}"
    assert re.search(r"!\[[^]]+\]\(assets/figures/[\w.-]+\.png\)", README), "the README's one figure"


def test_the_readme_tables_are_generated_from_the_syllabus_and_the_card():
    from r3lab.course.syllabus import fill_readme

    assert fill_readme(README) == README, "run: python -m r3lab.course.syllabus"
    from r3lab.course.syllabus import OBJECTIVES_HEAD, objectives_markdown

    goals = (ROOT / "docs" / "instructor" / "objectives.md").read_text()
    assert goals == OBJECTIVES_HEAD + objectives_markdown(), "run: python -m r3lab.course.syllabus"
    with pytest.raises(ValueError, match="markers"):
        fill_readme("# no tables here")


def test_the_safety_page_states_the_bounds_the_code_holds():
    """docs/guide/safety.md quotes each bound as the code sets it: changing a constant without the page fails here."""
    from r3lab.core import config_file, jobs, settings
    from r3lab.core.files import file_lock
    from r3lab.model.weights import SIZE_BOUNDS

    page = " ".join((ROOT / "docs/guide/safety.md").read_text().split())
    lock_s = inspect.signature(file_lock).parameters["timeout"].default
    said = {
        "layers and heads": f"more than {SIZE_BOUNDS['num_hidden_layers']:,} layers in a stack or attention heads",
        "heads": f"{SIZE_BOUNDS['num_attention_heads']:,}",
        "hidden size": f"hidden sizes beyond {SIZE_BOUNDS['hidden_size']:,}",
        "intermediate size": f"intermediate sizes beyond {SIZE_BOUNDS['intermediate_size']:,}",
        "vocabulary": f"a vocabulary beyond {SIZE_BOUNDS['vocab_size']:,}",
        "config file": f"a file of at most {config_file.MAX_CONFIG_BYTES >> 20} MiB",
        "one value": f"a value of at most {config_file.MAX_VALUE_CHARS >> 10} Ki characters",
        "depth": f"nesting deeper than {config_file.MAX_DEPTH} levels",
        "values": f"more than {config_file.MAX_NODES:,} values",
        "rows": f"more than {settings.MAX_ROWS} trajectories in one process",
        "stop grace": f"each has {jobs.STOP_GRACE:g} s to end",
        "lock": f"still held after {lock_s:g} s",
    }
    assert SIZE_BOUNDS["num_attention_heads"] == SIZE_BOUNDS["num_hidden_layers"]  # the page names them as one
    missing = {k: v for k, v in said.items() if v not in page}
    assert not missing, f"docs/guide/safety.md does not say: {missing}"
