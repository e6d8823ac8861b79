"""Interrupted loads: a cancelled task or a ``wait_for`` timeout at many random points (a seeded
RNG) in a load big enough to be mid-COPY, on the binary, copy and rows routes and in
``stream_frames``. Afterwards ``rollback()`` and ``close()`` never raise, the server's work is
gone within a bounded number of polls, and the next session from the same one-connection pool
answers and loads (the pool never hands out a connection in the middle of a COPY)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine
from blogdata.loaders import Route, load_frame, stream_frames
from tests.loaders.oracle import FidelityDb

pytestmark = pytest.mark.slow

POINTS = 30  # interrupt points per route
POLLS = 20  # "the server's work is gone within POLLS polls", POLL_PAUSE seconds apart
POLL_PAUSE = 0.05
MARKER = "fid_interrupt_marker"
BIG = text(
    f"select g as {MARKER}, g::text || ' row, \"quoted\"' as t, g::float8 * 0.5 as f"
    " from generate_series(1, 3000000) g"
)
ROUTES = ["binary", "copy", "rows", "stream-binary", "stream-copy"]


@pytest.fixture
async def one_connection_engine(fidelity: FidelityDb) -> AsyncIterator[AsyncEngine]:
    """A pool of exactly one connection: each session after an interrupt reuses what was left."""
    engine = create_engine(fidelity.url, pool_size=1, max_overflow=0)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
async def monitor(fidelity: FidelityDb) -> AsyncIterator[AsyncEngine]:
    """An autocommit engine for watching pg_stat_activity."""
    engine = create_engine(fidelity.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        yield engine
    finally:
        await engine.dispose()


async def _read(db: AsyncSession, route: str) -> Any:
    if route.startswith("stream-"):
        rows = 0
        forced = route.removeprefix("stream-")
        async for chunk in stream_frames(db, BIG, chunk_size=200_000, route=forced):  # type: ignore[arg-type]
            rows += len(chunk)
        return rows
    return await load_frame(db, BIG, route=cast(Route, route))  # ROUTES: a route or "stream"


async def _running(monitor: AsyncEngine) -> list[tuple[Any, ...]]:
    """The active backends (other than ours) still running the big query."""
    async with monitor.connect() as conn:
        result = await conn.execute(
            text(
                "select pid, application_name, state, left(query, 60) from pg_stat_activity"
                " where pid <> pg_backend_pid() and state = 'active' and query like :q"
            ),
            {"q": f"%{MARKER}%"},
        )
        return [tuple(r) for r in result]


async def _interrupt(db: AsyncSession, route: str, kind: str, delay: float) -> str:
    """Start the load, interrupt it after ``delay`` seconds; return what happened."""
    if kind == "cancel":
        task = asyncio.create_task(_read(db, route))
        await asyncio.sleep(delay)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"
    try:
        await asyncio.wait_for(_read(db, route), timeout=delay)
    except TimeoutError:
        return "timed out"
    return "finished"


@pytest.mark.parametrize("route", ROUTES)
async def test_an_interrupted_load_leaves_the_session_pool_and_server_clean(
    one_connection_engine: AsyncEngine, monitor: AsyncEngine, route: str
) -> None:
    engine = one_connection_engine
    async with AsyncSession(engine) as probe:  # the route really serves this statement here
        small = text("select 1 as a")
        if route.startswith("stream-"):
            forced: Any = route.removeprefix("stream-")
            chunks = [c async for c in stream_frames(probe, small, route=forced)]
            assert chunks[0].attrs["blogdata.route"] == forced
        else:
            assert (await load_frame(probe, small, route=cast(Route, route))).attrs[
                "blogdata.route"
            ] == route
    rng = random.Random(f"interrupts-{route}")
    outcomes: Counter[str] = Counter()
    failures = []
    for point in range(POINTS):
        kind = "cancel" if point % 2 else "wait_for"
        delay = rng.uniform(0.0, 0.6)
        where = f"{route} point {point} ({kind} after {delay:.3f}s)"
        db = AsyncSession(engine)
        try:
            outcomes[await _interrupt(db, route, kind, delay)] += 1
        except Exception as exc:  # an interrupt must surface as the interrupt, nothing else
            failures.append(f"{where}: the load raised {exc!r:.300}")
        for step in ("rollback", "close"):
            try:
                await getattr(db, step)()
            except Exception as exc:
                failures.append(f"{where}: {step}() raised {exc!r:.300}")
        running = await _running(monitor)
        for _ in range(POLLS):
            if not running:
                break
            await asyncio.sleep(POLL_PAUSE)
            running = await _running(monitor)
        if running:
            failures.append(f"{where}: still on the server after {POLLS} polls: {running}")
        try:
            async with AsyncSession(engine) as after:
                assert (await after.execute(text("select 1"))).scalar() == 1
                frame = await load_frame(after, text("select 2 as b"))
                assert frame["b"].tolist() == [2], frame
        except Exception as exc:
            failures.append(f"{where}: the next session from the pool failed: {exc!r:.300}")
    assert not failures, f"{len(failures)} problems; outcomes {dict(outcomes)}:\n" + "\n".join(
        failures
    )
    interrupted = outcomes["cancelled"] + outcomes["timed out"]
    assert interrupted >= POINTS * 2 // 3, f"too few loads were interrupted: {dict(outcomes)}"
