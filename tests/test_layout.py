"""The package's shape: imports run one way through the subpackages, no cycle, no shadowed module, small faces.

Every import statement counts, wherever it stands (inside functions and `if TYPE_CHECKING:` too),
and a package face counts as importing the modules its lazy names come from.
"""

import ast
import importlib
import pkgutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import r3lab

from . import HANG_S

PKG = Path(r3lab.__file__).parent
# imports run from a higher layer to a lower one only; one layer's subpackages never import each other
LAYERS = {
    "_lazy": 0,
    "core": 1,
    "data": 2,
    "model": 2,
    "engine": 3,
    "importers": 3,
    "train": 4,
    "explain": 4,
    "bench": 4,
    "evaluation": 5,
    "recipe": 6,
    "audit": 6,
    "sweep": 6,
    "viz": 7,
    "course": 8,
    "integrations": 8,
    "testing": 8,
    "cli": 9,
    "replication": 7,
}  # the old path: a face only, its names from evaluation, recipe and audit
MAX_LINES = 400  # the cap (DEVELOPERS.md)
ROOM = 10  # no module within this many lines of the cap: one that nears it is split by concept, never packed


def module_name(path: Path) -> str:
    parts = ("r3lab",) + path.relative_to(PKG).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PKG.rglob("*.py") if p.stem != "__main__"}


def resolve(target: str) -> str | None:
    """The module of this package an import of `target` loads (a name from a module counts as the module)."""
    while target and target not in MODULES:
        target = target.rpartition(".")[0]
    return target or None


def imports_of(name: str) -> set[str]:
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    here = name if path.stem == "__init__" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = here.split(".")[: len(here.split(".")) - node.level + 1]
                base = ".".join(pkg + ([node.module] if node.module else []))
            targets = [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {m for m in map(resolve, targets) if m and m != name}
    face = getattr(importlib.import_module(name), "__face__", {}) if path.stem == "__init__" else {}
    for module in face.values():  # a face loads these on first use
        out.add(resolve(importlib.util.resolve_name(module, name)))
    return out


GRAPH = {name: imports_of(name) for name in MODULES}


def room(name: str) -> str:
    return name.split(".")[1] if name != "r3lab" else "r3lab"


def test_every_module_is_in_a_layer():
    rooms = {room(n) for n in MODULES} - {"r3lab"}
    assert rooms <= set(LAYERS), f"rooms without a layer: {rooms - set(LAYERS)}; place them in LAYERS"


def test_no_import_cycle_lazy_imports_included():
    seen, stack, cycles = {}, [], []

    def visit(n):
        seen[n] = "open"
        stack.append(n)
        for m in sorted(GRAPH[n]):
            if seen.get(m) == "open":
                cycles.append(stack[stack.index(m) :] + [m])
            elif m not in seen:
                visit(m)
        stack.pop()
        seen[n] = "done"

    for n in sorted(GRAPH):
        if n not in seen:
            visit(n)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_imports_run_one_way_through_the_layers():
    wrong = [
        f"{a} -> {b}"
        for a, bs in GRAPH.items()
        if a != "r3lab"
        for b in bs
        if room(a) != room(b) and not LAYERS[room(a)] > LAYERS[room(b)]
    ]
    assert not wrong, "imports against the layer order " + str(LAYERS) + ":\n" + "\n".join(sorted(wrong))


def test_the_checker_sees_lazy_and_type_only_imports(tmp_path):
    tree = ast.parse(
        "def f():\n    from ..viz.mpl import plot_trajectory\nif TYPE_CHECKING:\n    from ..cli import app\n"
    )
    found = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert len(found) == 2  # ast.walk reaches function bodies and TYPE_CHECKING blocks alike
    assert "r3lab.core.files" in GRAPH["r3lab.recipe.recipe"]  # a name import counts as its module
    assert "r3lab.engine.rollouts" in GRAPH["r3lab"]  # the face's lazy names count


PACKAGES = sorted(n for n, p in MODULES.items() if p.stem == "__init__")


@pytest.mark.parametrize("name", PACKAGES)
def test_no_module_is_shadowed_by_a_same_named_attribute(name):
    pkg = importlib.import_module(name)
    subs = {m.name for m in pkgutil.iter_modules(pkg.__path__) if m.name != "__main__"}
    assert not set(pkg.__all__) & subs, f"{name} exports names of its own modules: {set(pkg.__all__) & subs}"
    for sub in subs:
        module = importlib.import_module(f"{name}.{sub}")
        assert getattr(pkg, sub) is module, f"{name}.{sub} is {getattr(pkg, sub)!r}, not the module"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # the old path's names warn (the test below)
        for public in pkg.__all__:
            getattr(pkg, public)  # every exported name resolves
    assert all(getattr(pkg, s) is sys.modules[f"{name}.{s}"] for s in subs)  # still, after the names loaded


def test_the_old_replication_path_is_a_face_whose_names_warn_and_load_from_their_rooms():
    import r3lab.evaluation
    import r3lab.replication as old

    assert [m.name for m in pkgutil.iter_modules(old.__path__)] == []  # no module lives there any more
    old.__dict__.pop("EvalConfig", None)
    with pytest.warns(FutureWarning, match=r"r3lab\.evaluation\.EvalConfig.*goes in r3lab 0\.3"):
        assert old.EvalConfig is r3lab.evaluation.EvalConfig


def test_the_top_level_face_is_small_and_every_package_has_one():
    assert len(r3lab.__all__) <= 40, len(r3lab.__all__)
    for name in PACKAGES:
        assert isinstance(importlib.import_module(name).__all__, list), name


@pytest.mark.parametrize("name", sorted(MODULES))
def test_modules_stay_small(name):
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES - ROOM, (
        f"{name} has {lines} lines, within {ROOM} of the {MAX_LINES}-line cap (at most {MAX_LINES - ROOM}): split it "
        "by concept, one concept per module, rather than packing lines"
    )


def _imported_by(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=HANG_S,
    )
    assert out.returncode == 0, out.stderr
    return set(out.stdout.split())


def test_import_r3lab_loads_no_torch():
    mods = _imported_by("import r3lab")
    assert not {"torch", "transformers", "numpy"} & mods


def test_cli_help_loads_no_torch():
    mods = _imported_by("from r3lab.cli.app import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass")
    assert not {"torch", "transformers"} & mods
    mods = _imported_by("from r3lab.cli.app import main\nmain([])")
    assert not {"torch", "transformers"} & mods
