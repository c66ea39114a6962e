"""Property-based fuzz of the input surfaces a user or a file reaches: RecipeConfig's keywords, a `--config` file,
`--set PATH=VALUE`, a dataset line, an imported record and an exercise's `check(...)`.

For any input: either one refusal (a ValueError or OSError of one line naming what is wrong; argparse's exit 2 for a
flag) or an accepted value inside its bounds; never another exception. The cases run in one child process under a
memory cap (RLIMIT_AS) and a time limit, so a value that grows inside r3lab fails the test instead of the machine.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import traceback
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[1]
MEMORY_CAP = 3 << 30  # bytes of address space the child may map (r3lab and torch imported: about 1.3 GiB)
TIME_LIMIT = 240  # seconds for every surface together (about 30 s on this machine)
SURFACES = ("recipe_keywords", "config_file", "set_flag", "dataset_line", "imported_record", "exercise_check")
FUZZ = settings(
    max_examples=int(os.environ.get("R3LAB_FUZZ_EXAMPLES", "50")),
    deadline=timedelta(seconds=20),
    database=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
)

# -- hostile values --------------------------------------------------------------------------------------------
NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, -1, 2, 3, 2**31, 2**32, 2**63, 10**32]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.5, 1e-5, 1e308, -0.0]),
)


class Long(str):
    """A text longer than any setting or question may be, shown short in a falsifying example."""

    def __repr__(self):
        return f"'A' * {len(self)}"


TEXT = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "",
            "read_one",
            "compare_two",
            "control",
            "vlir",
            "base",
            "<|image_pad|>",
            "\x00\u202e",
            "../../etc/passwd",
            Long("A" * 70000),
        ]
    ),
)


def plain(v):
    """`v` with every text a plain str (for YAML's safe dumper)."""
    if isinstance(v, str):
        return str(v)
    if isinstance(v, dict):
        return {plain(k): plain(x) for k, x in v.items()}
    return [plain(x) for x in v] if isinstance(v, list) else v


SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TEXT)


def nested(keys):
    return st.recursive(
        SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.one_of(keys, TEXT), inner, max_size=4)),
        max_leaves=8,
    )


def refusal(e: BaseException) -> bool:
    """A refusal: a ValueError / OSError (what the `r3lab` process prints as one `error:` line, its whitespace
    joined) whose message is of bounded length: a hostile value is never echoed whole."""
    return isinstance(e, (ValueError, OSError)) and 0 < len(str(e)) <= 4000


def bounded(value, where: str = "") -> None:
    """Every number of an accepted value is finite and at most 2^32 (no setting needs more)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        assert math.isfinite(value) and abs(value) <= 2**32, f"{where} = {value} accepted"
    elif isinstance(value, str):
        assert len(value) <= 70_000, f"{where}: a text of {len(value)} characters accepted"
    elif isinstance(value, dict):
        for k, v in value.items():
            bounded(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bounded(v, f"{where}[{i}]")


# -- the surfaces (each a hypothesis test, run in the child) -----------------------------------------------------
def _recipe_keys():
    from r3lab.recipe.recipe_config import RecipeConfig
    from r3lab.recipe.recipe_format import ALIASES

    fields = [f.name for f in dataclasses.fields(RecipeConfig)]
    paths = [
        "read.steps",
        "read.check.bar",
        "read.mix",
        "sft.mix.weights",
        "rgrpo.mix",
        "ground.check",
        "base.batch",
        "compare.lr",
        "sft.check.n",
        "read.steps.x",
        "nophase.steps",
        ".",
        "read..steps",
    ]
    inner = [
        "steps",
        "lr",
        "mix",
        "batch",
        "phases",
        "name",
        "check",
        "measure",
        "n",
        "bar",
        "hidden",
        "layers",
        "max_pixels",
        "min_pixels",
        "canvas_sizes",
        "object_colours",
        "max_crops",
        "temperature",
        "read_one",
        "weights",
        "samples",
        "preset",
        "group_size",
    ]
    return st.sampled_from(fields + paths + sorted(ALIASES)[:12]), st.sampled_from(inner + fields)


def _accept_recipe(kw: dict) -> None:
    from r3lab.recipe.recipe_config import RecipeConfig

    try:
        cfg = RecipeConfig.from_settings(**kw)
    except Exception as e:  # noqa: BLE001 - the property: a one-line refusal or nothing
        assert refusal(e), f"{type(e).__name__}: {e!r:.2000}"
        return
    bounded(cfg, "RecipeConfig")
    assert cfg.tiny_config().parameters() <= 10**9


def surface_recipe_keywords():
    top, inner = _recipe_keys()

    @FUZZ
    @given(st.dictionaries(top, nested(inner), max_size=4))
    def prop(kw):
        _accept_recipe(kw)

    prop()


RAW_YAML = st.sampled_from(
    [
        "a: &a [1, 2]\nseed: *a\n",
        "seed: 1\nseed: 2\n",
        "rgrpo:\n  steps: 3\nrgrpo:\n  lr: 0.5\n",
        "n_train: .nan\n",
        "seed: !!python/name:os.system\n",
        "x: " + "[" * 40 + "]" * 40 + "\n",
        '{"seed": 1, "seed": 2}',
        "[1, 2]",
        "- a\n- b\n",
        "seed: 1e400\n",
        "? [1, 2]\n: 3\n",
        "1: 2\n",
        "\t\x00\xff",
        "rows: 5\n",
        "families: [read_one]\n",
        "format_version: true\n",
        "format_version: 3\n",
        "format_version: 1\nbase_steps: 0\n",
        "n_train: 1" + "0" * 5000,
    ]
)


def surface_config_file():
    import yaml

    from r3lab.cli.app import build_parser
    from r3lab.cli.recipe import settings_from_args

    top, inner = _recipe_keys()
    folder = Path(tempfile.mkdtemp(prefix="r3lab-fuzz-"))
    parser = build_parser()  # (half a second to build)

    @FUZZ
    @given(
        st.one_of(
            st.dictionaries(top, nested(inner), max_size=4).map(lambda d: yaml.safe_dump(plain(d), allow_unicode=True)),
            RAW_YAML,
            st.text(max_size=200),
        ),
        st.sampled_from(["c.yaml", "c.json"]),
    )
    def prop(text, name):
        path = folder / name
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            kw = settings_from_args(parser.parse_args(["recipe", "--config", str(path)]))
        except Exception as e:  # noqa: BLE001
            assert refusal(e), f"{type(e).__name__}: {e!r:.2000}"
            return
        _accept_recipe(kw)

    prop()


def surface_set_flag():
    from r3lab.cli.app import build_parser
    from r3lab.cli.recipe import settings_from_args

    top, inner = _recipe_keys()
    parser = build_parser()
    values = st.one_of(
        nested(inner).map(lambda v: json.dumps(v, allow_nan=True)),
        TEXT,
        st.sampled_from(['{"a": 1, "a": 2}', "NaN", "Infinity", "1e999", "[" * 100, '{"n": 5}']),
    )

    @FUZZ
    @given(st.lists(st.tuples(top, values), min_size=1, max_size=3))
    def prop(pairs):
        argv = ["recipe"] + [x for k, v in pairs for x in ("--set", f"{k}={v}")]
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                kw = settings_from_args(parser.parse_args(argv))
        except SystemExit as e:  # argparse's one-line error
            assert e.code == 2
            return
        except Exception as e:  # noqa: BLE001
            assert refusal(e), f"{type(e).__name__}: {e!r:.2000}"
            return
        _accept_recipe(kw)

    prop()


LINE_KEYS = [
    "sample_id",
    "family",
    "question",
    "answers",
    "size",
    "regions",
    "details",
    "image",
    "rationale",
    "provenance",
    "scene",
]


def surface_dataset_line():
    from r3lab.data.dataset import load_dataset, save_dataset
    from r3lab.testing import tiny_policy, toy_samples

    folder = save_dataset(
        toy_samples(2, tiny_policy().view), Path(tempfile.mkdtemp(prefix="r3lab-fuzz-")) / "ds", progress=False
    )
    lines = (folder / "samples.jsonl").read_text().splitlines()
    assert len(load_dataset(folder)) == 2  # the unchanged lines load: what the fuzz refuses is its own doing

    @FUZZ
    @given(
        st.dictionaries(
            st.sampled_from(LINE_KEYS), nested(st.sampled_from(LINE_KEYS + ["kind", "box_input"])), max_size=3
        ),
        st.booleans(),
    )
    def prop(changes, drop):
        rec = json.loads(lines[0])
        for k, v in changes.items():
            if drop:
                rec.pop(k, None)
            else:
                rec[k] = v
        (folder / "samples.jsonl").write_text(json.dumps(rec, allow_nan=True) + "\n" + lines[1] + "\n")
        try:
            samples = load_dataset(folder)
        except Exception as e:  # noqa: BLE001
            assert refusal(e), f"{type(e).__name__}: {e!r:.2000}"
            return
        for s in samples:
            assert isinstance(s.question, str) and len(s.question) <= 65_536
            assert all(isinstance(a, str) for a in s.answers)
            bounded([list(b) for b in s.regions], "regions")

    prop()


def surface_imported_record():
    from r3lab.audit.imported import load_trajectories
    from r3lab.testing.mini_runs import write_deepeyes_eval, write_vlmr3_eval

    base = Path(tempfile.mkdtemp(prefix="r3lab-fuzz-"))
    runs = {"deepeyes": write_deepeyes_eval(base / "de"), "vlm-r3": write_vlmr3_eval(base / "v")}
    roots = {"deepeyes": base / "de" / "images", "vlm-r3": base / "v"}
    firsts = {}
    for fmt, path in runs.items():
        text = path.read_text()
        firsts[fmt] = json.loads(text)[0] if text.lstrip().startswith("[") else json.loads(text.splitlines()[0])
        assert len(load_trajectories(path, fmt, image_root=roots[fmt], load_images=False)) >= 1  # not vacuous
    keys = sorted({k for r in firsts.values() for k in r})

    @FUZZ
    @given(
        st.sampled_from(sorted(runs)),
        st.dictionaries(
            st.sampled_from(keys), nested(st.sampled_from(keys + ["role", "content", "type", "text"])), max_size=3
        ),
    )
    def prop(fmt, changes):
        rec = {**firsts[fmt], **changes}
        path = runs[fmt].with_name("fuzz" + runs[fmt].suffix)
        text = json.dumps(rec, allow_nan=True)
        path.write_text(f"[{text}]" if path.suffix == ".json" else text)
        try:
            trajs = load_trajectories(path, fmt, image_root=roots[fmt], load_images=False)
        except Exception as e:  # noqa: BLE001
            assert refusal(e), f"{type(e).__name__}: {e!r:.2000}"
            return
        for t in trajs:
            assert sum(len(p.text or "") for p in t.pieces) <= 1 << 20

    prop()


def surface_exercise_check():
    import inspect

    from r3lab.course import check
    from r3lab.course.checks import CHECKS

    check("00.4", [], 0.0)  # registers every check
    keys = sorted(CHECKS)

    @FUZZ
    @given(st.sampled_from(keys), st.lists(nested(TEXT), max_size=6))
    def prop(key, args):
        n = len(inspect.signature(CHECKS[key]).parameters)
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            ok = check(key, *args[:n])
        said = out.getvalue()
        assert isinstance(ok, bool) and said.startswith(("✓", "✗")) and len(said) < 20_000, said[:500]

    prop()


def _child() -> None:
    """Run every surface, one result line each: "ok", or the falsifying example and its error."""
    import warnings

    warnings.simplefilter("ignore")
    os.environ.setdefault("TQDM_DISABLE", "1")
    for name in SURFACES:
        try:
            globals()[f"surface_{name}"]()
            result = "ok"
        except BaseException:  # noqa: BLE001 - the report, falsifying example included
            result = traceback.format_exc()[-4000:]
        print(json.dumps({"surface": name, "result": result}), flush=True)


def _cap():
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))


@pytest.fixture(scope="module")
def fuzzed():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    code = "from tests.test_fuzz import _child; _child()"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
        preexec_fn=_cap,
    )
    results = {}
    for line in proc.stdout.splitlines():
        with contextlib.suppress(ValueError):
            rec = json.loads(line)
            results[rec["surface"]] = rec["result"]
    return results, proc


@pytest.mark.parametrize("surface", SURFACES)
def test_hostile_input_is_refused_in_a_line_or_accepted_within_bounds(fuzzed, surface):
    results, proc = fuzzed
    assert surface in results, (
        f"the fuzz child ended early (rc {proc.returncode}, under a {MEMORY_CAP >> 30} GiB cap): {proc.stderr[-3000:]}"
    )
    assert results[surface] == "ok", results[surface]
