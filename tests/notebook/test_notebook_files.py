"""The committed notebooks are what nbval needs: executed top to bottom, in step with their source.

nbval only compares outputs that are stored: a notebook saved without outputs (or with cells
never run) would pass while checking nothing. And a source in ``notebooks/src`` edited without
``make notebooks`` would leave the validated .ipynb describing old code. The sources are read by
jupytext (``notebooks/execute.py``); a source it would read differently from what its author
meant (a mistyped marker, broken tags) is refused by name rather than built into a wrong cell.
"""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

import nbformat
import pytest

from tests.helpers import notebook_script

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]-*.ipynb"))
WITH_SOURCE = [
    p for p in [*NOTEBOOKS, NOTEBOOKS_DIR / "glossary.ipynb"]
    if (NOTEBOOKS_DIR / "src" / f"{p.stem}.py").exists()
]  # fmt: skip


def _execute_script() -> ModuleType:
    return notebook_script("execute")


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str], dict[str, bool]]]:
    return [
        (c.cell_type, c.source, list(c.metadata.get("tags", [])), c.metadata.get("jupyter", {}))
        for c in nb.cells
    ]


def _parse(text: str) -> nbformat.NotebookNode:
    nb: nbformat.NotebookNode = _execute_script().parse_source(text, "99-example.py")
    return nb


SOURCE = """# %% [markdown]
# # 99 · Example
#
# ## copy
# A heading that jupytext's defaults read as an escaped `copy` shell command.

# %%
%load_ext blogdata
%sql SELECT 1

# %% tags=["raises-exception"]
def broken():
    raise ValueError("no")

# %%
%%sql
SELECT 2

# %% tags=["solution", "extra"]
answer = 42
"""


def test_a_source_becomes_cells_with_stable_ids_tags_and_collapsed_solutions() -> None:
    nb = _parse(SOURCE)
    assert [(c.id, c.cell_type, c.source, dict(c.metadata)) for c in nb.cells] == [
        (
            "cell-01",
            "markdown",
            "# 99 · Example\n\n## copy\nA heading that jupytext's defaults read as an escaped"
            " `copy` shell command.",
            {},
        ),
        ("cell-02", "code", "%load_ext blogdata\n%sql SELECT 1", {}),
        (
            "cell-03",
            "code",
            'def broken():\n    raise ValueError("no")',
            {"tags": ["raises-exception"]},
        ),
        ("cell-04", "code", "%%sql\nSELECT 2", {}),
        (
            "cell-05",
            "code",
            "answer = 42",
            {"tags": ["solution", "extra"], "jupyter": {"source_hidden": True}},
        ),
    ]
    # Only the kernel, without versions: no jupytext keys (nothing pairs or writes back).
    kernel = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    assert dict(nb.metadata) == {"kernelspec": kernel, "language_info": {"name": "python"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x = 1\n\n# %%\ny = 2\n", "the first line must be a '# %%' cell marker, not 'x = 1'"),
        ("# ---\n# jupyter: {}\n# ---\n\n# %%\nx = 1\n", "not '# ---'"),
        ("# %%\nx = 1\n\n# %% [markdwn]\n# text\n", "cell 2 has a marker jupytext reads as title="),
        ('# %% tags=["solution"\nx = 1\n', "cell 1 has a marker jupytext reads as incorrectly_"),
        ("# %% hidden=true\nx = 1\n", "cell 1 has a marker jupytext reads as hidden=True"),
        ('# %% tags="solution"\nx = 1\n', "cannot read it ('solution' is not of type 'array')"),
        ("# %% [raw]\n# text\n", "cell 1 is a raw cell"),
    ],
    ids=["code-first", "yaml-header", "mistyped-marker", "broken-tags", "other-metadata",
         "tags-not-a-list", "raw-cell"],
)  # fmt: skip
def test_a_source_jupytext_would_misread_is_refused_by_name(text: str, message: str) -> None:
    with pytest.raises(ValueError, match="^99-example.py: ") as refused:
        _parse(text)
    assert message in str(refused.value)
    assert "'# %% [markdown]' and '# %%' cells" in str(refused.value)


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
    built = _execute_script().from_source(source)
    stored = nbformat.read(path, as_version=4)
    assert _cells(stored) == _cells(built), f"run `make notebooks NB={path.stem[:2]}`"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_every_notebook_opens_and_closes_with_its_navigation_line(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    first, last = nb.cells[0], nb.cells[-1]
    assert (first.id, last.id) == ("nav-top", "nav-bottom")
    assert first.source == last.source
    assert "[Glossary](glossary.ipynb)" in first.source
    if path.stem != "00-start-here":
        assert "[Contents](00-start-here.ipynb)" in first.source


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_solutions_are_collapsed_and_still_run(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if "solution" in cell.metadata.get("tags", []):
            assert cell.metadata["jupyter"] == {"source_hidden": True}
            assert cell.execution_count is not None


TUTORIALS = [p for p in NOTEBOOKS if p.stem != "00-start-here"]


@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_every_tutorial_ends_with_a_try_it_exercise_and_a_three_point_summary(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    summary = text.split("## Summary", 1)[1]
    assert len([line for line in summary.splitlines() if line.startswith("- ")]) == 3
    number = path.stem[:2]
    checks = [c for c in nb.cells if f"check_exercise_{number}(answer" in c.source]
    assert any("solution" in c.metadata.get("tags", []) for c in checks)
    learner = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("answer = ...")]
    assert learner, "the learner's cell (answer = ...) is missing"
