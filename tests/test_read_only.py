"""Read-only means read-only on every path (issue 17, defect 10), on a real server.

Before the fix, ``session_scope(engine, read_only=True)`` and ``read_session(engine)`` took
inserts and committed them when given a plain engine (read-only-ness lived only in the read
engine's setup), and any read session became writable after ``COMMIT``/``ROLLBACK`` sent as SQL
text or ``SET TRANSACTION READ WRITE``: the write landed on the primary.

Each attack below runs on every way of opening a read session; each must raise
ReadOnlySessionError, commit nothing (checked from another connection), and leave the pool's
one connection clean (a normal session on the same engine then writes).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import NullPool, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine, create_sessionmaker
from blogdata.db.routing import create_read_engine, read_session, read_sessionmaker
from blogdata.db.sessions import session_scope
from blogdata.errors import ReadOnlySessionError
from blogdata.loaders import load_frame
from blogdata.models import Tag
from tests.helpers import create_database, drop_database, execute_sql, scalar_sql

PROBE = "read_only_probe"
INSERT = f"INSERT INTO {PROBE} VALUES (1)"


@dataclass
class Engines:
    """A plain pooled engine and a read engine on one database, one connection each."""

    url: URL
    plain: AsyncEngine
    reader: AsyncEngine


@pytest.fixture(scope="module")
async def engines(server_url: URL) -> AsyncIterator[Engines]:
    """One pooled connection per engine, so every test reuses (and must leave clean) it."""
    url = await create_database(server_url, "blogdata_read_only")
    await execute_sql(url, f"CREATE TABLE {PROBE} (x int)")
    plain = create_engine(url, pool_size=1, max_overflow=0)
    reader = create_read_engine(url, pool_size=1, max_overflow=0)
    try:
        yield Engines(url, plain, reader)
    finally:
        await reader.dispose()
        await plain.dispose()
        await drop_database(server_url, "blogdata_read_only")


@asynccontextmanager
async def _closing(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    async with session:
        yield session


Opener = Callable[[Engines], AbstractAsyncContextManager[AsyncSession]]

OPENERS: dict[str, Opener] = {
    "session_scope-read_only-given-engine": lambda e: session_scope(e.plain, read_only=True),
    "read_session-given-engine": lambda e: read_session(e.plain),
    "read_sessionmaker-given-engine": lambda e: _closing(read_sessionmaker(e.plain)()),
    "read_session-read-engine": lambda e: read_session(e.reader),
    "session_scope-read_only-read-engine": lambda e: session_scope(e.reader, read_only=True),
    "plain-session-on-the-read-engine": lambda e: _closing(create_sessionmaker(e.reader)()),
    "autocommit-read_session": lambda e: read_session(
        e.plain.execution_options(isolation_level="AUTOCOMMIT")
    ),
}

#: Each attack: SQL text run in order ("commit()" means ``await session.commit()``).
ATTACKS: dict[str, list[str]] = {
    "insert": [INSERT],
    "insert-in-a-later-transaction": ["SELECT 1", "commit()", "SELECT 1", "commit()", INSERT],
    "commit-text-then-insert": ["SELECT 1", "COMMIT", INSERT],
    "commit-text-first": ["COMMIT", INSERT],
    "rollback-text-then-insert": ["SELECT 1", "ROLLBACK", INSERT],
    "end-text-then-insert": ["END", INSERT],
    "commit-text-in-a-later-transaction": ["SELECT 1", "commit()", "COMMIT", INSERT],
    "set-transaction-read-write-first": ["SET TRANSACTION READ WRITE", INSERT],
    "set-transaction-read-write-later": ["SELECT 1", "SET TRANSACTION READ WRITE", INSERT],
    "set_config-read-write": ["SELECT set_config('transaction_read_only', 'off', true)", INSERT],
    "session-characteristics-read-write": [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ WRITE",
        "commit()",
        INSERT,
    ],
    "default_transaction_read_only-off": [
        "SET default_transaction_read_only = off",
        "commit()",
        "SET TRANSACTION READ WRITE",
        INSERT,
    ],
    "default_transaction_read_only-off-then-commit-text": [
        "SET default_transaction_read_only = off",
        "COMMIT",
        INSERT,
    ],
}


async def _run(db: AsyncSession, steps: list[str]) -> None:
    for step in steps:
        if step == "commit()":
            await db.commit()
        else:
            await db.execute(text(step))


async def _rows(url: URL) -> int:
    count = await scalar_sql(url, f"SELECT count(*) FROM {PROBE}")
    assert isinstance(count, int)
    return count


async def _normal_session_can_write(engine: AsyncEngine, url: URL) -> None:
    """The pool's connection came back clean: a normal session writes (then undoes it)."""
    async with session_scope(engine) as db:
        await db.execute(text(INSERT))
        assert await db.scalar(text("SHOW transaction_read_only")) == "off"
    assert await _rows(url) == 1
    await execute_sql(url, f"DELETE FROM {PROBE}")


@pytest.mark.parametrize("attack", list(ATTACKS))
@pytest.mark.parametrize("opener", list(OPENERS))
async def test_no_sql_makes_a_read_session_write(
    engines: Engines, opener: str, attack: str
) -> None:
    with pytest.raises(ReadOnlySessionError) as caught:
        async with OPENERS[opener](engines) as db:
            await _run(db, ATTACKS[attack])
    message = str(caught.value)
    assert "read" in message and ("session" in message or "READ ONLY" in message)
    assert await _rows(engines.url) == 0  # nothing was committed, seen from another connection
    await _normal_session_can_write(engines.plain, engines.url)


async def test_a_transaction_ended_by_sql_refuses_every_statement_until_rolled_back(
    engines: Engines,
) -> None:
    async with read_session(engines.plain) as db:
        await db.execute(text("SELECT 1"))
        with pytest.raises(ReadOnlySessionError, match=r"use|session\.commit\(\)"):
            await db.execute(text("COMMIT"))
        for _ in range(2):  # the caller caught it and went on: still refused, never run
            with pytest.raises(ReadOnlySessionError, match="ended by SQL text"):
                await db.execute(text(INSERT))
        await db.rollback()
        assert await db.scalar(text("SHOW transaction_read_only")) == "on"
        with pytest.raises(ReadOnlySessionError, match="tried to write"):
            await db.execute(text(INSERT))
    assert await _rows(engines.url) == 0
    await _normal_session_can_write(engines.plain, engines.url)


async def test_an_orm_write_on_a_read_session_of_a_given_engine_is_refused(
    engines: Engines, database_url: URL
) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with pytest.raises(ReadOnlySessionError):
            async with session_scope(engine, read_only=True) as db:
                db.add(Tag(name="read-only-never"))
                await db.flush()
        count = select(func.count()).select_from(Tag).where(Tag.name == "read-only-never")
        async with engine.connect() as conn:
            assert await conn.scalar(count) == 0
    finally:
        await engine.dispose()


@pytest.mark.parametrize("opener", list(OPENERS)[:-1])
async def test_reads_work_on_every_read_session_across_transactions(
    engines: Engines, opener: str
) -> None:
    await execute_sql(engines.url, f"INSERT INTO {PROBE} SELECT generate_series(1, 50)")
    try:
        async with OPENERS[opener](engines) as db:
            for _ in range(3):
                assert await db.scalar(text(f"SELECT count(*) FROM {PROBE}")) == 50
                assert await db.scalar(text("SHOW transaction_read_only")) == "on"
                frame = await load_frame(db, text(f"SELECT x FROM {PROBE} ORDER BY x"))
                assert frame["x"].tolist() == list(range(1, 51))
                await db.commit()
    finally:
        await execute_sql(engines.url, f"DELETE FROM {PROBE}")


async def test_a_connection_of_the_read_engine_is_read_only_too(engines: Engines) -> None:
    async with engines.reader.connect() as conn:
        with pytest.raises(ReadOnlySessionError):
            await conn.execute(text("COMMIT"))
        await conn.rollback()
        with pytest.raises(ReadOnlySessionError):
            await conn.execute(text(INSERT))
        await conn.rollback()
    assert await _rows(engines.url) == 0
