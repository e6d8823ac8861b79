"""A local PgBouncer in transaction mode, for tests, notebooks and benchmarks.

``start_pgbouncer(server)`` runs the system's ``pgbouncer`` (optional: see ``INSTALL_HINT``) on a
free loopback port in front of ``server``, in transaction mode with a pool of ``pool_size`` server
connections per database, and returns a handle whose ``url(database)`` is what a client connects
to (with ``BLOGDATA_PGBOUNCER=true``, or ``create_engine(..., pgbouncer=True)``). It never
listens on a Unix socket or beyond 127.0.0.1. It belongs to the process that started it: a
watchdog (:mod:`blogdata.servers._reaper`) stops it and deletes its folder when that process ends,
even
when it is killed. ``find_pgbouncer()`` says whether it is installed.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import URL

from blogdata.errors import ConfigurationError, DatabaseUnavailableError
from blogdata.servers import _reaper

__all__ = ["INSTALL_HINT", "PgBouncer", "find_pgbouncer", "start_pgbouncer"]

INSTALL_HINT = "Debian/Ubuntu: sudo apt-get install pgbouncer; macOS: brew install pgbouncer"
"""How to install PgBouncer, for messages that say it is missing."""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def find_pgbouncer() -> str | None:
    """Return the path of the ``pgbouncer`` program, or None if it is not installed."""
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if Path(p).exists()), None
    )


def _binary() -> str:
    found = find_pgbouncer()
    if found is None:
        raise ConfigurationError(f"pgbouncer is not installed; install it ({INSTALL_HINT})")
    return found


@dataclass
class PgBouncer:
    """A running PgBouncer: its port, its log, and how to stop it."""

    port: int
    pool_size: int
    folder: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def log_file(self) -> Path:
        """PgBouncer's log (stdout and stderr)."""
        return self.folder / "pgbouncer.log"

    def url(self, database: str) -> URL:
        """Return the URL of ``database`` on the server, through this PgBouncer."""
        return URL.create(
            "postgresql+asyncpg", username="postgres", host="127.0.0.1", port=self.port,
            database=database,
        )  # fmt: skip

    def stop(self) -> None:
        """Stop PgBouncer and delete its folder."""
        # PgBouncer >= 1.23 waits for its clients on a first SIGTERM and stops on a second.
        for _ in range(2):
            if self.process.poll() is not None:
                break
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                continue
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=20)
        shutil.rmtree(self.folder, ignore_errors=True)


def _backend(server: URL) -> tuple[str, int]:
    host = server.host or server.query.get("host") or "127.0.0.1"
    if not isinstance(host, str):
        raise ConfigurationError("PgBouncer needs a server URL with a single host")
    return host, server.port or 5432


def start_pgbouncer(server: URL, *, pool_size: int = 5, timeout: float = 20.0) -> PgBouncer:
    """Start PgBouncer (transaction mode, ``pool_size`` server connections) in front of ``server``.

    ``server`` is any URL on the server (its database is ignored: every database passes
    through, as user ``postgres``, trust authentication on the loopback port only). It stops,
    and its folder is deleted, when this process ends (even when killed) if not stopped before.

    Raises:
        ConfigurationError: pgbouncer is not installed.
        DatabaseUnavailableError: it did not start; the message has its log.
    """
    binary = _binary()
    folder = Path(tempfile.mkdtemp(prefix="blogdata-pgbouncer-"))
    folder.chmod(0o755)  # ours; PgBouncer's own user must read its configuration
    host, port = _backend(server)
    listen = _free_port()
    config = folder / "pgbouncer.ini"
    config.write_text(
        "[databases]\n"
        f"* = host={host} port={port} user=postgres\n\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {listen}\n"
        "unix_socket_dir =\n"
        "auth_type = any\n"
        "pool_mode = transaction\n"
        f"default_pool_size = {pool_size}\n"
        f"max_db_connections = {pool_size}\n"
        "reserve_pool_size = 0\n"
        "max_client_conn = 500\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    config.chmod(0o644)
    args = [binary]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        # PgBouncer refuses to run as root: run it as the owner of the server's socket folder
        # (who can reach the socket), else as nobody.
        owner = Path(host).stat().st_uid if host.startswith("/") else None
        args += ["-u", pwd.getpwuid(owner).pw_name if owner is not None else "nobody"]
    log = folder / "pgbouncer.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*args, str(config)], stdout=out, stderr=subprocess.STDOUT)
    bouncer = PgBouncer(listen, pool_size, folder, process)
    deadline = time.monotonic() + timeout
    while True:
        problem = None
        if process.poll() is not None:
            problem = f"exited with {process.returncode}"
        else:
            try:
                socket.create_connection(("127.0.0.1", listen), timeout=1).close()
                owners = [_reaper.this_process(), _reaper.inherited_owner()]
                _reaper.watch(process.pid, owners=owners, kind="pgbouncer", remove=[folder])
                return bouncer
            except OSError:
                if time.monotonic() > deadline:
                    problem = f"was not listening on 127.0.0.1:{listen} after {timeout:g} s"
        if problem is not None:
            said = log.read_text(errors="replace")[-2000:]
            bouncer.stop()
            raise DatabaseUnavailableError(f"pgbouncer {problem}; its log:\n{said}")
        time.sleep(0.05)
