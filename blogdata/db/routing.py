"""Read routing: read sessions on the read server (a hot standby), and waiting for it to catch up.

With ``BLOGDATA_READ_URL`` set, :func:`read_session` (also ``session_scope(read_only=True)``)
and :func:`get_read_engine` read from that server; unset, they read from the primary, as every
other session does.

Read-only is a property of the session (and of every connection of a read engine), whatever
engine it runs on: a plain pooled engine, the read engine, an ``execution_options()`` copy.
Every transaction there is ``READ ONLY`` from its first statement and cannot be made writable
by SQL:

- it begins ``BEGIN READ ONLY`` (SQLAlchemy's ``postgresql_readonly``, asyncpg's
  ``transaction(readonly=True)``), and before the caller's first statement blogdata runs
  ``SELECT set_config('transaction_read_only', 'on', true)``, which also takes the
  transaction's snapshot, so a later ``SET TRANSACTION READ WRITE`` is refused by PostgreSQL
  ("must be set before any query");
- after every statement, and before the next, blogdata asks asyncpg whether the transaction is
  still open (``is_in_transaction()``): a ``COMMIT``, ``ROLLBACK``, ``END`` or ``ABORT`` sent as
  SQL text ends it, and the statements after it would run outside any transaction, writable,
  so that statement and every later one raise ReadOnlySessionError until the session is
  rolled back (end transactions with ``session.commit()`` / ``session.rollback()``);
- a session-level ``SET default_transaction_read_only = off`` or ``SET SESSION
  CHARACTERISTICS AS TRANSACTION READ WRITE`` changes nothing: the next transaction begins
  READ ONLY all the same. AUTOCOMMIT is refused on a read session (it would run outside a
  transaction). Because these guards live in the transaction, not in the connection's
  settings, a pooled connection leaves a read session as it came: a normal session on the
  same engine can write.

A write fails the same way on a standby and on a primary:
:class:`~blogdata.errors.ReadOnlySessionError`, not the driver's "cannot execute ... in a
read-only transaction". Choose an isolation level with ``execution_options(isolation_level=...)``
(a ``SET TRANSACTION ISOLATION LEVEL`` statement comes after the snapshot, too late).

A standby replays the primary's WAL a little behind it. After writing on the primary, call
:func:`wait_for_replica` before analysing on a read session to read your own writes: it waits
until the standby has replayed the primary's current WAL position (``pg_current_wal_lsn()`` on
the primary, ``pg_last_wal_replay_lsn()`` on the standby), or raises
:class:`~blogdata.errors.ReplicationLagError` after ``timeout`` seconds.

When the read server cannot be reached, a read raises :class:`DatabaseUnavailableError` naming
it; only ``BLOGDATA_READ_FALLBACK=true`` (or ``fallback=True``) reads from the primary instead.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, Connection, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blogdata._checks import check_engine
from blogdata._url import server_address
from blogdata.config import get_settings, parse_read_url
from blogdata.db.engine import (
    connector,
    create_engine,
    get_engine,
    split_connect_args,
    url_or_start_embedded,
)
from blogdata.errors import DatabaseUnavailableError, ReadOnlySessionError, ReplicationLagError
from blogdata.translate import sqlstate_of, translate_db_error

__all__ = [
    "create_read_engine",
    "dispose_read_engine",
    "get_read_engine",
    "read_only_engine",
    "read_session",
    "read_sessionmaker",
    "read_url",
    "replay_lag_bytes",
    "wait_for_replica",
]

logger = logging.getLogger("blogdata.db.routing")


def read_url() -> URL | None:
    """Return the configured read server's URL (``BLOGDATA_READ_URL``), or None."""
    return get_settings().read


def _read_connector(read: URL, timeout: float, fallback: URL | None, **extra: Any) -> Any:
    """Connect to the read server; on failure name it, or (if asked) connect to the primary."""
    inner = connector(read, timeout, **extra)
    where = server_address(read)

    async def connect() -> Any:
        try:
            return await inner()
        except DatabaseUnavailableError as exc:
            if fallback is None:
                raise DatabaseUnavailableError(
                    f"cannot reach the read server (BLOGDATA_READ_URL) at {where}: "
                    f"{exc.__cause__}; "
                    "start it (`blogdata db replica start` for the embedded standby), unset "
                    "BLOGDATA_READ_URL to read from the primary, or set "
                    "BLOGDATA_READ_FALLBACK=true to read from the primary while it is down"
                ) from exc
            logger.warning(
                "the read server at %s is unreachable; reading from the primary at %s "
                "(BLOGDATA_READ_FALLBACK is on)",
                where,
                server_address(fallback),
            )
            return await connector(fallback, timeout, **extra)()

    return connect


#: The execution option that makes a connection read-only (set by read sessions and engines).
_READ_ONLY = "blogdata_read_only"
#: ``Connection.info`` key: a weak reference to the transaction already made READ ONLY.
_SEALED = "blogdata_read_only_transaction"
#: Makes the transaction READ ONLY (again) and takes its snapshot: READ WRITE is then refused.
_SEAL_SQL = "SELECT set_config('transaction_read_only', 'on', true)"

_ENDED = (
    "the read session's transaction was ended by SQL text (COMMIT, ROLLBACK, END, ABORT or "
    "PREPARE TRANSACTION), so what follows would run outside it, writable, on the server; "
    "a read session stays READ ONLY only inside the transactions blogdata begins. Roll the "
    "session back (await session.rollback()) to go on reading, and end transactions with "
    "session.commit() / session.rollback(), never as SQL; writes must use a normal session "
    "(session_scope())"
)
_AUTOCOMMIT = (
    "a read session runs every statement inside a READ ONLY transaction, but this connection "
    "is in AUTOCOMMIT, where a statement could write; drop isolation_level='AUTOCOMMIT' on "
    "the read session, or use a normal session (session_scope()) for statements that need it"
)


def _is_read_only(conn: Connection) -> bool:
    return bool(conn.get_execution_options().get(_READ_ONLY))


def _driver_in_transaction(conn: Connection) -> bool:
    return bool(conn.connection.driver_connection.is_in_transaction())  # type: ignore[union-attr]


def _seal(conn: Connection, *args: Any) -> None:
    """Before a statement on a read-only connection: make its transaction READ ONLY for good.

    The first statement of each transaction is preceded by :data:`_SEAL_SQL` (through the
    DBAPI cursor, so SQLAlchemy's adapter begins the transaction, READ ONLY, first); any
    statement after the transaction was ended by SQL text is refused.
    """
    if not _is_read_only(conn):
        return
    transaction = conn.get_transaction()
    sealed = conn.info.get(_SEALED)
    if transaction is None or sealed is None or sealed() is not transaction:
        dbapi: Any = conn.connection.dbapi_connection
        if getattr(dbapi, "autocommit", False):
            raise ReadOnlySessionError(_AUTOCOMMIT)
        cursor = dbapi.cursor()
        try:
            cursor.execute(_SEAL_SQL)
        finally:
            cursor.close()
        conn.info[_SEALED] = weakref.ref(transaction) if transaction is not None else None
    if not _driver_in_transaction(conn):
        raise ReadOnlySessionError(_ENDED)


def _check_still_in_transaction(conn: Connection, *args: Any) -> None:
    """After a statement on a read-only connection: refuse one that ended the transaction."""
    if _is_read_only(conn) and not _driver_in_transaction(conn):
        raise ReadOnlySessionError(_ENDED)


def _read_only_error(context: ExceptionContext) -> BaseException | None:
    """Turn a write (25006) or a READ WRITE switch on a read-only connection into our error."""
    exc = context.original_exception
    if isinstance(exc, ReadOnlySessionError):
        return exc
    if sqlstate_of(exc) == "25006":
        error = translate_db_error(exc)
        assert isinstance(error, ReadOnlySessionError)
        return error
    conn = context.connection
    if conn is not None and _is_read_only(conn) and "read-write mode" in str(exc):
        return ReadOnlySessionError(
            "a read session cannot be made writable (PostgreSQL refused it: "
            f"{str(getattr(exc, 'orig', exc)).strip()}); its transactions are READ ONLY from "
            "their first statement: writes must use a normal session (session_scope())",
            sqlstate=sqlstate_of(exc),
        )
    return None


def _guard(engine: Engine) -> None:
    """Install the read-only guards on ``engine`` (once); they act on read-only connections."""
    for name, listener in (
        ("before_cursor_execute", _seal),
        ("after_cursor_execute", _check_still_in_transaction),
        ("handle_error", _read_only_error),
    ):
        if not event.contains(engine, name, listener):
            event.listen(engine, name, listener)


def read_only_engine(engine: AsyncEngine) -> AsyncEngine:
    """Return ``engine`` made read-only: the same pool, every transaction READ ONLY for good.

    What :func:`read_session` binds its sessions to; the guards are described in the module
    docstring. Connections go back to the pool as they came.
    """
    engine = check_engine(engine) or get_read_engine()
    _guard(engine.sync_engine)
    return engine.execution_options(postgresql_readonly=True, **{_READ_ONLY: True})


def create_read_engine(
    url: str | URL | None = None,
    *,
    fallback: bool | None = None,
    primary: str | URL | None = None,
    **overrides: Any,
) -> AsyncEngine:
    """Create an engine whose every transaction is READ ONLY, on the read server.

    Args:
        url: the read server; None means ``BLOGDATA_READ_URL``, else the primary.
        fallback: read from the primary while the read server is unreachable; None means
            ``BLOGDATA_READ_FALLBACK``.
        primary: the primary to fall back to; None means ``url_or_start_embedded()``.
        **overrides: any ``create_engine`` argument (pool size, ``poolclass`` ...).
    """
    settings = get_settings()
    read = parse_read_url(url) if url is not None else settings.read
    if fallback is None:
        fallback = settings.read_fallback
    options: dict[str, Any] = dict(overrides)
    options["execution_options"] = {
        **options.get("execution_options", {}),
        "postgresql_readonly": True,
        _READ_ONLY: True,
    }
    if read is None:
        engine = create_engine(None, **options)
    else:
        timeout = options.get("connect_timeout", settings.connect_timeout)
        adapter_args, driver_args = split_connect_args(options.pop("connect_args", {}))
        extra = {"statement_cache_size": 0} if settings.pgbouncer else {}
        other = url_or_start_embedded(primary) if fallback else None
        options["async_creator"] = _read_connector(read, timeout, other, **extra, **driver_args)
        engine = create_engine(read, connect_args=adapter_args, **options)
    _guard(engine.sync_engine)
    return engine


def read_sessionmaker(engine: AsyncEngine | None = None) -> async_sessionmaker[AsyncSession]:
    """Return a factory of read-only sessions on ``engine`` (default: the read engine).

    Any engine will do: its sessions are read-only all the same (see :func:`read_only_engine`).
    """
    return async_sessionmaker(
        read_only_engine(check_engine(engine) or get_read_engine()),
        expire_on_commit=False,
        info={"read_only": True},
    )


_default: dict[str, AsyncEngine] = {}


def get_read_engine() -> AsyncEngine:
    """Return the process-wide read engine, creating it on first use."""
    if "engine" not in _default:
        _default["engine"] = create_read_engine()
    return _default["engine"]


async def dispose_read_engine() -> None:
    """Close the read engine's connections and forget it (the next use builds a new one)."""
    engine = _default.pop("engine", None)
    if engine is not None:
        await engine.dispose()


@asynccontextmanager
async def read_session(engine: AsyncEngine | None = None) -> AsyncIterator[AsyncSession]:
    """Open a read-only session on ``engine`` (default: the read engine); rolled back at the end.

    ``load_frame``, ``stream_frames``, the aggregations, the frames and ``explain`` take it like
    any session. A write raises ReadOnlySessionError, on any engine and in every transaction
    of the session, whatever SQL it runs (see the module docstring).
    """
    async with read_sessionmaker(engine)() as session:
        try:
            yield session
        finally:
            await session.rollback()


async def _primary_lsn(primary: AsyncEngine) -> str:
    async with primary.connect() as conn:
        return str((await conn.execute(text("SELECT pg_current_wal_lsn()::text"))).scalar_one())


_REPLAY_SQL = text(
    "SELECT pg_is_in_recovery(), pg_last_wal_replay_lsn()::text, "
    "pg_wal_lsn_diff(CAST(CAST(:lsn AS text) AS pg_lsn), pg_last_wal_replay_lsn())"
)


async def replay_lag_bytes(
    primary: AsyncEngine | None = None, replica: AsyncEngine | None = None
) -> int | None:
    """Return how many WAL bytes the read server has still to replay, or None if not a standby."""
    lsn = await _primary_lsn(primary or get_engine())
    async with (replica or get_read_engine()).connect() as conn:
        standby, _, behind = (await conn.execute(_REPLAY_SQL, {"lsn": lsn})).one()
    if not standby:
        return None
    return max(0, int(behind))


async def wait_for_replica(
    *,
    primary: AsyncEngine | None = None,
    replica: AsyncEngine | None = None,
    timeout: float = 10.0,  # noqa: ASYNC109 - the wait raises ReplicationLagError, not TimeoutError
    interval: float = 0.02,
) -> str:
    """Wait until the read server has replayed everything committed on the primary so far.

    Call it after committing on the primary and before reading on a read session, to read your
    own writes. Returns the primary's WAL position that was waited for. On a read server that
    is not a standby (no ``BLOGDATA_READ_URL``) it returns at once.

    Raises:
        ReplicationLagError: the standby had not replayed that position within ``timeout``
            seconds (replay paused, or the standby far behind or disconnected).
        DatabaseUnavailableError: either server cannot be reached.
    """
    replica = replica or get_read_engine()
    lsn = await _primary_lsn(primary or get_engine())
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with replica.connect() as conn:
        while True:
            standby, replayed, behind = (await conn.execute(_REPLAY_SQL, {"lsn": lsn})).one()
            await conn.rollback()
            if not standby or (behind is not None and behind <= 0):
                return lsn
            if loop.time() >= deadline:
                break
            await asyncio.sleep(interval)
    raise ReplicationLagError(
        f"the read server at {server_address(replica.url)} had replayed the WAL up to {replayed}, "
        f"not the primary's {lsn}, after {timeout:g} s: its replay may be paused "
        "(SELECT pg_wal_replay_resume() on it) or it is far behind or disconnected; wait longer "
        "(timeout=...), or read your own writes on a session on the primary (session_scope())"
    )
