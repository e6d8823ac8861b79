"""blogdata through a real PgBouncer in transaction mode, with a pool of 5 server connections.

The run's PgBouncer (Debian's ``pgbouncer`` package; ``.ci/run`` installs it) listens on a free
loopback port in front of the test server; without the program every test here is skipped
(marker ``pgbouncer``, see the root ``conftest.py``), unless ``BLOGDATA_REQUIRE_PGBOUNCER=1``.
Engines made with ``BLOGDATA_PGBOUNCER=true`` use SQLAlchemy's documented asyncpg + PgBouncer
settings; every test here would raise asyncpg's "prepared statement ... already exists / does not
exist" if a statement outlived its transaction or two clients chose the same name.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import aclosing, asynccontextmanager
from datetime import UTC, datetime

import pandas as pd
import pytest
from sqlalchemy import NullPool, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata import aggregations, crud
from blogdata.config import get_settings
from blogdata.db.engine import create_engine, create_sessionmaker
from blogdata.db.sessions import session_scope
from blogdata.loaders import ROUTE_ATTR, load_frame, stream_frames
from blogdata.models import Post, User
from blogdata.schemas import PostCreate, UserCreate, UserUpdate
from blogdata.servers.pooler import PgBouncer, start_pgbouncer
from tests.transfer_load import (
    ACCOUNTS,
    OPENING,
    SESSIONS,
    TRANSFERS_PER_SESSION,
    draw_plans,
    open_accounts,
    read_balances,
    transfer_concurrently,
)

POOL = 5

pytestmark = pytest.mark.pgbouncer


@pytest.fixture(scope="session")
def pgbouncer(server_url: URL) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode in front of the test server, stopped after the run."""
    bouncer = start_pgbouncer(server_url, pool_size=POOL)
    try:
        yield bouncer
    finally:
        bouncer.stop()


@asynccontextmanager
async def bounced(url: URL, **overrides: object) -> AsyncIterator[AsyncEngine]:
    """An engine made with ``BLOGDATA_PGBOUNCER=true`` on ``url``, disposed on exit."""
    os.environ["BLOGDATA_PGBOUNCER"] = "true"
    get_settings(reload=True)
    try:
        engine = create_engine(url, **overrides)
    finally:
        del os.environ["BLOGDATA_PGBOUNCER"]
        get_settings(reload=True)
    try:
        yield engine
    finally:
        await engine.dispose()


def _no_prepared_statement_errors(bouncer: PgBouncer) -> None:
    assert "prepared statement" not in bouncer.log_file.read_text()


async def test_the_pgbouncer_setting_turns_off_caches_and_the_pool(
    pgbouncer: PgBouncer, database_url: URL
) -> None:
    async with bounced(pgbouncer.url(database_url.database or "")) as engine:
        assert isinstance(engine.pool, NullPool)  # PgBouncer is the pool (SQLAlchemy's advice)
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            adapted = raw.dbapi_connection
            assert adapted is not None
            assert adapted._prepared_statement_cache is None
            names = {adapted._prepared_statement_name_func() for _ in range(3)}
            assert len(names) == 3
            driver = raw.driver_connection
            assert driver is not None
            assert driver._stmt_cache.get_max_size() == 0
            assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
    explicit = create_engine(pgbouncer.url(database_url.database or ""), pgbouncer=True)
    try:
        assert isinstance(explicit.pool, NullPool)  # the argument overrides the setting
    finally:
        await explicit.dispose()


async def test_fifty_concurrent_transfer_sessions_through_pgbouncer_conserve_money(
    pgbouncer: PgBouncer, committed_url: URL
) -> None:
    async with bounced(pgbouncer.url(committed_url.database or "")) as engine:
        ids = await open_accounts(engine)
        plans = draw_plans(ids, seed=20261201)
        async with asyncio.timeout(120):
            outcomes = await transfer_concurrently(create_sessionmaker(engine), plans)
        balances = await read_balances(engine)
    assert len(plans) == SESSIONS
    assert sum(a + r for a, r in outcomes) == SESSIONS * TRANSFERS_PER_SESSION
    assert sum(a for a, _ in outcomes) > 0
    assert sum(balances.values()) == OPENING * ACCOUNTS  # to the cent
    assert min(balances.values()) >= 0
    # The server saw at most the pool's 5 connections from PgBouncer at any time; here, now:
    direct = create_engine(committed_url, poolclass=NullPool)
    try:
        async with direct.connect() as conn:
            served = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                        " AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                )
            ).scalar_one()
    finally:
        await direct.dispose()
    assert served <= POOL
    _no_prepared_statement_errors(pgbouncer)


async def test_crud_through_pgbouncer(pgbouncer: PgBouncer, committed_url: URL) -> None:
    async with bounced(pgbouncer.url(committed_url.database or "")) as engine:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE users, tags RESTART IDENTITY CASCADE"))
        async with session_scope(engine) as db:
            ada = await crud.user.create(
                db, obj_in=UserCreate(email="ada@example.org", username="ada", password="x" * 12)
            )
            post = await crud.post.create(
                db, obj_in=PostCreate(title="Engines", author_id=ada.id, tags=["math", "history"])
            )
        async with session_scope(engine) as db:
            found = await crud.user.get_by_username(db, username="ada")
            assert found is not None and found.id == ada.id
            await crud.user.update(db, id=ada.id, obj_in=UserUpdate(full_name="Ada Lovelace"))
            with_tags = await crud.post.get_with_tags(db, post.id)
            assert with_tags is not None
            assert sorted(t.name for t in with_tags.tags) == ["history", "math"]
        async with session_scope(engine) as db:
            again = await crud.user.get(db, ada.id)
            assert again is not None and again.full_name == "Ada Lovelace"
            await crud.post.remove(db, id=post.id)
            assert await crud.post.count(db) == 0
            assert await crud.user.count(db) == 1
    _no_prepared_statement_errors(pgbouncer)


async def test_every_loader_route_through_pgbouncer_gives_the_direct_frame(
    pgbouncer: PgBouncer, seeded_url: URL, seeded_engine: AsyncEngine
) -> None:
    stmt = select(Post.id, Post.title, Post.content, Post.author_id, Post.created_at).order_by(
        Post.id
    )
    async with session_scope(seeded_engine) as db:
        direct = await load_frame(db, stmt, route="rows")
    async with bounced(pgbouncer.url(seeded_url.database or "")) as engine:
        for _ in range(3):  # the same statements again and again, on shuffled server connections
            async with session_scope(engine) as db:
                for route in ("auto", "binary", "copy", "rows"):
                    frame = await load_frame(db, stmt, route=route)
                    # auto takes the binary route here too (a fallback to rows would pass silently)
                    assert frame.attrs[ROUTE_ATTR] == ("binary" if route == "auto" else route)
                    pd.testing.assert_frame_equal(frame, direct, check_flags=False)
                for route in ("binary", "copy", "rows"):
                    async with aclosing(  # type: ignore[type-var]  # stream_frames is an async generator, typed AsyncIterator
                        stream_frames(db, stmt, chunk_size=100, route=route)  # type: ignore[arg-type]
                    ) as chunks:
                        parts = [chunk async for chunk in chunks]
                    streamed = pd.concat(parts, ignore_index=True)
                    pd.testing.assert_frame_equal(streamed, direct, check_flags=False)
        # A plain connection outside a transaction (autocommit between statements).
        async with engine.connect() as conn:
            frame = await load_frame(conn, select(User.id, User.username).order_by(User.id))
        assert len(frame) > 0
    _no_prepared_statement_errors(pgbouncer)


async def test_every_aggregation_through_pgbouncer_equals_the_direct_answer(
    pgbouncer: PgBouncer, seeded_url: URL, seeded_engine: AsyncEngine
) -> None:
    now = datetime(2026, 1, 1, tzinfo=UTC)

    async def everything(engine: AsyncEngine) -> list[object]:
        async with session_scope(engine) as db:
            return [
                await aggregations.count_users(db),
                await aggregations.users_by_role(db),
                await aggregations.posts_per_author(db),
                await aggregations.posts_per_tag(db),
                await aggregations.top_tags(db, n=5),
                await aggregations.posts_per_month(db),
                await aggregations.active_authors(db, days=3650, now=now),
                await aggregations.tag_cooccurrence(db, min_posts=2),
                await aggregations.author_activity(db),
            ]

    direct = await everything(seeded_engine)
    async with bounced(pgbouncer.url(seeded_url.database or "")) as engine:
        results = await asyncio.gather(*(everything(engine) for _ in range(8)))
    for bounced_results in results:
        for got, want in zip(bounced_results, direct, strict=True):
            if isinstance(want, pd.DataFrame):
                assert isinstance(got, pd.DataFrame)
                pd.testing.assert_frame_equal(got, want, check_flags=False)
            else:
                assert got == want
    _no_prepared_statement_errors(pgbouncer)


_NOTEBOOK = """
import asyncio, os, sys
from sqlalchemy import select
from blogdata.db.engine import create_engine
from blogdata.db.sessions import session_scope
from blogdata.loaders import load_frame
from blogdata.models import Post

async def main() -> None:
    engine = create_engine(sys.argv[1])
    try:
        for _ in range(3):
            async with session_scope(engine) as db:
                for route in ("copy", "rows"):
                    await load_frame(db, select(Post.id, Post.title), route=route)
    finally:
        await engine.dispose()

asyncio.run(main())
print("ok")
"""


def test_many_notebook_processes_share_the_pgbouncer_pool_without_statement_name_clashes(
    pgbouncer: PgBouncer, seeded_url: URL
) -> None:
    url = pgbouncer.url(seeded_url.database or "").render_as_string(hide_password=False)
    env = {**os.environ, "BLOGDATA_PGBOUNCER": "true"}
    # Each process numbers asyncpg's statements from 1: run them one after another and at once.
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", _NOTEBOOK, url], env=env, capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
    together = [
        subprocess.Popen(
            [sys.executable, "-c", _NOTEBOOK, url],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    for process in together:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err[-2000:]
        assert out.strip() == "ok"


async def test_without_the_setting_asyncpgs_cached_statements_break_through_pgbouncer(
    pgbouncer: PgBouncer, seeded_url: URL
) -> None:
    # What BLOGDATA_PGBOUNCER prevents: the fixture really is a transaction-mode pooler.
    engine = create_engine(pgbouncer.url(seeded_url.database or ""))
    errors: list[str] = []

    async def notebook() -> None:
        for _ in range(5):
            try:
                async with session_scope(engine) as db:
                    await aggregations.posts_per_author(db)
                    await db.execute(select(User.id).limit(1))
            except Exception as exc:  # noqa: BLE001 - collecting the driver's errors on purpose
                errors.append(str(exc))

    try:
        await asyncio.gather(*(notebook() for _ in range(20)))
    finally:
        await engine.dispose()
    assert any("prepared statement" in e for e in errors)
