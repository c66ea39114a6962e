"""The r3lab command: every subcommand has a file; only the one asked for is imported."""

import subprocess
import sys

import pytest

from r3lab.cli.app import COMMANDS, build_parser, command_of, main

from .. import HANG_S


def test_every_command_module_has_add_arguments_and_run():
    import importlib

    for _words, module, _ in COMMANDS:
        mod = importlib.import_module(module)
        assert callable(mod.add_arguments) and callable(mod.run), module
        assert module.startswith("r3lab.cli.")


def test_the_command_words_pick_one_parser():
    assert command_of(["train", "sft", "--steps", "3"]) == ("train", "sft")
    assert command_of(["eval", "--n", "2"]) == ("eval",)
    assert command_of(["--help"]) is None and command_of([]) is None
    args = build_parser(["train", "rgrpo", "--steps", "3"]).parse_args(["train", "rgrpo", "--steps", "3"])
    assert args.steps == 3 and args._module == "r3lab.cli.train_rgrpo"


def test_only_the_chosen_command_is_imported():
    code = (
        "import sys\nfrom r3lab.cli.app import build_parser\n"
        "build_parser(['data', 'stats', 'x'])\n"
        "print(' '.join(m for m in sys.modules if m.startswith('r3lab.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_S)
    assert out.returncode == 0, out.stderr
    assert set(out.stdout.split()) == {"r3lab.cli.app", "r3lab.cli.data_stats"}


def test_no_arguments_prints_the_commands(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "recipe" in out and "probe" in out and "cmd0" not in out
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0


def test_train_sft_in_qwen3_vl_s_own_zoom_tool_converts_the_data_and_saves_the_style(tmp_path):
    """`--calls relative-tool`: the data (absolute JSON, as built) is converted, the policy trains in that style,
    and its checkpoint says so; a bad value names the allowed ones."""
    import json

    from r3lab.core.crop_calls import CallStyle
    from r3lab.data.dataset import save_dataset
    from r3lab.model.policy import load_policy
    from r3lab.testing import toy_samples

    save_dataset(toy_samples(2), tmp_path / "ds")
    assert (
        main(
            [
                "train",
                "sft",
                "--data",
                str(tmp_path / "ds"),
                "--steps",
                "1",
                "--batch-size",
                "2",
                "--calls",
                "relative-tool",
                "--out-dir",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    saved = load_policy(tmp_path / "run")
    assert saved.prompt.calls == CallStyle("relative", "tool") and "image_zoom_in_tool" in saved.prompt.instruction
    assert json.loads(
        (tmp_path / "run" / (tmp_path / "run" / "latest").read_text().strip() / "r3lab.json").read_text()
    )["prompt"]["calls"] == {"coords": "relative", "grammar": "tool"}
    with pytest.raises(ValueError, match=r"--calls 'pixels-json'.*absolute-json or relative-tool"):
        main(
            [
                "train",
                "sft",
                "--data",
                str(tmp_path / "ds"),
                "--steps",
                "1",
                "--calls",
                "pixels-json",
                "--out-dir",
                str(tmp_path / "run2"),
            ]
        )


def _as_process(monkeypatch, *argv):
    monkeypatch.setattr(sys, "argv", ["r3lab", *argv])
    return main()


def test_a_user_error_is_one_line_and_exit_2_a_bug_keeps_its_traceback(tmp_path, monkeypatch, capsys):
    import r3lab.cli.data_stats as data_stats

    monkeypatch.delenv("R3LAB_DEBUG", raising=False)
    assert _as_process(monkeypatch, "data", "stats", str(tmp_path / "nowhere")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "nowhere" in err and "Traceback" not in err
    assert _as_process(monkeypatch, "--debug", "data", "stats", str(tmp_path / "nowhere")) == 2
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("R3LAB_DEBUG", "1")
    assert _as_process(monkeypatch, "data", "stats", str(tmp_path / "nowhere")) == 2
    assert "Traceback" in capsys.readouterr().err
    with pytest.raises(FileNotFoundError):  # called from Python, the error propagates as any function's
        main(["data", "stats", str(tmp_path / "nowhere")])

    def bug(args):
        raise TypeError("a bug")

    monkeypatch.setattr(data_stats, "run", bug)
    with pytest.raises(TypeError, match="a bug"):
        _as_process(monkeypatch, "data", "stats", str(tmp_path))


@pytest.mark.parametrize("code, line", [(143, "error: stopped by SIGTERM; what was done is kept\n"), (0, ""), (1, "")])
def test_a_command_stopped_by_a_signal_says_so_in_one_line(monkeypatch, capsys, code, line):
    """The recipe turns SIGTERM into SystemExit(143) to stop its jobs; the process says why it ended and keeps
    the status. A command's own exit status passes through silently."""
    import r3lab.cli.data_stats as data_stats

    def stopped(args):
        raise SystemExit(code)

    monkeypatch.setattr(data_stats, "run", stopped)
    with pytest.raises(SystemExit) as info:
        _as_process(monkeypatch, "data", "stats", "anywhere")
    assert info.value.code == code and capsys.readouterr().err == line
