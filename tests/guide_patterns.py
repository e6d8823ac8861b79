"""The guide's broken patterns, kept on purpose to demonstrate their failures. Never use them.

Imported only by tests and notebooks (not exported from ``blogdata``): each function is the
guide's code with the smallest change needed to observe the failure, and its docstring says what
goes wrong and which blogdata function to use instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import InsufficientFundsError
from blogdata.models import Account

__all__ = ["guide_transfer_unlocked"]


async def guide_transfer_unlocked(
    db: AsyncSession,
    from_id: int,
    to_id: int,
    amount: Decimal,
    *,
    pause: float = 0.0,
    between: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """Run the guide's transfer: read both balances, then write them, with no row locks.

    Two concurrent calls can read the same balance and both write their own result, so one
    update is lost and money appears or vanishes (use ``blogdata.transactions.transfer_funds``).
    It also fails on a session that already began a transaction, and with a float ``amount``
    (``Decimal -= float`` raises TypeError). To show the race reliably, ``pause`` sleeps that
    many seconds between the read and the write, and ``between`` is awaited there (e.g. an
    ``asyncio.Barrier``'s ``wait``, so that every task reads before any writes).
    """
    async with db.begin():
        from_account = await db.get(Account, from_id)
        to_account = await db.get(Account, to_id)
        if from_account is None or to_account is None:
            raise InsufficientFundsError("an account is missing")  # the guide crashes here
        if from_account.balance < amount:
            raise InsufficientFundsError("Insufficient funds")
        if pause:
            await asyncio.sleep(pause)
        if between is not None:
            await between()
        from_account.balance -= amount
        to_account.balance += amount
        # The guide: "Commit happens automatically on context exit".
