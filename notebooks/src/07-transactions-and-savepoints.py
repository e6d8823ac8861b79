# %% [markdown]
# # 07 · Transactions and savepoints
#
# Moving money is the classic reason for transactions: both balances change, or neither does.
# The guide's `transfer_funds` looks right but keeps money in a float, loses updates when two
# transfers run at once, and crashes on a session that has already run a query. blogdata's
# version fixes all three, and savepoints let part of a transaction fail without losing the rest.
#
# **What you will learn**
# - why money is `Decimal`, never `float`;
# - why `transfer_funds` never commits, and how `run_transaction` owns (and retries) the unit;
# - the lost update, made visible with concurrent tasks, and how row locks prevent it;
# - why locking both rows in id order means opposite transfers never deadlock;
# - savepoints: keep the good rows of a batch, report the bad ones, keep the transaction alive.
#

# %%
import asyncio
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import (
    Account,
    InsufficientFundsError,
    InvalidInputError,
    Tag,
    run_transaction,
    savepoint,
    transfer_funds,
)
from blogdata.notebook import tutorial_database
from blogdata.transactions import insert_each_in_savepoint

nb = await tutorial_database("07-transactions-and-savepoints")
nb

# %% [markdown]
# The seeded blog gives every user one account. To keep the arithmetic easy we set the first four
# to round amounts, and write a small helper that reads balances in a fresh session.

# %%
async with nb.sessions() as db, db.begin():
    await db.execute(
        update(Account).where(Account.id.in_([1, 2, 3, 4])).values(balance=Decimal("100.00"))
    )


async def balances(*ids):
    async with nb.sessions() as db:
        rows = await db.execute(
            select(Account.id, Account.balance).where(Account.id.in_(ids)).order_by(Account.id)
        )
        return {account_id: str(balance) for account_id, balance in rows}


await balances(1, 2, 3, 4)

# %% [markdown]
# ## Money is `Decimal`
#
# Binary floats cannot hold most decimal fractions exactly, so cents drift:

# %%
0.1 + 0.2 == 0.3, 0.1 + 0.2

# %% [markdown]
# `Decimal` keeps cents exact. The `balance` column is `Numeric(12, 2)`, which asyncpg returns as
# `Decimal`.

# %%
Decimal("0.10") + Decimal("0.20") == Decimal("0.30")

# %% [markdown]
# The guide declares `amount: float`. Mixing it with a `Decimal` balance does not even compute:

# %% tags=["raises-exception"]
Decimal("100.00") - 0.1

# %% [markdown]
# `transfer_funds` refuses a float before it touches the database, and asks for a `Decimal` with
# at most two decimal places.

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await transfer_funds(db, 1, 2, 10.5)

# %% [markdown]
# ## A transfer never commits; the unit of work does
#
# `transfer_funds` locks both rows, moves the money inside a savepoint of the session's
# transaction, and returns what it did, but it never commits: like every blogdata operation, it
# leaves that to the code that owns the transaction. `run_transaction` is that owner: it opens a
# session, begins, runs the function you give it, commits, and if PostgreSQL reports a
# serialization failure or a deadlock it runs the whole unit again (with a random, growing wait).

# %%
result = await run_transaction(nb.sessions, lambda db: transfer_funds(db, 1, 2, Decimal("25.00")))
result

# %%
await balances(1, 2)

# %% [markdown]
# When the payer holds too little, nothing moves and the error says so:

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await transfer_funds(db, 1, 2, Decimal("500.00"))

# %%
await balances(1, 2)

# %% [markdown]
# ## The guide's transfer, as it stands
#
# Here is the guide's code, verbatim but for its name (so it does not shadow blogdata's):

# %%
async def guide_transfer_funds(
    db: AsyncSession,
    from_id: int,
    to_id: int,
    amount: float
):
    async with db.begin():
        from_account = await db.get(Account, from_id)
        to_account = await db.get(Account, to_id)

        if from_account.balance < amount:
            raise ValueError("Insufficient funds")

        from_account.balance -= amount
        to_account.balance += amount
        # Commit happens automatically on context exit


# %% [markdown]
# Any query autobegins a transaction. After that, the guide's `async with db.begin()` cannot
# start its own:

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await db.scalar(select(func.count()).select_from(Account))  # autobegins
    await guide_transfer_funds(db, 1, 2, Decimal("1.00"))

# %% [markdown]
# blogdata's transfer always runs inside the open transaction, in a savepoint, **without
# committing**: your unit of work decides. Here we roll it back, and the money stays put.

# %%
async with nb.sessions() as db:
    await db.scalar(select(func.count()).select_from(Account))
    inside = await transfer_funds(db, 1, 2, Decimal("5.00"))
    print("inside the transaction:", inside.from_balance, inside.to_balance)
    await db.rollback()
await balances(1, 2)

# %% [markdown]
# ## The lost update
#
# Ten customers each send 1.00 from account 3 to account 4 at the same moment. The guide's
# transfer reads both balances, then writes new ones, with no lock in between. Real races
# depend on timing; here an `asyncio.Barrier` (awaited between the read and the write) makes
# the unlucky timing happen every time: every customer reads before any of them writes. The
# guide's function again, with that one line added:

# %%
barrier = asyncio.Barrier(10)


async def guide_transfer_funds_with_a_barrier(db, from_id, to_id, amount):
    async with db.begin():
        from_account = await db.get(Account, from_id)
        to_account = await db.get(Account, to_id)

        if from_account.balance < amount:
            raise ValueError("Insufficient funds")

        await barrier.wait()  # added: every customer has read before anyone writes
        from_account.balance -= amount
        to_account.balance += amount


async def guide_customer():
    async with nb.sessions() as db:
        await guide_transfer_funds_with_a_barrier(db, 3, 4, Decimal("1.00"))


await asyncio.gather(*(guide_customer() for _ in range(10)))
await balances(3, 4)

# %% [markdown]
# Ten transfers ran and each one committed, yet account 3 lost only one unit: all ten read 100.00
# and all wrote 99.00. Nine updates were lost. Had the amounts differed, money would have
# appeared or vanished too.
#
# `transfer_funds` locks both rows with `SELECT … FOR UPDATE` before reading them, so the next
# customer waits for the previous one and reads its result. We reset the two accounts and rerun.

# %%
async with nb.sessions() as db, db.begin():
    await db.execute(
        update(Account).where(Account.id.in_([3, 4])).values(balance=Decimal("100.00"))
    )


async def customer():
    await run_transaction(nb.sessions, lambda db: transfer_funds(db, 3, 4, Decimal("1.00")))


await asyncio.gather(*(customer() for _ in range(10)))
await balances(3, 4)

# %% [markdown]
# ## Opposite transfers do not deadlock
#
# If one transfer locked account 3 then 4 while another locked 4 then 3, each could wait for the
# other forever (PostgreSQL would kill one with a deadlock error). `transfer_funds` locks both rows
# in one statement sorted by id, so every transfer takes the locks in the same order. Forty
# transfers in both directions at once:

# %%
async def back_and_forth(payer, payee):
    await run_transaction(nb.sessions, lambda db: transfer_funds(db, payer, payee, Decimal("2.50")))


pairs = [(3, 4), (4, 3)] * 20
await asyncio.gather(*(back_and_forth(a, b) for a, b in pairs))
await balances(3, 4)

# %% [markdown]
# No error, and the balances are back where they were: twenty transfers each way cancel out.

# %% [markdown]
# ## Savepoints: a partial rollback
#
# A savepoint marks a point inside a transaction that you can roll back to without abandoning
# the whole transaction. `savepoint(db)` wraps SQLAlchemy's `begin_nested()` and translates
# database errors. Here the second tag already exists (the seed created it):

# %%
db = nb.sessions()
first_tags = (await db.scalars(select(Tag.name).order_by(Tag.id).limit(2))).all()
first_tags

# %% tags=["raises-exception"]
async with savepoint(db):
    db.add(Tag(name="brand-new"))
    db.add(Tag(name=first_tags[0]))
    await db.flush()

# %% [markdown]
# The savepoint took both inserts back, but the session's transaction is still usable:

# %%
await db.scalar(select(func.count()).where(Tag.name == "brand-new"))

# %% [markdown]
# To keep the good rows of a batch and report the bad ones, give each row its own savepoint.
# `insert_each_in_savepoint` does exactly that and returns a report.

# %%
batch = [Tag(name="asyncio"), Tag(name=first_tags[1]), Tag(name="savepoints")]
report = await insert_each_in_savepoint(db, batch)
[tag.name for tag in report.inserted]

# %%
for failure in report.failed:
    print(failure.index, type(failure.error).__name__, failure.error)

# %% [markdown]
# The outer transaction survived: we commit it, and the two good tags are stored.

# %%
await db.commit()
(await db.scalars(select(Tag.name).where(Tag.name.in_(["asyncio", "savepoints"])).order_by(Tag.name))).all()

# %%
await db.close()

# %% [markdown]
# ## Worked example: payroll in one unit of work
#
# Account 1 pays three people. We open our own transaction; each transfer runs in a savepoint
# inside it. A payment that cannot be made is reported and skipped; the others commit together.

# %%
payroll = [(2, Decimal("20.00")), (3, Decimal("500.00")), (4, Decimal("30.00"))]
async with nb.sessions() as db, db.begin():
    for payee, amount in payroll:
        try:
            await transfer_funds(db, 1, payee, amount)
        except InsufficientFundsError as exc:
            print("skipped:", exc)
await balances(1, 2, 3, 4)

# %% [markdown]
# ## Exercise
#
# Move 12.34 from account 2 to account 4 and check that the sum of accounts 1 to 4 did not
# change. Then try to move 0.001: what happens, and why?
#
# ### Solution

# %%
before = sum(Decimal(v) for v in (await balances(1, 2, 3, 4)).values())
await run_transaction(nb.sessions, lambda db: transfer_funds(db, 2, 4, Decimal("12.34")))
after = sum(Decimal(v) for v in (await balances(1, 2, 3, 4)).values())
before == after, after

# %%
try:
    async with nb.sessions() as db:
        await transfer_funds(db, 2, 4, Decimal("0.001"))
except InvalidInputError as exc:
    print(exc)

# %%
await nb.close()
