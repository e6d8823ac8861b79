"""Servers started for an owner never outlive it: each owner here is a real process, killed with
SIGKILL (no atexit, no finally), and every process of its servers must be gone soon after."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs
import pytest
from sqlalchemy.engine import URL

from blogdata.servers import _reaper, embedded, replica

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN = 20.0  # seconds a watchdog may take: 0.5 s polling plus a fast shutdown

Procs = list[tuple[int, float]]


def _tree(pid: int) -> Procs:
    """A server's processes (the postmaster or PgBouncer and its children) by pid and start."""
    top = psutil.Process(pid)
    return [(p.pid, p.create_time()) for p in [top, *top.children(recursive=True)]]


def _alive(procs: Procs) -> Procs:
    alive = []
    for pid, started in procs:
        try:
            proc = psutil.Process(pid)
            if proc.create_time() == started and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append((pid, started))
        except psutil.NoSuchProcess:
            pass
    return alive


def _wait_gone(procs: Procs, timeout: float = GONE_WITHIN) -> Procs:
    """Poll until none of ``procs`` runs; return those still running after ``timeout``."""
    deadline = time.monotonic() + timeout
    while (left := _alive(procs)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


def _owner_env(*, run_owned: bool = False) -> dict[str, str]:
    env = dict(os.environ)
    if not run_owned:
        env.pop(_reaper.OWNER_ENV, None)  # only the owner under test, not this test run
    return env


class Owner:
    """A ``python -c`` process that runs ``code``, prints one JSON line, then waits to be killed."""

    def __init__(self, code: str, env: dict[str, str]) -> None:
        script = (
            f"import json, sys, time\n{code}\nprint(json.dumps(out), flush=True)\ntime.sleep(600)"
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"the owner failed before printing (exit code {self.proc.wait(60)})"
        self.out: dict[str, object] = json.loads(line)

    def kill(self) -> None:
        """SIGKILL the owner and reap it."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)
        assert self.proc.stdout is not None
        self.proc.stdout.close()


@pytest.fixture
def home() -> Iterator[Path]:
    """A traversable folder for servers of this test's own; anything left is stopped after."""
    folder = Path(tempfile.mkdtemp(prefix="bd-life-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        if (folder / "pgdata").exists():
            replica.stop(folder)
            embedded.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


def test_a_server_started_with_cleanup_delete_stops_and_goes_when_its_process_is_killed(
    home: Path,
) -> None:
    owner = Owner(
        "from pathlib import Path\nfrom blogdata.servers import embedded\n"
        f"out = {{'pid': embedded.start(Path({str(home)!r}), cleanup='delete').pid}}",
        _owner_env(),
    )
    server = _tree(int(str(owner.out["pid"])))
    assert len(server) > 1  # the postmaster and its background processes
    owner.kill()
    assert _wait_gone(server) == []
    deadline = time.monotonic() + 10
    while (home / "pgdata").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not (home / "pgdata").exists()


def test_notebook_12s_primary_and_standby_stop_when_the_kernel_is_killed(home: Path) -> None:
    owner = Owner(
        "from pathlib import Path\nfrom blogdata.servers import embedded, replica\n"
        f"home = Path({str(home)!r})\n"
        "primary = embedded.start(home, cleanup='delete')\n"
        "standby = replica.start(home, cleanup='delete')\n"
        "out = {'primary': primary.pid, 'standby': standby.pid}",
        _owner_env(),
    )
    servers = _tree(int(str(owner.out["primary"]))) + _tree(int(str(owner.out["standby"])))
    owner.kill()
    assert _wait_gone(servers) == []
    deadline = time.monotonic() + 10
    while any(home.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert sorted(p.name for p in home.iterdir()) == []


def test_every_server_of_a_killed_test_run_stops_and_its_folder_goes(home: Path) -> None:
    # The owner loads this repository's root conftest.py, as pytest does, then starts the run's
    # server (in the run's own BLOGDATA_HOME) and one in a folder of its own, as tests do.
    env = _owner_env()
    env.pop("BLOGDATA_TEST_DATABASE_URL", None)
    owner = Owner(
        "import os, runpy\nfrom pathlib import Path\n"
        f"runpy.run_path({str(ROOT / 'conftest.py')!r})\n"
        "from blogdata.servers import embedded\n"
        "run = embedded.start()\n"
        f"own = embedded.start(Path({str(home)!r}))\n"
        "out = {'run': run.pid, 'own': own.pid, 'home': os.environ['BLOGDATA_HOME']}",
        env,
    )
    run_home = Path(str(owner.out["home"]))
    assert run_home.name.startswith("blogdata-test-")
    servers = _tree(int(str(owner.out["run"]))) + _tree(int(str(owner.out["own"])))
    owner.kill()
    assert _wait_gone(servers) == []
    deadline = time.monotonic() + 10
    while run_home.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not run_home.exists()


def test_the_default_server_outlives_the_process_that_started_it(home: Path) -> None:
    # `blogdata db start` is reused across sessions by design: no cleanup, no owner, no watchdog.
    owner = Owner(
        "from pathlib import Path\nfrom blogdata.servers import embedded\n"
        f"out = {{'pid': embedded.start(Path({str(home)!r})).pid}}",
        _owner_env(),
    )
    server = _tree(int(str(owner.out["pid"])))
    owner.kill()
    time.sleep(2.0)  # four watchdog polls
    assert _alive(server) == server
    running = embedded.status(home)
    assert running is not None and running.pid == server[0][0]


def test_a_watchdog_exits_with_its_server_and_never_signals_a_reused_pid(home: Path) -> None:
    server = embedded.start(home, cleanup="stop")
    target = f'"target": [{server.pid},'
    (watchdog,) = [
        p for p in psutil.process_iter(["cmdline"]) if target in " ".join(p.info["cmdline"] or [])
    ]
    assert watchdog not in psutil.Process().children()  # no child of ours to reap
    assert embedded.stop(home)
    watchdog.wait(10)  # its server stopped on purpose: it left, touching nothing
    assert (home / "pgdata" / "PG_VERSION").exists()
    # A target whose pid now belongs to another process (another start time) is left alone.
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        spec = {
            "owners": [[bystander.pid, psutil.Process(bystander.pid).create_time() - 100]],
            "target": [bystander.pid, psutil.Process(bystander.pid).create_time() - 100],
            "kind": "postgres",
            "remove": [],
        }
        reaper = [sys.executable, "-P", _reaper.__file__, json.dumps(spec)]
        assert subprocess.run(reaper, timeout=30).returncode == 0
        time.sleep(2.0)  # the forked watchdog found its owner gone and its target not the same
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


@pytest.mark.pgbouncer
def test_a_pgbouncer_stops_and_its_folder_goes_when_its_process_is_killed(
    server_url: URL,
) -> None:
    url = server_url.render_as_string(hide_password=False)
    owner = Owner(
        "from blogdata.servers.pooler import start_pgbouncer\n"
        "from sqlalchemy.engine import make_url\n"
        f"bouncer = start_pgbouncer(make_url({url!r}))\n"
        "out = {'pid': bouncer.process.pid, 'folder': str(bouncer.folder)}",
        _owner_env(),
    )
    bouncer = _tree(int(str(owner.out["pid"])))
    folder = Path(str(owner.out["folder"]))
    try:
        owner.kill()
        assert _wait_gone(bouncer) == []
        deadline = time.monotonic() + 10
        while folder.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not folder.exists()
    finally:
        for pid, _ in _alive(bouncer):
            psutil.Process(pid).kill()
        shutil.rmtree(folder, ignore_errors=True)
