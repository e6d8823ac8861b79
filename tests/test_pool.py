"""An exhausted pool fails clearly after pool_timeout instead of hanging."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL

from blogdata.db.engine import create_engine, create_sessionmaker
from blogdata.errors import DatabaseUnavailableError, PoolExhaustedError


async def test_a_checkout_beyond_pool_size_plus_overflow_fails_after_the_timeout(
    database_url: URL,
) -> None:
    engine = create_engine(database_url, pool_size=2, max_overflow=1, pool_timeout=0.3)
    try:
        async with asyncio.timeout(10), AsyncExitStack() as busy:
            for _ in range(3):  # pool_size + max_overflow
                conn = await busy.enter_async_context(engine.connect())
                assert await conn.scalar(select(1)) == 1
            sessions = create_sessionmaker(engine)
            async with sessions() as db:
                with pytest.raises(PoolExhaustedError, match="within 0.3 s") as info:
                    await db.scalar(select(1))
            assert isinstance(info.value, DatabaseUnavailableError)
            assert "2 pooled and 1 overflow" in str(info.value)
            assert "BLOGDATA_POOL_SIZE" in str(info.value)
        # Once the connections are back, checkouts work again.
        async with engine.connect() as conn:
            assert await conn.scalar(select(1)) == 1
    finally:
        await engine.dispose()


async def test_a_waiting_checkout_gets_the_connection_someone_returns(database_url: URL) -> None:
    engine = create_engine(database_url, pool_size=1, max_overflow=0, pool_timeout=5)
    try:
        async with asyncio.timeout(10):
            holder = await engine.connect()

            async def release_soon() -> None:
                await asyncio.sleep(0.1)
                await holder.close()

            releaser = asyncio.create_task(release_soon())
            async with engine.connect() as conn:
                assert await conn.scalar(select(1)) == 1
            await releaser
    finally:
        await engine.dispose()
