"""Many concurrent transfers between a few accounts: the load the reliability tests put on money.

Shared by ``test_reliability`` (straight to the server) and ``test_pgbouncer`` (through
PgBouncer), so both run the very same load and check the same totals.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Sequence
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blogdata.db.sessions import session_scope
from blogdata.errors import InsufficientFundsError
from blogdata.models import Account, User
from blogdata.transactions import transfer_funds

__all__ = [
    "ACCOUNTS",
    "OPENING",
    "SESSIONS",
    "TRANSFERS_PER_SESSION",
    "Plan",
    "draw_plans",
    "open_accounts",
    "read_balances",
    "transfer_concurrently",
]

ACCOUNTS = 10
OPENING = Decimal("1000.00")
SESSIONS = 50
TRANSFERS_PER_SESSION = 20

Plan = list[tuple[int, int, Decimal]]


async def open_accounts(engine: AsyncEngine) -> list[int]:
    """Empty the users and accounts, then open ``ACCOUNTS`` accounts holding ``OPENING`` each."""
    async with engine.begin() as conn:
        await conn.execute(text("TRUNCATE users, accounts RESTART IDENTITY CASCADE"))
    async with session_scope(engine) as db:
        users = [
            User(email=f"saver{i}@example.com", username=f"saver{i}", hashed_password="x")
            for i in range(ACCOUNTS)
        ]
        db.add_all(users)
        await db.flush()
        accounts = [Account(owner_id=user.id, balance=OPENING) for user in users]
        db.add_all(accounts)
        await db.flush()
        return [account.id for account in accounts]


async def read_balances(engine: AsyncEngine) -> dict[int, Decimal]:
    """Return every account's balance by id."""
    async with engine.connect() as conn:
        rows = await conn.execute(select(Account.id, Account.balance).order_by(Account.id))
        return {row[0]: row[1] for row in rows}


def draw_plans(ids: Sequence[int], seed: int) -> list[Plan]:
    """Draw ``SESSIONS`` plans of ``TRANSFERS_PER_SESSION`` random transfers among ``ids``."""
    rng = random.Random(seed)
    drawn = []
    for _ in range(SESSIONS):
        plan = []
        for _ in range(TRANSFERS_PER_SESSION):
            payer, payee = rng.sample(list(ids), 2)
            plan.append((payer, payee, Decimal(rng.randint(1, 40_000)) / 100))
        drawn.append(plan)
    return drawn


async def transfer_concurrently(
    sessions: async_sessionmaker[AsyncSession], drawn: Sequence[Plan]
) -> list[tuple[int, int]]:
    """Run each plan in a session of its own, all at once; return (applied, rejected) per plan.

    Transfers never commit: each one is committed here as its own unit of work.
    """

    async def customer(plan: Plan) -> tuple[int, int]:
        applied = rejected = 0
        async with sessions() as db:
            for payer, payee, amount in plan:
                try:
                    await transfer_funds(db, payer, payee, amount)
                    await db.commit()
                except InsufficientFundsError:
                    rejected += 1
                else:
                    applied += 1
        return applied, rejected

    return list(await asyncio.gather(*(customer(plan) for plan in drawn)))
