"""binder/: the files follow repo2docker's pip-buildpack rules, and they rebuild an environment that runs.

The static checks are instant. `make routes` runs binder/verify.sh: a fresh venv from binder/ alone, postBuild,
`pip check`, every lesson in smoke mode through that environment's papermill (tests/course/test_routes.py).
"""

import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as a package
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
BINDER = ROOT / "binder"


def _requirements() -> tuple[list[str], list[str]]:
    options, pins = [], []
    for line in (BINDER / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            (options if line.startswith("-") else pins).append(line)
    return options, pins


def test_binder_folder_follows_the_buildpack_rules():
    names = {p.name for p in BINDER.iterdir()}
    # environment.yml would switch to the conda buildpack; runtime.txt only makes sense without it.
    assert "environment.yml" not in names and "runtime.txt" in names
    assert re.fullmatch(r"python-3\.11\s*", (BINDER / "runtime.txt").read_text())
    if "start" in names:
        assert (BINDER / "start").read_text().rstrip().endswith('exec "$@"'), 'binder/start must end with exec "$@"'
    post = (BINDER / "postBuild").read_text().splitlines()
    assert post[0] == "#!/bin/bash" and "set -e" in post[:5]
    body = [ln.strip() for ln in post if ln.strip() and not ln.startswith("#")]
    # a binder/ folder turns off the automatic install of the repo: postBuild installs it, without deps
    assert any(re.fullmatch(r"pip install (--no-cache-dir )?--no-deps -e \.", ln) for ln in body), body
    assert any("ipykernel install" in ln and "--name r3lab" in ln for ln in body), "notebooks ask for kernel r3lab"


def test_requirements_are_pinned_and_cover_the_package():
    options, pins = _requirements()
    assert "--extra-index-url https://download.pytorch.org/whl/cpu" in options  # CPU torch keeps the image small
    assert "-e ." not in options, "install the repo in postBuild (layer caching), not in requirements.txt"
    pinned = {}
    for p in pins:
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([0-9][^\s;]*)", p)
        assert m, f"binder/requirements.txt: {p!r} is not pinned with =="
        pinned[m.group(1).lower().replace("_", "-")] = m.group(2)
    assert pinned["torch"].endswith("+cpu")
    for req in course_requirements():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{name} (pyproject) is missing from binder/requirements.txt; postBuild uses --no-deps"
        assert req.specifier.contains(pinned[name].split("+")[0], prereleases=True), (
            f"binder/requirements.txt pins {name}=={pinned[name]}, outside pyproject's {req}"
        )


def course_requirements() -> list:
    """r3lab's dependencies and its extra `course`, the extras it names expanded (one list: pyproject.toml)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras, out, todo = project["optional-dependencies"], list(project["dependencies"]), ["course"]
    while todo:
        for req in extras[todo.pop()]:
            r = Requirement(req)
            if canonicalize_name(r.name) == "r3lab":
                todo += sorted(r.extras)
            else:
                out.append(req)
    return [Requirement(r) for r in out]


def test_the_course_extra_holds_what_every_lesson_imports():
    from r3lab.course.lesson import EXTRAS
    from r3lab.course.syllabus import LESSONS

    names = {canonicalize_name(r.name) for r in course_requirements()}
    assert {"captum", "trl", "papermill", "ipykernel", "ipywidgets", "nbformat"} <= names
    course = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["course"]
    for lesson in LESSONS:  # a lesson's extras are part of the course, and each names the module it brings
        for extra in lesson.extras:
            assert f"r3lab[{extra}]" in course and extra in EXTRAS, (lesson.notebook, extra)
            assert canonicalize_name(EXTRAS[extra][0]) in names
