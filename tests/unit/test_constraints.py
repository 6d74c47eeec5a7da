"""constraints.txt pins every dependency, and every install path uses it."""

from __future__ import annotations

import re
import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins() -> dict[str, str]:
    found = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, sep, pinned = line.partition("==")
            assert sep and pinned.strip(), f"constraints.txt: {line!r} is not NAME==VERSION"
            found[normalise(name)] = pinned.strip()
    return found


def requirement_names() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    specs = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return {normalise(re.split(r"[\s\[<>=!~;]", spec, maxsplit=1)[0]) for spec in specs}


def test_every_direct_dependency_is_pinned_exactly():
    missing = requirement_names() - set(pins())
    assert not missing, f"add to constraints.txt (make constraints): {sorted(missing)}"


def test_this_environment_runs_the_pinned_versions():
    drift = {}
    for name, pinned in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            continue  # e.g. a platform-only package
        if installed != pinned:
            drift[name] = (installed, pinned)
    assert not drift, f"installed != constraints.txt (run `make install`): {drift}"


def test_make_install_ci_and_the_image_install_with_the_constraints():
    makefile = (REPO / "Makefile").read_text()
    assert '--constraint constraints.txt -e ".[dev]"' in makefile
    assert "make install" in (REPO / ".ci" / "run").read_text()
    assert "--constraint constraints.txt" in (REPO / "Dockerfile").read_text()
