"""Transfers under concurrent load, and the engine under faults, with real commits.

Every test is bounded by ``asyncio.timeout`` so a hang fails instead of stalling the run. They
use their own committed database (``committed_url``), or their own embedded server.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import NullPool, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine, create_sessionmaker
from blogdata.db.sessions import IsolationLevel, run_transaction, session_scope
from blogdata.errors import (
    RETRYABLE_SQLSTATES,
    InsufficientFundsError,
    QueryError,
    RetryableConflictError,
    StatementTimeoutError,
)
from blogdata.models import Account, User
from blogdata.servers import embedded
from blogdata.transactions import statement_timeout, transfer_funds
from tests.guide_patterns import guide_transfer_unlocked
from tests.transfer_load import (
    ACCOUNTS,
    OPENING,
    SESSIONS,
    TRANSFERS_PER_SESSION,
    Plan,
    draw_plans,
    open_accounts,
    read_balances,
    transfer_concurrently,
)


@pytest.fixture
async def engine(committed_url: URL) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on the committed database, smaller than the load so sessions queue."""
    eng = create_engine(committed_url, pool_size=20, max_overflow=5, pool_timeout=30)
    try:
        yield eng
    finally:
        await eng.dispose()


def _has_opposite_pairs(plans: list[Plan]) -> bool:
    pairs = {(a, b) for plan in plans for a, b, _ in plan}
    return any((b, a) in pairs for a, b in pairs)


async def test_concurrent_transfers_conserve_money_and_never_deadlock(
    engine: AsyncEngine,
) -> None:
    ids = await open_accounts(engine)
    plans = draw_plans(ids, seed=20261125)
    assert _has_opposite_pairs(plans)

    async with asyncio.timeout(60):
        outcomes = await transfer_concurrently(create_sessionmaker(engine), plans)

    applied = sum(a for a, _ in outcomes)
    rejected = sum(r for _, r in outcomes)
    assert applied + rejected == SESSIONS * TRANSFERS_PER_SESSION
    assert applied > 0
    assert rejected > 0  # amounts up to 400 from 1000: some payers run dry
    balances = await read_balances(engine)
    assert sum(balances.values()) == OPENING * ACCOUNTS  # to the cent
    assert min(balances.values()) >= 0


async def test_the_guides_unlocked_transfer_loses_updates_under_the_same_load(
    engine: AsyncEngine,
) -> None:
    ids = await open_accounts(engine)
    plans = draw_plans(ids, seed=20261125)
    sessions = create_sessionmaker(engine)

    async def customer(plan: Plan) -> int:
        failed = 0
        async with sessions() as db:
            for payer, payee, amount in plan:
                try:
                    # The pause between read and write widens the race the guide's code has.
                    await guide_transfer_unlocked(db, payer, payee, amount, pause=0.005)
                except (InsufficientFundsError, DBAPIError):
                    failed += 1  # short funds, or a CHECK violation from a stale balance
        return failed

    async with asyncio.timeout(60):
        await asyncio.gather(*(customer(plan) for plan in plans))

    total = sum((await read_balances(engine)).values())
    assert total != OPENING * ACCOUNTS  # money was created or destroyed


HOT_SPOT_TRANSFERS = 40  # half each way between the same two accounts, all at once


@pytest.mark.parametrize("level", ["REPEATABLE READ", "SERIALIZABLE"])
async def test_opposite_transfers_on_one_hot_pair_succeed_with_the_default_retries(
    committed_url: URL, level: IsolationLevel
) -> None:
    # Every transfer fights for the same two rows: under these levels each one that waited for
    # the lock fails with 40001, so only the retries (backoff with full jitter) get them through.
    engine = create_engine(committed_url, pool_size=HOT_SPOT_TRANSFERS, max_overflow=0)
    try:
        payer, payee = (await open_accounts(engine))[:2]
        sessions = create_sessionmaker(engine)

        async def transfer(index: int) -> bool:
            pair = (payer, payee) if index % 2 else (payee, payer)
            try:
                await run_transaction(
                    sessions,
                    lambda db: transfer_funds(db, *pair, Decimal("1.25")),
                    isolation_level=level,
                )
            except QueryError as exc:
                assert exc.sqlstate in RETRYABLE_SQLSTATES, exc
                return False
            return True

        async with asyncio.timeout(120):
            outcomes = await asyncio.gather(*(transfer(i) for i in range(HOT_SPOT_TRANSFERS)))
        succeeded = sum(outcomes)
        balances = await read_balances(engine)
        assert sum(balances.values()) == OPENING * ACCOUNTS  # to the cent
        moved = Decimal("1.25") * (
            sum(ok for i, ok in enumerate(outcomes) if i % 2)
            - sum(ok for i, ok in enumerate(outcomes) if not i % 2)
        )
        assert (balances[payer], balances[payee]) == (OPENING - moved, OPENING + moved)
        print(f"hot spot under {level}: {succeeded}/{HOT_SPOT_TRANSFERS} succeeded")  # noqa: T201
        assert succeeded / HOT_SPOT_TRANSFERS >= 0.95
    finally:
        await engine.dispose()


async def test_run_transaction_reruns_the_whole_unit_after_a_serialization_failure(
    engine: AsyncEngine,
) -> None:
    payer, payee = (await open_accounts(engine))[:2]
    sessions = create_sessionmaker(engine)
    async with asyncio.timeout(30), engine.connect() as blocker:
        await blocker.execute(
            text("UPDATE accounts SET balance = balance + 1 WHERE id = :id"), {"id": payer}
        )

        runs = []

        async def unit(db: AsyncSession) -> None:
            runs.append(1)
            await transfer_funds(db, payer, payee, Decimal("10.00"))

        async def transfer() -> int:
            await run_transaction(sessions, unit, isolation_level="REPEATABLE READ")
            return len(runs)

        task = asyncio.create_task(transfer())
        await _wait_until_blocked(engine)
        await blocker.commit()  # the transfer's snapshot is now stale: SQLSTATE 40001
        attempts = await task
    assert attempts == 2
    balances = await read_balances(engine)
    assert (balances[payer], balances[payee]) == (Decimal("991.00"), Decimal("1010.00"))


async def test_with_no_retries_left_the_serialization_failure_is_raised(
    engine: AsyncEngine,
) -> None:
    payer, payee = (await open_accounts(engine))[:2]
    sessions = create_sessionmaker(engine)
    async with asyncio.timeout(30), engine.connect() as blocker:
        await blocker.execute(
            text("UPDATE accounts SET balance = balance + 1 WHERE id = :id"), {"id": payer}
        )
        task = asyncio.create_task(
            run_transaction(
                sessions,
                lambda db: transfer_funds(db, payer, payee, Decimal("10.00")),
                isolation_level="SERIALIZABLE",
                retries=0,
            )
        )
        await _wait_until_blocked(engine)
        await blocker.commit()
        with pytest.raises(
            RetryableConflictError, match="run the whole unit of work again"
        ) as info:
            await task
        assert info.value.sqlstate == "40001"
    balances = await read_balances(engine)
    assert (balances[payer], balances[payee]) == (Decimal("1001.00"), Decimal("1000.00"))


async def test_a_serialization_failure_in_the_callers_transaction_is_raised_for_it_to_retry(
    engine: AsyncEngine,
) -> None:
    payer, payee = (await open_accounts(engine))[:2]
    sessions = create_sessionmaker(engine)
    async with asyncio.timeout(30), engine.connect() as blocker, sessions() as db:
        await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        await db.scalar(select(func.count()).select_from(Account))  # takes the snapshot
        await blocker.execute(
            text("UPDATE accounts SET balance = balance + 1 WHERE id = :id"), {"id": payer}
        )
        task = asyncio.create_task(transfer_funds(db, payer, payee, Decimal("10.00")))
        await _wait_until_blocked(engine)
        await blocker.commit()
        with pytest.raises(QueryError, match="run the whole unit of work again") as info:
            await task
        assert info.value.sqlstate == "40001"
        await db.rollback()
    balances = await read_balances(engine)
    assert (balances[payer], balances[payee]) == (Decimal("1001.00"), Decimal("1000.00"))


async def _wait_until_blocked(engine: AsyncEngine) -> None:
    """Return once some backend of this database waits for a row lock."""
    probe = create_engine(engine.url, poolclass=NullPool)
    try:
        async with probe.connect() as conn:
            while not await conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            ):
                await conn.rollback()  # a fresh snapshot of pg_stat_activity each time
                await asyncio.sleep(0.01)
    finally:
        await probe.dispose()


async def test_the_pool_recovers_after_the_server_kills_every_connection(
    committed_url: URL,
) -> None:
    engine = create_engine(committed_url, pool_size=3, max_overflow=0, pool_pre_ping=True)
    admin = create_engine(committed_url, poolclass=NullPool)
    try:
        async with asyncio.timeout(30):
            async with AsyncExitStack() as stack:  # fill the pool with three live connections
                conns = [await stack.enter_async_context(engine.connect()) for _ in range(3)]
                old = {await c.scalar(select(func.pg_backend_pid())) for c in conns}
            assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
            async with admin.connect() as conn:
                for pid in old:
                    await conn.execute(select(func.pg_terminate_backend(pid)))
                while await conn.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": list(old)},
                ):
                    await conn.rollback()
                    await asyncio.sleep(0.01)

            sessions = create_sessionmaker(engine)

            async def work() -> int:
                async with sessions() as db:
                    pid: int | None = await db.scalar(select(func.pg_backend_pid()))
                    await asyncio.sleep(0.05)  # keep the connection so all three are used
                    assert pid is not None
                    return pid

            new = set(await asyncio.gather(*(work() for _ in range(3))))
        assert len(new) == 3
        assert not new & old  # every dead connection was replaced, none surfaced an error
    finally:
        await engine.dispose()
        await admin.dispose()


def _fresh_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="blogdata-restart-", dir="/tmp"))
    home.chmod(0o755)  # the server's system user must reach its data directory
    return home


async def test_the_next_operation_succeeds_after_the_embedded_server_restarts() -> None:
    home = await asyncio.to_thread(_fresh_home)
    engine: AsyncEngine | None = None
    try:
        async with asyncio.timeout(60):
            server = await asyncio.to_thread(embedded.start, home, cleanup="delete")
            engine = create_engine(server.url("postgres"), pool_size=2, pool_pre_ping=True)
            sessions = create_sessionmaker(engine)
            async with sessions() as db:
                before = await db.scalar(select(func.pg_backend_pid()))
            assert await asyncio.to_thread(embedded.stop, home)
            restarted = await asyncio.to_thread(embedded.start, home)
            assert restarted.pid != server.pid
            async with sessions() as db:
                after = await db.scalar(select(func.pg_backend_pid()))
                assert (
                    await db.scalar(select(func.count()).select_from(text("pg_database"))) or 0
                ) > 0
        assert after != before
    finally:
        if engine is not None:
            await engine.dispose()
        await asyncio.to_thread(embedded.stop, home)
        shutil.rmtree(home, ignore_errors=True)


async def test_a_statement_over_the_timeout_fails_clearly_and_the_session_recovers(
    engine: AsyncEngine,
) -> None:
    sessions = create_sessionmaker(engine)
    async with asyncio.timeout(30), sessions() as db:
        default = await db.scalar(select(func.current_setting("statement_timeout")))
        with pytest.raises(StatementTimeoutError, match="roll back") as info:
            async with statement_timeout(db, 0.05):
                await db.execute(select(func.pg_sleep(5)))
        assert info.value.sqlstate == "57014"
        assert isinstance(info.value, QueryError)
        await db.rollback()
        assert await db.scalar(select(func.current_setting("statement_timeout"))) == default
        async with statement_timeout(db, 5):  # a fast statement under a limit is fine
            await db.execute(select(func.pg_sleep(0.01)))
            assert await db.scalar(select(func.current_setting("statement_timeout"))) == "5s"
        assert await db.scalar(select(func.current_setting("statement_timeout"))) == default


async def test_an_error_midway_through_a_unit_of_work_leaves_no_partial_writes(
    engine: AsyncEngine,
) -> None:
    payer, payee = (await open_accounts(engine))[:2]
    with pytest.raises(RuntimeError, match="midway"):
        async with asyncio.timeout(30), session_scope(engine) as db:
            db.add(User(email="new@example.com", username="newcomer", hashed_password="x"))
            await db.flush()
            await transfer_funds(db, payer, payee, Decimal("100.00"))  # a savepoint, no commit
            raise RuntimeError("the process fails midway")
    balances = await read_balances(engine)
    assert (balances[payer], balances[payee]) == (OPENING, OPENING)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.count()).where(User.username == "newcomer")) == 0
