"""Read routing: read sessions on the read server (a hot standby), and waiting for it to catch up.

With ``BLOGDATA_READ_URL`` set, :func:`read_session` (also ``session_scope(read_only=True)``)
and :func:`get_read_engine` read from that server; unset, they read from the primary, as every
other session does. Either way every transaction on a read engine is ``READ ONLY``, so a write
attempted there fails the same way on both servers: :class:`~blogdata.errors.ReadOnlySessionError`,
not the driver's "cannot execute ... in a read-only transaction".

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
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blogdata.config import get_settings, parse_read_url
from blogdata.database import _connector, create_engine, get_engine, resolve_url, server_address
from blogdata.errors import (
    DatabaseUnavailableError,
    ReadOnlySessionError,
    ReplicationLagError,
    sqlstate_of,
    translate_db_error,
)

__all__ = [
    "create_read_engine",
    "dispose_read_engine",
    "get_read_engine",
    "read_session",
    "read_sessionmaker",
    "read_url",
    "replay_lag_bytes",
    "wait_for_replica",
]

logger = logging.getLogger("blogdata.routing")


def read_url() -> URL | None:
    """Return the configured read server's URL (``BLOGDATA_READ_URL``), or None."""
    return get_settings().read


def _read_connector(read: URL, timeout: float, fallback: URL | None, **extra: Any) -> Any:
    """Connect to the read server; on failure name it, or (if asked) connect to the primary."""
    inner = _connector(read, timeout, **extra)
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
            return await _connector(fallback, timeout, **extra)()

    return connect


def _read_only_error(context: ExceptionContext) -> BaseException | None:
    """Turn SQLSTATE 25006 (a write in a read-only transaction) into ReadOnlySessionError."""
    if sqlstate_of(context.original_exception) == "25006":
        error = translate_db_error(context.original_exception)
        assert isinstance(error, ReadOnlySessionError)
        return error
    return None


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
        primary: the primary to fall back to; None means ``resolve_url()``.
        **overrides: any ``create_engine`` argument (pool size, ``poolclass`` ...).
    """
    settings = get_settings()
    read = parse_read_url(url) if url is not None else settings.read
    if fallback is None:
        fallback = settings.read_fallback
    options: dict[str, Any] = {"execution_options": {"postgresql_readonly": True}}
    options.update(overrides)
    if read is None:
        engine = create_engine(None, **options)
    else:
        timeout = options.get("connect_timeout", settings.connect_timeout)
        extra = {"statement_cache_size": 0} if settings.pgbouncer else {}
        other = resolve_url(primary) if fallback else None
        options["async_creator"] = _read_connector(read, timeout, other, **extra)
        engine = create_engine(read, **options)
    event.listen(engine.sync_engine, "handle_error", _read_only_error, retval=True)
    return engine


def read_sessionmaker(engine: AsyncEngine | None = None) -> async_sessionmaker[AsyncSession]:
    """Return a session factory on ``engine`` (default: the process-wide read engine)."""
    return async_sessionmaker(engine or get_read_engine(), expire_on_commit=False)


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
    """Open a read-only session on the read server; its transaction is rolled back at the end.

    ``load_frame``, ``stream_frames``, the aggregations, the frames and ``explain`` take it like
    any session. A write raises ReadOnlySessionError.
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
