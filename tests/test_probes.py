"""The research probes (research/probes/*.py) against today's library: each imports, every r3lab name it imports
(inside its functions too) exists, and it reads no recipe setting RecipeConfig no longer has.

The probes are scripts that ran the measurements FINDINGS cites; this is what keeps a refactor from breaking them
silently (running them takes hours: each says how in its docstring).
"""

import ast
import dataclasses
import importlib
import importlib.util
import sys

import pytest

from r3lab.core.env import REPO_ROOT

PROBES = sorted((REPO_ROOT / "research" / "probes").glob("*.py"))


def _recipe_names(tree: ast.Module) -> set[str]:
    """Names bound to a RecipeConfig in the probe (`c = RecipeConfig(...)`, `c, n = RecipeConfig(), ...`,
    `c = RecipeConfig.from_settings(...)`)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
            targets = node.targets[0].elts if isinstance(node.targets[0], ast.Tuple) else node.targets
            for target, value in zip(targets, values):
                call = value.func if isinstance(value, ast.Call) else None
                name = getattr(call, "id", getattr(call, "attr", None))
                if name == "from_settings":  # RecipeConfig.from_settings(...)
                    name = getattr(call.value, "id", None)
                if isinstance(target, ast.Name) and name == "RecipeConfig":
                    names.add(target.id)
    return names


def _submodule(package: str, name: str) -> bool:
    try:
        return importlib.util.find_spec(f"{package}.{name}") is not None
    except ModuleNotFoundError:  # `package` is a module, not a package
        return False


@pytest.mark.parametrize("path", PROBES, ids=[p.stem for p in PROBES])
def test_a_probe_imports_and_names_only_what_the_library_has(path, monkeypatch):
    from r3lab.recipe.recipe_config import RecipeConfig

    monkeypatch.syspath_prepend(str(path.parent))  # probes import their neighbours
    spec = importlib.util.spec_from_file_location(f"probe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, module)  # (its dataclasses look themselves up there)
    spec.loader.exec_module(module)  # the top level only: what runs sits under `if __name__ == "__main__"`
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("r3lab"):
            module = importlib.import_module(node.module)
            missing = [
                a.name for a in node.names if not hasattr(module, a.name) and not _submodule(node.module, a.name)
            ]
            assert not missing, f"{path.name}:{node.lineno}: {node.module} has no {missing}"
    known = {f.name for f in dataclasses.fields(RecipeConfig)} | {n for n in dir(RecipeConfig) if not n.startswith("_")}
    recipes = _recipe_names(tree)
    stale = [
        (n.lineno, n.attr)
        for n in ast.walk(tree)
        if isinstance(n, ast.Attribute)
        and isinstance(n.value, ast.Name)
        and n.value.id in recipes
        and n.attr not in known
    ]
    assert not stale, f"{path.name}: RecipeConfig has no {stale} (a phase's setting: c.phase(NAME).steps, ...)"
