"""User config and spec files read safely: the one reader every `--config`, `--set` value, JSON flag and spec file
goes through (`read_config`, `parse_value`), and the bounded file read under it (`read_bounded`).

A config is a few kilobytes a person wrote. What a file or a flag can make r3lab build is bounded before it is
built: the file's size (a 56 MB list, `/dev/zero`), YAML anchors and aliases (a 400-byte "billion laughs" file
expands to gigabytes; no recipe needs them), nesting depth and the number of values; a key given twice is refused
(YAML and JSON would silently keep the last, dropping a whole repeated mapping), and so is a number that is NaN or
infinite (`.nan`, `NaN`, `1e400`), wherever it sits. Every refusal is one ValueError naming the file, the line or the
key path, and shows values cut short (`short`).
"""

from __future__ import annotations

import json
import math
import os
import re
import stat
from pathlib import Path

from .settings import short

MAX_CONFIG_BYTES = 1 << 20  # a recipe with its whole curriculum is about 6 KB; r3lab's own recipe.json about 10 KB
MAX_VALUE_CHARS = 1 << 16  # one --set value or JSON flag
MAX_DEPTH = 16  # a recipe's deepest setting (sft.phases[0].mix.weights.read_one) is 6 deep
MAX_NODES = 100_000  # values in one file: a curriculum of a hundred phases holds a few thousand


def read_bounded(path: str | os.PathLike, limit: int, what: str = "file") -> bytes:
    """The bytes of the regular file `path`; ValueError naming `what` when it is larger than `limit` bytes, or not a
    regular file (a device such as /dev/zero never ends, a pipe may block for ever). Reads at most limit + 1 bytes."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"{what} {path} does not exist") from None
    if stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(f"{what} {path} is a folder: give a file")
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"{what} {path} is not a regular file (a device or a pipe): give a file")
    if st.st_size > limit:
        raise ValueError(
            f"{what} {path} holds {st.st_size:,} bytes, more than the {limit:,} r3lab reads as one: "
            "is it the right file?"
        )
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:  # it grew while being read
        raise ValueError(f"{what} {path} holds more than the {limit:,} bytes r3lab reads as one: is it the right file?")
    return data


def read_config(path: str | os.PathLike, what: str = "--config", limit: int = MAX_CONFIG_BYTES) -> dict:
    """A config or spec file (YAML, or JSON, which YAML reads too) as a dict of plain values, read safely: at most
    `limit` bytes of UTF-8, no anchors or aliases, no tags beyond YAML's plain ones, no key twice, at most
    MAX_DEPTH levels and MAX_NODES values, every number finite. ValueError (or OSError) naming `what`, the file and
    the line or key path of the first problem; nothing is built from a refused file."""
    path = Path(path)
    data = read_bounded(path, limit, f"{what}")
    where = f"{what} {path}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{where}:{line}: not UTF-8 text (the byte {data[e.start]:#04x}): save it as UTF-8") from None
    values = _yaml(text, where)
    if not isinstance(values, dict):
        raise ValueError(f"{where}: expected a mapping of settings, got {type(values).__name__}")
    check_plain(values, where)
    return values


def parse_value(text: str, what: str, fallback_text: bool = False):
    """A JSON value given on the command line (`--set PATH=VALUE`'s VALUE, a JSON flag), held to the rules of
    `read_config`: at most MAX_VALUE_CHARS, no key twice, every number finite, bounded depth. With `fallback_text`
    what is not JSON is taken as the text itself (`--set name=sft`)."""
    if len(text) > MAX_VALUE_CHARS:
        raise ValueError(
            f"{what}: a value of {len(text):,} characters, more than the {MAX_VALUE_CHARS:,} a setting "
            "takes: put it in a --config file"
        )
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_constant)
    except _Refused as e:
        raise ValueError(f"{what}: {e}") from None
    except RecursionError:
        raise ValueError(f"{what}: nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as e:
        if fallback_text:
            return text
        raise ValueError(f"{what}: expected a JSON value, got {short(text)} ({e})") from None
    check_plain(value, what)
    return value


def check_plain(value, where: str, path: str = "") -> None:
    """ValueError naming the key path of the first number in `value` that is NaN or infinite, the first key that is
    not text, or the first place deeper than MAX_DEPTH, or when it holds more than MAX_NODES values."""
    count = [0]

    def walk(v, at: str, depth: int):
        count[0] += 1
        if count[0] > MAX_NODES:
            raise ValueError(f"{where}: more than {MAX_NODES:,} values: a config is a few settings, not data")
        if depth > MAX_DEPTH:
            raise ValueError(f"{where}: {_cut(at) or 'the value'} is nested deeper than {MAX_DEPTH} levels")
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(
                f"{where}: {_cut(at) or 'the value'} = {v}: a setting's number must be finite (NaN and "
                "infinity are refused wherever they sit)"
            )
        if isinstance(v, dict):
            for k, x in v.items():
                if not isinstance(k, str):
                    raise ValueError(
                        f"{where}: the key {short(k)}{' in ' + _cut(at) if at else ''} is not text: quote it"
                    )
                walk(x, f"{at}.{k}" if at else k, depth + 1)
        elif isinstance(v, (list, tuple)):
            for i, x in enumerate(v):
                walk(x, f"{at}[{i}]", depth + 1)

    walk(value, path, 0)


def _cut(at: str, limit: int = 200) -> str:
    """A key path cut short: a hostile key of megabytes is named in a line."""
    return at if len(at) <= limit else f"{at[:limit]}... ({len(at):,} characters)"


class _Refused(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise _Refused(f"the key {short(k)} repeats in one object (given twice): keep one")
        out[k] = v
    return out


def _constant(name: str):
    raise _Refused(f"{name} is not a finite number: a setting's number must be finite")


_FLOAT = re.compile(  # YAML 1.1 reads 2e-05 (no dot) as text; JSON and people write it so
    r"^[-+]?(?:\d[\d_]*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_LOADER = None


def _loader():
    global _LOADER
    if _LOADER is not None:
        return _LOADER
    import yaml

    class Loader(yaml.SafeLoader):
        """SafeLoader that refuses anchors, aliases and repeated keys before anything is built, and bounds depth."""

        depth = 0

        def compose_node(self, parent, index):
            event = self.peek_event()
            if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
                raise _Refused(
                    f"line {event.start_mark.line + 1}: YAML anchors and aliases (&name, *name) are not "
                    "read: a few bytes of them can expand to gigabytes; write each value out"
                )
            self.depth += 1
            try:
                if self.depth > MAX_DEPTH + 1:
                    raise _Refused(f"line {event.start_mark.line + 1}: nested deeper than {MAX_DEPTH} levels")
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

        def construct_mapping(self, node, deep=False):
            seen = {}
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    first = seen.get(key)
                except TypeError:  # an unhashable key: the constructor says so below
                    break
                if first is not None:
                    raise _Refused(
                        f"line {key_node.start_mark.line + 1}: the key {short(key)} repeats line {first} "
                        "in one mapping (given twice): keep one (a reader keeps only the last, silently)"
                    )
                seen[key] = key_node.start_mark.line + 1
            return super().construct_mapping(node, deep)

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789."))
    _LOADER = Loader
    return Loader


def _yaml(text: str, where: str):
    import yaml

    try:
        return yaml.load(text, Loader=_loader())
    except _Refused as e:
        raise ValueError(f"{where}: {e}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        raise ValueError(
            f"{where}" + (f":{mark.line + 1}" if mark else "") + f": not YAML or JSON ({short(str(problem), 200)})"
        ) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as e:  # a constructor's own (an int of 5000 digits)
        raise ValueError(f"{where}: not read ({type(e).__name__}: {short(str(e), 200)})") from None
