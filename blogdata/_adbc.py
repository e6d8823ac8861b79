"""Private plumbing of ``load_frame_new_connection``: ADBC reads on a separate connection.

Opening an ADBC PostgreSQL connection costs tens of milliseconds (it loads the server's type
catalogue), so a couple of idle connections are kept per server URI and reused; each read runs
in its own transaction, so nothing carries over from one use to the next. A kept connection that
has gone stale (server restarted, database dropped) is replaced once, transparently.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["close_idle_connections", "read_arrow"]

_MAX_IDLE = 2
_idle: dict[str, list[Any]] = {}
_lock = threading.Lock()


def _connect(uri: str) -> Any:
    import adbc_driver_postgresql.dbapi as adbc

    return adbc.connect(uri, autocommit=True)


def _take(uri: str) -> tuple[Any, bool]:
    """Return an idle connection to ``uri`` (and True), or a new one (and False)."""
    with _lock:
        idle = _idle.get(uri)
        if idle:
            return idle.pop(), True
    return _connect(uri), False


def _give_back(uri: str, conn: Any) -> None:
    with _lock:
        idle = _idle.setdefault(uri, [])
        if len(idle) < _MAX_IDLE:
            idle.append(conn)
            return
    conn.close()


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a dead connection may refuse to close cleanly
        conn.close()


def close_idle_connections() -> None:
    """Close every kept ADBC connection (also done at interpreter exit)."""
    with _lock:
        conns = [c for idle in _idle.values() for c in idle]
        _idle.clear()
    for conn in conns:
        _close(conn)


atexit.register(close_idle_connections)


def _read(conn: Any, sql: str, snapshot: str | None, isolation: str) -> pa.Table:
    with conn.cursor() as cursor:
        if snapshot is None:
            cursor.execute(sql)
            table: pa.Table = cursor.fetch_arrow_table()
            return table
        cursor.execute(f"BEGIN ISOLATION LEVEL {isolation} READ ONLY")
        try:
            cursor.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
            cursor.execute(sql)
            table = cursor.fetch_arrow_table()
        finally:
            cursor.execute("ROLLBACK")
        return table


def read_arrow(uri: str, sql: str, snapshot: str | None, isolation: str) -> pa.Table:
    """Run ``sql`` on a separate ADBC connection to ``uri`` and return its Arrow table.

    With ``snapshot`` (an id from ``pg_export_snapshot()``, already checked by the caller), the
    read runs in a read-only ``isolation`` transaction that imports it. Blocking: call it in a
    worker thread. Raises ADBC's errors.
    """
    conn, kept = _take(uri)
    try:
        table = _read(conn, sql, snapshot, isolation)
    except Exception:
        _close(conn)
        if not kept:
            raise
        conn = _connect(uri)  # the kept one may have gone stale: one more try on a new one
        try:
            table = _read(conn, sql, snapshot, isolation)
        except Exception:
            _close(conn)
            raise
    _give_back(uri, conn)
    return table
