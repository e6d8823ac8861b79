"""Fixtures: one server per run, one migrated throwaway database, one rolled-back
transaction per test.

The server is ``BLOGDATA_TEST_DATABASE_URL`` when set, else an embedded PostgreSQL in a temporary
folder that is deleted afterwards. The database is built by the migrations (``upgrade head``), so
they are tested on every run. Each test's session joins an outer transaction with
``join_transaction_mode="create_savepoint"``: code under test may commit, and the outer rollback
still undoes everything.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest
from sqlalchemy import NullPool
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.config import get_settings
from blogdata.db.engine import create_database, create_engine, drop_database
from blogdata.seed import seed
from blogdata.servers import embedded
from tests.helpers import migrated_database, pooled_engine, rolled_back_session

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


@pytest.fixture
async def scratch_url(server_url: URL) -> AsyncIterator[URL]:
    """An empty database of this test's own (no tables: migrate it up and down), dropped after."""
    name = f"blogdata_scratch_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    try:
        yield url
    finally:
        await drop_database(server_url, name)


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
