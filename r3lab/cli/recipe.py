"""`r3lab recipe`: the miniature replication from nothing, and its table.

Its flags: RecipeConfig's own fields, then one set per phase of the default curriculum (`--read-steps`,
`--read-lr`, `--read-mix JSON`, and for a checked phase `--read-check N`, `--read-bar`, `--read-more`,
`--read-rounds`, `--read-early`, `--read-ground-bar`), each stage's `--base-batch` / `--sft-batch`. The flags of
format 1 (`--base-steps`, `--ground-min`, ...) still work, each with a FutureWarning naming today's flag, until r3lab
0.3 (`format_1.ALIASES`); one beside today's flag for the same setting is an error. `--config FILE.yaml` gives a
whole recipe (a curriculum of other phases too; `--set PATH=VALUE` sets theirs); the flags given beside it win.
Everything reaches `RecipeConfig.from_settings`, as stored recipes do.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from ..core.config_file import parse_value, read_config
from ..core.settings import short
from ..recipe.curriculum import Check, base_stage, sft_stage
from ..recipe.format_1 import ALIASES, curriculum
from ..recipe.paths import CHECK_FLAG, flag_of, get_setting
from ..recipe.recipe import RecipeConfig, run_recipe
from ..recipe.recipe_format import read_settings
from ..recipe.report import markdown_table
from .args import add_dataclass_arguments, dataclass_values, field_help, parse_bool, parse_json

ALIAS = "format 1:"  # the dest of a format-1 flag: its name after this
CURRICULUM = ("base", "sft")  # RecipeConfig's fields given by the per-phase flags, not one flag each
CHECK_HELP = field_help(Check)  # a checked phase's flags (--read-bar, ...) say what Check's fields say
# today's flags that format 1 had under the same name and whose 0 it read otherwise: refused (naming both spellings)
# unless what format 1 also set is given beside them
SHARED = {
    "read.steps": (("read.check.n",), "also turned the read check off", "--read-check 0"),
    "compare.steps": (
        ("compare.check.n", "drill.steps", "drill.check.n"),
        "also skipped the drill and turned the drill's and the verdict's checks off",
        "--drill-steps 0 --drill-check 0 --compare-check 0",
    ),
    "sft.check.n": (("sft_read.check.n",), "turned both SFT checks off", "--sft-read-check 0"),
    "sft_read.check.rounds": (
        ("sft_read.check.n",),
        "took no read_one check and put read_one into the SFT's first phase",
        '--sft-read-check 0 --sft-mix \'{"without": ""}\'',
    ),
}


def add_arguments(parser) -> None:
    parser.add_argument(
        "--config",
        metavar="FILE.yaml",
        default=None,
        help="a whole recipe: RecipeConfig's keywords in YAML or JSON (a curriculum of other phases "
        "too; a file with format_version, e.g. a run's recipe.json, is read in its format); "
        "the flags given beside it win",
    )
    parser.add_argument(
        "--set",
        type=_path_value,
        action="append",
        default=[],
        metavar="PATH=VALUE",
        help="a setting by its path, e.g. a phase of --config's curriculum: look.steps=300, "
        'look.check.bar=60, look.mix={"closeups": 1.0} (VALUE: JSON, else text)',
    )
    add_dataclass_arguments(parser, RecipeConfig, skip=CURRICULUM, given_only=True)
    for name, stage in (("base", base_stage()), ("sft", sft_stage())):
        parser.add_argument(
            f"--{name}-batch",
            type=int,
            metavar="N",
            default=argparse.SUPPRESS,
            dest=f"{name}.batch",
            help=f"samples per step, every phase of the {name} stage (default: {stage.batch})",
        )
        for p in stage.phases:
            flag = p.name.replace("_", "-")
            parser.add_argument(
                f"--{flag}-steps",
                type=int,
                metavar="N",
                default=argparse.SUPPRESS,
                dest=f"{p.name}.steps",
                help=f"phase {p.name}: optimizer steps (default: {p.steps})",
            )
            parser.add_argument(
                f"--{flag}-lr",
                type=float,
                metavar="X",
                default=argparse.SUPPRESS,
                dest=f"{p.name}.lr",
                help=f"phase {p.name}: peak learning rate (default: {p.lr:g})",
            )
            parser.add_argument(
                f"--{flag}-mix",
                type=parse_json,
                metavar="JSON",
                default=argparse.SUPPRESS,
                dest=f"{p.name}.mix",
                help=f"phase {p.name}: its samples, Mix fields over its own ({p.mix.describe()})".replace("%", "%%"),
            )
            if p.check is None:
                continue
            for key, suffix in CHECK_FLAG.items():  # the help: Check's own field docs
                if key == "ground_bar" and p.check.measure == "where":
                    continue  # it measures the grounding itself
                kind = type(getattr(p.check, key))
                parser.add_argument(
                    f"--{flag}-{suffix}",
                    type=kind,
                    metavar="N" if kind is int else "X",
                    default=argparse.SUPPRESS,
                    dest=f"{p.name}.check.{key}",
                    help=f"phase {p.name}: {CHECK_HELP[key]} (default: {getattr(p.check, key)})".replace("%", "%%"),
                )
    taken = {a for action in parser._actions for a in action.option_strings}
    for old, paths in ALIASES.items():  # format 1's flags, read as that format ran them (warning, until 0.3)
        if (flag := "--" + old.replace("_", "-")) not in taken:
            parser.add_argument(
                flag, type=_parser_of(paths[0]), default=argparse.SUPPRESS, dest=ALIAS + old, help=argparse.SUPPRESS
            )


def _path_value(text: str) -> tuple:
    path, eq, value = text.partition("=")
    if not eq or not path:
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE (e.g. read.steps=300), got {short(text)}")
    try:
        return path.strip(), parse_value(value, f"--set {short(path.strip(), 60)}", fallback_text=True)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _parser_of(path: str):
    """How a flag parses the setting at `path` (its type in the default curriculum)."""
    kind = type(get_setting(curriculum(), path))
    return parse_bool if kind is bool else parse_json if kind in (dict, list) else kind


def settings_from_args(args) -> dict:
    """RecipeConfig's keywords: those of `--config` (if any), with the flags given on top (a phase's mix given as
    JSON: its fields, each over the phase's own)."""
    given = {k: v for k, v in vars(args).items() if k not in ("config", "_module", "set")}
    for path, (also, what, old) in SHARED.items():
        if given.get(path) == 0 and not any(a in given for a in also):
            raise ValueError(
                f"{flag_of(path)} 0 is ambiguous: format 1's flag of that name {what}; today's sets "
                f"{path} alone. Say which: {flag_of(path)} 0 {old} as format 1 ran it, or give "
                f"{flag_of(also[0])} N beside it (or --set {path}=0) for today's"
            )
    given |= dict(args.set)
    settings = _load(args.config) if args.config else {}
    for k, v in dataclass_values(RecipeConfig, argparse.Namespace(**given), skip=CURRICULUM).items():
        if isinstance(v, dict) and isinstance(settings.get(k), dict):  # a nested field: merged, not replaced
            settings[k] = {**settings[k], **v}
        elif not (isinstance(v, dict) and not v):  # (a nested field none of whose flags was given)
            settings[k] = v
    for k, v in given.items():
        if k.endswith(".mix") and k != "rgrpo.mix":  # a phase's mix: its fields (R-GRPO's is a family -> weight map)
            if not isinstance(v, dict):
                raise ValueError(f"--{k[:-4].replace('_', '-')}-mix takes a JSON object of Mix fields, got {short(v)}")
            settings.update({f"{k}.{f}": x for f, x in v.items()})
        elif "." in k:
            settings[k] = v
        elif k.startswith(ALIAS):
            settings[k[len(ALIAS) :]] = v
    fields = {f.name for f in dataclasses.fields(RecipeConfig)}
    for k, v in args.set:  # a plain name no flag reads (a typo, format 1's, a curriculum stage): RecipeConfig judges it
        if "." not in k and (k not in fields or k in CURRICULUM):
            settings[k] = v
    return settings


def _load(path: str) -> dict:
    values = read_config(path, "--config")
    return read_settings(values, f"--config {path}") if "format_version" in values else values


def run(args) -> int:
    results = run_recipe(RecipeConfig.from_settings(**settings_from_args(args)))
    print(markdown_table(results))
    print(f"results: {Path(results['config']['out']) / 'results.json'}")
    return 0
