"""`r3lab recipe`: flags drawn from the default curriculum, format 1's flags, `--config FILE.yaml`, refusals."""

import json
import sys

import pytest

from r3lab.cli.app import build_parser
from r3lab.cli.app import main as cli_main


def _config(argv: list[str], monkeypatch):
    """The RecipeConfig `r3lab recipe ARGV` would run (nothing trained)."""
    import r3lab.cli.recipe as cli_recipe

    seen = []
    monkeypatch.setattr(
        cli_recipe, "run_recipe", lambda cfg: seen.append(cfg) or {"rows": {}, "config": {"out": cfg.out}}
    )
    monkeypatch.setattr(cli_recipe, "markdown_table", lambda results: "")
    cli_main(["recipe", *argv])
    return seen[0]


def test_every_phase_of_the_default_curriculum_has_its_flags(capsys):
    with pytest.raises(SystemExit):
        build_parser(["recipe"]).parse_args(["recipe", "--help"])
    help_ = capsys.readouterr().out
    for flag in (
        "--ground-steps",
        "--ground-early",
        "--pairs-lr",
        "--read-first-mix",
        "--read-check",
        "--read-bar",
        "--drill-more",
        "--compare-ground-bar",
        "--sft-rounds",
        "--sft-read-rounds",
        "--base-batch",
        "--sft-batch",
        "--rgrpo-group-size",
        "--config",
    ):
        assert flag in help_, flag
    assert "--ground-ground-bar" not in help_ and "--ground-min" not in help_  # format 1's flags: accepted, not shown


def test_flags_set_their_phases_and_format_1_flags_are_read_as_that_format_ran_them(monkeypatch, tmp_path):
    cfg = _config(
        [
            "--out",
            str(tmp_path),
            "--read-steps",
            "7",
            "--compare-bar",
            "90",
            "--read-mix",
            '{"closeups": 0.5}',
            "--rgrpo-group-size",
            "4",
            "--train-max-crops",
            "3",
        ],
        monkeypatch,
    )
    assert cfg.phase("read").steps == 7 and cfg.phase("compare").check.bar == 90.0 and cfg.rgrpo.group_size == 4
    assert cfg.phase("read").mix.closeups == 0.5 and cfg.phase("read").mix.controls == 0.15  # over its own mix
    assert cfg.train_rollout.max_crops == 3 and cfg.train_rollout.temperature == 0.7
    with pytest.warns(FutureWarning, match="format 1's names go in r3lab 0.3"):
        old = _config(
            [
                "--base-steps",
                "900",
                "--ground-min",
                "70",
                "--base-lr",
                "5e-4",
                "--compare-drill-steps",
                "40",
                "--group-size",
                "4",
            ],
            monkeypatch,
        )
    assert old.phase("ground").steps == 900 and old.phase("ground").check.bar == 70.0 and old.rgrpo.group_size == 4
    assert {p.lr for p in old.base.phases if p.name != "drill"} == {5e-4} and old.phase("drill").steps == 40


def test_a_config_file_gives_a_whole_curriculum_and_the_flags_beside_it_win(monkeypatch, tmp_path):
    import yaml

    from r3lab.recipe.curriculum import sft_stage

    base = [
        {
            "name": "ground",
            "steps": 5,
            "lr": 1e-3,
            "mix": {"world": "grounding"},
            "check": {"measure": "where", "n": 4, "bar": 50.0, "more": 2, "rounds": 1},
        },
        {
            "name": "look",
            "steps": 3,
            "lr": 5e-4,
            "mix": {"closeups": 1.0},
            "seed": 9,
            "check": {"measure": "read", "n": 4, "bar": 40.0, "seed": 20_000},
        },
    ]
    path = tmp_path / "recipe.yaml"
    path.write_text(
        yaml.safe_dump(
            {"n_train": 40, "base": {"batch": 4, "phases": base}, "rgrpo": {"steps": 3, "batch": 8, "group_size": 2}}
        )
    )
    cfg = _config(
        [
            "--config",
            str(path),
            "--set",
            "look.steps=6",
            "--rgrpo-lr",
            "1e-5",
            "--n-eval",
            "5",
            "--set",
            'look.mix={"closeups": 0.9}',
        ],
        monkeypatch,
    )
    assert [p.name for p in cfg.base.phases] == ["ground", "look"] and cfg.base.batch == 4 and cfg.n_train == 40
    assert cfg.phase("look").steps == 6 and cfg.phase("look").check.bar == 40.0 and cfg.n_eval == 5
    assert cfg.phase("look").mix.closeups == 0.9 and cfg.phase("look").seed == 9
    assert (cfg.rgrpo.steps, cfg.rgrpo.lr) == (3, 1e-5) and cfg.sft.phases == sft_stage().phases
    # a run's own recipe.json (format 2) and a format-1 one read as recipe files too
    from r3lab.recipe.recipe_config import RecipeConfig, saved_recipe

    (tmp_path / "r2.json").write_text(json.dumps(saved_recipe(RecipeConfig.from_settings(**{"read.steps": 11}))))
    assert _config(["--config", str(tmp_path / "r2.json")], monkeypatch).phase("read").steps == 11
    (tmp_path / "bad.yaml").write_text("base: [unclosed")
    with pytest.raises(ValueError, match=r"--config .*bad\.yaml:1: not YAML or JSON"):
        _config(["--config", str(tmp_path / "bad.yaml")], monkeypatch)
    with pytest.raises(ValueError, match=r"'look\.steps' names no phase's setting"):
        _config(["--set", "look.steps=6"], monkeypatch)  # the default curriculum has no phase look
    with pytest.raises(SystemExit):
        _config(["--set", "look.steps"], monkeypatch)  # PATH=VALUE


@pytest.mark.parametrize(
    "argv,match",
    [
        (["--sft-batch", "64", "--n-train", "24"], r"--sft-batch\) asks for more samples per step than the 24 VLIR"),
        (["--compare-bar", "100", "--compare-check", "0"], r"--compare-bar\) cannot take effect.*--compare-check N"),
        (["--compare-min", "100", "--compare-check", "0"], r"--compare-bar\) cannot take effect"),
        (["--parallel", "10000"], r"parallel = 10000 is not allowed.*give --parallel \d+ or fewer"),
        (["--sft-steps", "-5"], r"sft\.steps = -5 is not allowed"),
    ],
)
def test_settings_that_do_not_fit_or_cannot_take_effect_are_refused_before_any_work(argv, match, tmp_path, monkeypatch):
    import r3lab.recipe.recipe as recipe

    monkeypatch.setattr(recipe.Recipe, "run", lambda self: pytest.fail("the recipe started"))
    with pytest.raises((ValueError, SystemExit), match=match):
        cli_main(["recipe", "--out", str(tmp_path / "run"), *argv])
    assert not (tmp_path / "run").exists()


def test_a_check_below_its_bar_reaches_the_user_as_one_error_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("R3LAB_DEBUG", raising=False)
    monkeypatch.setattr(
        sys,
        "argv",
        [
            "r3lab",
            "recipe",
            "--out",
            str(tmp_path / "run"),
            "--parallel",
            "1",
            "--n-train",
            "8",
            "--n-eval",
            "2",
            "--base-batch",
            "2",
            "--sft-batch",
            "2",
            "--rgrpo-batch",
            "4",
            "--rgrpo-group-size",
            "2",
            "--ground-steps",
            "1",
            "--ground-mix",
            '{"samples": 4}',
            "--ground-check",
            "2",
            "--ground-bar",
            "100",
            "--ground-rounds",
            "0",
            "--view",
            '{"crop_max_pixels": 9604}',
        ],
    )
    assert cli_main() == 2
    err = capsys.readouterr().err  # (after the progress bars)
    assert err.count("error:") == 1 and "Traceback" not in err
    assert err.splitlines()[-1].startswith("error: stage base: after 1 grounding steps") and "--ground-rounds" in err


def test_format_1_flags_warn_with_today_s_flag_and_refuse_to_sit_beside_it(monkeypatch, tmp_path):
    with pytest.warns(FutureWarning, match=r"ground_min \(--ground-min\) -> ground\.check\.bar \(--ground-bar\)"):
        cfg = _config(["--out", str(tmp_path), "--ground-min", "70"], monkeypatch)
    assert cfg.phase("ground").check.bar == 70.0
    with pytest.raises(ValueError, match=r"ground_min and ground\.check\.bar \(--ground-bar\); give today's only"):
        _config(["--out", str(tmp_path), "--ground-min", "70", "--ground-bar", "60"], monkeypatch)


@pytest.mark.parametrize(
    "argv,needs",
    [
        (["--read-steps", "0"], "--read-check"),
        (["--compare-steps", "0"], "--compare-check"),
        (["--sft-check", "0"], "--sft-read-check"),
        (["--sft-read-rounds", "0"], "--sft-read-check"),
    ],
)
def test_a_flag_format_1_read_otherwise_is_refused_until_what_it_also_set_is_given(argv, needs, monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=rf"{argv[0]} 0 is ambiguous: format 1's flag.*give {needs} N beside it"):
        _config(["--out", str(tmp_path), *argv], monkeypatch)
    today = _config(["--out", str(tmp_path), *argv, needs, "7"], monkeypatch)  # said which: today's meaning
    path = {
        "--read-steps": "read.steps",
        "--compare-steps": "compare.steps",
        "--sft-check": "sft.check.n",
        "--sft-read-rounds": "sft_read.check.rounds",
    }[argv[0]]
    name, *rest = path.split(".")
    assert getattr(today.phase(name).check, rest[-1]) == 0 if rest[0] == "check" else today.phase(name).steps == 0
    assert _config(["--out", str(tmp_path), *argv[:1], "3"], monkeypatch)  # any other value means the same in both
