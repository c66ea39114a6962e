import argparse
from dataclasses import dataclass, field

import pytest

from r3lab.cli.app import COMMANDS, build_parser
from r3lab.cli.args import add_dataclass_arguments, dataclass_from_args, field_help


@dataclass
class Demo:
    steps: int = 10
    """optimizer steps"""
    lr: float = 1e-3
    """learning rate"""
    freeze_vision: bool = False
    """keep the vision tower fixed"""
    name: str = "run"
    """run name"""
    families: list = field(default_factory=lambda: ["read_one"])
    """task families"""
    ckpt: str | None = None
    """optional checkpoint"""


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
    rows: int = 4
    """questions decoded together; a meaning too long for one line
    goes on in the docstring's next line"""
    # a comment is never help: it says why, for the reader of the code
    seed: int = 0  # not this either
    """sampling seed"""


def test_a_docstring_of_several_lines_is_one_line_of_help_and_comments_are_not_read():
    assert field_help(Wrapped) == {
        "rows": "questions decoded together; a meaning too long for one line goes on in the docstring's next line",
        "seed": "sampling seed",
    }
    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Wrapped)
    text = " ".join(p.format_help().split())
    assert "docstring's next line (default: 4)" in text and "comment" not in text and "not this" not in text


@dataclass
class Documented:
    rows: int = 4
    """questions decoded together: the help of `--rows`, a docstring IDEs show too"""
    seed: int = field(default=0, metadata={"help": "sampling seed"})
    lr: float = 1e-3
    """the base's learning rate"""


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
        and field_help(Subclass)["lr"] == "the base's learning rate"
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


def test_every_flag_of_every_command_says_what_it_sets():
    """Help from metadata or docstrings only: a config field without either would be a flag without words."""

    def parsers(p):
        yield p
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in dict.fromkeys(a.choices.values()):
                    yield from parsers(sub)

    bare = [
        f"{p.prog} {a.option_strings[-1]}"
        for p in parsers(build_parser())
        for a in p._actions
        if a.option_strings and a.help != argparse.SUPPRESS and not (a.help or "").split("(default:")[0].strip()
    ]
    assert not bare, f"flags without help (give the field a docstring): {bare}"


def test_a_percent_sign_in_a_docstring_reaches_the_help(capsys):
    @dataclass
    class Share:
        bar: float = 80.0
        """% of box centres on the named landmark"""

    p = argparse.ArgumentParser()
    add_dataclass_arguments(p, Share)
    with pytest.raises(SystemExit):
        p.parse_args(["--help"])
    assert "% of box centres" in capsys.readouterr().out
