"""The ADBC route's plumbing: binary COPY on a separate, pooled connection, in a worker thread.

Opening an ADBC PostgreSQL connection costs tens of milliseconds (it loads the server's type
catalogue), so a couple of idle connections are kept per server URI and reused; each read runs
in a read-only transaction of its own, so nothing carries over from one use to the next. When a
connection opens, it records its backend pid (to cancel it) and a fingerprint of its identity
and settings (to compare with the session's: ``SESSION_FINGERPRINT``). A read that fails for any
reason tells the caller so, and the caller reads on the session's own connection instead: the
read is read-only, so trying again elsewhere has no effect on the database.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = ["SESSION_FINGERPRINT", "AdbcRead", "close_idle_connections"]

#: Who runs the query and every setting that can shape its result, as one md5 (one round trip).
#: Only settings that differ per connection by design and never change a result are left out.
SESSION_FINGERPRINT = """
SELECT md5(current_user || E'\\n' || session_user || E'\\n' || string_agg(name || '=' || setting,
           E'\\n' ORDER BY name))
FROM pg_settings
WHERE name NOT IN ('application_name', 'transaction_isolation', 'transaction_read_only',
                   'transaction_deferrable')
"""

_MAX_IDLE = 2
_idle: dict[str, list[_Kept]] = {}
_lock = threading.Lock()


@dataclass
class _Kept:
    conn: Any
    pid: int
    fingerprint: str


def _connect(uri: str) -> _Kept:
    import adbc_driver_postgresql.dbapi as adbc

    conn = adbc.connect(uri, autocommit=True)
    try:
        with conn.cursor() as cursor:
            cursor.execute(f"SELECT pg_backend_pid(), ({SESSION_FINGERPRINT})")
            pid, fingerprint = cursor.fetchone()
    except BaseException:
        _close(conn)
        raise
    return _Kept(conn, int(pid), str(fingerprint))


def _take(uri: str) -> tuple[_Kept, bool]:
    """Return an idle connection to ``uri`` (and True), or a new one (and False)."""
    with _lock:
        idle = _idle.get(uri)
        if idle:
            return idle.pop(), True
    return _connect(uri), False


def _give_back(uri: str, kept: _Kept) -> None:
    with _lock:
        idle = _idle.setdefault(uri, [])
        if len(idle) < _MAX_IDLE:
            idle.append(kept)
            return
    _close(kept.conn)


def _close(conn: Any) -> None:
    with contextlib.suppress(Exception):  # a dead connection may refuse to close cleanly
        conn.close()


def close_idle_connections() -> None:
    """Close every kept ADBC connection (also done at interpreter exit)."""
    with _lock:
        kept = [k for idle in _idle.values() for k in idle]
        _idle.clear()
    for k in kept:
        _close(k.conn)


atexit.register(close_idle_connections)


@dataclass
class AdbcRead:
    """One read on a kept connection: run it in a worker thread, cancel it from the loop."""

    uri: str
    sql: str
    snapshot: str | None
    isolation: str
    fingerprint: str
    _cursor: Any = field(default=None, repr=False)
    _pid: int | None = field(default=None, repr=False)
    _cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    _mismatch: bool = field(default=False, repr=False)

    def run(self) -> pa.Table | None:
        """Read the table, or return None when this route cannot give the session's answer."""
        try:
            kept, reused = _take(self.uri)
        except Exception:
            return None
        table = self._run_on(kept)
        if table is None and reused and not self._cancelled.is_set() and not self._mismatch:
            # A kept connection may have gone stale (server restarted): once more, on a new one.
            try:
                kept = _connect(self.uri)
            except Exception:
                return None
            table = self._run_on(kept)
        return table

    def _run_on(self, kept: _Kept) -> pa.Table | None:
        if kept.fingerprint != self.fingerprint:
            self._mismatch = True
            _give_back(self.uri, kept)
            return None
        healthy = False
        try:
            with kept.conn.cursor() as cursor:
                self._cursor, self._pid = cursor, kept.pid
                table = self._read(cursor)
                healthy = True
        except Exception:
            return None
        finally:
            self._cursor = None
            if healthy and not self._cancelled.is_set():
                _give_back(self.uri, kept)
            else:
                _close(kept.conn)
        return None if self._cancelled.is_set() else table

    def _read(self, cursor: Any) -> pa.Table:
        cursor.execute(f"BEGIN ISOLATION LEVEL {self.isolation} READ ONLY")
        try:
            if self.snapshot is not None:
                cursor.execute(f"SET TRANSACTION SNAPSHOT '{self.snapshot}'")
            if self._cancelled.is_set():
                raise RuntimeError("cancelled")
            cursor.execute(self.sql)
            table: pa.Table = cursor.fetch_arrow_table()
        finally:
            cursor.execute("ROLLBACK")
        return table

    def cancel(self) -> None:
        """Ask the server to stop the read (callable from any thread)."""
        self._cancelled.set()
        cursor = self._cursor
        if cursor is not None:
            with contextlib.suppress(Exception):
                cursor.adbc_cancel()

    @property
    def backend_pid(self) -> int | None:
        """The server process of the read, while it runs."""
        return self._pid
