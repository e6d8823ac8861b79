"""The error boundary: SQLSTATEs raised by a real server, translated by translating()."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.errors import ConnectionLostError, QueryError, RetryableConflictError
from blogdata.translate import is_connection_lost, translate_db_error, translating


def _raise(state: str) -> str:
    # A PL/pgSQL block raising the SQLSTATE: the server's own error, through the real driver.
    return f"DO $$ BEGIN RAISE EXCEPTION 'raised on purpose' USING ERRCODE = '{state}'; END $$"


@pytest.mark.parametrize("state", ["40001", "40P01"], ids=["serialization", "deadlock"])
async def test_a_conflict_is_a_retryable_query_error(db: AsyncSession, state: str) -> None:
    with pytest.raises(RetryableConflictError, match="run the whole unit of work again") as info:
        async with translating("the transfer", connection=db), db.begin_nested():
            await db.execute(text(_raise(state)))
    assert isinstance(info.value, QueryError) and info.value.sqlstate == state
    assert await db.scalar(text("SELECT 1")) == 1  # only the savepoint was lost


@pytest.mark.parametrize("state", ["08006", "57P01", "57P02", "57P03"])
async def test_a_connection_sqlstate_is_a_lost_connection_and_the_connection_is_discarded(
    engine: AsyncEngine, state: str
) -> None:
    async with engine.connect() as conn:
        with pytest.raises(ConnectionLostError, match="run the unit of work again"):
            async with translating("the query", connection=conn):
                await conn.execute(text(_raise(state)))
        assert conn.invalidated  # never handed to anyone else
        await conn.rollback()  # does not raise
        assert await conn.scalar(text("SELECT 1")) == 1  # a fresh connection


async def test_translating_works_as_a_plain_with_in_sync_code(engine: AsyncEngine) -> None:
    def work(sync: Connection) -> None:
        with translating("the sync step", connection=sync):
            sync.execute(text("SELECT * FROM no_such_table_here"))

    async with engine.connect() as conn:
        with pytest.raises(QueryError, match="the sync step failed.*SQLSTATE 42P01"):
            await conn.run_sync(work)


async def test_other_exceptions_pass_through_translating_untouched(db: AsyncSession) -> None:
    with pytest.raises(KeyError):
        async with translating("the query", connection=db):
            raise KeyError("not a database error")


async def test_a_bad_statement_is_not_mistaken_for_a_lost_connection(db: AsyncSession) -> None:
    with pytest.raises(DBAPIError) as info:
        async with db.begin_nested():
            await db.execute(text("SELECT 1/0"))
    assert not is_connection_lost(info.value, db)
    assert type(translate_db_error(info.value, connection=db)) is QueryError
    assert await db.scalar(text("SELECT 1")) == 1
