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
from typing import Any

import pytest
from sqlalchemy.engine import URL, make_url

from blogdata.cli import main
from blogdata.config import get_settings
from blogdata.db import migrate
from blogdata.errors import ConfigurationError, NotOursError
from blogdata.servers import embedded
from tests.helpers import scalar_sql


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
def test_lab_opens_jupyterlab_with_the_database_configured_for_kernels(
    own_home: Path, tmp_path: Path
) -> None:
    import time
    import urllib.request

    import psutil  # type: ignore[import-untyped]  # no stubs

    port = _free_port()
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "blogdata",
            "lab",
            "--no-browser",
            f"--port={port}",
            f"--work={tmp_path / 'mine'}",
        ],
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
         f"--work={tmp_path / 'mine'}", "--ServerApp.shutdown_no_activity_timeout=3600"],
        stdin=secondary, stdout=out_w, stderr=out_w, env=env, start_new_session=True,
    )  # fmt: skip
    os.close(out_w)
    os.close(secondary)
    seen = bytearray()
    try:
        _read_until(out_r, b"Jupyter Server", seen)
        _read_until(out_r, b" (Ctrl-C to stop)", seen)
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


# --- issue 20: the lab's lifecycle and the CLI's nits ---------------------------------------


def test_help_shows_flags_as_flags(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["--help"], ["seed", "--help"], ["db", "delete", "--help"], ["lab", "--help"]):
        assert main(command) == 0
        shown = capsys.readouterr().out
        assert "<bool>" not in shown and "--help " in shown, shown
    assert main(["seed", "--help"]) == 0
    assert "--reset " in capsys.readouterr().out


def test_an_unknown_option_is_a_usage_error_suggesting_only_close_names(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["seed", "--bogus"]) == 2
    err = capsys.readouterr().err
    assert "No such option: --bogus" in err and "Possible" not in err and "--tags" not in err
    assert main(["seed", "--user", "3"]) == 2
    assert "(Possible options: --users)" in capsys.readouterr().err


def test_out_of_range_numbers_are_usage_errors_before_any_work(
    configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configure(make_url("postgresql+asyncpg://app@127.0.0.1:1/blog"))  # never reached
    assert main(["seed", "--users", "0"]) == 2
    assert main(["demo", "--users", "0", "--out", str(tmp_path)]) == 2
    assert main(["lab", "--port", "70000"]) == 2
    err = capsys.readouterr().err
    assert "127.0.0.1:1" not in err and "--users" in err


def test_db_delete_deletes_only_the_embedded_data_directory(
    own_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "start"]) == 0
    (own_home / "notes.txt").write_text("mine")
    capsys.readouterr()
    assert main(["db", "delete", "--yes"]) == 0
    assert "deleted" in capsys.readouterr().out
    assert embedded.status() is None
    assert not (own_home / "pgdata").exists() and (own_home / "notes.txt").read_text() == "mine"
    assert main(["db", "delete", "--yes"]) == 0
    assert "nothing to delete" in capsys.readouterr().out


def test_db_delete_refuses_a_folder_blogdata_did_not_make(
    own_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    theirs = own_home / "pgdata"
    theirs.mkdir()
    (theirs / "PG_VERSION").write_text("18\n")  # looks a little like a data directory
    assert main(["db", "delete", "--yes"]) == 1
    assert "will not delete" in _one_line_error(capsys.readouterr().err)
    assert (theirs / "PG_VERSION").read_text() == "18\n"


def _lessons(folder: Path, **notebooks: str) -> Path:
    folder.mkdir(exist_ok=True)
    for name, body in notebooks.items():
        (folder / f"{name}.ipynb").write_text(body)
    return folder


def test_the_lab_works_on_copies_refreshed_only_while_untouched(tmp_path: Path) -> None:
    from blogdata.cli import working_copy

    lessons = _lessons(tmp_path / "notebooks", a="A1", b="B1")
    work = tmp_path / "mine"
    assert working_copy(lessons, work) == []
    assert (work / "a.ipynb").read_text() == "A1" and (work / "b.ipynb").read_text() == "B1"
    assert (work / ".gitignore").read_text().splitlines()[-1] == "*"
    (work / "b.ipynb").write_text("B1 with my outputs")  # what JupyterLab's autosave does
    _lessons(lessons, a="A2", b="B2", c="C1")  # the committed lessons change
    notes = working_copy(lessons, work)
    assert (work / "a.ipynb").read_text() == "A2"  # untouched copy: refreshed
    assert (work / "c.ipynb").read_text() == "C1"  # new lesson: copied
    assert (work / "b.ipynb").read_text() == "B1 with my outputs"  # the learner's: kept
    assert len(notes) == 1 and "b.ipynb changed" in notes[0] and "kept" in notes[0]
    assert (lessons / "b.ipynb").read_text() == "B2"  # and the lessons are never written


def test_the_lab_never_overwrites_a_notebook_it_did_not_copy(tmp_path: Path) -> None:
    from blogdata.cli import LAB_MANIFEST, working_copy

    lessons = _lessons(tmp_path / "notebooks", a="A1")
    work = _lessons(tmp_path / "mine", a="my own a")
    assert len(working_copy(lessons, work)) == 1
    assert (work / "a.ipynb").read_text() == "my own a"
    (work / LAB_MANIFEST).write_text("someone else's file\n")
    with pytest.raises(NotOursError):
        working_copy(lessons, work)


@pytest.mark.slow
def test_lab_with_8888_taken_prints_the_port_jupyter_bound_and_says_the_server_runs_on(
    own_home: Path, tmp_path: Path
) -> None:
    import json
    import re
    import socket
    import urllib.request

    runtime = tmp_path / "runtime"
    work = tmp_path / "mine"
    squatter = socket.socket()
    try:
        squatter.bind(("127.0.0.1", 8888))
        squatter.listen()
    except OSError:
        pass  # taken already: all the better
    out_r, out_w = os.pipe()
    lab = subprocess.Popen(
        [sys.executable, "-m", "blogdata", "lab", "--no-browser", f"--work={work}"],
        stdout=out_w, stderr=out_w, env={**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime)},
    )  # fmt: skip
    os.close(out_w)
    seen = bytearray()
    try:
        _read_until(out_r, b" (Ctrl-C to stop)", seen)
        found = re.search(rb"JupyterLab: http://localhost:(\d+)/lab\?token=\w+", seen)
        assert found is not None, seen.decode()
        port = int(found.group(1))
        (info,) = [json.loads(p.read_text()) for p in runtime.glob("jpserver-*.json")]
        assert port == info["port"] != 8888
        assert Path(info["root_dir"]).resolve() == work.resolve()  # the copies, not notebooks/
        assert (work / "00-start-here.ipynb").read_bytes() == Path(
            "notebooks/00-start-here.ipynb"
        ).read_bytes()
        url = found.group(0).decode().removeprefix("JupyterLab: ")
        with urllib.request.urlopen(url, timeout=10) as page:
            assert page.status == 200
        lab.terminate()  # passed on to Jupyter, which shuts down
        assert lab.wait(timeout=120) == 0
        _read_until(out_r, b"deletes its data", seen)
    finally:
        squatter.close()
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        os.close(out_r)
    assert b"The embedded PostgreSQL is still running" in seen
    assert b"make stop" in seen and b"blogdata db delete" in seen
    assert embedded.status() is not None  # it is, as said


def test_demo_into_an_unwritable_folder_fails_before_any_database_work(
    configure: Callable[[URL], None], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    configure(make_url("postgresql+asyncpg://app@127.0.0.1:1/blog"))  # never reached
    (tmp_path / "a-file").write_text("")
    assert main(["demo", "--out", str(tmp_path / "a-file" / "charts")]) == 1
    err = _one_line_error(capsys.readouterr().err)
    assert "cannot write the charts" in err and "--out" in err and "127.0.0.1:1" not in err


async def _active_copy(url: URL) -> bool:
    found = await scalar_sql(
        url.set(database="postgres"),
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %' AND datname = "
        f"'{url.database}'",
    )
    return bool(found)


def _blogdata(url: URL, *args: str, **kwargs: Any) -> subprocess.Popen[bytes]:
    env = {**os.environ, "BLOGDATA_DATABASE_URL": url.render_as_string(hide_password=False)}
    return subprocess.Popen([sys.executable, "-m", "blogdata", *args], env=env, **kwargs)


@pytest.mark.slow
async def test_ctrl_c_during_seed_says_it_rolled_back_and_exits_130(
    scratch_url: URL, tmp_path: Path
) -> None:
    log = tmp_path / "seed.log"
    with log.open("wb") as file:
        seeding = _blogdata(scratch_url, "seed", "--users", "100000", stdout=file, stderr=file)
    deadline = time.monotonic() + 120
    while not await _active_copy(scratch_url) and time.monotonic() < deadline:
        assert seeding.poll() is None, log.read_text()
        await asyncio.sleep(0.1)
    seeding.send_signal(signal.SIGINT)
    assert await asyncio.to_thread(seeding.wait, 120) == 130
    said = log.read_text()
    assert "interrupted; seeding was rolled back, nothing was written" in said, said
    assert "Traceback" not in said
    assert await scalar_sql(scratch_url, "SELECT count(*) FROM users") == 0


@pytest.mark.slow
async def test_seed_into_a_file_writes_no_progress_frames(scratch_url: URL, tmp_path: Path) -> None:
    log = tmp_path / "seed.log"
    with log.open("wb") as file:
        seeding = _blogdata(scratch_url, "seed", "--users", "20000", stdout=file, stderr=file)
        assert await asyncio.to_thread(seeding.wait, 300) == 0
    written = log.read_bytes()
    assert b"seeded " in written and b"\r" not in written, written[-500:]


@pytest.mark.slow
async def test_seed_on_a_terminal_shows_a_progress_bar(scratch_url: URL) -> None:
    import fcntl
    import struct
    import termios

    primary, secondary = pty.openpty()
    # A terminal of 24 rows and 80 columns (a fresh pty has none, and tqdm then draws nothing).
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    # Enough rows that the COPY outlasts the bar's one-second delay on a quiet machine.
    seeding = _blogdata(
        scratch_url, "seed", "--users", "60000", stdin=secondary, stdout=secondary,
        stderr=secondary,
    )  # fmt: skip
    os.close(secondary)
    seen = bytearray()
    try:
        _read_until(primary, b"seeded ", seen)
    finally:
        await asyncio.to_thread(seeding.wait, 300)
        os.close(primary)
    assert b"seeding:" in seen and b"rows/s" in seen and b"\r" in seen
