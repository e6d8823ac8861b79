# %% [markdown]
# # 07 · Transactions and savepoints
#
# Moving money is the classic reason for transactions: both balances change, or neither does.
# The guide's `transfer_funds` looks right but keeps money in a float, loses updates when two
# transfers run at once, and crashes on a session that has already run a query; its savepoint
# example commits in the middle and then fails. blogdata's versions fix all of that, and
# savepoints let part of a transaction fail without losing the rest.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (sessions and
# [autobegin](glossary.ipynb#autobegin)), [notebook 03](03-crud.ipynb) (CRUD), Python's
# `asyncio.gather` · **Time to learn:** 40 minutes
#
# **What you will learn**
# - why money is `Decimal`, never `float`;
# - why `transfer_funds` never commits, and how `run_transaction` owns (and retries) the unit;
# - the lost update, made visible with concurrent tasks, and how row locks prevent it;
# - what PostgreSQL does with a deadlock, and why locking in id order avoids it;
# - (advanced) isolation levels: READ COMMITTED and REPEATABLE READ, snapshots, and the
#   serialization failure that a retry cures;
# - savepoints: why a commit inside one breaks it, and how to keep the good rows of a batch.

# %%
from decimal import Decimal

from sqlalchemy import func, select, update

from blogdata import Account, Tag, User, run_transaction, transfer_funds
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_07

nb = await tutorial_database("07-transactions-and-savepoints")
nb

# %% [markdown]
# The seeded blog gives every user one account. To keep the arithmetic easy we set the first six
# to round amounts, and write a small helper that reads balances in a fresh session.

# %%
async with nb.sessions() as db, db.begin():
    first_six = Account.id.in_([1, 2, 3, 4, 5, 6])
    await db.execute(update(Account).where(first_six).values(balance=Decimal("100.00")))


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
# transaction, and returns what it did, but it never [commits](glossary.ipynb#commit): like every
# blogdata operation, it leaves that to the code that owns the transaction, the
# [unit of work](glossary.ipynb#unit-of-work). `run_transaction` is that owner: it opens a
# session, begins, runs the function you give it, commits, and if PostgreSQL reports a
# [serialization failure](glossary.ipynb#serialization-failure) or a
# [deadlock](glossary.ipynb#deadlock) it runs the whole unit again (after a random, growing wait).

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
from sqlalchemy.ext.asyncio import AsyncSession


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
# Any query [autobegins](glossary.ipynb#autobegin) a transaction. After that, the guide's
# `async with db.begin()` cannot start its own:

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
import asyncio

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

# %% [markdown]
# Ten customers, each in a session of their own, run at once:

# %%
async def guide_customer():
    async with nb.sessions() as db:
        await guide_transfer_funds_with_a_barrier(db, 3, 4, Decimal("1.00"))


await asyncio.gather(*(guide_customer() for _ in range(10)))
await balances(3, 4)

# %% [markdown]
# Ten transfers ran and each one committed, yet account 3 lost only one unit: all ten read 100.00
# and all wrote 99.00. Nine updates were lost: a [lost update](glossary.ipynb#lost-update). Had
# the amounts differed, money would have appeared or vanished too.
#
# `transfer_funds` takes a [row lock](glossary.ipynb#row-lock) on both rows with
# `SELECT … FOR UPDATE` before reading them, so the next customer waits for the previous one and
# reads its result. We reset the two accounts and rerun.

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
# ## Deadlocks: what PostgreSQL does about them
#
# The obvious way to lock is row by row, as you read: `db.get(Account, id,
# with_for_update=True)`, the payer first, then the payee. Two opposite transfers can then each
# hold one row and wait for the other's, and neither can go on. PostgreSQL does not let them
# wait forever: a transaction that has waited `deadlock_timeout` for a lock looks for a cycle of
# waits and, finding one, aborts one of the transactions with SQLSTATE `40P01`
# (`deadlock_detected`). Its locks are released and the other goes on. The timeout here:

# %%
from sqlalchemy import text

async with nb.sessions() as db:
    print(await db.scalar(text("SHOW deadlock_timeout")))

# %% [markdown]
# The row-by-row transfer. `meet` is awaited between the two locks, so that we can make both
# transfers hold their first row before either asks for its second, every time:

# %%
from sqlalchemy.exc import DBAPIError

from blogdata.translate import sqlstate_of, translate_db_error


async def locking_transfer(db, from_id, to_id, amount, meet):
    payer = await db.get(Account, from_id, with_for_update=True)
    await meet()  # added: wait until the other transfer holds its first row too
    payee = await db.get(Account, to_id, with_for_update=True)
    payer.balance -= amount
    payee.balance += amount


async def attempt(payer, payee, meet):
    try:
        async with nb.sessions() as db, db.begin():
            await locking_transfer(db, payer, payee, Decimal("1.00"), meet)
        return "committed"
    except DBAPIError as exc:
        return f"{type(translate_db_error(exc)).__name__}, SQLSTATE {sqlstate_of(exc)}"

# %% [markdown]
# Account 5 pays 6 while 6 pays 5. Which of the two PostgreSQL aborts depends on which one
# checks first, so we print the outcomes sorted:

# %%
both_locked = asyncio.Barrier(2)
outcomes = await asyncio.gather(
    attempt(5, 6, both_locked.wait), attempt(6, 5, both_locked.wait)
)
sorted(outcomes)

# %% [markdown]
# After a second, one transfer was aborted and the other committed. blogdata translates `40P01`
# into `RetryableConflictError`, and `run_transaction` runs the aborted unit again. The same two
# transfers through `run_transaction`, counting the attempts (only the first attempt of each
# waits at the barrier):

# %%
both_locked, attempts = asyncio.Barrier(2), []


async def meet_on_first_try():
    if len(attempts) <= 2:  # each transfer's first attempt; a retry does not wait
        await both_locked.wait()


async def unit(db, payer, payee):
    attempts.append((payer, payee))
    await locking_transfer(db, payer, payee, Decimal("1.00"), meet_on_first_try)

# %%
before = await balances(5, 6)
await asyncio.gather(
    run_transaction(nb.sessions, lambda db: unit(db, 5, 6)),
    run_transaction(nb.sessions, lambda db: unit(db, 6, 5)),
)
len(attempts), await balances(5, 6) == before

# %% [markdown]
# Three attempts for two transfers: the one aborted by the deadlock ran again and committed, and
# the two payments cancel out. A retry costs a second of waiting, though; better not to deadlock.
#
# ## Opposite transfers that cannot deadlock
#
# `transfer_funds` locks both rows in one statement sorted by id, so every transfer takes the
# locks in the same order, whichever way the money goes, and no cycle can form. Forty transfers
# in both directions at once:

# %%
async def back_and_forth(payer, payee):
    await run_transaction(nb.sessions, lambda db: transfer_funds(db, payer, payee, Decimal("2.50")))


pairs = [(3, 4), (4, 3)] * 20
await asyncio.gather(*(back_and_forth(a, b) for a, b in pairs))
await balances(3, 4)

# %% [markdown]
# No error, and the balances are back where they were: twenty transfers each way cancel out.
#
# ## Isolation levels, snapshots and serialization failures (advanced)
#
# *Skip this on first reading.* Row locks are one defence against concurrent transactions; the
# [isolation level](glossary.ipynb#isolation-level) is the other: it decides what a transaction
# sees of the others' commits. PostgreSQL's default is READ COMMITTED:

# %%
async with nb.sessions() as db:
    print(await db.scalar(text("SHOW transaction_isolation")))

# %% [markdown]
# Under READ COMMITTED each *statement* sees a fresh [snapshot](glossary.ipynb#snapshot): the
# data as committed when it started. So one transaction can read the same row twice and get
# two answers, if someone commits in between. A small helper, used below, commits a change to
# account 7 from another session:

# %%
async def someone_else_adds(amount):
    async with nb.sessions() as other, other.begin():
        await other.execute(
            update(Account).where(Account.id == 7).values(balance=Account.balance + amount)
        )


balance_of_7 = select(Account.balance).where(Account.id == 7)
async with nb.sessions() as db:
    first = await db.scalar(balance_of_7)
    await someone_else_adds(Decimal("1.00"))
    second = await db.scalar(balance_of_7)
str(first), str(second)

# %% [markdown]
# Under REPEATABLE READ the whole *transaction* keeps the snapshot of its first statement. The
# level is set per connection; in a session, pass it when the transaction's connection is
# acquired, before the first query:

# %%
async with nb.sessions() as db:
    await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    print(await db.scalar(text("SHOW transaction_isolation")))
    first = await db.scalar(balance_of_7)
    await someone_else_adds(Decimal("1.00"))
    second = await db.scalar(balance_of_7)
    print(str(first), str(second))
    try:
        await db.execute(update(Account).where(Account.id == 7).values(balance=first - 1))
    except DBAPIError as exc:
        print(f"{type(translate_db_error(exc)).__name__}, SQLSTATE {sqlstate_of(exc)}")

# %% [markdown]
# The second read returned the snapshot's value although the other session had committed.
# Writing on that stale value would lose the other's update, so PostgreSQL refuses: the row
# changed since the snapshot, and the update fails with a
# [serialization failure](glossary.ipynb#serialization-failure), SQLSTATE `40001`. No lock
# could have prevented it; the transaction must run again, from its first read, on a new
# snapshot. `run_transaction(..., isolation_level="REPEATABLE READ")` does exactly that. The
# unit below reads, then, on its first attempt only, lets the other session commit before it
# writes:

# %%
attempts = []


async def withdraw_one(db):
    attempts.append(len(attempts) + 1)
    balance = await db.scalar(balance_of_7)
    if len(attempts) == 1:
        await someone_else_adds(Decimal("1.00"))
    await db.execute(update(Account).where(Account.id == 7).values(balance=balance - 1))


before = await balances(7)
await run_transaction(nb.sessions, withdraw_one, isolation_level="REPEATABLE READ")
attempts, before, await balances(7)

# %% [markdown]
# Two attempts: the first failed with `40001` and was rolled back, the second read the balance
# with the other session's 1.00 in it and withdrew 1.00 from that. Nothing was lost: plus 1.00,
# minus 1.00, the balance is where it started. (SERIALIZABLE
# goes further and also aborts transactions whose reads and writes, taken together, no serial
# order could produce; the cure is the same retry.)
#
# ## Savepoints: the guide's version
#
# A [savepoint](glossary.ipynb#savepoint) marks a point inside a transaction that you can roll
# back to without abandoning the whole transaction. The guide's savepoint example, verbatim:

# %%
async def complex_operation(db: AsyncSession):
    async with db.begin_nested() as savepoint:
        try:
            # Do something
            await create_user(db, user_data)
        except Exception:
            await savepoint.rollback()
            # Handle error

# %% [markdown]
# Its `create_user` is the guide's CRUD `create` for users (`CRUDUser.create`, verbatim as a
# function), which ends with a commit, like every write of the guide's CRUD
# ([notebook 03](03-crud.ipynb) shows that commit splitting a two-step signup):

# %%
from blogdata import UserCreate
from blogdata.security import get_password_hash


async def create_user(db, obj_in):
    db_obj = User(
        email=obj_in.email,
        username=obj_in.username,
        hashed_password=get_password_hash(obj_in.password)
    )
    db.add(db_obj)
    await db.commit()
    await db.refresh(db_obj)
    return db_obj


user_data = UserCreate(email="ada@example.org", username="ada", password="correct horse")

# %% [markdown]
# A caller has work of its own in the transaction, a new tag it has not decided to keep yet,
# and calls the guide's operation, which should create one user:

# %% tags=["raises-exception"]
db = nb.sessions()
db.add(Tag(name="undecided"))
await db.flush()
await complex_operation(db)

# %% [markdown]
# It crashed, and yet it committed. `create_user`'s `commit()` committed the **whole**
# transaction, not the savepoint: the user and the caller's tag with it. The caller's rollback
# comes too late; a fresh session finds both:

# %%
await db.rollback()
await db.close()
async with nb.sessions() as fresh:
    user = await fresh.scalar(select(User.username).where(User.email == "ada@example.org"))
    tag = await fresh.scalar(select(Tag.name).where(Tag.name == "undecided"))
user, tag

# %% [markdown]
# Why it crashed: after that commit, nothing more can run inside the `begin_nested()` block.
# `create_user`'s `refresh` hit this error; the guide's `except Exception` caught it, and
# `savepoint.rollback()` then found its savepoint already gone (the `ResourceClosedError`):

# %% tags=["raises-exception"]
async with nb.sessions() as db, db.begin_nested():
    await db.commit()  # what create_user does
    await db.scalar(select(1))  # what its refresh does next

# %% [markdown]
# ## Savepoints that work: nothing inside commits
#
# A savepoint lives *inside* a transaction, and savepoints nest: each `begin_nested()` (or
# blogdata's `savepoint(db)`) opens a `SAVEPOINT` inside the current one. Rolling back to a
# savepoint undoes its box only; `COMMIT` belongs to the outer transaction alone, and ends all
# of them at once, which is what the guide's `create_user` did from inside its savepoint:
#
# ```mermaid
# flowchart TB
#   subgraph T["BEGIN … COMMIT: the unit of work (run_transaction or db.begin())"]
#     direction TB
#     W["the caller's own work (a new tag)"]
#     subgraph S1["SAVEPOINT 1: savepoint(db)"]
#       direction TB
#       A["INSERT user"]
#       subgraph S2["SAVEPOINT 2: nested"]
#         B["INSERT a duplicate: error"] --> R["ROLLBACK TO SAVEPOINT 2: only this box is undone"]
#       end
#     end
#     W --> S1
#   end
#   T --> C["COMMIT: everything that was not rolled back"]
# ```
#
# blogdata's CRUD calls flush and never commit, so a savepoint around them stays a savepoint.
# `savepoint(db)` wraps `begin_nested()`: if the block raises, it rolls back the block only,
# translates a database error into blogdata's (`AlreadyExistsError` here) and re-raises it, so
# the caller decides what to do:

# %%
from blogdata import AlreadyExistsError, crud, savepoint


async def complex_operation_fixed(db, user_data):
    try:
        async with savepoint(db):
            await crud.user.create(db, obj_in=user_data)
    except AlreadyExistsError as exc:
        print("not created:", exc)

# %% [markdown]
# A new user, and a caller that changes its mind and rolls back: nothing is stored.

# %%
grace = UserCreate(email="grace@example.org", username="grace", password="correct horse")
async with nb.sessions() as db:
    db.add(Tag(name="undecided-again"))
    await complex_operation_fixed(db, grace)
    await db.rollback()
async with nb.sessions() as fresh:
    print(await fresh.scalar(select(func.count()).where(User.email == "grace@example.org")))

# %% [markdown]
# A user that already exists, inside a unit of work that commits: the savepoint takes back the
# failed insert only, and the rest of the transaction (the tag) commits.

# %%
async def signup_with_tag(db):
    db.add(Tag(name="decided"))
    await complex_operation_fixed(db, user_data)  # ada exists since the guide's commit


await run_transaction(nb.sessions, signup_with_tag)
async with nb.sessions() as fresh:
    print(await fresh.scalar(select(Tag.name).where(Tag.name == "decided")))

# %% [markdown]
# ## Keeping the good rows of a batch
#
# Here the second tag already exists (the seed created it). Inside `savepoint(db)` both inserts
# are taken back, but the session's transaction stays usable:

# %%
db = nb.sessions()
first_tags = (await db.scalars(select(Tag.name).order_by(Tag.id).limit(2))).all()
first_tags

# %%
try:
    async with savepoint(db):
        db.add(Tag(name="brand-new"))
        db.add(Tag(name=first_tags[0]))
        await db.flush()
except AlreadyExistsError as exc:
    print("rolled back to the savepoint:", exc)

# %%
await db.scalar(select(func.count()).where(Tag.name == "brand-new"))

# %% [markdown]
# To keep the good rows of a batch and report the bad ones, give each row its own savepoint.
# `insert_each_in_savepoint` does exactly that and returns a report. We also record the
# statements it sends, to see the savepoints themselves:

# %%
from blogdata.diagnostics import count_statements
from blogdata.transactions import insert_each_in_savepoint

batch = [Tag(name="asyncio"), Tag(name=first_tags[1]), Tag(name="savepoints")]
with count_statements(db) as sent:
    report = await insert_each_in_savepoint(db, batch)
[tag.name for tag in report.inserted]

# %% [markdown]
# One savepoint per row: released when its insert worked, rolled back to when it failed:

# %%
for statement in sent.statements:
    print(statement.split("(")[0].strip())

# %%
for failure in report.failed:
    print(failure.index, type(failure.error).__name__, failure.error)

# %% [markdown]
# The outer transaction survived: we commit it, and the two good tags are stored.

# %%
await db.commit()
kept = select(Tag.name).where(Tag.name.in_(["asyncio", "savepoints"])).order_by(Tag.name)
(await db.scalars(kept)).all()

# %%
await db.close()

# %% [markdown]
# ## Worked example: payroll in one unit of work
#
# Account 1 pays three people. We open our own transaction; each transfer runs in a savepoint
# inside it. A payment that cannot be made is reported and skipped; the others commit together.

# %%
from blogdata import InsufficientFundsError

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
# `locking_transfer` locks the payer's row, then the payee's, so two opposite transfers can
# deadlock. Write `async def ordered_transfer(db, from_id, to_id, amount)` that still locks each
# of the two rows with its own `db.get(Account, id, with_for_update=True)`, but in an order that
# makes a deadlock between two transfers impossible, then moves the money. It must not begin or
# commit: the caller owns the transaction. Set `answer` to the function; the check runs it in
# both directions inside a savepoint it rolls back, and reads every `SELECT ... FOR UPDATE` it
# sends: both rows must be locked, and in the same order both ways.

# %%
answer = ...  # your ordered_transfer function (no call)

# %%
async with nb.sessions() as db:
    await check_exercise_07(answer, db)

# %% [markdown]
# ### Solution
#
# Lock the smaller id first, whichever way the money goes: every transfer then takes its locks
# in the same order, which is what `transfer_funds` does in a single statement.

# %% tags=["solution"]
async def ordered_transfer(db, from_id, to_id, amount):
    accounts = {}
    for account_id in sorted((from_id, to_id)):
        accounts[account_id] = await db.get(Account, account_id, with_for_update=True)
    accounts[from_id].balance -= amount
    accounts[to_id].balance += amount


answer = ordered_transfer
async with nb.sessions() as db:
    await check_exercise_07(answer, db)

# %% [markdown]
# ## Further reading
#
# - SQLAlchemy: [Transactions and Connection Management](https://docs.sqlalchemy.org/en/20/orm/session_transaction.html)
#   (`begin`, `begin_nested` and savepoints, setting the isolation level for a session),
#   [Setting Transaction Isolation Levels](https://docs.sqlalchemy.org/en/20/core/connections.html#setting-transaction-isolation-levels-including-dbapi-autocommit),
#   [`with_for_update`](https://docs.sqlalchemy.org/en/20/core/selectable.html#sqlalchemy.sql.expression.Select.with_for_update).
# - PostgreSQL: [Transaction Isolation](https://www.postgresql.org/docs/current/transaction-iso.html),
#   [Explicit Locking](https://www.postgresql.org/docs/current/explicit-locking.html) (row
#   locks, deadlocks), [`SAVEPOINT`](https://www.postgresql.org/docs/current/sql-savepoint.html),
#   [Serialization Failure Handling](https://www.postgresql.org/docs/current/mvcc-serialization-failure-handling.html),
#   [`deadlock_timeout`](https://www.postgresql.org/docs/current/runtime-config-locks.html).
# - Python: [`decimal`](https://docs.python.org/3/library/decimal.html),
#   [`asyncio.Barrier`](https://docs.python.org/3/library/asyncio-sync.html#asyncio.Barrier).

# %% [markdown]
# ## Summary
#
# - Operations never commit: `transfer_funds` and blogdata's CRUD flush inside a savepoint, and
#   the unit of work (`run_transaction`, or your own `db.begin()`) commits once. A commit inside
#   a savepoint, as in the guide's CRUD, commits everything and breaks the savepoint.
# - Concurrent read-then-write loses updates unless the rows are locked (`FOR UPDATE`). Lock in
#   one order (by id): otherwise PostgreSQL aborts one transaction of a deadlock with `40P01`
#   after `deadlock_timeout`, and only a retry (`run_transaction`) saves it. Under REPEATABLE
#   READ a write on a row changed since the snapshot fails with `40001`, cured by the same retry.
# - `savepoint(db)` undoes only its block, re-raises the translated error and keeps the
#   transaction usable; `insert_each_in_savepoint` keeps a batch's good rows.

# %%
await nb.close()
