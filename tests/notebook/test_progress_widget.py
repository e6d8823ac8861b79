"""A slow load in a real Jupyter kernel shows tqdm's widget; BLOGDATA_PROGRESS=0, quick loads don't.

Each case executes a one-cell notebook through nbclient in a fresh ``python3`` kernel (this venv,
with ipywidgets from the notebooks extra), loading from the run's server. The stored outputs
never hold a bar: ``notebooks/execute.py`` and the nbval run start their kernels with the switch.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_notebook, new_output
from sqlalchemy.engine import URL

from blogdata import _progress
from tests.helpers import REPO, notebook_script

WIDGET = "application/vnd.jupyter.widget-view+json"
#: Five rows that take 1.5 s on the server: longer than the bar's one-second delay.
SLOW = "SELECT g, pg_sleep(0.3) IS NULL AS slept FROM generate_series(1, 5) AS g"
QUICK = "SELECT g, true AS slept FROM generate_series(1, 5) AS g"

CELL = """\
from sqlalchemy import NullPool, text
from blogdata.db.engine import create_engine
from blogdata.loaders import load_frame

engine = create_engine({url!r}, poolclass=NullPool)
async with engine.connect() as conn:
    frame = await load_frame(conn, text({sql!r}))
await engine.dispose()
print(len(frame), "rows")
"""


def _run_cell(source: str, switch: str | None, folder: Path) -> list[nbformat.NotebookNode]:
    """Execute ``source`` as a notebook's only cell in a fresh kernel; return its outputs."""
    nb = new_notebook(cells=[new_code_cell(source)])
    env = {key: value for key, value in os.environ.items() if key != _progress.SWITCH}
    if switch is not None:
        env[_progress.SWITCH] = switch
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    client.execute(env=env)  # given to the kernel manager: the kernel's whole environment
    outputs: list[nbformat.NotebookNode] = nb.cells[0].outputs
    return outputs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("sql", "switch", "widget"),
    [(SLOW, None, True), (SLOW, "0", False), (QUICK, None, False)],
    ids=["slow-load-shows-a-widget", "slow-load-with-progress-0", "quick-load"],
)
def test_a_slow_load_in_a_kernel_shows_the_widget_bar_and_only_then(
    server_url: URL, tmp_path: Path, sql: str, switch: str | None, widget: bool
) -> None:
    url = server_url.render_as_string(hide_password=False)
    outputs = _run_cell(CELL.format(url=url, sql=sql), switch, tmp_path)
    shown = [out for out in outputs if WIDGET in out.get("data", {})]
    assert bool(shown) is widget, outputs
    printed = [out.text for out in outputs if out.output_type == "stream"]
    assert printed == ["5 rows\n"], outputs  # the load ran, and no text bar went to stderr


# ---- stored outputs never hold a bar: both ways notebooks are run turn bars off -------------

PRINT_SWITCH = f"import os\nprint(os.environ.get({_progress.SWITCH!r}))"


def test_execute_runs_kernels_with_progress_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(_progress.SWITCH, raising=False)
    nb = new_notebook(cells=[new_code_cell(PRINT_SWITCH)])
    notebook_script("execute").execute(nb)
    assert [out.get("text") for out in nb.cells[0].outputs] == ["0\n"]


@pytest.mark.slow
def test_nbval_runs_kernels_with_progress_off() -> None:
    # A notebook whose stored output is "0" passes strict nbval only if the kernel got the switch.
    cell = new_code_cell(PRINT_SWITCH, execution_count=1)
    cell.outputs = [new_output("stream", name="stdout", text="0\n")]
    env = {key: value for key, value in os.environ.items() if key != _progress.SWITCH}
    build = REPO / "build"  # under the repository (the root conftest's hooks), ignored by git
    build.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(dir=build) as folder:
        path = Path(folder) / "switch.ipynb"
        nbformat.write(new_notebook(cells=[cell]), path)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(path)],
            cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
    assert run.returncode == 0, run.stdout[-3000:]
    assert "1 passed" in run.stdout, run.stdout[-3000:]
