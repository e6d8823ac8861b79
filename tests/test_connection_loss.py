"""Connection loss: a killed backend or a restarted server is one clear error, and work resumes.

Each operation is made to wait on a lock held by another connection, so it is certainly in
flight when its backend is terminated (``pg_terminate_backend``) or the server stops: no sleeps,
no timing. The engines have no pre-ping and a pool of one connection, so the operation after
the error proves that the dead connection was never handed out again.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import NullPool, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata import crud
from blogdata._url import server_address
from blogdata.aggregations import count_users
from blogdata.bulk import COPY_THRESHOLD, insert_hashed_users
from blogdata.db import migrate
from blogdata.db.engine import create_engine, create_sessionmaker
from blogdata.db.sessions import run_transaction, session_scope
from blogdata.errors import ConnectionLostError, DatabaseUnavailableError
from blogdata.loaders import stream_frames
from blogdata.models import Account, Tag, User
from blogdata.queries import fetch_users_page
from blogdata.schemas import TagCreate
from blogdata.seed import seed
from blogdata.servers import embedded
from blogdata.transactions import transfer_funds
from tests.helpers import migrated_database

PASSWORD = "pw-Secret-4217"  # trust auth ignores it; it must never appear in a message

Operation = Callable[[AsyncSession], Coroutine[Any, Any, Any]]


@pytest.fixture
async def loss_url(server_url: URL) -> AsyncIterator[URL]:
    """A migrated database of this test's own, its URL carrying a password."""
    async with migrated_database(server_url, "blogdata_loss") as url:
        yield url.set(password=PASSWORD)


def _fragile_engine(url: URL) -> AsyncEngine:
    """One pooled connection and no pre-ping: a dead connection put back would be reused."""
    return create_engine(url, pool_size=1, max_overflow=0, pool_pre_ping=False)


async def _fill(url: URL) -> tuple[int, int]:
    """Two users with accounts and one tag; return the two account ids."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with session_scope(engine) as db:
            users = [
                User(email=f"held{i}@example.com", username=f"held{i}", hashed_password="x")
                for i in range(2)
            ]
            db.add_all(users)
            await db.flush()
            accounts = [Account(owner_id=u.id, balance=Decimal("100.00")) for u in users]
            db.add_all(accounts)
            db.add(Tag(name="present"))
            await db.flush()
            return accounts[0].id, accounts[1].id
    finally:
        await engine.dispose()


@asynccontextmanager
async def _holding(url: URL, *statements: str) -> AsyncIterator[None]:
    """Run ``statements`` in an open transaction of another connection for the block."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:  # closing it after a server stop must not raise
            for statement in statements:
                await conn.execute(text(statement))
            yield
    finally:
        await engine.dispose()


async def _waiting_backend(url: URL) -> int:
    """Return the pid of a backend of ``url``'s database that waits for a lock."""
    probe = create_engine(url, poolclass=NullPool)
    try:
        async with probe.connect() as conn:
            while True:
                pid = await conn.scalar(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' LIMIT 1"
                    )
                )
                if pid is not None:
                    return int(pid)
                await conn.rollback()  # a fresh snapshot of pg_stat_activity
                await asyncio.sleep(0.01)
    finally:
        await probe.dispose()


async def _terminate_when_waiting(url: URL) -> int:
    pid = await _waiting_backend(url)
    admin = create_engine(url, poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            assert await conn.scalar(select(func.pg_terminate_backend(pid)))
    finally:
        await admin.dispose()
    return pid


def _assert_clear(err: BaseException, url: URL) -> None:
    assert isinstance(err, DatabaseUnavailableError), repr(err)
    assert isinstance(err, ConnectionLostError)
    message = str(err)
    assert server_address(url) in message
    assert "run the unit of work again" in message and "blogdata db status" in message
    assert PASSWORD not in message and PASSWORD not in repr(err)


async def _still_works(db: AsyncSession, dead: int) -> None:
    await db.rollback()  # must not raise after the loss
    pid = await db.scalar(select(func.pg_backend_pid()))
    assert pid is not None and pid != dead
    assert await db.scalar(select(func.count()).select_from(Tag)) == 1


async def _create_held_tag(db: AsyncSession) -> Any:
    return await crud.tag.create(db, obj_in=TagCreate(name="held"))


async def _get_user(db: AsyncSession) -> Any:
    return await crud.user.get(db, 1)


async def _update_user(db: AsyncSession) -> Any:
    user = await crud.user.get(db, 1)
    assert user is not None
    return await crud.user.update(db, db_obj=user, obj_in={"full_name": "New Name"})


async def _users_page(db: AsyncSession) -> Any:
    return await fetch_users_page(db)


async def _count_users(db: AsyncSession) -> Any:
    return await count_users(db)


async def _copy_users(db: AsyncSession) -> Any:
    rows = [
        {"email": f"c{i}@example.com", "username": f"copied{i}", "hashed_password": "x"}
        for i in range(COPY_THRESHOLD)
    ]
    return await insert_hashed_users(db, rows)


async def _stream(db: AsyncSession) -> Any:
    # Row 15000 waits for an advisory lock: the first chunk arrives, the second is cut off.
    stmt = text(
        "SELECT g FROM generate_series(1, 30000) AS g "
        "WHERE g <> 15000 OR pg_advisory_lock(4217) IS NOT NULL"
    )
    return [len(frame) async for frame in stream_frames(db, stmt, chunk_size=10_000)]


CASES: list[tuple[str, Operation, tuple[str, ...]]] = [
    ("crud-create", _create_held_tag, ("INSERT INTO tags (name) VALUES ('held')",)),
    ("crud-get", _get_user, ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE",)),
    ("crud-update", _update_user, ("SELECT id FROM users WHERE id = 1 FOR UPDATE",)),
    ("query", _users_page, ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE",)),
    ("aggregation", _count_users, ("LOCK TABLE users IN ACCESS EXCLUSIVE MODE",)),
    ("bulk-copy", _copy_users, ("LOCK TABLE users IN SHARE MODE",)),
    ("stream-frames", _stream, ("SELECT pg_advisory_lock(4217)",)),
]


@pytest.mark.parametrize(("operation", "locks"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_killed_backend_is_one_clear_error_and_the_session_recovers(
    loss_url: URL, operation: Operation, locks: tuple[str, ...]
) -> None:
    await _fill(loss_url)
    engine = _fragile_engine(loss_url)
    try:
        async with (
            asyncio.timeout(60),
            _holding(loss_url, *locks),
            create_sessionmaker(engine)() as db,
        ):
            task = asyncio.create_task(operation(db))
            dead = await _terminate_when_waiting(loss_url)
            with pytest.raises(DatabaseUnavailableError) as info:
                await task
            _assert_clear(info.value, loss_url)
            await db.rollback()

        async with asyncio.timeout(60), create_sessionmaker(engine)() as db:
            await _still_works(db, dead)
    finally:
        await engine.dispose()


async def test_a_transfer_in_the_callers_transaction_reports_the_loss(loss_url: URL) -> None:
    payer, payee = await _fill(loss_url)
    engine = _fragile_engine(loss_url)
    lock = f"SELECT id FROM accounts WHERE id = {payer} FOR UPDATE"  # test-owned integer
    try:
        async with (
            asyncio.timeout(60),
            _holding(loss_url, lock),
            create_sessionmaker(engine)() as db,
        ):
            await db.scalar(select(func.count()).select_from(Account))  # opens a transaction
            task = asyncio.create_task(transfer_funds(db, payer, payee, Decimal("1.00")))
            dead = await _terminate_when_waiting(loss_url)
            with pytest.raises(DatabaseUnavailableError) as info:
                await task
            _assert_clear(info.value, loss_url)
            await _still_works(db, dead)

    finally:
        await engine.dispose()


async def test_a_transfer_in_run_transaction_reports_the_loss(loss_url: URL) -> None:
    payer, payee = await _fill(loss_url)
    engine = _fragile_engine(loss_url)
    lock = f"SELECT id FROM accounts WHERE id = {payee} FOR UPDATE"
    try:
        async with (
            asyncio.timeout(60),
            _holding(loss_url, lock),
            create_sessionmaker(engine)() as db,
        ):
            task = asyncio.create_task(
                run_transaction(
                    create_sessionmaker(engine),
                    lambda unit: transfer_funds(unit, payer, payee, Decimal("1.00")),
                )
            )
            dead = await _terminate_when_waiting(loss_url)
            with pytest.raises(DatabaseUnavailableError) as info:
                await task
            _assert_clear(info.value, loss_url)
            await _still_works(db, dead)

        async with engine.connect() as conn:
            balances = (await conn.scalars(select(Account.balance).order_by(Account.id))).all()
        assert balances == [Decimal("100.00"), Decimal("100.00")]
    finally:
        await engine.dispose()


async def test_seeding_into_a_session_reports_the_loss_and_the_session_recovers(
    loss_url: URL,
) -> None:
    engine = _fragile_engine(loss_url)
    try:
        async with (
            asyncio.timeout(60),
            _holding(loss_url, "LOCK TABLE posts IN SHARE MODE"),
            create_sessionmaker(engine)() as db,
        ):
            task = asyncio.create_task(seed(db, users=10))  # COPY into posts waits
            dead = await _terminate_when_waiting(loss_url)
            with pytest.raises(DatabaseUnavailableError) as info:
                await task
            _assert_clear(info.value, loss_url)
            await db.rollback()
            assert await db.scalar(select(func.pg_backend_pid())) != dead
            assert await db.scalar(select(func.count()).select_from(User)) == 0

    finally:
        await engine.dispose()


async def test_seeding_through_an_engine_reports_the_loss_and_leaves_no_rows(
    loss_url: URL,
) -> None:
    engine = _fragile_engine(loss_url)
    try:
        async with asyncio.timeout(60), _holding(loss_url, "LOCK TABLE posts IN SHARE MODE"):
            task = asyncio.create_task(seed(engine, users=10))
            await _terminate_when_waiting(loss_url)
            with pytest.raises(DatabaseUnavailableError) as info:
                await task
        _assert_clear(info.value, loss_url)
        async with asyncio.timeout(60), engine.connect() as conn:
            assert await conn.scalar(select(func.count()).select_from(User)) == 0
    finally:
        await engine.dispose()


async def test_session_scope_reports_the_loss_and_its_rollback_and_close_do_not_raise(
    loss_url: URL,
) -> None:
    await _fill(loss_url)
    engine = _fragile_engine(loss_url)
    try:
        async with asyncio.timeout(60), _holding(loss_url, "LOCK TABLE users IN SHARE MODE"):
            with pytest.raises(DatabaseUnavailableError) as info:
                async with session_scope(engine) as db:
                    task = asyncio.create_task(_copy_users(db))
                    await _terminate_when_waiting(loss_url)
                    await task
        _assert_clear(info.value, loss_url)
        async with asyncio.timeout(60), session_scope(engine) as db:
            assert await db.scalar(select(func.count()).select_from(User)) == 2
    finally:
        await engine.dispose()


# --- the embedded server restarted mid-run --------------------------------------------------


def _fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="blogdata-loss-", dir="/tmp"))
    home.chmod(0o755)  # the server's system user must reach its data directory
    return home


@pytest.fixture
async def restartable() -> AsyncIterator[tuple[Path, URL]]:
    """An embedded server of this test's own (temporary BLOGDATA_HOME), migrated and filled."""
    home = await asyncio.to_thread(_fresh_home)
    try:
        server = await asyncio.to_thread(embedded.start, home, cleanup="delete")
        url = server.url("postgres").set(password=PASSWORD)
        await migrate.upgrade(url)
        await _fill(url)
        yield home, url
    finally:
        await asyncio.to_thread(embedded.stop, home)
        shutil.rmtree(home, ignore_errors=True)


RESTART_CASES = [c for c in CASES if c[0] in {"crud-update", "bulk-copy", "stream-frames"}]


@pytest.mark.parametrize(
    ("operation", "locks"), [c[1:] for c in RESTART_CASES], ids=[c[0] for c in RESTART_CASES]
)
async def test_a_server_restart_mid_operation_is_one_clear_error_and_work_resumes(
    restartable: tuple[Path, URL], operation: Operation, locks: tuple[str, ...]
) -> None:
    home, url = restartable
    engine = _fragile_engine(url)
    try:
        async with asyncio.timeout(90):
            async with _holding(url, *locks), create_sessionmaker(engine)() as db:
                task = asyncio.create_task(operation(db))
                await _waiting_backend(url)
                assert await asyncio.to_thread(embedded.stop, home)
                with pytest.raises(DatabaseUnavailableError) as info:
                    await task
                _assert_clear(info.value, url)
                await db.rollback()
                with pytest.raises(DatabaseUnavailableError, match="cannot reach") as down:
                    await db.scalar(select(func.pg_backend_pid()))  # the server is still down
                assert PASSWORD not in str(down.value)
                await db.rollback()
            await asyncio.to_thread(embedded.start, home)
            async with create_sessionmaker(engine)() as db:
                assert await db.scalar(select(func.count()).select_from(Tag)) == 1
    finally:
        await engine.dispose()
