"""The `r3lab` command: one subcommand per file of this package, each `add_arguments(parser)` + `run(args)`.

Only the chosen command's module is imported (and with it torch), so `r3lab --help` answers at once.
A user error (a bad file, setting or folder) is one line, `error: <message>`, and exit status 2; `--debug` or
R3LAB_DEBUG=1 shows its traceback. A bug (any other exception) keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys
import traceback

# (words, module, help): the module provides add_arguments(parser) and run(args) -> int | None
COMMANDS = [
    (("data", "build"), "r3lab.cli.data_build", "build a VLIR dataset from the synthetic world"),
    (("data", "stats"), "r3lab.cli.data_stats", "statistics and a figure for a dataset folder"),
    (
        ("data", "import"),
        "r3lab.cli.data_import",
        "import an official VLM-R3 SFT / RL file or grounded-VQA records, boxes moved to the model's view",
    ),
    (("train", "sft"), "r3lab.cli.train_sft", "supervised fine-tuning on VLIR samples"),
    (("train", "rgrpo"), "r3lab.cli.train_rgrpo", "R-GRPO reinforcement learning"),
    (
        ("train", "trl"),
        "r3lab.cli.train_trl",
        "GRPO on TRL's GRPOTrainer with r3lab's crop environment and rewards (pip install r3lab[trl])",
    ),
    (("eval",), "r3lab.cli.evaluate", "evaluate a policy on held-out samples"),
    (
        ("explain",),
        "r3lab.cli.explain",
        "why each crop went where it did: attention, gradients (captum), patching "
        "and a logit lens per crop, their faithfulness against the landmark and a random map",
    ),
    (("export",), "r3lab.cli.export", "write a policy folder anew; --merge folds LoRA adapters into a plain policy"),
    (
        ("plan",),
        "r3lab.cli.plan",
        "GPU memory of a policy for SFT and R-GRPO (full, LoRA, checkpointing) and the "
        "largest batch and group that fit",
    ),
    (
        ("probe", "where"),
        "r3lab.cli.probe",
        "where does a model look? a checkpoint's greedy boxes on held-out 'Where is ...?' questions",
    ),
    (
        ("bench",),
        "r3lab.cli.bench",
        "a policy on a real benchmark (V*, HR-Bench, MME-RealWorld, TreeBench), scored like lmms-eval / VLMEvalKit",
    ),
    (
        ("report", "audit"),
        "r3lab.cli.report",
        "the audit of a run as one self-contained report.html: an r3lab eval "
        "folder, or another system's run from its logs alone (with --policy, the rest)",
    ),
    (
        ("report", "diff"),
        "r3lab.cli.report_diff",
        "the questions whose correctness differs between two runs (the reproduction check), as diff.json and diff.html",
    ),
    (
        ("report", "sweep"),
        "r3lab.cli.report_sweep",
        "a sweep folder as sweep.html (each point's metrics with seed-aware intervals, paired comparisons with the "
        "baseline, plots, every run's status), sweep.csv and runs.csv",
    ),
    (("dashboard",), "r3lab.cli.dashboard", "crop-behaviour dashboard of a training log or a run; flags crop collapse"),
    (("recipe",), "r3lab.cli.recipe", "the miniature replication: train from scratch and build the table"),
    (
        ("sweep",),
        "r3lab.cli.sweep",
        "a command over a grid of settings x seeds, each run its own process and folder, "
        "resumable, on this machine or a Ray cluster; seed-aware statistics in sweep.html",
    ),
    (("notebooks", "run"), "r3lab.cli.notebooks", "execute the notebook series headlessly with papermill"),
    (
        ("notebooks", "site"),
        "r3lab.cli.notebooks_site",
        "the course's site (executed lessons, docs/, API reference), built offline with MkDocs",
    ),
    (
        ("notebooks", "where"),
        "r3lab.cli.notebooks_where",
        "where the lessons, solutions and shipped checkpoints are (a clone's or a wheel's); --copy DIR copies them out",
    ),
    (
        ("notebooks", "check"),
        "r3lab.cli.notebooks_check",
        "the pre-class check: can this machine run the course, and how long each lesson takes here",
    ),
]


MAX_MESSAGE = 2000  # characters of one `error:` line: a message that quotes a whole value is cut to its ends


def cut(message: str, limit: int = MAX_MESSAGE) -> str:
    """`message` if short, else its head and tail around the count of what was left out: argparse quotes a refused
    value whole (`invalid int value: '...'`), and a message is one line a person reads, never a copy of the input."""
    if len(message) <= limit:
        return message
    head, tail = message[: limit * 2 // 3], message[-(limit // 4) :]
    return f"{head} ... ({len(message) - len(head) - len(tail):,} characters left out) ... {tail}"


class Parser(argparse.ArgumentParser):
    """argparse's parser, its usage errors cut short (`cut`); its subcommands' parsers are of this class too."""

    def error(self, message):
        super().error(cut(message))


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; with `argv`, only the command it names gets its arguments (the rest stay unimported)."""
    chosen = command_of(argv) if argv is not None else None
    parser = Parser(prog="r3lab", description="r3lab: a toolkit for models that look again")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error (also R3LAB_DEBUG=1)")
    groups: dict[tuple, argparse._SubParsersAction] = {(): parser.add_subparsers(dest="cmd0", required=True)}
    for words, module, help_ in COMMANDS:
        for depth in range(1, len(words)):
            key = words[:depth]
            if key not in groups:
                p = groups[words[: depth - 1]].add_parser(words[depth - 1], help=f"{' '.join(key)} commands")
                groups[key] = p.add_subparsers(dest=f"cmd{depth}", required=True)
        sub = groups[words[:-1]].add_parser(words[-1], help=help_, description=help_)
        sub.set_defaults(_module=module)
        if argv is None or words == chosen:
            importlib.import_module(module).add_arguments(sub)
    return parser


def command_of(argv: list[str]) -> tuple[str, ...] | None:
    """The words of the command `argv` starts with, if any."""
    return next((words for words, _, _ in COMMANDS if tuple(argv[: len(words)]) == words), None)


# what r3lab raises for bad input (files, settings, folders, a diverged run, a missing extra): one line.
# Anything else (TypeError, KeyError, RuntimeError, ...) is a bug and keeps its traceback.
USER_ERRORS = (ValueError, OSError, FloatingPointError, ImportError)


def main(argv: list[str] | None = None) -> int:
    """Run one command. As the `r3lab` process (no `argv`: it is read from sys.argv) a user error prints
    `error: <message>` and returns 2, Ctrl-C returns 130, a recipe told to stop (SIGTERM) 143 with a line; called
    with `argv` from Python, errors propagate."""
    if argv is not None:
        return _run(argv)
    argv = sys.argv[1:]
    debug = "--debug" in argv or os.environ.get("R3LAB_DEBUG", "").strip() not in ("", "0")
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("error: interrupted (Ctrl-C)", file=sys.stderr)
        return 130
    except SystemExit as e:  # a SIGTERM / SIGHUP a command turned into an exit (core.procs.exit_on_signals)
        if isinstance(e.code, int) and e.code > 128:
            name = signal.Signals(e.code - 128).name if e.code - 128 in signal.valid_signals() else e.code - 128
            print(f"error: stopped by {name}; what was done is kept", file=sys.stderr)
        raise
    except USER_ERRORS as e:
        if debug:
            traceback.print_exc()
        msg = " ".join(cut(str(e)).split()) or type(e).__name__  # one line of bounded length, whatever it held,
        msg = "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in msg)  # and no terminal control
        print(f"error: {msg}" + ("" if debug else "  (--debug shows the traceback)"), file=sys.stderr)
        return 2


def _run(argv: list[str]) -> int:
    argv = [a for a in argv if a != "--debug"]  # a flag of `r3lab` itself, accepted anywhere
    parser = build_parser(argv)
    if not argv:  # `r3lab` alone: the commands, not argparse's "required: cmd0"
        parser.print_help()
        return 0
    args = parser.parse_args(argv)
    module = importlib.import_module(args._module)
    if getattr(module, "USES_TORCH", True):  # a command that never computes with torch (report sweep) skips its load
        from ..core.env import configure_threads  # it loads torch: only once a command runs, never for --help

        configure_threads()
    rc = module.run(args)
    return int(rc or 0)
