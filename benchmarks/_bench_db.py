"""The benchmark database the scripts share: its name, its URL, and making it once.

``blogdata_bench_1m`` (or ``BLOGDATA_BENCH_LOADERS_DB``) on the ``BLOGDATA_DATABASE_URL`` server,
else the embedded one: ``seed(users=50_000, posts_per_user=20, random_seed=42)``, about 1M posts.
Whoever needs it first creates and seeds it (under an advisory lock); later runs reuse it.
"""

from __future__ import annotations

import os

from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL

from blogdata.db import migrate
from blogdata.db.engine import create_engine, url_or_start_embedded
from blogdata.seed import seed

DATABASE = os.environ.get("BLOGDATA_BENCH_LOADERS_DB", "blogdata_bench_1m")
USERS, POSTS_PER_USER, SEED = 50_000, 20, 42


def server_url() -> URL:
    """The benchmark server's maintenance URL (the configured server, else the embedded one)."""
    return url_or_start_embedded()


def bench_url(database: str = DATABASE) -> URL:
    """The URL of ``database`` on the benchmark server."""
    return server_url().set(database=database)


async def ensure_database() -> int:
    """Create and seed ``blogdata_bench_1m`` unless it exists; return its number of posts."""
    server = server_url()
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            # One creator at a time: whoever holds the lock creates and seeds, others wait.
            await conn.execute(text("SELECT pg_advisory_lock(hashtext('blogdata_bench_1m'))"))
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
            )
            try:
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
                    await migrate.upgrade(bench_url())
                    engine = create_engine(bench_url(), poolclass=NullPool)
                    try:
                        await seed(
                            engine, users=USERS, posts_per_user=POSTS_PER_USER, random_seed=SEED
                        )
                        async with engine.connect() as c:
                            await c.execution_options(isolation_level="AUTOCOMMIT")
                            await c.execute(text("VACUUM ANALYZE"))
                    finally:
                        await engine.dispose()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext('blogdata_bench_1m'))"))
    finally:
        await admin.dispose()
    engine = create_engine(bench_url(), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            posts = await conn.scalar(text("SELECT count(*) FROM posts"))
    finally:
        await engine.dispose()
    return int(posts or 0)
