"""The standby commands (``blogdata db replica start|stop|status``), ``db status`` with both
servers, ``db url --read``, and the read settings."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil  # type: ignore[import-untyped]  # no stubs
import pytest
from sqlalchemy.engine import make_url

from blogdata.cli import main
from blogdata.config import Settings, get_settings
from blogdata.errors import ConfigurationError
from blogdata.servers import embedded, replica

SECRET = "r3ad-s3cr3t"


@pytest.fixture
def own_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A BLOGDATA_HOME of this test's own, with no database or read URL configured."""
    home = Path(tempfile.mkdtemp(prefix="bd-replica-"))
    home.chmod(0o755)
    monkeypatch.setenv("BLOGDATA_HOME", str(home))
    monkeypatch.delenv("BLOGDATA_DATABASE_URL", raising=False)
    monkeypatch.delenv("BLOGDATA_READ_URL", raising=False)
    get_settings(reload=True)
    try:
        yield home
    finally:
        replica.stop(home)
        embedded.stop(home)
        monkeypatch.undo()
        get_settings(reload=True)
        shutil.rmtree(home, ignore_errors=True)


def test_replica_start_status_and_stop_and_db_status_shows_both_servers(
    own_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "replica", "status"]) == 3
    assert "not running" in capsys.readouterr().out
    assert main(["db", "replica", "start"]) == 0
    out = capsys.readouterr().out
    assert f"data in {own_home / 'replica'}" in out
    exported = out.split("export BLOGDATA_READ_URL=", 1)[1].strip().strip("'")
    assert make_url(exported).query["host"] == str(own_home / "replica")
    assert main(["db", "replica", "start"]) == 0  # reused, not made again
    capsys.readouterr()
    assert main(["db", "replica", "status"]) == 0
    assert "replay lag" in capsys.readouterr().out
    assert main(["db", "status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("configured: the embedded server") and "running (pid" in lines[0]
    assert lines[1].startswith("replica: running (pid") and lines[1].endswith(" bytes")
    assert main(["db", "replica", "stop"]) == 0
    assert capsys.readouterr().out.strip() == "stopped"
    assert main(["db", "replica", "stop"]) == 0
    assert capsys.readouterr().out.strip() == "not running"
    assert main(["db", "status"]) == 0
    assert "replica: not running" in capsys.readouterr().out


def test_the_standby_stops_when_its_primary_stops(
    own_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The CLI's standby belongs to its primary: `blogdata db stop` must not leave it running alone.
    assert main(["db", "replica", "start"]) == 0
    standby = replica.status(own_home)
    assert standby is not None
    top = psutil.Process(standby.pid)
    processes = [top, *top.children(recursive=True)]
    assert main(["db", "stop"]) == 0
    capsys.readouterr()
    gone, alive = psutil.wait_procs(processes, timeout=20)
    assert alive == []
    assert replica.status(own_home) is None


def test_db_url_read_prints_the_read_url_with_its_password_hidden(
    own_home: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("BLOGDATA_READ_URL", f"postgresql+asyncpg://an:{SECRET}@standby:5433/blog")
    get_settings(reload=True)
    assert main(["db", "url", "--read"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == "postgresql+asyncpg://an:***@standby:5433/blog"
    assert SECRET not in out


def test_db_url_read_without_a_read_url_prints_the_primary(
    own_home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["db", "url", "--read"]) == 0
    read = capsys.readouterr().out
    assert main(["db", "url"]) == 0
    assert read == capsys.readouterr().out


def test_the_read_url_is_validated_like_the_main_one_and_never_shown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BLOGDATA_READ_URL", f"postgresql://an:{SECRET}@standby/blog")
    try:
        with pytest.raises(ConfigurationError, match="BLOGDATA_READ_URL") as caught:
            get_settings(reload=True)
        assert SECRET not in str(caught.value)
        assert "postgresql+asyncpg://" in str(caught.value)
        monkeypatch.setenv("BLOGDATA_READ_URL", f"postgresql+asyncpg://an:{SECRET}@standby/blog")
        settings = get_settings(reload=True)
        assert settings.read is not None and settings.read.host == "standby"
        assert SECRET not in repr(settings) and SECRET not in str(settings)
    finally:
        monkeypatch.undo()
        get_settings(reload=True)


def test_reads_default_to_the_primary_with_no_fallback_and_no_pgbouncer() -> None:
    settings = Settings()
    assert settings.read is None
    assert settings.read_fallback is False
    assert settings.pgbouncer is False
