"""Database fixtures: one server per run, one migrated throwaway database, one rolled-back
transaction per test.

The server is ``BLOGDATA_TEST_DATABASE_URL`` when set, else an embedded PostgreSQL in a temporary
folder that is deleted afterwards. The database is built by the migrations (``upgrade head``), so
they are tested on every run. Each test's session joins an outer transaction with
``join_transaction_mode="create_savepoint"``: code under test may commit, and the outer rollback
still undoes everything.
"""

from __future__ import annotations

import importlib.util
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType

import pytest
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.config import get_settings
from blogdata.db import migrate

# create_database and drop_database are imported from here by the tests that make their own.
from blogdata.db.engine import create_database, create_engine, drop_database
from blogdata.servers import embedded

get_settings(reload=True)  # the root conftest.py has set this run's environment


@pytest.fixture(scope="session")
def server_url() -> Iterator[URL]:
    """The URL of the server's maintenance database (``postgres``)."""
    configured = os.environ.get("BLOGDATA_TEST_DATABASE_URL")
    if configured:
        yield make_url(configured)
        return
    # The root conftest stops this server and deletes its folder when the run ends.
    yield embedded.start().url("postgres")


@asynccontextmanager
async def migrated_database(server: URL, prefix: str) -> AsyncIterator[URL]:
    """Create a uniquely named database on ``server``, migrate it to head, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = await create_database(server, name)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await drop_database(server, name)


async def execute_sql(url: URL, *statements: str) -> None:
    """Run ``statements`` on ``url`` in one committed transaction, on a connection of their own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def scalar_sql(url: URL, sql: str) -> object:
    """Return the first value ``sql`` gives on ``url``, on a connection of its own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


@pytest.fixture
async def scratch_url(server_url: URL) -> AsyncIterator[URL]:
    """An empty database of this test's own (no tables: migrate it up and down), dropped after."""
    name = f"blogdata_scratch_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


@asynccontextmanager
async def pooled_engine(url: URL) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on ``url``, disposed on exit."""
    eng = create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


@asynccontextmanager
async def rolled_back_session(eng: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session joined to an outer transaction that is always rolled back on exit.

    With ``join_transaction_mode="create_savepoint"`` the code under test may commit or roll
    back: that only releases or rolls back a SAVEPOINT inside the outer transaction.
    """
    async with eng.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            if outer.is_active:
                await outer.rollback()


@pytest.fixture(scope="session")
async def database_url(server_url: URL) -> AsyncIterator[URL]:
    """A throwaway database for this run, built by ``alembic upgrade head``."""
    async with migrated_database(server_url, "blogdata_test") as url:
        yield url


@pytest.fixture(scope="session")
async def engine(database_url: URL) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on the run's database, disposed at the end of the run."""
    async with pooled_engine(database_url) as eng:
        yield eng


@pytest.fixture
async def db(engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session inside an outer transaction that is always rolled back after the test."""
    async with rolled_back_session(engine) as session:
        yield session


@pytest.fixture(scope="session")
async def seeded_url(server_url: URL) -> AsyncIterator[URL]:
    """A throwaway migrated database seeded once per run with ``seed()``'s defaults (read-only)."""
    from blogdata.seed import seed

    async with migrated_database(server_url, "blogdata_seeded") as url:
        eng = create_engine(url, poolclass=NullPool)
        try:
            await seed(eng)
        finally:
            await eng.dispose()
        yield url


@pytest.fixture(scope="session")
async def seeded_engine(seeded_url: URL) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on the seeded database; tests must not commit changes to it."""
    async with pooled_engine(seeded_url) as eng:
        yield eng


@pytest.fixture
async def seeded_db(seeded_engine: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session on the seeded database inside an outer transaction rolled back after the test."""
    async with rolled_back_session(seeded_engine) as session:
        yield session


@pytest.fixture(scope="session")
async def committed_url(server_url: URL) -> AsyncIterator[URL]:
    """A migrated throwaway database where tests really commit (concurrency, faults).

    Nothing rolls back for you here: each test sets up (e.g. TRUNCATE) the rows it needs.
    """
    async with migrated_database(server_url, "blogdata_committed") as url:
        yield url


def notebook_script(name: str) -> ModuleType:
    """Import ``notebooks/<name>.py`` (a script such as ``execute`` or ``docs``, not a package)."""
    path = Path(__file__).resolve().parents[1] / "notebooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"nb_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
