"""The import rule (ARCHITECTURE.md) holds and covers the whole package.

``lint-imports`` checks the contracts in ``pyproject.toml``; this test also proves that every
module of blogdata is named by some contract (itself or a package above it), so a new module
cannot escape the rule by being left out of the lists.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "blogdata"
#: The front door re-exports everything (and so imports every layer): no layer can hold it.
UNLISTED = {"blogdata"}


def _contracts() -> list[dict[str, object]]:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    contracts: list[dict[str, object]] = config["tool"]["importlinter"]["contracts"]
    return contracts


def _strings(value: object) -> list[str]:
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), value
    return [str(v) for v in value]


def _named_by_contracts() -> set[str]:
    """Every module a contract constrains: layers (in their containers) and forbidden sources."""
    named: set[str] = set()
    for contract in _contracts():
        if contract["type"] == "layers":
            containers = _strings(contract.get("containers", [""]))
            for layer in _strings(contract["layers"]):
                for part in layer.split("|"):
                    name = part.strip().strip("()")
                    named |= {f"{c}.{name}" if c else name for c in containers}
        named |= set(_strings(contract.get("source_modules", [])))
    return named


def _modules() -> list[str]:
    """Every module and package under blogdata/, by its dotted name."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


def _covered(module: str, named: set[str]) -> bool:
    return any(module == n or module.startswith(f"{n}.") for n in named)


def test_every_module_of_the_package_is_named_by_an_import_contract() -> None:
    named = _named_by_contracts()
    modules = _modules()
    assert "blogdata.db.engine" in modules and "blogdata.errors" in modules  # the walk works
    missing = [m for m in modules if m not in UNLISTED and not _covered(m, named)]
    assert missing == [], (
        f"add these to a contract in pyproject.toml [tool.importlinter]: {missing}"
    )


def test_a_module_left_out_of_the_contracts_is_found() -> None:
    named = _named_by_contracts() - {"blogdata.charts"}
    assert not _covered("blogdata.charts", named)
    assert _covered("blogdata.loaders._copy", named)  # inside a listed package


def test_the_import_contracts_are_kept() -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from importlinter.cli import lint_imports; exit(lint_imports())"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout
