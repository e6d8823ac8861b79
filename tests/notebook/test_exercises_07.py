"""Notebook 07's exercise check: accepts a transfer locking in id order, rejects wrong ones."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from decimal import Decimal

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.models import Account
from blogdata.notebook.exercises import check_exercise_07

Transfer = Callable[[AsyncSession, int, int, Decimal], Awaitable[None]]


async def ordered_transfer(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """The notebook's solution: lock the smaller id first, whichever way the money goes."""
    accounts: dict[int, Account] = {}
    for account_id in sorted((from_id, to_id)):
        accounts[account_id] = await db.get_one(Account, account_id, with_for_update=True)
    accounts[from_id].balance -= amount
    accounts[to_id].balance += amount


async def payer_first(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """Lock in argument order: opposite transfers can deadlock."""
    payer = await db.get(Account, from_id, with_for_update=True)
    payee = await db.get(Account, to_id, with_for_update=True)
    assert payer is not None and payee is not None
    payer.balance -= amount
    payee.balance += amount


async def unlocked(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """No row locks at all: the lost update."""
    payer = await db.get(Account, from_id)
    payee = await db.get(Account, to_id)
    assert payer is not None and payee is not None
    payer.balance -= amount
    payee.balance += amount


async def backwards(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """Locks in order, but the money goes the wrong way."""
    await ordered_transfer(db, to_id, from_id, amount)


async def locks_one_row(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """Right value, wrong technique: the smaller id locked, the other read without a lock."""
    first, second = sorted((from_id, to_id))
    accounts = {
        first: await db.get_one(Account, first, with_for_update=True),
        second: await db.get_one(Account, second),
    }
    accounts[from_id].balance -= amount
    accounts[to_id].balance += amount


async def own_transaction(db: AsyncSession, from_id: int, to_id: int, amount: Decimal) -> None:
    """The guide's shape: begins its own transaction on a session that already has one."""
    async with db.begin():
        await ordered_transfer(db, from_id, to_id, amount)


async def _balances(db: AsyncSession) -> list[Decimal]:
    rows = await db.scalars(select(Account.balance).where(Account.id.in_((3, 4))))
    return sorted(rows.all())


async def test_the_check_accepts_id_order_and_leaves_the_balances_alone(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _balances(seeded_db)
    await check_exercise_07(ordered_transfer, seeded_db)
    assert capsys.readouterr().out.startswith("✓ both rows locked, in the same order both ways")
    assert await _balances(seeded_db) == before


@pytest.mark.parametrize(
    ("transfer", "hint"),
    [
        pytest.param(
            payer_first, "first lock was on account 4, from 3 to 4 on account 3", id="payer"
        ),
        pytest.param(unlocked, "locked nothing", id="unlocked"),
        pytest.param(
            locks_one_row,
            "locked account 3 only: account 4 was read without FOR UPDATE",
            id="one-row",
        ),
        pytest.param(backwards, "take the amount from the payer", id="backwards"),
        pytest.param(own_transaction, "must not begin or commit", id="begins"),
    ],
)
async def test_the_check_rejects_transfers_that_can_deadlock_or_move_money_wrong(
    seeded_db: AsyncSession, transfer: Transfer, hint: str
) -> None:
    before = await _balances(seeded_db)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_07(transfer, seeded_db)
    assert await _balances(seeded_db) == before


async def test_the_check_rejects_balances_typed_in(seeded_db: AsyncSession) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_07({3: Decimal("99.00"), 4: Decimal("101.00")}, seeded_db)


async def test_the_check_rejects_a_coroutine_instead_of_the_function(
    seeded_db: AsyncSession,
) -> None:
    call = ordered_transfer(seeded_db, 4, 3, Decimal("1.00"))
    try:
        with pytest.raises(ExerciseError, match="you called ordered_transfer"):
            await check_exercise_07(call, seeded_db)
    finally:
        call.close()
