"""The session connection's safety net: the driver beneath a session, savepoints, recovery.

Every load runs on the caller's own asyncpg connection. :func:`session_driver` finds it (and
makes sure the session's transaction has begun, so the load is part of it); :class:`Guard`
runs the load inside one SAVEPOINT when the connection is in a transaction, undoes just that on
any failure or interrupt, waits for a cancelled COPY to unwind, and invalidates the connection
when its state cannot be known, so the pool never hands out a connection in the middle of a COPY.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from blogdata.errors import BlogdataError, InvalidInputError, QueryError
from blogdata.translate import invalidate_connection, translating

__all__ = ["Guard", "session_driver"]

_SAVEPOINT = "blogdata_load"
_RECOVERY_SECONDS = 3.0
#: The driver's errors for "this connection is busy or gone" (not SQL errors).
_BUSY = (asyncpg.InterfaceError, asyncpg.exceptions.InternalClientError)
#: Every error of the driver's own (``asyncpg.DataError`` is a ValueError too).
_DRIVER = (asyncpg.PostgresError, OSError, *_BUSY)
T = TypeVar("T")


async def session_driver(db: AsyncSession | AsyncConnection) -> tuple[AsyncConnection, Any]:
    """Return the SQLAlchemy connection and its asyncpg connection, with the transaction begun."""
    if isinstance(db, AsyncSession):
        if db.autoflush:
            await db.flush()  # as session.execute would: pending ORM changes become visible
        conn = await db.connection()
    elif isinstance(db, AsyncConnection):
        conn = db
    else:
        raise InvalidInputError(
            f"expected an AsyncSession or AsyncConnection, got {type(db).__name__}"
        )
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, asyncpg.Connection):
        raise InvalidInputError("the loaders need a postgresql+asyncpg:// connection")
    if conn.in_transaction() and not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens its transaction lazily, on the first statement:
        # begin it as that statement would (BEGIN with the session's isolation level), without
        # a statement of our own (one round trip less); else by a statement.
        adapter: Any = raw.dbapi_connection
        start = getattr(adapter, "_start_transaction", None)
        mutex = getattr(adapter, "_execute_mutex", None)
        if start is not None and mutex is not None and adapter._transaction is None:
            async with translating("beginning the transaction", connection=conn), mutex:
                await start()
        if not driver.is_in_transaction():
            await conn.exec_driver_sql("SELECT 1")
    return conn, driver


async def _finally(work: Awaitable[T]) -> T:
    """Await ``work`` to its end even if this task is cancelled meanwhile (then re-cancel)."""
    task = asyncio.ensure_future(work)
    cancelled = False
    while True:
        try:
            result = await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                raise
            cancelled = True
            continue
        if cancelled:
            raise asyncio.CancelledError
        return result


class Guard:
    """The session connection's safety net: savepoints, recovery after interrupts, errors."""

    def __init__(self, conn: AsyncConnection, driver: Any) -> None:
        self.conn = conn
        self.driver = driver

    def _translating(self) -> translating:
        # OSError too: these calls talk to the driver's socket themselves.
        return translating("the query", connection=self.conn, also=(OSError,))

    async def read(self, work: Awaitable[T]) -> T:
        """Await a driver call outside a savepoint, translating its errors."""
        async with self._translating():
            return await work

    async def _recover(self, savepoint: bool) -> None:
        """Bring the connection back to where the load began, or invalidate it."""
        sql = (
            f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}; RELEASE SAVEPOINT {_SAVEPOINT}"
            if savepoint
            else "SELECT 1"
        )
        deadline = asyncio.get_running_loop().time() + _RECOVERY_SECONDS
        while True:
            try:
                await asyncio.wait_for(self.driver.execute(sql), _RECOVERY_SECONDS)
                return
            except _BUSY:
                # The cancelled COPY has not finished unwinding: asyncpg sent the server a
                # cancel request; wait for its answer (unless the connection is gone).
                alive = not self.driver.is_closed()
                if alive and asyncio.get_running_loop().time() < deadline:
                    await asyncio.sleep(0.01)
                    continue
            except (asyncpg.PostgresError, OSError, TimeoutError):
                pass
            break
        # State unknown: never let the pool hand this connection out again.
        await invalidate_connection(self.conn)

    async def rewind(self) -> None:
        """Undo what ran since the savepoint began (after a refused step), keeping it."""
        if self.driver.is_in_transaction():
            await self.driver.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """Run the block in a SAVEPOINT (if in a transaction); undo just it on any failure."""
        inside = self.driver.is_in_transaction()
        async with self._translating():  # after the recovery below, which it may invalidate
            try:
                if inside:
                    await self.driver.execute(f"SAVEPOINT {_SAVEPOINT}")
                yield
                if inside:
                    await self.driver.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
            except BaseException as exc:
                if not self.conn.invalidated:
                    await _finally(self._recover(inside))
                if isinstance(exc, ValueError | OverflowError) and not isinstance(
                    exc, (BlogdataError, *_DRIVER)
                ):
                    # The driver could not turn a value into Python (a date before year 1 ...).
                    raise QueryError(
                        f"a value in the result has no Python form ({exc}); filter it out or "
                        "cast it to text in the query"
                    ) from exc
                raise
