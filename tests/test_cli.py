"""The blogdata command, called in-process: db start/status/url/stop and clear errors."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from blogdata import embedded
from blogdata.cli import main
from blogdata.config import get_settings
from blogdata.errors import ConfigurationError


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
    assert "running (pid" in capsys.readouterr().out
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

    import psutil

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
