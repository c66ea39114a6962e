import argparse
from dataclasses import dataclass, field

import pytest

from r3lab.cli.app import COMMANDS, build_parser
from r3lab.cli.args import add_dataclass_arguments, dataclass_from_args, field_help


@dataclass
class Demo:
    steps: int = 10  # optimizer steps
    lr: float = 1e-3  # learning rate
    freeze_vision: bool = False  # keep the vision tower fixed
    name: str = "run"  # run name
    families: list = field(default_factory=lambda: ["read_one"])  # task families
    ckpt: str | None = None  # optional checkpoint


def test_dataclass_flags_round_trip_with_help():
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Demo)
    args = p.parse_args(
        ["--steps", "5", "--lr", "0.1", "--freeze-vision", "true", "--families", '["count"]', "--ckpt", "x"]
    )
    d = dataclass_from_args(Demo, args)
    assert d == Demo(5, 0.1, True, "run", ["count"], "x")
    assert dataclass_from_args(Demo, p.parse_args([])) == Demo()
    assert "optimizer steps" in p.format_help() and "keep the vision tower fixed" in p.format_help()
    assert field_help(Demo)["lr"] == "learning rate"
    with pytest.raises(SystemExit):
        p.parse_args(["--freeze-vision", "maybe"])
    with pytest.raises(SystemExit):
        p.parse_args(["--steps", "many"])


@dataclass
class Wrapped:
    rows: int = 4  # questions decoded together; a meaning too long for one line
    # goes on below the field, indented deeper
    # a comment at the field's indentation is about the next field
    seed: int = 0  # sampling seed


def test_a_field_comment_continues_on_deeper_comment_lines():
    assert field_help(Wrapped) == {
        "rows": "questions decoded together; a meaning too long for one line goes on below the field, indented deeper",
        "seed": "sampling seed",
    }
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Wrapped)
    assert "indented deeper (default: 4)" in " ".join(p.format_help().split())


@dataclass
class Documented:
    rows: int = 4
    """questions decoded together: the help of `--rows`, a docstring IDEs show too"""
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    lr: float = 1e-3  # a class not yet given docstrings: its comment


@dataclass
class Subclass(Documented):
    rows: int = 8
    """rows of the subclass"""


def test_help_comes_from_metadata_or_the_field_s_docstring():
    assert (
        field_help(Documented)["rows"] == "questions decoded together: the help of `--rows`, a docstring IDEs show too"
    )
    assert (
        field_help(Subclass)["rows"] == "rows of the subclass"
        and field_help(Subclass)["lr"] == "a class not yet given docstrings: its comment"
    )
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Subclass)
    text = " ".join(p.format_help().split())
    assert "rows of the subclass (default: 8)" in text and "sampling seed (default: 0)" in text


def test_every_command_has_a_parser_and_its_help_renders(capsys):
    p = build_parser()
    for words, _, _ in COMMANDS:  # argparse formats the help only when asked: a stray "%" in a comment broke it
        with pytest.raises(SystemExit) as e:
            p.parse_args([*words, "--help"])
        assert e.value.code == 0, words
        assert "usage: r3lab " + " ".join(words) in capsys.readouterr().out


def test_a_percent_sign_in_a_comment_reaches_the_help(capsys):
    @dataclass
    class Share:
        bar: float = 80.0  # % of box centres on the named landmark

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Share)
    with pytest.raises(SystemExit):
        p.parse_args(["--help"])
    assert "% of box centres" in capsys.readouterr().out
