"""The committed notebooks are what nbval needs: executed top to bottom, in step with their source.

nbval only compares outputs that are stored: a notebook saved without outputs (or with cells
never run) would pass while checking nothing. And a source in ``notebooks/src`` edited without
``make notebooks`` would leave the validated .ipynb describing old code.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import nbformat
import pytest

NOTEBOOKS_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
WITH_SOURCE = [p for p in NOTEBOOKS if (NOTEBOOKS_DIR / "src" / f"{p.stem}.py").exists()]


def _execute_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("nb_execute", NOTEBOOKS_DIR / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, list(c.metadata.get("tags", []))) for c in nb.cells]


def test_the_notebooks_folder_holds_notebooks() -> None:
    assert len(NOTEBOOKS) >= 4


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_code_cell_was_run_once_in_order_with_outputs_stored(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    assert any(c.outputs for c in code), "no outputs stored: nbval would compare nothing"


@pytest.mark.parametrize("path", WITH_SOURCE, ids=[p.stem for p in WITH_SOURCE])
def test_notebook_cells_match_their_source_in_notebooks_src(path: Path) -> None:
    source = NOTEBOOKS_DIR / "src" / f"{path.stem}.py"
    built = _execute_script().parse_source(source.read_text())
    stored = nbformat.read(path, as_version=4)
    assert _cells(stored) == _cells(built), f"run `make notebooks NB={path.stem[:2]}`"
