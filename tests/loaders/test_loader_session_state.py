"""The session-state differential matrix (issue 17): a load is ``session.execute`` on the SAME
session, whatever the session's state and whatever the statement does to it.

Every statement here is "large" to the planner (``test_the_planner_expects_every_statement_to_be
large`` checks it): before issue 17, ``route="auto"`` sent results the planner expected to be
8 MB or more through a second, pooled connection, which saw none of the state below and took
the statement's effects (locks, settings) away from the session. The results themselves are
tiny (the planner cannot tell that ``n > 299999`` keeps one row of 300,000), so the matrix is
quick. Each case runs on every way a caller can read (``loader_oracle.WAYS``: ``auto``, the
forced ``copy`` and ``rows``, and ``stream_frames`` with each of them) against the oracle, the
driver's answer through ``session.execute`` on the same session.

The rows of the matrix: custom settings in all three forms under a multi-tenant row-level-security
policy (logged in as the tenant role, and through ``SET ROLE``), transaction time, ``random()``
after ``setseed``, ``application_name``, the backend pid, a temporary table, advisory locks taken
by the statement, ``set_config(..., false)`` in the statement, locks the session holds,
SERIALIZABLE write skew, ``idle_in_transaction_session_timeout``, ``client_encoding``; then
statements that run once (a failing one is never run again), and ``SHOW``, ``EXPLAIN [ANALYZE]``
and ``EXECUTE``, which COPY cannot wrap.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine
from blogdata.errors import QueryError, RetryableConflictError, RouteUnavailableError
from blogdata.translate import translating
from tests.loaders.oracle import WAYS, assert_same_frame, check_way, load, oracle

#: Three hundred thousand rows to the planner; ``ONE`` keeps the last (it expects a third).
BIG = "generate_series(1, 300000) AS big(n)"
ONE = "big.n > 299999"
#: A column the planner takes for 104 bytes, so every statement is "8 MB or more" to it.
PAD = "''::char(100) AS pad"
COPY_WAYS = ("binary", "copy", "stream-binary", "stream-copy")
BACKEND = "numpy_nullable"


def _large(select_list: str, where: str = ONE, joins: str = "") -> str:
    return f"SELECT {select_list}, {PAD} FROM {joins}{BIG} WHERE {where}"


@dataclass(frozen=True)
class Case:
    """A statement, its declared column types, and what to run before the oracle and the load."""

    id: str
    sql: str
    types: tuple[str, ...]
    before: tuple[str, ...] = ()


CASES = [
    Case("custom-setting-set", _large("current_setting('app.tenant_id') AS t"), ("text", "bpchar"),
         ("SET app.tenant_id = '2'",)),
    Case("custom-setting-set-local", _large("current_setting('app.tenant_id') AS t"),
         ("text", "bpchar"), ("SET LOCAL app.tenant_id = '2'",)),
    Case("custom-setting-set-config", _large("current_setting('app.tenant_id') AS t"),
         ("text", "bpchar"), ("SELECT set_config('app.tenant_id', '2', true)",)),
    Case("transaction-time", _large("now() AS now, transaction_timestamp() AS tx"),
         ("timestamptz", "timestamptz", "bpchar")),
    Case("current-date", _large("current_date AS today"), ("date", "bpchar")),
    Case("setseed", _large("random() AS r"), ("float8", "bpchar"), ("SELECT setseed(0.5)",)),
    Case("application-name", _large("current_setting('application_name') AS app"),
         ("text", "bpchar"), ("SET application_name = 'blogdata state matrix'",)),
    Case("backend-pid", _large("pg_backend_pid() AS pid"), ("int4", "bpchar")),
    Case("temporary-table", _large("t.v", joins="st_temp t, "), ("int4", "bpchar"),
         ("CREATE TEMP TABLE IF NOT EXISTS st_temp AS SELECT 7 AS v",)),
]  # fmt: skip


async def _start(db: AsyncSession) -> None:
    """Begin the session's transaction now, and let time pass (a new connection's now() moves)."""
    await db.execute(text("SELECT 1"))
    await asyncio.sleep(0.2)


async def _planned_bytes(db: AsyncSession, sql: str) -> float:
    plan = (await db.execute(text("EXPLAIN (FORMAT JSON) " + sql))).scalar_one()
    top = (json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]
    return float(top["Plan Rows"]) * float(top["Plan Width"])


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
@pytest.mark.parametrize("way", WAYS)
async def test_the_load_sees_the_sessions_state(db: AsyncSession, case: Case, way: str) -> None:
    await _start(db)
    for sql in case.before:
        await db.execute(text(sql))
    expected = await oracle(db, text(case.sql), case.types, BACKEND)
    assert expected.frame is not None and len(expected.frame) == 1, expected.error
    for sql in case.before:  # setseed again: the load must draw the same number
        await db.execute(text(sql))
    got = await load(db, text(case.sql), BACKEND, way, chunk_size=2)
    assert_same_frame(got, expected.frame, f"{case.id}/{way}")


# ---- row-level security keyed on a custom setting -------------------------------------------


@dataclass(frozen=True)
class Tenants:
    """A committed table with a tenant policy, and a LOGIN role whose default tenant is 1."""

    url: URL
    role: str
    table: str


@pytest.fixture(scope="module")
async def tenants(committed_url: URL) -> AsyncIterator[Tenants]:
    suffix = uuid.uuid4().hex[:10]
    role, table = f"st_tenant_{suffix}", f"st_rows_{suffix}"
    admin = create_engine(committed_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text(f'CREATE ROLE "{role}" LOGIN'))
            await conn.execute(text(f"ALTER ROLE \"{role}\" SET app.tenant_id = '1'"))
            await conn.execute(text(f"CREATE TABLE {table} (id int, tenant int, v text)"))
            await conn.execute(
                text(
                    f"INSERT INTO {table} VALUES (1, 1, 'one a'), (2, 2, 'two a'),"
                    " (3, 1, 'one b'), (4, 2, 'two b'), (5, 1, 'one c')"
                )
            )
            await conn.execute(text(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY"))
            await conn.execute(
                text(
                    f"CREATE POLICY tenant_only ON {table}"
                    " USING (tenant = current_setting('app.tenant_id')::int)"
                )
            )
            await conn.execute(text(f'GRANT SELECT ON {table} TO "{role}"'))
            await conn.execute(text(f'GRANT USAGE ON SCHEMA public TO "{role}"'))
        yield Tenants(committed_url, role, table)
    finally:
        async with admin.connect() as conn:
            await conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
            await conn.execute(text(f'REVOKE ALL ON SCHEMA public FROM "{role}"'))
            await conn.execute(text(f'DROP ROLE IF EXISTS "{role}"'))
        await admin.dispose()


TENANT_FORMS = {
    "set": "SET app.tenant_id = '2'",
    "set-local": "SET LOCAL app.tenant_id = '2'",
    "set-config-local": "SELECT set_config('app.tenant_id', '2', true)",
}


@pytest.mark.parametrize("identity", ["login", "set-role"])
@pytest.mark.parametrize("form", list(TENANT_FORMS))
@pytest.mark.parametrize("way", WAYS)
async def test_a_custom_setting_chooses_the_tenants_rows(
    tenants: Tenants, identity: str, form: str, way: str
) -> None:
    """Tenant 2 set on the session: the frame has tenant 2's rows, as session.execute has
    (a role default of tenant 1 is what a new connection of that role would see)."""
    url = tenants.url.set(username=tenants.role) if identity == "login" else tenants.url
    engine = create_engine(url, poolclass=NullPool)
    stmt = text(_large("t.id, t.tenant, t.v", joins=f"{tenants.table} t, ") + " ORDER BY t.id")
    try:
        async with AsyncSession(engine) as db:
            if identity == "set-role":
                await db.execute(text(f'SET ROLE "{tenants.role}"'))
            await db.execute(text(TENANT_FORMS[form]))
            types = ("int4", "int4", "text", "bpchar")
            expected = await oracle(db, stmt, types, BACKEND)
            assert expected.frame is not None, expected.error
            assert [r[0] for r in expected.rows] == [2, 4], expected.rows  # tenant 2's rows
            assert (await db.execute(text("SELECT current_user"))).scalar() == tenants.role
            got = await load(db, stmt, BACKEND, way, chunk_size=1)
            assert_same_frame(got, expected.frame, f"{form}/{identity}/{way}")
    finally:
        await engine.dispose()


# ---- what the statement does happens to the session --------------------------------------------


@pytest.mark.parametrize("way", WAYS)
async def test_an_advisory_lock_taken_by_the_statement_is_the_sessions(
    db: AsyncSession, way: str
) -> None:
    key = uuid.uuid4().int % 2_000_000_000 + 1
    stmt = text(_large(f"pg_try_advisory_lock({key}) AS got"))
    unlock = text(f"SELECT pg_advisory_unlock({key})")
    expected = await oracle(db, stmt, ("bool", "bpchar"), BACKEND)
    assert expected.frame is not None and expected.rows[0][0] is True
    assert (await db.execute(unlock)).scalar() is True
    got = await load(db, stmt, BACKEND, way, chunk_size=2)
    assert_same_frame(got, expected.frame, way)
    assert (await db.execute(unlock)).scalar() is True, "the session did not hold the lock"
    holders = await db.execute(
        text(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND objid = :k"
            " AND objsubid = 1 AND classid = 0"
        ),
        {"k": key},
    )
    assert holders.all() == [], "another backend holds the lock the statement took"


@pytest.mark.parametrize("way", WAYS)
async def test_set_config_in_the_statement_changes_the_session(db: AsyncSession, way: str) -> None:
    reset = text("SELECT set_config('blogdata.probe', 'before', false)")
    probe = text("SELECT current_setting('blogdata.probe')")
    stmt = text(_large("set_config('blogdata.probe', 'loaded', false) AS v"))
    await db.execute(reset)
    expected = await oracle(db, stmt, ("text", "bpchar"), BACKEND)
    assert expected.frame is not None and (await db.execute(probe)).scalar() == "loaded"
    await db.execute(reset)
    got = await load(db, stmt, BACKEND, way, chunk_size=2)
    assert_same_frame(got, expected.frame, way)
    assert (await db.execute(probe)).scalar() == "loaded"


async def _a_post(db: AsyncSession) -> int:
    user = await db.execute(
        text(
            "INSERT INTO users (email, username, hashed_password)"
            " VALUES ('lock@example.com', 'locker', 'x') RETURNING id"
        )
    )
    post = await db.execute(
        text("INSERT INTO posts (title, author_id) VALUES ('locked', :u) RETURNING id"),
        {"u": user.scalar_one()},
    )
    return int(post.scalar_one())


@pytest.mark.parametrize("held", ["row-updated", "table-locked", "advisory-locked"])
@pytest.mark.parametrize("way", WAYS)
async def test_a_statement_needing_a_lock_the_session_holds_completes(
    db: AsyncSession, held: str, way: str
) -> None:
    key = uuid.uuid4().int % 2_000_000_000 + 1
    if held == "row-updated":
        post = await _a_post(db)
        await db.execute(text("UPDATE posts SET views = 5 WHERE id = :p"), {"p": post})
        sql = _large("p.views", joins="posts p, ", where=f"{ONE} AND p.id = {post}")
        sql += " FOR UPDATE OF p"
        types: tuple[str, ...] = ("int4", "bpchar")
    elif held == "table-locked":
        await db.execute(text("LOCK TABLE posts IN ACCESS EXCLUSIVE MODE"))
        sql = _large("(SELECT count(*) FROM posts) AS posts")
        types = ("int8", "bpchar")
    else:
        await db.execute(text(f"SELECT pg_advisory_lock({key})"))
        sql = _large(f"(SELECT 1 FROM pg_advisory_xact_lock({key})) AS locked")
        types = ("int4", "bpchar")
    try:
        expected = await oracle(db, text(sql), types, BACKEND)
        assert expected.frame is not None, expected.error
        got = await asyncio.wait_for(load(db, text(sql), BACKEND, way, chunk_size=2), 20)
        assert_same_frame(got, expected.frame, f"{held}/{way}")
    finally:
        if held == "advisory-locked":
            await db.execute(text(f"SELECT pg_advisory_unlock({key})"))


# ---- SERIALIZABLE: the reads take part in the session's SSI ------------------------------------


@pytest.fixture
async def on_call(committed_url: URL) -> AsyncIterator[tuple[AsyncEngine, str]]:
    """A committed table of two doctors, both on call, and an engine on its database."""
    table = f"st_oncall_{uuid.uuid4().hex[:10]}"
    engine = create_engine(committed_url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.execute(text(f"CREATE TABLE {table} (id int PRIMARY KEY, on_call bool)"))
        await conn.execute(text(f"INSERT INTO {table} VALUES (1, true), (2, true)"))
    try:
        yield engine, table
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP TABLE {table}"))
        await engine.dispose()


@pytest.mark.parametrize("way", WAYS)
async def test_serializable_write_skew_fails_one_of_the_two_commits(
    on_call: tuple[AsyncEngine, str], way: str
) -> None:
    """Two doctors on call; each session checks that the other is on call (through the loader)
    and takes itself off. Under SERIALIZABLE exactly one of them must fail."""
    engine, table = on_call
    stmt = text(_large("d.id, d.on_call", joins=f"{table} d, ", where=f"{ONE} AND d.on_call"))
    sessions = [AsyncSession(engine), AsyncSession(engine)]
    outcomes: list[str] = []
    try:
        for session in sessions:
            await session.connection(execution_options={"isolation_level": "SERIALIZABLE"})
            frame = await load(session, stmt, BACKEND, way, chunk_size=1)
            assert len(frame) == 2, frame
        for me, session in enumerate(sessions, start=1):
            try:
                async with translating("going off call", connection=session):
                    await session.execute(
                        text(f"UPDATE {table} SET on_call = false WHERE id = :me"), {"me": me}
                    )
                    await session.commit()
                outcomes.append("committed")
            except RetryableConflictError:
                outcomes.append("conflict")
                await session.rollback()
    finally:
        for session in sessions:
            await session.close()
    assert sorted(outcomes) == ["committed", "conflict"], outcomes
    async with engine.connect() as conn:
        on = (await conn.execute(text(f"SELECT count(*) FROM {table} WHERE on_call"))).scalar()
    assert on == 1


# ---- the session stays alive while it loads ----------------------------------------------------


SLOW = _large("big.n, (SELECT 1 FROM pg_sleep(1.4)) AS slept")


@pytest.mark.parametrize("where", ["set-local", "database-default"])
@pytest.mark.parametrize("way", WAYS)
async def test_idle_in_transaction_timeout_does_not_end_a_session_that_is_loading(
    db: AsyncSession, scratch_url: URL, where: str, way: str
) -> None:
    """A load longer than idle_in_transaction_session_timeout (1 s here): the session was busy
    all along, so it still answers afterwards."""
    engine: AsyncEngine | None = None
    session = db
    if where == "database-default":
        admin = create_engine(scratch_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        async with admin.connect() as conn:
            name = scratch_url.database
            await conn.execute(
                text(f"ALTER DATABASE \"{name}\" SET idle_in_transaction_session_timeout = '1s'")
            )
        await admin.dispose()
        engine = create_engine(scratch_url, poolclass=NullPool)
        session = AsyncSession(engine)
    try:
        if where == "set-local":
            await session.execute(text("SET LOCAL idle_in_transaction_session_timeout = '1s'"))
        else:
            await session.execute(text("SELECT 1"))  # the transaction begins
        frame = await load(session, text(SLOW), BACKEND, way, chunk_size=2)
        assert frame["n"].tolist() == [300_000] and frame["slept"].tolist() == [1]
        assert (await session.execute(text("SELECT 1"))).scalar() == 1
    finally:
        if engine is not None:
            await session.close()
            await engine.dispose()


# ---- client_encoding ----------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
async def test_a_latin1_client_encoding_gives_the_drivers_answer_or_a_clear_refusal(
    db: AsyncSession, way: str
) -> None:
    """After ``SET client_encoding = 'LATIN1'`` asyncpg encodes and decodes VALUES in LATIN1 but
    still sends the SQL text as UTF-8, so a non-ASCII literal in the text comes back garbled
    ('é' as 'Ã©') while a bound 'é' comes back intact. COPY's CSV would be LATIN1 bytes of what
    the server understood: the copy route refuses, every other way gives the driver's answer."""
    await db.execute(text("SET LOCAL client_encoding = 'LATIN1'"))
    stmt = text(_large("'é' AS lit, :p AS bound")).bindparams(p="é")
    expected = await oracle(db, stmt, ("text", "varchar", "bpchar"), BACKEND)
    assert expected.frame is not None, expected.error
    try:
        got = await load(db, stmt, BACKEND, way, chunk_size=2)
    except RouteUnavailableError as exc:
        assert way in COPY_WAYS and "client_encoding" in str(exc), (way, exc)
        return
    assert way not in COPY_WAYS, f"{way} read a LATIN1 session through COPY"
    assert_same_frame(got, expected.frame, way)


# ---- a statement runs once ----------------------------------------------------------------------


async def _executions(engine: AsyncEngine, marker: str, seen: set[tuple[int, Any]]) -> None:
    """Collect (pid, query_start) of every backend sleeping in a statement carrying ``marker``."""
    async with engine.connect() as conn:
        # Autocommit: inside one transaction, pg_stat_activity would repeat its first snapshot.
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        while True:
            rows = await conn.execute(
                text(
                    "SELECT pid, query_start FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
                    " AND pid <> pg_backend_pid() AND strpos(query, :m) > 0"
                ),
                {"m": marker},
            )
            seen.update((int(pid), start) for pid, start in rows)
            await asyncio.sleep(0.02)


async def _watched(engine: AsyncEngine, marker: str, work: Any) -> tuple[set[tuple[int, Any]], Any]:
    """Run ``work`` while watching executions; return them and what ``work`` raised (or None)."""
    seen: set[tuple[int, Any]] = set()
    watcher = asyncio.create_task(_executions(engine, marker, seen))
    await asyncio.sleep(0.1)
    error = None
    try:
        await work
    except Exception as exc:  # the statement divides by zero: the driver's error, or ours
        error = exc
    finally:
        await asyncio.sleep(0.1)
        watcher.cancel()
        await asyncio.gather(watcher, return_exceptions=True)
    return seen, error


@pytest.mark.parametrize("way", WAYS)
async def test_a_failing_statement_runs_once_on_the_sessions_backend(
    engine: AsyncEngine, db: AsyncSession, way: str
) -> None:
    """It sleeps 0.4 s (which a watcher sees in pg_stat_activity), emits rows, then divides by
    zero: session.execute runs it once; so must every way, on the session's own backend."""
    marker = f"once_{uuid.uuid4().hex[:10]}"
    sql = _large(
        f"big.n, (SELECT 1 FROM pg_sleep(0.4)) AS slept, 1 / (big.n - 300000) AS boom,"
        f" '{marker}' AS marker",
        where="big.n > 299990",
    )
    pid = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    runs, error = await _watched(engine, marker, db.execute(text(sql)))
    assert error is not None and [p for p, _ in runs] == [pid], runs  # the oracle: once
    await db.rollback()
    runs, error = await _watched(engine, marker, load(db, text(sql), BACKEND, way, chunk_size=2))
    assert isinstance(error, QueryError) and error.sqlstate == "22012", error
    assert [p for p, _ in runs] == [pid], f"{way} ran it {len(runs)} times, on {runs}"
    assert (await db.execute(text("SELECT 1"))).scalar() == 1


@pytest.mark.parametrize("fails_at", ["first-row", "last-row"])
@pytest.mark.parametrize("way", WAYS)
async def test_a_syntax_error_raised_while_the_statement_runs_is_not_a_reason_to_run_it_again(
    db: AsyncSession, fails_at: str, way: str
) -> None:
    """42601 from dynamic SQL at run time (not the COPY wrapper refused by the parser): the
    sequence advances exactly as with session.execute, and the error is the statement's."""
    bad_at = 299991 if fails_at == "first-row" else 300000
    await db.execute(text("CREATE TEMP SEQUENCE IF NOT EXISTS st_seq"))
    await db.execute(text("SELECT nextval('st_seq')"))  # from here on last_value counts calls
    await db.execute(
        text(
            "CREATE OR REPLACE FUNCTION pg_temp.st_bad(g int) RETURNS int LANGUAGE plpgsql AS"
            f" $$ BEGIN IF g = {bad_at} THEN EXECUTE 'selec 1'; END IF; RETURN g; END $$"
        )
    )
    await db.commit()  # the fixture's outer transaction keeps it, and rolls it all back
    sql = _large("nextval('st_seq') AS v, pg_temp.st_bad(big.n) AS g", where="big.n > 299990")
    last = text("SELECT last_value FROM st_seq")
    start = (await db.execute(last)).scalar_one()
    with pytest.raises(Exception, match="selec"):
        await db.execute(text(sql))
    await db.rollback()  # rolls back the session's savepoint; the sequence stays advanced
    oracle_ran = (await db.execute(last)).scalar_one() - start
    assert oracle_ran == (1 if fails_at == "first-row" else 10)
    before = (await db.execute(last)).scalar_one()
    with pytest.raises(QueryError, match="selec") as caught:
        await load(db, text(sql), BACKEND, way, chunk_size=2)
    assert caught.value.sqlstate == "42601"
    assert (await db.execute(last)).scalar_one() - before == oracle_ran, f"{way} ran it again"


# ---- statements COPY cannot wrap ---------------------------------------------------------------


async def _check_unwrappable(db: AsyncSession, stmt: Any, types: Sequence[str], way: str) -> None:
    outcome = await check_way(db, stmt, types, BACKEND, way)
    assert outcome == ("unavailable" if way in COPY_WAYS else "equal"), (way, outcome)


@pytest.mark.parametrize("way", WAYS)
async def test_show_gives_a_frame(db: AsyncSession, way: str) -> None:
    await db.execute(text("SET LOCAL search_path = public, pg_catalog"))
    await _check_unwrappable(db, text("SHOW search_path"), ("text",), way)


@pytest.mark.parametrize("way", WAYS)
async def test_explain_gives_a_frame(db: AsyncSession, way: str) -> None:
    stmt = text("EXPLAIN SELECT id, title FROM posts WHERE id = 1")
    await _check_unwrappable(db, stmt, ("text",), way)


@pytest.mark.parametrize("way", WAYS)
async def test_execute_of_a_prepared_statement_gives_a_frame(db: AsyncSession, way: str) -> None:
    name = f"st_q_{uuid.uuid4().hex[:8]}"
    await db.execute(text(f"PREPARE {name} AS SELECT g, g::text AS t FROM generate_series(1, 5) g"))
    try:
        await _check_unwrappable(db, text(f"EXECUTE {name}"), ("int4", "text"), way)
    finally:
        await db.execute(text(f"DEALLOCATE {name}"))


@pytest.mark.parametrize("way", WAYS)
async def test_explain_analyze_gives_a_frame_and_runs_its_statement_once(
    db: AsyncSession, way: str
) -> None:
    await db.execute(text("CREATE TEMP TABLE st_ins (id int)"))
    stmt = text("EXPLAIN ANALYZE INSERT INTO st_ins VALUES (1) RETURNING id")
    count = text("SELECT count(*) FROM st_ins")
    try:
        frame = await load(db, stmt, BACKEND, way, chunk_size=100)
    except RouteUnavailableError as exc:
        assert way in COPY_WAYS and "nothing ran" in str(exc), (way, exc)
        assert (await db.execute(count)).scalar() == 0
        return
    assert way not in COPY_WAYS
    assert list(frame.columns) == ["QUERY PLAN"] and frame.dtypes.iloc[0] == pd.StringDtype()
    lines = frame["QUERY PLAN"].tolist()
    assert "Insert on st_ins" in lines[0] and any("actual time" in line for line in lines)
    assert (await db.execute(count)).scalar() == 1, "EXPLAIN ANALYZE ran its INSERT again"


# ---- every statement above was one the old auto route sent elsewhere ----------------------------


async def test_the_planner_expects_every_statement_to_be_large(db: AsyncSession) -> None:
    await db.execute(text("CREATE TEMP TABLE st_temp AS SELECT 7 AS v"))
    await db.execute(text("SET LOCAL app.tenant_id = '2'"))
    statements = [c.sql for c in CASES] + [
        _large("pg_try_advisory_lock(1) AS got"),
        _large("set_config('blogdata.probe', 'loaded', false) AS v"),
        _large("(SELECT count(*) FROM posts) AS posts"),
        _large("p.views", joins="posts p, ", where=f"{ONE} AND p.id = 1"),
        _large("d.id", joins="posts d, ", where=f"{ONE} AND d.views > 0"),
        SLOW,
        _large("'é' AS lit"),
        _large("big.n, 1 / (big.n - 300000) AS boom, 'm' AS marker", where="big.n > 299990"),
    ]
    for sql in statements:
        assert await _planned_bytes(db, sql) >= 8 << 20, sql
