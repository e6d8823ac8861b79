"""Packaging: environment.yml mirrors pyproject.toml, and the public API is sorted and complete."""

from __future__ import annotations

import importlib
import pkgutil
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import blogdata

ROOT = Path(__file__).resolve().parents[1]
MIRRORED_EXTRAS = ("notebooks", "dev")
# conda splits `sqlalchemy[asyncio]` into sqlalchemy + greenlet
CONDA_EXTRA_NAMES = {"greenlet"}


def _spec(requirement: str) -> tuple[str, str]:
    req = Requirement(requirement.replace(" ", ""))
    return canonicalize_name(req.name), str(req.specifier)


def _pyproject() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    deps = list(project["dependencies"])
    for extra in MIRRORED_EXTRAS:
        deps += project["optional-dependencies"][extra]
    return dict(_spec(d) for d in deps)


def _environment() -> dict[str, str]:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    found: dict[str, str] = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            if entry.startswith("-e"):
                continue
            name, spec = _spec(entry)
            if name not in {"python", "pip"} | CONDA_EXTRA_NAMES:
                found[name] = spec
    return found


def test_environment_yml_lists_exactly_the_pyproject_dependencies() -> None:
    pyproject, environment = _pyproject(), _environment()
    assert sorted(pyproject.keys() - environment.keys()) == [], "missing from environment.yml"
    assert sorted(environment.keys() - pyproject.keys()) == [], "missing from pyproject.toml"


def test_environment_yml_uses_the_same_version_bounds() -> None:
    pyproject, environment = _pyproject(), _environment()
    assert {n: s for n, s in environment.items() if pyproject.get(n) != s} == {}


def test_environment_yml_installs_blogdata_with_the_mirrored_extras() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert f"-e .[{','.join(MIRRORED_EXTRAS)}]" in pip
    assert env["channels"] == ["conda-forge"]


# Every module is exactly one of: re-exported name by name, exported as a namespace, or internal.
FLAT = {
    "aggregations",
    "bulk",
    "config",
    "database",
    "describe",
    "errors",
    "frames",
    "loaders",
    "models",
    "schemas",
    "security",
    "transactions",
}
NAMESPACED = {"crud", "embedded", "explain", "migrate", "notebook", "queries", "seed"}
INTERNAL = {"cli", "demo", "guide_patterns", "magic"}


def _modules() -> set[str]:
    # blogdata.migrations (Alembic's scripts) is listed only when installed from a wheel.
    found = {m.name for m in pkgutil.iter_modules(blogdata.__path__)}
    return {name for name in found if not name.startswith("_")} - {"migrations"}


def test_public_api_is_sorted_and_complete() -> None:
    assert blogdata.__all__ == sorted(blogdata.__all__)
    assert _modules() == FLAT | NAMESPACED | INTERNAL, "classify the new module"
    missing = [
        f"{name}.{attr}"
        for name in sorted(FLAT)
        for attr in importlib.import_module(f"blogdata.{name}").__all__
        if attr not in blogdata.__all__
    ]
    missing += [name for name in sorted(NAMESPACED) if name not in blogdata.__all__]
    assert missing == []
    assert [name for name in blogdata.__all__ if not hasattr(blogdata, name)] == []


def test_every_module_declares_all() -> None:
    lacking = [
        m.name
        for m in pkgutil.iter_modules(blogdata.__path__)
        if not m.name.startswith("_")
        and m.name != "migrations"  # Alembic's scripts, not a module of ours
        and not hasattr(importlib.import_module(f"blogdata.{m.name}"), "__all__")
    ]
    assert lacking == []
