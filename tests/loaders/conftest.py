"""The loaders' fixtures: the differential-test database and a plain session on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from tests.loaders.oracle import FidelityDb, fidelity_database


@pytest.fixture(scope="session")
async def fidelity(server_url: URL) -> AsyncIterator[FidelityDb]:
    """The loaders' differential-test database (``tests.loaders.oracle.fidelity_database``)."""
    async with fidelity_database(server_url) as fid:
        yield fid


@pytest.fixture
async def fdb(fidelity: FidelityDb) -> AsyncIterator[AsyncSession]:
    """A plain session on the fidelity database, rolled back and closed after the test."""
    session = AsyncSession(fidelity.engine, expire_on_commit=False)
    try:
        yield session
    finally:
        await session.rollback()
        await session.close()
