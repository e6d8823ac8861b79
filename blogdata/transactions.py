"""Money transfers that hold under concurrency, the unit-of-work runner, savepoints, timeouts.

**Operations never commit; entry points own transactions.** ``transfer_funds`` always runs in a
SAVEPOINT of the caller's transaction (a fresh session autobegins one) and never commits: the
caller's unit of work commits or rolls back the transfer together with its own work, and a
failed transfer rolls back its savepoint only. (The guide's version wraps itself in
``async with db.begin()``, which fails on a session that has already run a statement, and
commits work the caller may not want committed.)

``run_transaction(sessions, fn)`` is the unit of work: it opens a session, begins (at the
isolation level asked for), awaits ``fn(session)``, commits, and when the database reports a
serialization failure or deadlock (SQLSTATE 40001, 40P01; ``RetryableConflictError``) runs the
whole unit again on a fresh session, by default up to 12 times, after a random wait under a
ceiling that doubles from 0.02 s to 2 s: exponential backoff with full jitter, which spreads a
crowd of conflicting transactions out instead of letting them collide again together. Only the
code that began a transaction can run it again, so inside a caller's own transaction these
errors are raised for the caller to retry its whole unit of work.

Arguments are checked before any SQL (``InvalidInputError`` naming the argument): ids within
PostgreSQL ``integer``, amounts finite, positive, in cents and within ``Numeric(12, 2)``, timeouts
finite and within the server's limit. An account holding NaN (possible before migration 0003) is
refused with a ``QueryError`` and nothing moves.

Both rows are locked by one ``SELECT ... ORDER BY id FOR UPDATE``: PostgreSQL locks rows in the
order the sort emits them, so two opposite transfers lock in the same order and never deadlock.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Generic, TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    AsyncSessionTransaction,
)

from blogdata._checks import check_id, check_seconds, check_text
from blogdata.errors import (
    AlreadyExistsError,
    BlogdataError,
    InsufficientFundsError,
    InvalidInputError,
    NotFoundError,
    QueryError,
    RelatedRowMissingError,
)
from blogdata.models import Account, Base
from blogdata.translate import translating

__all__ = [
    "BatchReport",
    "RowFailure",
    "TransferResult",
    "insert_each_in_savepoint",
    "savepoint",
    "statement_timeout",
    "transfer_funds",
]

#: serialization_failure and deadlock_detected: the transaction may succeed if run again.

_CENT = Decimal("0.01")
_MAX_AMOUNT = Decimal("9999999999.99")  # what Numeric(12, 2) can hold
_MAX_AMOUNT_TEXT = 100  # characters of an amount given as text
RowT = TypeVar("RowT", bound=Base)


@dataclass(frozen=True)
class TransferResult:
    """What a transfer did: the amount moved, both balances after it, and the attempts it took."""

    from_id: int
    to_id: int
    amount: Decimal
    from_balance: Decimal
    to_balance: Decimal


def _check_amount(amount: object) -> Decimal:
    if isinstance(amount, bool | float):
        raise InvalidInputError(
            f"amount {amount!r} is a {type(amount).__name__}; money needs an exact value: "
            'pass a Decimal such as Decimal("12.50")'
        )
    if not isinstance(amount, Decimal | int | str):
        raise InvalidInputError(f"amount must be a Decimal, not {type(amount).__name__}")
    if isinstance(amount, str):
        amount = check_text(amount, "amount", max_length=_MAX_AMOUNT_TEXT).strip()
    try:
        value = Decimal(amount)
    except (InvalidOperation, ValueError):
        raise InvalidInputError(f'amount {amount!r} is not a number; pass e.g. "12.50"') from None
    if not value.is_finite():
        raise InvalidInputError(f"amount {amount!r} is not a finite number")
    if value <= 0:
        raise InvalidInputError(f"amount must be greater than zero, got {value:.6g}")
    # Before quantize: a huge value (Decimal("1e30")) has more digits than the context holds.
    if value > _MAX_AMOUNT:
        raise InvalidInputError(f"amount {value:.6g} exceeds the largest balance, {_MAX_AMOUNT}")
    if value != value.quantize(_CENT):
        raise InvalidInputError(f"amount {value} has more than 2 decimal places; round it to cents")
    return value.quantize(_CENT)


def _check_ids(from_id: object, to_id: object) -> None:
    check_id(from_id, "from_id")
    check_id(to_id, "to_id")
    if from_id == to_id:
        raise InvalidInputError(f"from_id and to_id are both {from_id}; pick two accounts")


def _refuse_nan(account: Account) -> None:
    if account.balance.is_nan():
        raise QueryError(
            f"account {account.id} holds NaN, not an amount; nothing was moved: set its real "
            "balance, then run `blogdata migrate upgrade` so the CHECK forbids NaN from now on"
        )


async def _move(
    db: AsyncSession, from_id: int, to_id: int, amount: Decimal
) -> tuple[Account, Account]:
    # One statement, sorted by id before locking: every transfer locks its pair in the same order.
    stmt = (
        select(Account)
        .where(Account.id.in_((from_id, to_id)))
        .order_by(Account.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    found = {account.id: account for account in (await db.scalars(stmt)).all()}
    for account_id in (from_id, to_id):
        if account_id not in found:
            raise NotFoundError(f"account {account_id} does not exist; check the id")
    source, target = found[from_id], found[to_id]
    _refuse_nan(source)
    _refuse_nan(target)
    if source.balance < amount:
        raise InsufficientFundsError(
            f"account {from_id} holds {source.balance}, less than {amount}; "
            "nothing was moved: top it up or send less"
        )
    if target.balance + amount > _MAX_AMOUNT:
        raise QueryError(
            f"account {to_id} holds {target.balance}; receiving {amount} would take it past the "
            f"largest balance, {_MAX_AMOUNT}; nothing was moved: send less"
        )
    source.balance -= amount
    target.balance += amount
    await db.flush()
    return source, target


async def transfer_funds(
    db: AsyncSession, from_id: int, to_id: int, amount: Decimal
) -> TransferResult:
    """Move ``amount`` from one account to another in a SAVEPOINT; never commit.

    Both rows are locked in id order (``SELECT ... FOR UPDATE``), so concurrent transfers cannot
    lose updates and opposite ones cannot deadlock. The caller's unit of work commits: wrap it
    in ``run_transaction`` to commit and retry on serialization failures, or commit yourself.

    Args:
        db: the session.
        from_id: the account that pays.
        to_id: the account that receives.
        amount: a positive Decimal (int or numeric str accepted) with at most 2 decimal places.

    Raises:
        InvalidInputError: bad amount or ids (checked before any lock is taken).
        NotFoundError: an account does not exist.
        InsufficientFundsError: the payer holds less than ``amount``; nothing changed.
        RetryableConflictError: a serialization failure or deadlock; rerun the unit of work.
        QueryError: the database refused otherwise.
    """
    value = _check_amount(amount)
    _check_ids(from_id, to_id)
    async with translating("the statement"), db.begin_nested():
        source, target = await _move(db, from_id, to_id, value)
    return TransferResult(from_id, to_id, value, source.balance, target.balance)


@asynccontextmanager
async def savepoint(db: AsyncSession) -> AsyncIterator[AsyncSessionTransaction]:
    """Run the block in a SAVEPOINT: if it raises, only the block's work is undone.

    The error is re-raised, translated into blogdata's tree when it came from the database;
    the enclosing transaction stays usable either way. Autobegins a transaction if none is open.
    """
    async with translating("the statement"), db.begin_nested() as nested:
        yield nested


@dataclass(frozen=True)
class RowFailure(Generic[RowT]):
    """One row of a batch that the database refused, with the reason."""

    index: int
    row: RowT
    error: BlogdataError


@dataclass
class BatchReport(Generic[RowT]):
    """The outcome of ``insert_each_in_savepoint``: the rows kept and the rows refused."""

    inserted: list[RowT] = field(default_factory=list)
    failed: list[RowFailure[RowT]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every row went in."""
        return not self.failed


async def insert_each_in_savepoint(db: AsyncSession, rows: Sequence[RowT]) -> BatchReport[RowT]:
    """Insert ``rows`` one savepoint each: keep the good ones, report the ones refused.

    A constraint violation rolls back that row's savepoint only, so the caller's transaction
    survives and the other rows stay. Costs about three round trips a row: use it for small
    batches of untrusted rows, and the bulk paths (``blogdata.bulk``) for clean data.
    """
    await db.flush()  # earlier pending work must not be blamed on (or undone with) a row
    report: BatchReport[RowT] = BatchReport()
    for index, row in enumerate(rows):
        try:
            async with savepoint(db):
                db.add(row)
                await db.flush()
        except (AlreadyExistsError, RelatedRowMissingError, QueryError) as exc:
            report.failed.append(RowFailure(index, row, exc))
        else:
            report.inserted.append(row)
    return report


@asynccontextmanager
async def statement_timeout(db: AsyncSession, seconds: float) -> AsyncIterator[None]:
    """Limit every statement in the block to ``seconds``; restore the old limit afterwards.

    The limit is ``SET LOCAL`` (this transaction only). A statement that runs too long raises
    ``StatementTimeoutError``; the transaction is then aborted and the caller must roll back.
    """
    millis = str(max(1, round(check_seconds(seconds) * 1000)))
    previous = await db.scalar(select(func.current_setting("statement_timeout")))
    await db.execute(select(func.set_config("statement_timeout", millis, True)))
    async with translating("the statement"):
        yield
    await db.execute(select(func.set_config("statement_timeout", previous, True)))
