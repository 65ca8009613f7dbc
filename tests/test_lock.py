"""Pinned and reproducible: ranges with upper bounds in pyproject.toml, every install from the
lock (uv.lock, exported with hashes to requirements/*.txt), the Docker base pinned by digest."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = tomllib.loads((REPO / "uv.lock").read_text(encoding="utf-8"))
LOCKED = {
    canonicalize_name(package["name"]): package["version"]
    for package in LOCK["package"]
    if package["name"] != "ballast"
}
DECLARED = [
    *PYPROJECT["project"]["dependencies"],
    *PYPROJECT["project"]["optional-dependencies"]["test"],
]
BOOTSTRAP = PYPROJECT["dependency-groups"]["bootstrap"]


def pins(path: Path) -> dict[str, tuple[str, int]]:
    """name → (version, number of hashes), from an exported requirements file."""
    out: dict[str, tuple[str, int]] = {}
    for entry in re.split(r"\n(?=\S)", path.read_text(encoding="utf-8")):
        line = entry.split("\n", 1)[0]
        if not line or line.startswith("#"):
            continue
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+?)(?: ;.*)? \\$", line)
        assert match, f"{path.name}: not an exact pin: {line!r}"
        out[canonicalize_name(match[1])] = (match[2], entry.count("--hash=sha256:"))
    return out


@pytest.mark.parametrize("spec", DECLARED + BOOTSTRAP)
def test_every_declared_dependency_has_an_upper_bound(spec: str) -> None:
    requirement = Requirement(spec)
    assert any(s.operator == "<" for s in requirement.specifier), f"{spec}: no upper bound"
    assert any(s.operator == ">=" for s in requirement.specifier), f"{spec}: no lower bound"


@pytest.mark.parametrize("name", ["runtime.txt", "test.txt", "bootstrap.txt"])
def test_the_exported_requirements_pin_locked_versions_with_hashes(name: str) -> None:
    exported = pins(REPO / "requirements" / name)
    assert exported
    for package, (version, hashes) in exported.items():
        assert LOCKED[package] == version, package
        assert hashes >= 1, f"{package} has no hash"


def test_the_test_requirements_hold_every_declared_package() -> None:
    runtime = pins(REPO / "requirements" / "runtime.txt")
    test = pins(REPO / "requirements" / "test.txt")
    assert set(runtime) <= set(test)
    for spec in DECLARED:
        requirement = Requirement(spec)
        name = canonicalize_name(requirement.name)
        assert name in test, f"{name} is declared but not in requirements/test.txt"
        assert requirement.specifier.contains(test[name][0]), f"{name} {test[name][0]}"
        if spec in PYPROJECT["project"]["dependencies"]:
            assert name in runtime, f"{name} is a runtime dependency"


def test_every_install_uses_the_lock() -> None:
    check = (REPO / "scripts" / "check").read_text(encoding="utf-8")
    assert "install --require-hashes -r requirements/test.txt" in check
    # The locked pip goes in before the test set, which pip 23 refuses.
    assert check.index("-r requirements/bootstrap.txt") < check.index("-r requirements/test.txt")
    bootstrap = pins(REPO / "requirements" / "bootstrap.txt")
    assert set(bootstrap) == {"pip"}
    assert "install --no-deps -e ." in check
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    assert "exec scripts/check" in ci
    assert "pip install" not in ci
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    assert "--require-hashes --prefix=/install -r requirements/runtime.txt" in dockerfile
    assert "--no-deps --no-build-isolation --prefix=/install ." in dockerfile


def test_the_docker_base_is_pinned_by_digest() -> None:
    dockerfile = (REPO / "Dockerfile").read_text(encoding="utf-8")
    [image] = re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", dockerfile, re.MULTILINE)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", image)
    stages = re.findall(r"^FROM (\S+)", dockerfile, re.MULTILINE)
    assert stages == ["${PYTHON_IMAGE}", "${PYTHON_IMAGE}"]
