"""``max_bytes`` and the progress bar of the loaders, on the caller's own session.

A load past its budget stops the server's work and raises one ResultTooLargeError naming the
size reached and the ways out, and the caller's transaction goes on: its uncommitted row is still
there. The bar shows for a load that runs longer than a second, where output is a terminal, and
never for a quick load or where output is a file.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.errors import InvalidInputError, ResultTooLargeError
from blogdata.loaders import Route, load_arrow, load_frame, stream_frames

#: About 36 MB of binary COPY (300,000 rows of an int and 100 characters).
BIG = text("SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 300000) AS g")
BUDGET = 1_000_000


async def _frame(db: Any, stmt: Any, **options: Any) -> Any:
    return await load_frame(db, stmt, **options)


async def _arrow(db: Any, stmt: Any, **options: Any) -> Any:
    return await load_arrow(db, stmt, **options)


async def _streamed(db: Any, stmt: Any, **options: Any) -> Any:
    return [chunk async for chunk in stream_frames(db, stmt, chunk_size=20_000, **options)]


LOADERS: dict[str, Callable[..., Awaitable[Any]]] = {
    "load_frame": _frame,
    "load_arrow": _arrow,
    "stream_frames": _streamed,
}


async def _my_backend_state(engine: AsyncEngine, pid: int) -> str:
    async with engine.connect() as other:
        state = await other.scalar(
            text("SELECT state FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
        )
    return str(state)


ROUTES: tuple[Route, ...] = ("binary", "copy", "rows")


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("loader", list(LOADERS))
async def test_a_load_past_max_bytes_stops_and_leaves_the_callers_transaction_usable(
    engine: AsyncEngine, db: AsyncSession, loader: str, route: Route
) -> None:
    await db.execute(text("CREATE TEMP TABLE mine (v text)"))
    await db.execute(text("INSERT INTO mine VALUES ('uncommitted, mine')"))
    pid = await db.scalar(text("SELECT pg_backend_pid()"))
    with pytest.raises(ResultTooLargeError) as info:
        await LOADERS[loader](db, BIG, route=route, max_bytes=BUDGET)
    err = info.value
    assert err.max_bytes == BUDGET and BUDGET < err.received < 40 * BUDGET, err.received
    message = str(err)
    for said in ("max_bytes=1,000,000", f"{err.received:,} bytes", "LIMIT", "larger max_bytes"):
        assert said in message, message
    assert ("in chunks with stream_frames" in message) == (loader != "stream_frames"), message
    # The server's work stopped; the session's transaction, and what it wrote, go on.
    assert await _my_backend_state(engine, pid) == "idle in transaction"
    assert await db.scalar(text("SELECT v FROM mine")) == "uncommitted, mine"
    small = await load_frame(db, text("SELECT v FROM mine"), route=route, max_bytes=BUDGET)
    assert small["v"].tolist() == ["uncommitted, mine"]


async def test_a_stream_keeps_the_chunks_it_yielded_before_the_budget_ran_out(
    db: AsyncSession,
) -> None:
    got = []
    with pytest.raises(ResultTooLargeError):
        async for chunk in stream_frames(db, BIG, chunk_size=5_000, max_bytes=4 * BUDGET):
            got.append(chunk)
    assert got and all(len(c) == 5_000 for c in got)
    assert got[0]["g"].iloc[0] == 1


async def test_a_result_within_max_bytes_loads_whole(db: AsyncSession) -> None:
    frame = await load_frame(db, BIG, max_bytes=100 * BUDGET)
    assert len(frame) == 300_000


@pytest.mark.parametrize("bad", [0, -1, 1.5, "1000", True])
async def test_max_bytes_must_be_a_positive_whole_number(db: AsyncSession, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="max_bytes must be a positive number"):
        await load_frame(db, text("SELECT 1"), max_bytes=bad)  # type: ignore[arg-type]


# ---- the progress bar ---------------------------------------------------------------------


class _Terminal(io.StringIO):
    """A captured stream that says it is a terminal, as a console's stderr does."""

    def isatty(self) -> bool:
        return True


#: A load of five rows that takes 1.5 s on the server: longer than the bar's one-second delay.
SLOW = text("SELECT g, pg_sleep(0.3) IS NULL AS slept FROM generate_series(1, 5) AS g")


@pytest.mark.parametrize("loader", list(LOADERS))
async def test_a_slow_load_shows_a_bar_of_rows_and_bytes_on_a_terminal(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch, loader: str
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    await LOADERS[loader](db, SLOW)
    shown = terminal.getvalue()
    assert f"{loader}: 5rows [" in shown and "B received" in shown, shown


async def test_progress_true_shows_the_planners_estimate_as_the_total(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    frame = await load_frame(db, SLOW, progress=True)
    assert len(frame) == 5
    assert "5/5" in terminal.getvalue(), terminal.getvalue()  # generate_series(1, 5): 5 rows


@pytest.mark.parametrize(
    ("stream", "stmt", "progress"),
    [
        (_Terminal, text("SELECT 1 AS one"), None),
        (io.StringIO, SLOW, None),
        (_Terminal, SLOW, False),
    ],
    ids=["quick-load-on-a-terminal", "slow-load-into-a-file", "slow-load-progress-false"],
)
async def test_no_bar_for_a_quick_load_a_file_or_progress_false(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch, stream: type[io.StringIO], stmt: Any,
    progress: bool | None,
) -> None:  # fmt: skip
    captured = stream()
    monkeypatch.setattr(sys, "stderr", captured)
    await load_frame(db, stmt, progress=progress)
    assert captured.getvalue() == ""


async def test_the_environment_switch_turns_every_bar_off(
    db: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setenv("BLOGDATA_PROGRESS", "0")
    await load_frame(db, SLOW)
    assert terminal.getvalue() == ""


KERNEL_CHILD = r"""
import asyncio, io, json, sys
sys.modules["ipywidgets"] = None  # as if not installed: an import of it fails, find_spec is None
from ipykernel.inprocess.manager import InProcessKernelManager
from sqlalchemy import NullPool, text
from blogdata import _progress
from blogdata.db.engine import create_engine
from blogdata.loaders import load_frame

class Terminal(io.StringIO):
    def isatty(self):
        return True

manager = InProcessKernelManager()
manager.start_kernel()  # a real (in-process) Jupyter kernel: get_ipython().kernel is set

async def main(url):
    engine = create_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        await load_frame(conn, text(sys.argv[2]))
    await engine.dispose()

captured = sys.stderr = Terminal()
asyncio.run(main(sys.argv[1]))
sys.stderr = sys.__stderr__
print(json.dumps([_progress.in_notebook(), _progress.where_shown(), captured.getvalue()]))
manager.shutdown_kernel()
"""


def test_in_a_kernel_without_ipywidgets_no_text_bar_lands_in_the_cells_output(
    server_url: URL,
) -> None:
    # tqdm's text fallback would write its frames into the cell's stderr, which the saved
    # notebook keeps (and nbval compares): in a notebook the bar is ipywidgets' or nothing.
    # The notebooks extra installs ipywidgets; the child hides it, as in a bare install.
    url = server_url.render_as_string(hide_password=False)
    out = subprocess.run(
        [sys.executable, "-c", KERNEL_CHILD, url, str(SLOW)],
        capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [True, None, ""], out.stderr[-2000:]
