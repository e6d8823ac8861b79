"""transfer_funds, savepoints and batch inserts, inside the per-test rolled-back transaction."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import (
    AlreadyExistsError,
    InsufficientFundsError,
    InvalidInputError,
    NotFoundError,
)
from blogdata.models import Account, User
from blogdata.transactions import (
    insert_each_in_savepoint,
    savepoint,
    transfer_funds,
)
from tests.guide_patterns import guide_transfer_unlocked


async def _accounts(db: AsyncSession, *balances: str) -> list[int]:
    users = [
        User(email=f"owner{i}@example.com", username=f"owner{i}", hashed_password="x")
        for i in range(len(balances))
    ]
    db.add_all(users)
    await db.flush()
    accounts = [
        Account(owner_id=user.id, balance=Decimal(b))
        for user, b in zip(users, balances, strict=True)
    ]
    db.add_all(accounts)
    await db.flush()
    await db.commit()  # the session is idle again, as a fresh one would be
    return [a.id for a in accounts]


async def _balances(db: AsyncSession, *ids: int) -> list[Decimal]:
    rows = await db.execute(select(Account.id, Account.balance).where(Account.id.in_(ids)))
    by_id = {row[0]: row[1] for row in rows}
    return [by_id[i] for i in ids]


async def test_transfer_on_a_fresh_session_never_commits(db: AsyncSession) -> None:
    # Regression (issue 11): on an idle session the transfer used to begin and commit by itself.
    a, b = await _accounts(db, "100.00", "5.00")
    assert not db.in_transaction()
    result = await transfer_funds(db, a, b, Decimal("30.25"))
    assert (result.from_balance, result.to_balance) == (Decimal("69.75"), Decimal("35.25"))
    assert db.in_transaction()  # a savepoint of the autobegun transaction: the caller decides
    await db.rollback()
    assert await _balances(db, a, b) == [Decimal("100.00"), Decimal("5.00")]


async def test_transfer_inside_an_autobegun_transaction_leaves_the_commit_to_the_caller(
    db: AsyncSession,
) -> None:
    a, b = await _accounts(db, "100.00", "0.00")
    await db.scalar(select(func.count()).select_from(Account))  # autobegins
    assert db.in_transaction()
    await transfer_funds(db, a, b, Decimal("40"))
    assert db.in_transaction()
    assert await _balances(db, a, b) == [Decimal("60.00"), Decimal("40.00")]
    await db.rollback()  # the caller's unit of work decides: here it undoes the transfer
    assert await _balances(db, a, b) == [Decimal("100.00"), Decimal("0.00")]


async def test_transfer_never_commits_the_callers_pending_changes(db: AsyncSession) -> None:
    a, b = await _accounts(db, "100.00", "0.00")
    db.add(User(email="pending@example.com", username="pending", hashed_password="x"))
    await transfer_funds(db, a, b, Decimal("1.00"))
    assert db.in_transaction()  # joined as a savepoint: the caller still decides
    await db.rollback()
    assert await db.scalar(select(func.count()).where(User.username == "pending")) == 0
    assert await _balances(db, a, b) == [Decimal("100.00"), Decimal("0.00")]


async def test_the_guides_transfer_fails_on_an_autobegun_session(db: AsyncSession) -> None:
    a, b = await _accounts(db, "100.00", "0.00")
    await db.scalar(select(func.count()).select_from(Account))
    with pytest.raises(InvalidRequestError, match="A transaction is already begun"):
        await guide_transfer_unlocked(db, a, b, Decimal("1"))


@pytest.mark.parametrize("autobegun", [False, True], ids=["fresh-session", "autobegun-session"])
async def test_transfer_leaves_balances_untouched_when_funds_are_short(
    db: AsyncSession, autobegun: bool
) -> None:
    a, b = await _accounts(db, "10.00", "1.00")
    if autobegun:
        await db.scalar(select(func.count()).select_from(Account))
    with pytest.raises(InsufficientFundsError, match="holds 10.00, less than 10.01"):
        await transfer_funds(db, a, b, Decimal("10.01"))
    assert db.in_transaction()  # the caller's transaction survives the failed savepoint
    assert await _balances(db, a, b) == [Decimal("10.00"), Decimal("1.00")]


async def test_transfer_of_the_whole_balance_empties_the_account(db: AsyncSession) -> None:
    a, b = await _accounts(db, "10.00", "1.00")
    result = await transfer_funds(db, a, b, "10.00")  # type: ignore[arg-type]
    assert (result.from_balance, result.to_balance) == (Decimal("0.00"), Decimal("11.00"))


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(10.5, id="float"),
        pytest.param("1.005", id="str-with-3-places"),
        pytest.param(Decimal("0.001"), id="decimal-with-3-places"),
        pytest.param(Decimal("NaN"), id="nan"),
        pytest.param(Decimal("Infinity"), id="infinity"),
        pytest.param(Decimal("-5"), id="negative"),
        pytest.param(0, id="zero"),
        pytest.param(True, id="bool"),
        pytest.param("ten", id="not-a-number"),
        pytest.param(None, id="none"),
        pytest.param(Decimal("10000000000.00"), id="larger-than-numeric-12-2"),
    ],
)
async def test_transfer_rejects_bad_amounts_before_running_any_sql(
    db: AsyncSession, amount: object
) -> None:
    a, b = await _accounts(db, "100.00", "0.00")
    with pytest.raises(InvalidInputError):
        await transfer_funds(db, a, b, amount)  # type: ignore[arg-type]
    assert not db.in_transaction()  # no statement ran, so no lock was taken


@pytest.mark.parametrize(
    ("from_id", "to_id"),
    [pytest.param(1, 1, id="same-account"), pytest.param("1", 2, id="str-id")],
)
async def test_transfer_rejects_bad_ids(db: AsyncSession, from_id: object, to_id: object) -> None:
    with pytest.raises(InvalidInputError):
        await transfer_funds(db, from_id, to_id, Decimal("1"))  # type: ignore[arg-type]
    assert not db.in_transaction()


@pytest.mark.parametrize("missing", ["payer", "payee"])
async def test_transfer_to_or_from_a_missing_account_raises_not_found(
    db: AsyncSession, missing: str
) -> None:
    (a,) = await _accounts(db, "50.00")
    ghost = a + 1000
    pair = (ghost, a) if missing == "payer" else (a, ghost)
    with pytest.raises(NotFoundError, match=f"account {ghost} does not exist"):
        await transfer_funds(db, *pair, Decimal("1"))
    assert await _balances(db, a) == [Decimal("50.00")]


async def test_a_savepoint_undoes_only_its_own_work(db: AsyncSession) -> None:
    db.add(User(email="kept@example.com", username="kept", hashed_password="x"))
    await db.flush()
    with pytest.raises(AlreadyExistsError, match="email") as info:
        async with savepoint(db):
            db.add(User(email="other@example.com", username="other", hashed_password="x"))
            await db.flush()
            db.add(User(email="kept@example.com", username="dup", hashed_password="x"))
            await db.flush()
    assert info.value.field == "email"
    names = (await db.scalars(select(User.username).order_by(User.username))).all()
    assert names == ["kept"]


async def test_a_batch_keeps_good_rows_and_reports_bad_ones_without_aborting(
    db: AsyncSession,
) -> None:
    db.add(User(email="taken@example.com", username="taken", hashed_password="x"))
    await db.flush()
    batch = [
        User(email="a@example.com", username="a", hashed_password="x"),
        User(email="taken@example.com", username="b", hashed_password="x"),
        User(email="c@example.com", username="c", hashed_password="x"),
        User(email="d@example.com", username="c", hashed_password="x"),
        Account(owner_id=10**9, balance=Decimal("1")),
    ]
    report = await insert_each_in_savepoint(db, batch)
    assert [row.username for row in report.inserted] == ["a", "c"]  # type: ignore[attr-defined]
    assert [(f.index, type(f.error).__name__) for f in report.failed] == [
        (1, "AlreadyExistsError"),
        (3, "AlreadyExistsError"),
        (4, "RelatedRowMissingError"),
    ]
    assert not report.ok
    # The outer transaction is alive: the good rows are there and more work succeeds.
    db.add(User(email="e@example.com", username="e", hashed_password="x"))
    await db.flush()
    names = (await db.scalars(select(User.username).order_by(User.username))).all()
    assert names == ["a", "c", "e", "taken"]
