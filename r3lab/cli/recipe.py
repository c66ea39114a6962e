"""`r3lab recipe`: the miniature replication from nothing, and its table.

Its flags: RecipeConfig's own fields, then one set per phase of the default curriculum (`--read-steps`,
`--read-lr`, `--read-mix JSON`, and for a checked phase `--read-check N`, `--read-bar`, `--read-more`,
`--read-rounds`, `--read-early`, `--read-ground-bar`), each stage's `--base-batch` / `--sft-batch`. The flags of
format 1 (`--base-steps`, `--ground-min`, ...) are accepted too (`recipe_format.ALIASES`). `--config FILE.yaml`
gives a whole recipe (a curriculum of other phases too; `--set PATH=VALUE` sets theirs); the flags given beside
it win.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from ..core.files import read_text
from ..recipe.curriculum import base_stage, sft_stage
from ..recipe.recipe import RecipeConfig, run_recipe
from ..recipe.recipe_format import ALIASES, defaults, get_setting, read_settings
from ..recipe.report import markdown_table
from .args import add_dataclass_arguments, dataclass_values, parse_bool, parse_json

ALIAS = "format 1:"  # the dest of a format-1 flag: its name after this
CURRICULUM = ("base", "sft")  # RecipeConfig's fields given by the per-phase flags, not one flag each
CHECK_FLAGS = {"check": ("n", int, "held-out questions measured after the phase (0: no check)"),
               "bar": ("bar", float, "% the check must reach"),
               "more": ("more", int, "steps of each phase added while below the bar"),
               "rounds": ("rounds", int, "at most this many added phases (then: error, naming the fix)"),
               "early": ("early", float, "share of the phase's steps at which the check is also taken (0: at the end)"),
               "ground-bar": ("ground_bar", float, "% of box centres on the named landmark, measured too (0: off)")}


def add_arguments(parser) -> None:
    parser.add_argument("--config", metavar="FILE.yaml", default=None,
                        help="a whole recipe: RecipeConfig's keywords in YAML or JSON (a curriculum of other phases "
                             "too; a file with format_version, e.g. a run's recipe.json, is read in its format); "
                             "the flags given beside it win")
    parser.add_argument("--set", type=_path_value, action="append", default=[], metavar="PATH=VALUE",
                        help="a setting by its path, e.g. a phase of --config's curriculum: look.steps=300, "
                             "look.check.bar=60, look.mix={\"closeups\": 1.0} (VALUE: JSON, else text)")
    add_dataclass_arguments(parser, RecipeConfig, skip=CURRICULUM, given_only=True)
    for name, stage in (("base", base_stage()), ("sft", sft_stage())):
        parser.add_argument(f"--{name}-batch", type=int, metavar="N", default=argparse.SUPPRESS, dest=f"{name}.batch",
                            help=f"samples per step, every phase of the {name} stage (default: {stage.batch})")
        for p in stage.phases:
            flag = p.name.replace("_", "-")
            parser.add_argument(f"--{flag}-steps", type=int, metavar="N", default=argparse.SUPPRESS,
                                dest=f"{p.name}.steps",
                                help=f"phase {p.name}: optimizer steps (default: {p.steps})")
            parser.add_argument(f"--{flag}-lr", type=float, metavar="X", default=argparse.SUPPRESS, dest=f"{p.name}.lr",
                                help=f"phase {p.name}: peak learning rate (default: {p.lr:g})")
            parser.add_argument(f"--{flag}-mix", type=parse_json, metavar="JSON", default=argparse.SUPPRESS,
                                dest=f"{p.name}.mix", help=f"phase {p.name}: its samples, Mix fields over its own "
                                                          f"({p.mix.describe()})".replace("%", "%%"))
            if p.check is None:
                continue
            for suffix, (key, kind, what) in CHECK_FLAGS.items():
                if key == "ground_bar" and p.check.measure == "where":
                    continue  # it measures the grounding itself
                parser.add_argument(f"--{flag}-{suffix}", type=kind, metavar="N" if kind is int else "X",
                                    default=argparse.SUPPRESS,
                                    dest=f"{p.name}.check.{key}", help=f"phase {p.name}: {what} (default: "
                                                                       f"{getattr(p.check, key)})".replace("%", "%%"))
    taken = {a for action in parser._actions for a in action.option_strings}
    for old, paths in ALIASES.items():  # format 1's flags, read as that format ran them
        if (flag := "--" + old.replace("_", "-")) not in taken:
            parser.add_argument(flag, type=_parser_of(paths[0]), default=argparse.SUPPRESS, dest=ALIAS + old,
                                help=argparse.SUPPRESS)


def _path_value(text: str) -> tuple:
    path, eq, value = text.partition("=")
    if not eq or not path:
        raise argparse.ArgumentTypeError(f"expected PATH=VALUE (e.g. read.steps=300), got {text!r}")
    try:
        return path.strip(), json.loads(value)
    except ValueError:
        return path.strip(), value


def _parser_of(path: str):
    """How a flag parses the setting at `path` (its type in the default curriculum)."""
    kind = type(get_setting(defaults(), path))
    return parse_bool if kind is bool else parse_json if kind in (dict, list) else kind


def settings_from_args(args) -> dict:
    """RecipeConfig's keywords: those of `--config` (if any), with the flags given on top (a phase's mix given as
    JSON: its fields, each over the phase's own)."""
    given = {k: v for k, v in vars(args).items() if k not in ("config", "_module", "set")}
    given |= dict(args.set)
    settings = _load(args.config) if args.config else {}
    for k, v in dataclass_values(RecipeConfig, argparse.Namespace(**given), skip=CURRICULUM).items():
        if isinstance(v, dict) and isinstance(settings.get(k), dict):  # a nested field: merged, not replaced
            settings[k] = {**settings[k], **v}
        elif not (isinstance(v, dict) and not v):  # (a nested field none of whose flags was given)
            settings[k] = v
    for k, v in given.items():
        if k.endswith(".mix"):
            if not isinstance(v, dict):
                raise ValueError(f"--{k[:-4].replace('_', '-')}-mix takes a JSON object of Mix fields, got {v!r}")
            settings.update({f"{k}.{f}": x for f, x in v.items()})
        elif "." in k:
            settings[k] = v
        elif k.startswith(ALIAS):
            settings[k[len(ALIAS):]] = v
    return settings


def _load(path: str) -> dict:
    import yaml

    class Loader(yaml.SafeLoader):  # YAML 1.1 reads 2e-05 (no dot) as text; JSON and people write it so
        pass
    Loader.add_implicit_resolver("tag:yaml.org,2002:float", re.compile(
        r"^[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"),
        list("-+0123456789."))
    p = Path(path)
    try:
        values = yaml.load(read_text(p), Loader=Loader)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        raise ValueError(f"--config {p}" + (f":{where.line + 1}" if where else "") + f": not YAML or JSON ({e})") \
            from None
    if not isinstance(values, dict):
        raise ValueError(f"--config {p}: expected a mapping of RecipeConfig's keywords, got {type(values).__name__}")
    return read_settings(values, f"--config {p}") if "format_version" in values else values


def run(args) -> int:
    results = run_recipe(RecipeConfig(**settings_from_args(args)))
    print(markdown_table(results))
    print(f"results: {Path(results['config']['out']) / 'results.json'}")
    return 0

