"""Packaging: environment.yml mirrors pyproject.toml, and the public API is sorted and complete."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import tomllib
import types
from pathlib import Path

import yaml  # type: ignore[import-untyped]  # types-PyYAML is not a dev dependency
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


MAX_PUBLIC_NAMES = 45
HEAVY = ("faker", "matplotlib", "typer", "IPython", "ipykernel", "jupyter_client", "jupyterlab")


def test_public_api_is_small_sorted_and_importable() -> None:
    assert blogdata.__all__ == sorted(blogdata.__all__)
    assert len(blogdata.__all__) <= MAX_PUBLIC_NAMES
    assert [name for name in blogdata.__all__ if not hasattr(blogdata, name)] == []


def test_each_public_name_has_one_home_module_that_exports_it() -> None:
    # `from blogdata import load_frame` and `from blogdata.loaders import load_frame` are the same
    # object, and the README and notebooks use the first.
    homes: dict[str, list[types.ModuleType]] = {}
    for m in pkgutil.walk_packages(blogdata.__path__, "blogdata."):
        parts = m.name.split(".")[1:]
        if any(p.startswith("_") for p in parts) or parts[-1] in ("magic", "cli", "demo"):
            continue
        if parts[0] == "migrations":
            continue
        module = importlib.import_module(m.name)
        for attr in module.__all__:
            homes.setdefault(attr, []).append(module)
    for name in blogdata.__all__:
        value = getattr(blogdata, name)
        if isinstance(value, types.ModuleType):
            continue
        owners = [module for module in homes.get(name, []) if getattr(module, name) is value]
        assert len(owners) == 1, f"{name} should be exported by exactly one module"


def test_importing_blogdata_loads_no_heavy_or_interactive_library() -> None:
    code = f"import sys, blogdata; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_module_declares_all() -> None:
    lacking = [
        m.name
        for m in pkgutil.iter_modules(blogdata.__path__)
        if not m.name.startswith("_")
        and m.name != "migrations"  # Alembic's scripts, not a module of ours
        and not hasattr(importlib.import_module(f"blogdata.{m.name}"), "__all__")
    ]
    assert lacking == []
