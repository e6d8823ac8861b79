"""``blogdata.distributed``: partitioned reads on a real Dask cluster, all in one snapshot.

One ``distributed.LocalCluster`` (2 worker processes, 1 thread each) serves the module. Each
test reads on the run's server (the service or the embedded one); the standby test starts an
embedded primary and its hot standby of its own. Orderings that matter (a writer committing
between two partitions' reads; a worker killed while its partition reads) are made by an
advisory lock the statement waits on, never by timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine
from blogdata.distributed import (
    APPLICATION_PREFIX,
    HiddenUrl,
    SnapshotError,
    dask_frame,
    snapshot_frames,
)
from blogdata.errors import QueryError
from blogdata.loaders import load_frame
from blogdata.servers import embedded, replica
from tests.helpers import migrated_database, server_home
from tests.loaders.oracle import assert_same_frame
from tests.loaders.test_loader_fidelity import CLOCKS, CSV_META, FLOATS, TEMPORAL

PASSWORD = "dask-s3cret-pw"  # the service trusts every local login: any password works
GATE_KEY = 770_022  # the advisory lock the gated statements wait on

SETUP = [
    "CREATE TABLE dask_rows (id int PRIMARY KEY, k int, v text, j json, n numeric(10, 2))",
    "INSERT INTO dask_rows SELECT i, i, 'row ' || i, json_build_object('i', i),"
    " (i * 1.25)::numeric(10, 2) FROM generate_series(1, 100) i",
    # Waits while someone holds the advisory lock `key` (then lets every row through): a
    # statement calling it on a row pauses exactly there.
    """CREATE FUNCTION dask_gate(key bigint) RETURNS boolean LANGUAGE plpgsql AS $$
       BEGIN PERFORM pg_advisory_lock_shared(key); PERFORM pg_advisory_unlock_shared(key);
       RETURN true; END $$""",
]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Client]:
    """A LocalCluster of two single-threaded worker processes, and its client."""
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        Client(local) as client,
    ):
        yield client


@pytest.fixture(scope="module")
async def url(server_url: URL) -> AsyncIterator[URL]:
    """A database of this module's own, with a password in its URL (never shown anywhere)."""
    async with migrated_database(server_url, "blogdata_dask") as made:
        engine = create_engine(made, poolclass=NullPool)
        try:
            async with engine.begin() as conn:
                for sql in SETUP:
                    await conn.execute(text(sql))
        finally:
            await engine.dispose()
        yield made.set(password=PASSWORD)


@pytest.fixture(scope="module")
async def engine(url: URL) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


async def _snapshot_session(engine: AsyncEngine) -> AsyncSession:
    session = AsyncSession(engine, expire_on_commit=False)
    await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    return session


async def _wait_until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``check`` until it holds (a bounded wait for a state, not a timing assertion)."""
    for _ in range(1200):
        if await check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"never happened: {what}")


async def _backends(engine: AsyncEngine, prefix: str) -> list[tuple[str, str | None]]:
    """(state, wait_event) of every backend whose application_name starts with ``prefix``."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT state, wait_event FROM pg_stat_activity "
                "WHERE starts_with(application_name, :p) AND pid <> pg_backend_pid()"
            ),
            {"p": prefix},
        )
        return [(r[0], r[1]) for r in rows]


async def _all_closed(engine: AsyncEngine, prefix: str = APPLICATION_PREFIX) -> None:
    async def none_left() -> bool:
        return not await _backends(engine, prefix)

    await _wait_until(none_left, f"every connection named {prefix!r} closed")


def _blocked(engine: AsyncEngine, prefix: str, count: int) -> Callable[[], Awaitable[bool]]:
    """True when exactly ``count`` backends of ``prefix`` exist, all waiting on the gate."""

    async def check() -> bool:
        found = await _backends(engine, prefix)
        return len(found) == count and all(wait == "advisory" for _, wait in found)

    return check


def _sorted(frame: pd.DataFrame, by: str) -> pd.DataFrame:
    return frame.sort_values(by, kind="stable").reset_index(drop=True)


# --- import ----------------------------------------------------------------------------------


def test_import_blogdata_never_imports_dask() -> None:
    code = (
        "import json, sys, blogdata\n"
        "for name in blogdata.__all__: getattr(blogdata, name)\n"
        "print(json.dumps([m for m in ('dask', 'distributed', 'blogdata.distributed')"
        " if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


# --- exact: the fidelity matrix's types, both backends -----------------------------------------

NUMERIC = (
    "select i, v from (values (1, 'NaN'::numeric), (2, 'Infinity'), (3, '-Infinity'),"
    " (4, 0.000000000000000000001), (5, 123456789012345678901234567890.123456789),"
    " (6, '-0.0'), (7, 1.10), (8, null), (9, 1e-300), (10, 10e200)) t(i, v) order by i"
)
MATRIX = [
    ("floats", FLOATS, "d", "i"),
    ("temporal-on-timestamptz", TEMPORAL, "tstz", "i"),
    ("clocks-on-interval", CLOCKS, "iv", "i"),
    ("csv-metacharacters-on-text", CSV_META, "v", "i"),
    ("numeric", NUMERIC, "v", "i"),
    ("table-with-json-numeric-on-json-hash", "select * from dask_rows", "j", "id"),
    ("table-on-nullable-int", "select id, nullif(k % 7, 0) as k7, v from dask_rows", "k7", "id"),
]


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
@pytest.mark.parametrize(("case", "sql", "on", "key"), MATRIX, ids=[m[0] for m in MATRIX])
async def test_the_frame_equals_load_frame_in_the_same_snapshot(
    cluster: Client, engine: AsyncEngine, backend: Any, case: str, sql: str, on: str, key: str
) -> None:
    session = await _snapshot_session(engine)
    try:
        frame = await dask_frame(session, text(sql), partitions=3, on=on, dtype_backend=backend)
        expected = await load_frame(session, text(sql), dtype_backend=backend)
        assert list(frame.dtypes) == list(expected.dtypes), "meta is the statement's dtypes"
        got = frame.compute()
    finally:
        await session.close()
    assert frame.npartitions > 1
    assert_same_frame(_sorted(got, key), _sorted(expected, key), case)
    await _all_closed(engine)


async def test_an_orm_statement_with_bound_values_and_a_numeric_column_keeps_its_scale(
    cluster: Client, engine: AsyncEngine
) -> None:
    from sqlalchemy import Column, Integer, MetaData, Numeric, Table, select

    rows = Table("dask_rows", MetaData(), Column("id", Integer), Column("n", Numeric(10, 2)))
    stmt = select(rows.c.id, rows.c.n).where(rows.c.id > 10, rows.c.id <= 90)
    session = await _snapshot_session(engine)
    try:
        frame = await dask_frame(session, stmt, partitions=4, on=rows.c.n, dtype_backend="pyarrow")
        expected = await load_frame(session, stmt, dtype_backend="pyarrow")
        got = frame.compute()
    finally:
        await session.close()
    assert str(got.dtypes["n"]) == "decimal128(38, 2)[pyarrow]"
    assert frame.npartitions == 4
    assert_same_frame(_sorted(got, "id"), _sorted(expected, "id"), "orm")


# --- consistent under a concurrent writer ------------------------------------------------------

GATED = f"select id, k, v from dask_moves where dask_gate({GATE_KEY})"


async def _read_with_a_writer_between_partitions(
    cluster: Client, engine: AsyncEngine, frame: dd.DataFrame, prefix: str
) -> pd.DataFrame:
    """Compute ``frame`` (3 partitions, 2 worker threads) while a writer commits after two
    partitions have started reading (they wait on the gate) and before the third can start."""
    gate = await _hold_gate(engine)
    try:
        future = cluster.compute(frame)
        await _wait_until(_blocked(engine, prefix, 2), "two partitions started, the third queued")
        async with engine.begin() as conn:
            for sql in WRITES:
                await conn.execute(text(sql))
    finally:
        await _release_gate(gate)
    got: pd.DataFrame = await asyncio.to_thread(future.result)
    return got


#: Ranges of k: [1, 34), [34, 67), [67, 100]. Into and out of each range a row moves, one row is
#: deleted and one inserted, so whichever partition reads after the writer sees a row counted
#: twice and misses another.
WRITES = [
    "UPDATE dask_moves SET k = 40 WHERE id = 10",  # range 0 -> 1
    "UPDATE dask_moves SET k = 80 WHERE id = 50",  # range 1 -> 2
    "UPDATE dask_moves SET k = 5 WHERE id = 90",  # range 2 -> 0
    "DELETE FROM dask_moves WHERE id IN (20, 55, 95)",
    "INSERT INTO dask_moves VALUES (1001, 15, 'new'), (1002, 45, 'new'), (1003, 85, 'new')",
]


@pytest.fixture
async def moves(engine: AsyncEngine) -> AsyncIterator[None]:
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE IF EXISTS dask_moves"))
        await conn.execute(
            text(
                "CREATE TABLE dask_moves AS SELECT i AS id, i AS k, 'row ' || i AS v "
                "FROM generate_series(1, 100) i"
            )
        )
    yield
    async with engine.begin() as conn:
        await conn.execute(text("DROP TABLE dask_moves"))


async def _hold_gate(engine: AsyncEngine) -> Any:
    conn = await engine.connect()
    await conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": GATE_KEY})
    await conn.commit()
    return conn


async def _release_gate(conn: Any) -> None:
    await conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": GATE_KEY})
    await conn.close()


async def test_a_writer_between_two_partitions_reads_changes_nothing_in_the_snapshot(
    cluster: Client, engine: AsyncEngine, moves: None
) -> None:
    session = await _snapshot_session(engine)
    try:
        before = await load_frame(session, text("select id, k, v from dask_moves"))
        frame = await dask_frame(session, text(GATED), partitions=3, on="k")
        got = await _read_with_a_writer_between_partitions(
            cluster, engine, frame, APPLICATION_PREFIX
        )
        again = await load_frame(session, text("select id, k, v from dask_moves"))
    finally:
        await session.close()
    assert_same_frame(_sorted(got, "id"), _sorted(before, "id"), "snapshot read")
    assert_same_frame(_sorted(again, "id"), _sorted(before, "id"), "the caller's snapshot")
    await _all_closed(engine)


async def test_dasks_own_read_sql_query_under_the_same_writer_is_torn(
    cluster: Client, engine: AsyncEngine, url: URL, moves: None
) -> None:
    sync_url = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    meta = pd.DataFrame({"id": pd.Series([], dtype="int64"), "v": pd.Series([], dtype=object)})
    meta.index = pd.Index([], dtype="int64", name="k")
    from sqlalchemy import column, select, table

    moves_t = table("dask_moves", column("id"), column("k"), column("v"))
    gate = select(moves_t.c.id, moves_t.c.k, moves_t.c.v).where(text(f"dask_gate({GATE_KEY})"))
    frame = dd.read_sql_query(
        gate,
        sync_url,
        index_col="k",
        divisions=[1, 34, 67, 100],
        meta=meta,
        engine_kwargs={"connect_args": {"application_name": "dask-torn"}, "poolclass": NullPool},
    )
    async with engine.connect() as conn:
        before = set((await conn.execute(text("select id from dask_moves"))).scalars())
    got = await _read_with_a_writer_between_partitions(cluster, engine, frame, "dask-torn")
    async with engine.connect() as conn:
        after = set((await conn.execute(text("select id from dask_moves"))).scalars())
    ids = list(got["id"])
    twice = {i for i in ids if ids.count(i) > 1}
    lost = (before & after) - set(ids)
    assert twice and lost, got.reset_index().sort_values("id").to_string()
    assert set(ids) != before and set(ids) != after
    await _all_closed(engine, "dask-torn")


# --- a killed worker, refusals, lifetime, connections ------------------------------------------


async def test_a_killed_worker_is_retried_in_the_same_snapshot(
    cluster: Client, engine: AsyncEngine, moves: None
) -> None:
    session = await _snapshot_session(engine)
    try:
        before = await load_frame(session, text("select id, k, v from dask_moves"))
        frame = await dask_frame(session, text(GATED), partitions=2, on="k")
        gate = await _hold_gate(engine)
        try:
            future = cluster.compute(frame)
            await _wait_until(_blocked(engine, APPLICATION_PREFIX, 2), "both partitions reading")
            processing = {w: ks for w, ks in cluster.processing().items() if ks}
            victim = sorted(processing)[0]
            pid = cluster.run(os.getpid, workers=[victim])[victim]
            os.kill(pid, signal.SIGKILL)
            async with engine.begin() as conn:  # a write after the snapshot: must not show
                await conn.execute(text("DELETE FROM dask_moves WHERE k < 50"))
        finally:
            await _release_gate(gate)
        got = await asyncio.to_thread(future.result)
    finally:
        await session.close()
    assert_same_frame(_sorted(got, "id"), _sorted(before, "id"), "after a killed worker")
    await _all_closed(engine)


async def test_a_session_that_has_written_is_refused(engine: AsyncEngine) -> None:
    session = await _snapshot_session(engine)
    try:
        await session.execute(text("CREATE TEMP TABLE dask_scratch (i int)"))
        with pytest.raises(SnapshotError, match="has written in its transaction"):
            await dask_frame(session, text("select 1 as i"), partitions=2, on="i")
    finally:
        await session.close()


async def test_a_session_with_pending_orm_changes_is_refused_and_nothing_is_flushed(
    engine: AsyncEngine,
) -> None:
    from blogdata.models import User

    session = await _snapshot_session(engine)
    try:
        session.add(User(email="pending@example.com", username="pending", hashed_password="x"))
        with pytest.raises(SnapshotError, match="pending ORM changes"):
            await dask_frame(session, text("select 1 as i"), partitions=2, on="i")
        with session.no_autoflush:
            written = await session.execute(text("SELECT pg_current_xact_id_if_assigned()"))
        assert written.scalar() is None and len(session.new) == 1
    finally:
        await session.close()


async def test_a_frame_computed_after_its_transaction_ended_fails_clearly(
    cluster: Client, engine: AsyncEngine
) -> None:
    session = await _snapshot_session(engine)
    try:
        frame = await dask_frame(session, text("select * from dask_rows"), partitions=2, on="id")
        await session.commit()  # the snapshot ends with the transaction
    finally:
        await session.close()
    with pytest.raises(SnapshotError, match="compute the frame before"):
        frame.compute()
    await _all_closed(engine)


async def test_a_cancelled_compute_cancels_its_reads_and_closes_every_connection(
    cluster: Client, engine: AsyncEngine, moves: None
) -> None:
    session = await _snapshot_session(engine)
    gate = None
    try:
        async with snapshot_frames(session) as snapshot:
            frame = await snapshot.frame(text(GATED), partitions=2, on="k")
            gate = await _hold_gate(engine)
            task = asyncio.create_task(snapshot.compute(frame))
            prefix = snapshot.application_prefix
            await _wait_until(_blocked(engine, prefix, 2), "both partitions reading")
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        await _all_closed(engine, prefix)  # while the gate is still held: cancelled, not done
    finally:
        if gate is not None:
            await _release_gate(gate)
        await session.close()


# --- secrets -----------------------------------------------------------------------------------


def _task_arguments(graph: Any) -> list[str]:
    """The repr and str of every function and argument the graph's tasks carry (as the
    worker's "Compute Failed" log and the dashboard show them)."""
    from dask._task_spec import DataNode, Task, TaskRef

    out: list[str] = []

    def walk(obj: Any) -> None:
        if isinstance(obj, Task):
            out.append(repr(obj.func))
            for arg in (*obj.args, *obj.kwargs.values()):
                walk(arg)
        elif isinstance(obj, DataNode):
            walk(obj.value)
        elif isinstance(obj, TaskRef):
            return
        elif isinstance(obj, list | tuple | set):
            for item in obj:
                walk(item)
        elif isinstance(obj, dict):
            for item in obj.values():
                walk(item)
        else:
            out.extend([repr(obj), str(obj)])
            for name in ("args", "keywords"):  # functools.partial
                walk(getattr(obj, name, ()))

    for task in graph.values():
        walk(task)
    return out


async def test_the_password_is_in_no_task_name_repr_error_or_log(
    cluster: Client, engine: AsyncEngine, url: URL, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    failing = "select i, 1 / (i - 7) as x from generate_series(1, 10) i"
    session = await _snapshot_session(engine)
    try:
        frame = await dask_frame(session, text(failing), partitions=3, on="i")
        with pytest.raises(QueryError, match="division by zero") as raised:
            frame.compute()
    finally:
        await session.close()
    graph = frame.__dask_graph__()
    shown = [repr(frame), str(list(graph.keys()))]
    shown += [repr(task) for task in graph.values()] + _task_arguments(graph)
    shown += [str(raised.value), repr(raised.value), caplog.text]
    for logs in (cluster.get_worker_logs(), {"scheduler": cluster.get_scheduler_logs()}):
        shown += [msg for records in logs.values() for _, msg in records]
    assert shown and not [s for s in shown if PASSWORD in s]
    assert "***" in repr(HiddenUrl(url)) and PASSWORD not in str(HiddenUrl(url))
    # The check can fail: dask's own read_sql_query puts the URL in its tasks.
    from sqlalchemy import column, select, table

    rows = table("dask_rows", column("id"), column("v"))
    theirs = dd.read_sql_query(
        select(rows.c.id, rows.c.v),
        url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False), "id",
        divisions=[1, 50, 100], meta=pd.DataFrame({"v": []}, index=pd.Index([], name="id")),
    )  # fmt: skip
    assert any(PASSWORD in shown for shown in _task_arguments(theirs.__dask_graph__()))
    await _all_closed(engine)


# --- a hot standby -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def standby_home() -> Iterator[Path]:
    with server_home("bd-dask-standby-", start=False) as home:
        yield home


async def test_partitions_read_a_hot_standby_in_its_own_snapshot(
    cluster: Client, standby_home: Path
) -> None:
    primary_url = embedded.start(standby_home).url("postgres")
    standby_url = replica.start(standby_home).url("postgres")
    primary = create_engine(primary_url, poolclass=NullPool)
    reader = create_engine(standby_url)
    try:
        async with primary.begin() as conn:
            await conn.execute(text("DROP TABLE IF EXISTS dask_standby"))
            await conn.execute(
                text("CREATE TABLE dask_standby AS SELECT i AS id, md5(i::text) AS v "
                     "FROM generate_series(1, 500) i")
            )  # fmt: skip

        async def replayed() -> bool:
            async with reader.connect() as conn:
                found = await conn.execute(text("SELECT to_regclass('dask_standby') IS NOT NULL"))
                if not found.scalar():
                    return False
                return bool((await conn.scalar(text("SELECT count(*) FROM dask_standby"))) == 500)

        await _wait_until(replayed, "the standby replayed the table")
        session = await _snapshot_session(reader)
        try:
            assert (await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
            stmt = text("select id, v from dask_standby")
            frame = await dask_frame(session, stmt, partitions=3, on="v")
            expected = await load_frame(session, stmt)
            got = frame.compute()
        finally:
            await session.close()
        assert_same_frame(_sorted(got, "id"), _sorted(expected, "id"), "standby")
        await _all_closed(reader)
    finally:
        await reader.dispose()
        await primary.dispose()
