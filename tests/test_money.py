"""Money never turns into NaN: the CHECK, its migration, and transfers facing NaN or huge values."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.db import migrate
from blogdata.errors import BlogdataError, InvalidInputError, QueryError
from blogdata.models import Account, User
from blogdata.transactions import transfer_funds
from tests.helpers import execute_sql, scalar_sql

#: The revision before the one that forbids NaN balances.
BEFORE_NAN_CHECK = "a661c77fcce7"


_OWNER = "INSERT INTO users (email, username, hashed_password) VALUES ('m@example.com', 'm', 'h')"


async def test_the_migration_keeps_valid_balances_and_then_refuses_nan(scratch_url: URL) -> None:
    await migrate.upgrade(scratch_url, BEFORE_NAN_CHECK)
    await execute_sql(
        scratch_url,
        _OWNER,
        "INSERT INTO accounts (owner_id, balance) SELECT id, 12.34 FROM users",
        "INSERT INTO accounts (owner_id, balance) SELECT id, 0 FROM users",
    )
    await migrate.upgrade(scratch_url)
    assert await migrate.current(scratch_url) == migrate.head()
    assert await migrate.check(scratch_url) == []
    assert await scalar_sql(scratch_url, "SELECT sum(balance) FROM accounts") == Decimal("12.34")
    with pytest.raises(IntegrityError, match="ck_accounts_balance_not_negative"):
        await execute_sql(scratch_url, "UPDATE accounts SET balance = 'NaN'")

    await migrate.downgrade(scratch_url, BEFORE_NAN_CHECK)  # the old CHECK again: NaN gets in
    await execute_sql(scratch_url, "UPDATE accounts SET balance = 'NaN' WHERE balance = 0")


async def test_the_migration_refuses_clearly_while_nan_balances_exist(scratch_url: URL) -> None:
    await migrate.upgrade(scratch_url, BEFORE_NAN_CHECK)
    await execute_sql(
        scratch_url,
        _OWNER,
        "INSERT INTO accounts (owner_id, balance) SELECT id, 'NaN' FROM users",
    )
    with pytest.raises(QueryError, match="NaN balances exist in accounts") as info:
        await migrate.upgrade(scratch_url)
    assert "id 1" in str(info.value)
    assert "UPDATE accounts SET balance" in str(info.value)  # what to do about it
    assert await migrate.current(scratch_url) == BEFORE_NAN_CHECK  # nothing changed
    await execute_sql(scratch_url, "UPDATE accounts SET balance = 5")
    await migrate.upgrade(scratch_url)  # once repaired, it goes through
    assert await migrate.current(scratch_url) == migrate.head()


async def test_the_check_constraint_refuses_a_nan_balance(db: AsyncSession) -> None:
    owner = User(email="n@example.com", username="nan", hashed_password="h")
    db.add(owner)
    await db.flush()
    with pytest.raises(IntegrityError, match="ck_accounts_balance_not_negative"):
        async with db.begin_nested():
            db.add(Account(owner_id=owner.id, balance=Decimal("NaN")))
            await db.flush()


async def _nan_account_pair(db: AsyncSession) -> tuple[int, int]:
    """Accounts (NaN, 100.00), as an old database (before migration 0003) could hold them."""
    owner = User(email="old@example.com", username="old", hashed_password="h")
    db.add(owner)
    await db.flush()
    # DDL is transactional: the per-test rollback puts the constraint back.
    await db.execute(text("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_balance_not_negative"))
    nan = Account(owner_id=owner.id, balance=Decimal("NaN"))
    full = Account(owner_id=owner.id, balance=Decimal("100.00"))
    db.add_all([nan, full])
    await db.flush()
    return nan.id, full.id


@pytest.mark.parametrize("direction", ["from-nan", "into-nan"])
async def test_a_transfer_refuses_an_account_holding_nan_and_moves_nothing(
    db: AsyncSession, direction: str
) -> None:
    nan, full = await _nan_account_pair(db)
    pair = (nan, full) if direction == "from-nan" else (full, nan)
    with pytest.raises(QueryError, match=f"account {nan} holds NaN") as info:
        await transfer_funds(db, *pair, Decimal("1.00"))
    assert "nothing was moved" in str(info.value)
    rows = await db.execute(select(Account.id, Account.balance).where(Account.id.in_(pair)))
    balances = {row[0]: row[1] for row in rows}
    assert balances[full] == Decimal("100.00")  # the money did not vanish into the NaN
    assert balances[nan].is_nan()
    assert await db.scalar(select(1)) == 1  # the caller's transaction is still usable


@pytest.mark.parametrize(
    "amount",
    [
        pytest.param(Decimal("1e30"), id="1e30"),
        pytest.param(Decimal("-1e30"), id="minus-1e30"),
        pytest.param(Decimal("1e-30"), id="1e-30"),
        pytest.param(Decimal("9" * 40), id="40-digits"),
        pytest.param(Decimal("sNaN"), id="signalling-nan"),
        pytest.param(Decimal("-Infinity"), id="minus-infinity"),
        pytest.param("1e30", id="str-1e30"),
        pytest.param("NaN", id="str-nan"),
        pytest.param(10**30, id="huge-int"),
        pytest.param(10**5000, id="int-of-5000-digits"),
        pytest.param(float("nan"), id="float-nan"),
        pytest.param(float("inf"), id="float-inf"),
        pytest.param("1" * 1_000_000, id="1MB-of-digits"),
    ],
)
async def test_transfer_refuses_nan_infinite_and_huge_amounts_with_invalid_input(
    db: AsyncSession, amount: object
) -> None:
    with pytest.raises(InvalidInputError, match="amount"):
        await transfer_funds(db, 1, 2, amount)  # type: ignore[arg-type]
    assert not db.in_transaction()  # refused before any SQL


async def test_a_transfer_that_would_overflow_the_payee_fails_clearly(db: AsyncSession) -> None:
    owner = User(email="rich@example.com", username="rich", hashed_password="h")
    db.add(owner)
    await db.flush()
    payer = Account(owner_id=owner.id, balance=Decimal("10.00"))
    payee = Account(owner_id=owner.id, balance=Decimal("9999999999.99"))
    db.add_all([payer, payee])
    await db.flush()
    with pytest.raises(BlogdataError, match="largest balance"):
        await transfer_funds(db, payer.id, payee.id, Decimal("1.00"))
    assert await db.scalar(select(Account.balance).where(Account.id == payer.id)) == Decimal(
        "10.00"
    )
