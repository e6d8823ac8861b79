"""The blogdata command, called in-process: db start/status/url/stop and clear errors."""

from __future__ import annotations

import asyncio
import os
import pty
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from sqlalchemy.engine import URL, make_url

from blogdata.cli import main
from blogdata.config import get_settings
from blogdata.db import migrate
from blogdata.errors import ConfigurationError
from blogdata.servers import embedded


@pytest.fixture
def own_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A BLOGDATA_HOME of this test's own, with no database URL configured."""
    home = Path(tempfile.mkdtemp(prefix="bd-cli-"))
    home.chmod(0o755)
    monkeypatch.setenv("BLOGDATA_HOME", str(home))
    monkeypatch.delenv("BLOGDATA_DATABASE_URL", raising=False)
    get_settings(reload=True)
    try:
        yield home
    finally:
        embedded.stop(home)
        monkeypatch.undo()
        get_settings(reload=True)
        shutil.rmtree(home, ignore_errors=True)


def test_db_start_status_url_and_stop(own_home: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["db", "status"]) == 3
    assert "not running" in capsys.readouterr().out
    assert main(["db", "start"]) == 0
    assert str(own_home) in capsys.readouterr().out
    assert main(["db", "status"]) == 0
    status = capsys.readouterr().out
    assert "the embedded server" in status and "running (pid" in status
    assert "answering: PostgreSQL" in status
    assert main(["db", "url"]) == 0
    assert capsys.readouterr().out.startswith("postgresql+asyncpg://postgres@/postgres?host=")
    assert main(["db", "stop"]) == 0
    assert capsys.readouterr().out.strip() == "stopped"
    assert main(["db", "stop"]) == 0
    assert capsys.readouterr().out.strip() == "not running"


def test_a_bad_url_is_one_line_on_stderr_and_exit_code_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", "postgresql://app:pw-42@db/blog")
    with pytest.raises(ConfigurationError):
        get_settings(reload=True)  # and nothing stays cached: the CLI reads it afresh
    try:
        assert main(["db", "url"]) == 1
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
    err = capsys.readouterr().err
    assert err.startswith("blogdata: error: ") and err.count("\n") == 1
    assert "postgresql+asyncpg://" in err and "pw-42" not in err


def test_an_unreachable_server_is_reported_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", "postgresql+asyncpg://u:pw-42@127.0.0.1:1/blog")
    get_settings(reload=True)
    try:
        assert main(["migrate", "current"]) == 1
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
    err = capsys.readouterr().err
    assert "127.0.0.1:1" in err and "Traceback" not in err and "pw-42" not in err


def test_an_unknown_command_is_a_usage_error() -> None:
    assert main(["frobnicate"]) == 2


async def test_python_dash_m_blogdata_runs_the_same_command() -> None:
    done = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "blogdata", "--help"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0
    assert "migrate" in done.stdout and "db" in done.stdout


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.slow
def test_lab_opens_jupyterlab_with_the_database_configured_for_kernels(own_home: Path) -> None:
    import time
    import urllib.request

    import psutil  # type: ignore[import-untyped]  # no stubs

    port = _free_port()
    lab = subprocess.Popen(
        [sys.executable, "-m", "blogdata", "lab", "--no-browser", f"--port={port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        status = None
        while time.monotonic() < deadline and lab.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=2) as page:
                    status = page.status
                    break
            except OSError:
                time.sleep(0.5)
        assert status == 200
        (jupyter,) = psutil.Process(lab.pid).children()
        env = jupyter.environ()
        assert env["BLOGDATA_DATABASE_URL"].startswith("postgresql+asyncpg://postgres@/postgres")
        assert str(own_home) in env["BLOGDATA_DATABASE_URL"].replace("%2F", "/")
    finally:
        for child in psutil.Process(lab.pid).children(recursive=True):
            child.terminate()
        lab.terminate()
        output = lab.communicate(timeout=30)[0]
    assert "(migrated)" in output


# --- expected failures: one line, the fix, exit code 1; --debug adds the traceback ----------

PASSWORD = "pw-Cli-8812"


@pytest.fixture
def configure(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[URL], None]]:
    """Point BLOGDATA_DATABASE_URL at a URL for one test."""

    def set_url(url: URL) -> None:
        monkeypatch.setenv("BLOGDATA_DATABASE_URL", url.render_as_string(hide_password=False))
        get_settings(reload=True)

    yield set_url
    monkeypatch.undo()
    get_settings(reload=True)


def _one_line_error(err: str) -> str:
    assert err.startswith("blogdata: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and PASSWORD not in err
    return err


MISSING: dict[str, dict[str, str]] = {
    "database": {"database": "blogdata_no_such_db"},
    "role": {"username": "blogdata_no_such_role"},
}
COMMANDS = {
    "migrate": ["migrate", "upgrade"],
    "seed": ["seed", "--users", "5"],
    "demo": ["demo", "--users", "5", "--database", "blogdata_cli_demo_never"],
}


@pytest.mark.parametrize("missing", MISSING.values(), ids=MISSING.keys())
@pytest.mark.parametrize("command", COMMANDS.values(), ids=COMMANDS.keys())
def test_a_missing_database_or_role_is_one_line_with_the_fix_not_a_traceback(
    server_url: URL,
    configure: Callable[[URL], None],
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    command: list[str],
    missing: dict[str, str],
) -> None:
    configure(  # URL.set leaves what is None unchanged
        server_url.set(
            password=PASSWORD, database=missing.get("database"), username=missing.get("username")
        )
    )
    extra = ["--out", str(tmp_path)] if command[0] == "demo" else []
    assert main([*command, *extra]) == 1
    err = _one_line_error(capsys.readouterr().err)
    (name,) = missing.values()
    assert name in err and "BLOGDATA_DATABASE_URL" in err


def test_an_unknown_revision_is_one_line_and_debug_adds_the_traceback(
    database_url: URL, configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(database_url)
    assert main(["migrate", "upgrade", "nosuchrev"]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "'nosuchrev'" in err and "alembic history" in err
    assert main(["--debug", "migrate", "upgrade", "nosuchrev"]) == 1
    debug = capsys.readouterr().err
    assert "Traceback" in debug and debug.splitlines()[-1] == err.strip()


def test_blogdata_debug_in_the_environment_shows_the_traceback(
    database_url: URL,
    configure: Callable[[URL], None],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure(database_url)
    monkeypatch.setenv("BLOGDATA_DEBUG", "1")
    assert main(["migrate", "upgrade", "nosuchrev"]) == 1
    assert "Traceback" in capsys.readouterr().err


def test_migrate_current_marks_the_head(
    database_url: URL, configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(database_url)
    assert main(["migrate", "current"]) == 0
    assert capsys.readouterr().out == f"{migrate.head()} (head)\n"


def test_db_status_names_the_configured_server_and_says_it_answers(
    server_url: URL, configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(server_url.set(password=PASSWORD))
    assert main(["db", "status"]) == 0
    out = capsys.readouterr().out
    assert server_url.set(password=PASSWORD).render_as_string(hide_password=True) in out
    assert "answering: PostgreSQL" in out and PASSWORD not in out
    assert "embedded" not in out


def test_db_status_says_when_the_configured_server_does_not_answer(
    configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str]
) -> None:
    configure(make_url(f"postgresql+asyncpg://app:{PASSWORD}@127.0.0.1:1/blog"))
    assert main(["db", "status"]) == 3
    out = capsys.readouterr().out
    assert "127.0.0.1:1" in out and "not answering" in out and PASSWORD not in out


def test_version_prints_the_installed_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"blogdata {version('blogdata')}\n"


def test_lab_offers_ip_port_and_no_browser(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["lab", "--help"]) == 0
    shown = capsys.readouterr().out
    assert "--ip" in shown and "--port" in shown and "--no-browser" in shown
    assert "--no-no-browser" not in shown


def _read_until(fd: int, needle: bytes, seen: bytearray) -> None:
    """Read ``fd`` into ``seen`` until ``needle`` appears (or the output ends)."""
    while needle not in seen:
        chunk = os.read(fd, 65536)
        if not chunk:
            raise AssertionError(f"output ended before {needle!r}: {seen.decode()[-2000:]}")
        seen.extend(chunk)


@pytest.mark.slow
def test_ctrl_c_is_left_to_jupyter_which_asks_and_shuts_down_cleanly(
    own_home: Path, tmp_path: Path
) -> None:
    import psutil

    port = _free_port()
    runtime = tmp_path / "runtime"
    primary, secondary = pty.openpty()  # a terminal, so Jupyter asks before shutting down
    out_r, out_w = os.pipe()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)}
    lab = subprocess.Popen(
        [sys.executable, "-m", "blogdata", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.shutdown_no_activity_timeout=3600"],
        stdin=secondary, stdout=out_w, stderr=out_w, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(out_w)
    os.close(secondary)
    seen = bytearray()
    try:
        _read_until(out_r, b"Jupyter Server", seen)
        _read_until(out_r, f"{port}/lab?token=".encode(), seen)
        assert f"JupyterLab: http://localhost:{port}/lab?token=".encode() in seen
        (jupyter,) = psutil.Process(lab.pid).children()
        assert "--ServerApp.shutdown_no_activity_timeout=3600" in jupyter.cmdline()
        _read_until(out_r, b"is running at", seen)
        # Jupyter logs "is running at" a moment before it writes its runtime file.
        deadline = time.monotonic() + 10
        while not list(runtime.glob("jpserver-*.json")) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(runtime.glob("jpserver-*.json"))
        os.killpg(lab.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        _read_until(out_r, b"Shut down this Jupyter server (y/[n])?", seen)
        os.write(primary, b"y\n")
        assert lab.wait(timeout=120) == 0
        _read_until(out_r, b"Shutting down", seen)
    finally:
        if lab.poll() is None:
            os.killpg(lab.pid, signal.SIGKILL)
            lab.wait()
        os.close(primary)
        os.close(out_r)
    assert not jupyter.is_running()
    assert list(runtime.glob("jpserver-*.json")) == []  # Jupyter cleaned up after itself
