# %% [markdown]
# # 09 · Performance: pools, bulk inserts, indexes and fast loading
#
# The guide's performance tips are a pool configuration, a bulk insert, a bulk update and a few
# indexes. Each is worth measuring: the right bulk path is many times faster than the obvious
# one, an index only helps if the planner uses it, and a pool that is too small should fail
# loudly rather than hang. And each is worth looking at closely: the guide's bulk insert does
# not do what it seems to, and fails on its own schema.
#
# **Prerequisites:** [notebook 03](03-crud.ipynb) (sessions, `insert`, `commit`),
# [notebook 04](04-query-patterns.ipynb) (`select().where(...)`) · **Time to learn:** 35 minutes
#
# **What you will learn**
# - what the pool settings mean, and what happens when every connection is busy;
# - three ways to insert many rows (ORM `add_all`, a Core `insert(User)` with a list of
#   dictionaries, `COPY`), what each sends to the server, and when SQLAlchemy batches rows into
#   multi-row `INSERT … VALUES`;
# - why the guide's `bulk_create_users` fails, and blogdata's version;
# - how to check with `EXPLAIN` that a query uses the index you expect, what the guide's
#   `(email, username)` index is good for, and why an index on `role` serves a rare value but
#   not a common one;
# - the guide's bulk `update`, in plain SQLAlchemy and as blogdata's `deactivate_old_users`;
# - (advanced) blogdata's loader against `pandas.read_sql`, and the routes it chooses between
#   (all on the session's own connection).
#
# Timings in this notebook depend on the machine (cells marked to be ignored by the checks);
# the facts around them do not.

# %%
from datetime import timedelta

from sqlalchemy import func, select, text

from blogdata import User
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_09
from blogdata.seed import SEED_NOW

nb = await tutorial_database("09-performance")
nb

# %% [markdown]
# ## The connection pool
#
# An [engine](glossary.ipynb#engine) keeps a [connection pool](glossary.ipynb#connection-pool):
# `pool_size` connections stay open, up to `max_overflow` more are opened when all are busy, and
# a task that finds none free waits `pool_timeout` seconds:
#
# ```mermaid
# flowchart LR
#   T["task: async with engine.connect()"] -->|"one is free"| K["pool_size connections,<br/>kept open"]
#   T -->|"all kept ones busy"| O["up to max_overflow more,<br/>closed again when returned"]
#   T -->|"none free for pool_timeout seconds"| X["PoolExhaustedError"]
# ```
#
# blogdata reads these from the settings (`BLOGDATA_POOL_SIZE` …); the defaults:

# %%
from blogdata.config import get_settings

settings = get_settings()
settings.pool_size, settings.max_overflow, settings.pool_timeout, settings.pool_pre_ping

# %% [markdown]
# Every engine in every process can open `pool_size + max_overflow` connections, and PostgreSQL
# accepts about 100 by default: four worker processes with the guide's 20 + 10 already need 120.
# Size the pool for the concurrency you really have.
#
# A pool smaller than the number of tasks is fine: tasks queue for a connection. Here a pool of
# two serves ten queries.

# %%
import asyncio

from blogdata import create_engine

small = create_engine(nb.engine.url, pool_size=2, max_overflow=0, pool_timeout=0.5)


async def query():
    async with small.connect() as conn:
        return await conn.scalar(select(func.count()).select_from(User))


await asyncio.gather(*(query() for _ in range(10)))

# %% [markdown]
# But when connections stay busy longer than `pool_timeout`, the next task gets a clear error
# instead of hanging (SQLAlchemy's bare `TimeoutError` becomes blogdata's `PoolExhaustedError`,
# with advice):

# %% tags=["raises-exception"]
from contextlib import AsyncExitStack

async with AsyncExitStack() as busy:
    for _ in range(2):
        await busy.enter_async_context(small.connect())
    await query()

# %%
await small.dispose()

# %% [markdown]
# `pool_pre_ping` ([pre-ping](glossary.ipynb#pre-ping)) tests a connection before handing it
# out, so a connection the server closed (a restart, an idle timeout) is replaced silently
# instead of failing your first query.
#
# ## Bulk inserts
#
# We prepare 10,000 user rows. Hashing a password is deliberately slow (argon2), so the rows
# share one hash here; `bulk_create_users` hashes each password, on several threads.

# %%
# NBVAL_IGNORE_OUTPUT
import time

from blogdata.security import get_password_hash
from blogdata.seed import DEMO_PASSWORD

started = time.perf_counter()
HASH = get_password_hash(DEMO_PASSWORD)
print(f"one password hash: {time.perf_counter() - started:.3f} s")

# %%
N = 10_000
rows = [
    {
        "email": f"bulk{i:05d}@example.com",
        "username": f"bulk{i:05d}",
        "hashed_password": HASH,
        "created_at": SEED_NOW - timedelta(minutes=i),
    }
    for i in range(N)
]
len(rows)

# %% [markdown]
# To see what each path really sends, we listen to two of the dialect's events: `do_executemany`
# fires when SQLAlchemy hands the driver one statement with many parameter sets, `do_execute`
# when it hands over one statement (for an INSERT we count the rows in its `VALUES`).

# %%
from sqlalchemy import event

calls, sent = [], {}  # the driver calls of the current method; every method's, by name


@event.listens_for(nb.engine.sync_engine, "do_executemany")
def on_executemany(cursor, statement, parameters, context):
    calls.append(f"executemany: 1 INSERT, {len(parameters):,} parameter sets")


@event.listens_for(nb.engine.sync_engine, "do_execute")
def on_execute(cursor, statement, parameters, context):
    if statement.startswith("INSERT"):
        calls.append(f"execute: 1 INSERT, {statement.count('), (') + 1:,} rows of VALUES")

# %% [markdown]
# A small helper runs one insert method in its own [session](glossary.ipynb#session),
# [commits](glossary.ipynb#commit), keeps the driver calls it made, checks the count, and
# removes the rows again (unless asked to keep them).

# %%
from sqlalchemy import delete

seconds = {}  # each method's time, by name


async def timed(method, keep=False):
    calls.clear()
    async with nb.sessions() as db:
        started = time.perf_counter()
        await method(db)
        await db.commit()
        elapsed = time.perf_counter() - started
        sent[method.__name__] = list(calls)
        seconds[method.__name__] = elapsed
        bulk_rows = User.username.startswith("bulk")
        assert await db.scalar(select(func.count()).where(bulk_rows)) == N
        if not keep:
            await db.execute(delete(User).where(bulk_rows))
            await db.commit()
    return f"{N:,} rows in {elapsed:.2f} s"

# %% [markdown]
# The three methods, plain SQLAlchemy first: ORM objects with `add_all`, a Core `insert(User)`
# executed with the list of dictionaries (as the guide's bulk insert does), and blogdata's
# `bulk.insert_hashed_users`, which sends 1,000 rows or more with `COPY`.

# %%
from sqlalchemy import insert

from blogdata import bulk


async def orm_add_all(db):
    db.add_all([User(**row) for row in rows])


async def insert_executemany(db):
    await db.execute(insert(User), rows)


async def insert_copy(db):
    await bulk.insert_hashed_users(db, rows)

# %% [markdown]
# **ORM `add_all`**: builds 10,000 `User` objects and lets the
# [unit of work](glossary.ipynb#unit-of-work) [flush](glossary.ipynb#flush) them.

# %%
# NBVAL_IGNORE_OUTPUT
await timed(orm_add_all)

# %% [markdown]
# **`INSERT` with a list of dictionaries** (a Core `insert(User)` without
# [`RETURNING`](glossary.ipynb#returning)): the driver's
# [executemany](glossary.ipynb#executemany).

# %%
# NBVAL_IGNORE_OUTPUT
await timed(insert_executemany)

# %% [markdown]
# **[`COPY`](glossary.ipynb#copy)**: asyncpg streams the rows in PostgreSQL's binary format on
# the session's own connection, inside its transaction. `insert_hashed_users` switches to it
# from 1,000 rows. We keep these rows for the rest of the notebook.

# %%
# NBVAL_IGNORE_OUTPUT
await timed(insert_copy, keep=True)

# %% [markdown]
# How many times slower than COPY each method was, on this run (the numbers change from run to
# run and machine to machine; benchmarks/RESULTS.md has repeated measurements):

# %%
# NBVAL_IGNORE_OUTPUT
{method: f"{elapsed / seconds['insert_copy']:.1f}x COPY's time" for method, elapsed in seconds.items()}

# %% [markdown]
# What each one handed to the driver:

# %%
from collections import Counter

for method, seen in sent.items():
    print(f"{method}: {dict(Counter(seen)) or 'no INSERT statement at all'}")

# %% [markdown]
# Three different mechanisms:
#
# - `add_all` needs each new row's `id` back, so the flush sends `INSERT … RETURNING`, and
#   SQLAlchemy's [insertmanyvalues](glossary.ipynb#insertmanyvalues) packs the rows into
#   multi-row `VALUES`, 1,000 rows per statement.
# - The dictionaries went as **one** statement with 10,000 parameter sets: asyncpg's
#   `executemany` prepares the single-row INSERT once and pipelines the parameter sets, without
#   waiting for each reply. No multi-row `VALUES` at all: without `RETURNING`, the asyncpg
#   dialect does not use insertmanyvalues.
# - COPY sends no INSERT: it bypasses SQLAlchemy's execution events altogether, and the rows
#   travel as one binary stream written straight into the table.
#
# The dialect says so itself:

# %%
dialect = nb.engine.dialect
dialect.use_insertmanyvalues, dialect.use_insertmanyvalues_wo_returning

# %% [markdown]
# insertmanyvalues is on, but only for statements with `RETURNING`. Ask for the new ids, and
# dictionaries like ours go in batches of `insertmanyvalues_page_size` rows: 2,500 new users
# make three statements.

# %%
more = [
    {**row, "email": f"more{i}@example.com", "username": f"more{i}"}
    for i, row in enumerate(rows[:2500])
]
calls.clear()
async with nb.sessions() as db:
    result = await db.execute(insert(User).returning(User.id), more)
    ids = result.scalars().all()
    await db.rollback()
dialect.insertmanyvalues_page_size, len(ids), calls

# %% [markdown]
# A duplicate is reported by row before anything is written:

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await bulk.insert_hashed_users(db, rows[:3] + [rows[1]])

# %% [markdown]
# ## The guide's `bulk_create_users`
#
# The guide's bulk insert, verbatim:

# %%
from typing import List

from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import UserCreate


async def bulk_create_users(db: AsyncSession, users: List[UserCreate]):
    await db.execute(
        insert(User),
        [user.model_dump() for user in users]
    )
    await db.commit()

# %% [markdown]
# It takes the sign-up schema, `UserCreate`, whose dump holds the password:

# %%
signups = [
    UserCreate(email=f"guide{i}@example.com", username=f"guide{i}", password="correct horse")
    for i in range(3)
]
signups[0].model_dump()

# %% [markdown]
# `User` has no `password` column; it has `hashed_password`, which may not be NULL. SQLAlchemy's
# bulk INSERT takes the keys that name a column and silently drops the others, so the password
# is simply lost, and the INSERT (note its column list) fails on the missing hash:

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await bulk_create_users(db, signups)

# %% [markdown]
# blogdata's `bulk.create_users` leaves `password` out of the dump, hashes each password (on
# threads: argon2 releases the GIL), reports duplicates first, inserts through
# `insert_hashed_users`, and never commits: the caller owns the transaction.

# %%
async with nb.sessions() as db:
    created = await bulk.create_users(db, signups)
    stored = await db.scalars(select(User.hashed_password).where(User.username.like("guide%")))
    await db.rollback()
created, [hashed[:10] for hashed in stored]

# %% [markdown]
# ## Indexes and `EXPLAIN`
#
# The 10,000 rows from the COPY above are committed. `ANALYZE` refreshes the planner's
# statistics. In plain SQLAlchemy, [`EXPLAIN`](glossary.ipynb#explain) is a `text()` statement
# around the compiled query (here with its value inlined); `COSTS OFF` leaves out the cost
# estimates, which differ from run to run and between server versions:

# %%
db = nb.sessions()
await db.execute(text("ANALYZE users"))
by_email = select(User).where(User.email == "bulk04242@example.com")
sql = by_email.compile(nb.engine, compile_kwargs={"literal_binds": True})
print("\n".join(await db.scalars(text(f"EXPLAIN (COSTS OFF) {sql}"))))

# %% [markdown]
# blogdata's `explain` does the same with bound parameters and `FORMAT JSON`, and returns the
# plan as a dict; `plan_nodes` and `plan_indexes` pick out the node types and index names:

# %%
from blogdata.diagnostics import explain, plan_indexes, plan_nodes

plan = await explain(db, by_email)
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# The guide's other lookups, each using the index made for it:

# %%
lookups = {
    "username": select(User).where(User.username == "bulk00007"),
    "created_at range": select(User).where(
        User.created_at >= SEED_NOW - timedelta(hours=2),
        User.created_at < SEED_NOW - timedelta(hours=1),
    ),
}
{name: plan_indexes(await explain(db, stmt)) for name, stmt in lookups.items()}

# %% [markdown]
# The guide also adds an index on `(email, username)`, and blogdata's model keeps it: the model
# follows the guide's schema, and migration 0001 creates it. The lookup by email above did not
# use it, although it could: `email` is the pair index's leading column. The plan shows it once
# the single-column index is out of the way. DDL is transactional in PostgreSQL, so we drop
# `ix_users_email` inside the session's transaction and roll the drop back:

# %%
await db.execute(text("DROP INDEX ix_users_email"))
plan = await explain(db, by_email)
await db.rollback()
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# So for lookups the pair index duplicates `ix_users_email` (and `username` has its own unique
# index), while every index costs time on each insert and space on disk. It could still pay for
# a query that reads only those two columns, answered from the index alone (an *Index Only
# Scan*), if your workload has one. Keep the indexes your workload's plans actually use:
# `pg_stat_user_indexes.idx_scan` counts each index's scans over time. blogdata keeps this one
# only to match the guide's schema; dropping it would take a migration
# ([notebook 08](08-migrations.ipynb)).
#
# A filter on a column without an index reads the whole table. `role` has none, so even the
# few admins among 10,200 users are found by a sequential scan:

# %%
plan = await explain(db, select(User).where(User.role == "admin"))
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# With `analyze=True` the statement really runs (inside a [savepoint](glossary.ipynb#savepoint)
# that is rolled back), and the plan carries actual row counts:

# %%
plan = await explain(db, select(User).where(User.username.startswith("bulk000")), analyze=True)
int(plan["Plan"]["Actual Rows"])

# %%
await db.close()

# %% [markdown]
# ## (advanced) Loading a DataFrame: blogdata's loader against `pandas.read_sql`
#
# `pandas.read_sql` does not accept an async engine, so the usual workaround runs it through
# `run_sync`. blogdata's `load_frame` reads with asyncpg directly and sets dtypes from the
# column types. Both read the 10,200 users (the seeded ones and our bulk rows). The first big
# load in a kernel also loads the binary COPY decoder, compiled by numba (a few tenths of a
# second once, longer the very first time on a machine, while numba fills its cache).

# %%
import pandas as pd

from blogdata import load_frame

stmt = select(User.id, User.email, User.is_active, User.created_at).order_by(User.id)

# %%
# NBVAL_IGNORE_OUTPUT
async with nb.engine.connect() as conn:
    times = []
    for _ in range(2):  # the first load in a kernel also loads the compiled binary decoder
        started = time.perf_counter()
        ours = await load_frame(conn, stmt)
        times.append(time.perf_counter() - started)
    started = time.perf_counter()
    theirs = await conn.run_sync(lambda sync_conn: pd.read_sql(stmt, sync_conn))
    theirs_s = time.perf_counter() - started
print(f"load_frame {times[1]:.3f} s (first in this kernel {times[0]:.3f} s), "
      f"pandas.read_sql {theirs_s:.3f} s")

# %% [markdown]
# Same rows, but not the same dtypes: `load_frame` keeps the integer, boolean and string columns
# nullable (`Int64`, `boolean`, `string`), decided by the column types, not by the data.

# %%
pd.DataFrame({"load_frame": ours.dtypes.astype(str), "read_sql": theirs.dtypes.astype(str)})

# %%
len(ours) == len(theirs), (ours["email"] == theirs["email"]).all()

# %% [markdown]
# ### One loader, one connection, three routes
#
# `load_frame` is the only loader, and it reads on the session's own connection, exactly as
# `session.execute` would: inside its transaction and [snapshot](glossary.ipynb#snapshot), under
# its role, with its settings, temporary tables, locks and uncommitted writes. It picks how the
# rows travel and says which in `frame.attrs["blogdata.route"]`: `"binary"` is binary COPY
# decoded in-process (the fastest for big results), `"copy"` is CSV COPY parsed by pyarrow,
# `"rows"` is the driver's records. The default takes binary COPY wherever every column's type
# decodes exactly, so forcing each returns the same frame:

# %%
from blogdata.loaders import ROUTE_ATTR

async with nb.sessions() as db:
    frames = {r: await load_frame(db, stmt, route=r) for r in ("binary", "copy", "rows")}
    chosen = (await load_frame(db, stmt)).attrs[ROUTE_ATTR]
{route: frame.equals(frames["rows"]) for route, frame in frames.items()}, chosen

# %% [markdown]
# Why not a second connection, reading in parallel? Because a statement's answer depends on
# much more than its text: the session's uncommitted writes, custom settings such as
# `app.tenant_id` that a row-level-security policy reads, `now()` (the time the transaction
# began), `setseed`, and, under SERIALIZABLE, reads that must count in the session's conflict
# checks. And what the statement does (an advisory lock, `set_config`) must happen to the
# session, not to a hidden connection. Here the load sees an uncommitted write and a setting
# the session made, and the session then sees the setting the loaded statement made:

# %%
from sqlalchemy import update

async with nb.sessions() as db:
    await db.execute(update(User).where(User.id == 1).values(full_name="Changed, not committed"))
    await db.execute(text("SET LOCAL app.tenant_id = '2'"))
    mine = await load_frame(
        db,
        select(
            User.full_name,
            func.current_setting("app.tenant_id").label("tenant"),
            func.set_config("app.seen_by", "load_frame", True).label("made"),
        ).where(User.id == 1),
    )
    after = (await db.execute(text("SELECT current_setting('app.seen_by')"))).scalar_one()
    await db.rollback()
mine.attrs[ROUTE_ATTR], mine.iloc[0].tolist(), after

# %% [markdown]
# COPY wraps only queries. PostgreSQL's parser refuses `SHOW`, `EXPLAIN [ANALYZE]` or
# `EXECUTE` inside COPY before any of it runs, so the default reads them as rows (a statement
# that has started is never run a second time); forcing `copy` says why instead:

# %%
from blogdata.errors import RouteUnavailableError

async with nb.sessions() as db:
    shown = await load_frame(db, text("SHOW search_path"))
    try:
        await load_frame(db, text("SHOW search_path"), route="copy")
    except RouteUnavailableError as err:
        print(err)
shown.attrs[ROUTE_ATTR], shown.iloc[0, 0]

# %% [markdown]
# ## Worked example: an inactive-user clean-up
#
# The guide's bulk update, verbatim (plus the `datetime` import it leaves out). It filters on
# `last_login`, a column the guide's own model lacks (blogdata's has it):

# %%
from datetime import datetime

from sqlalchemy import update


async def deactivate_old_users(db: AsyncSession, days: int):
    cutoff = datetime.utcnow() - timedelta(days=days)
    await db.execute(
        update(User)
        .where(User.last_login < cutoff)
        .values(is_active=False)
    )
    await db.commit()

# %% [markdown]
# It commits, so we run it in a session joined to an outer transaction that we roll back
# afterwards (the test fixture of [notebook 10](10-testing.ipynb)), and count the active users
# before and after, and those who ever logged in:

# %%
active = select(func.count()).where(User.is_active)
async with nb.engine.connect() as conn:
    outer = await conn.begin()
    guide_db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint")
    before = await guide_db.scalar(active)
    logged_in = await guide_db.scalar(active.where(User.last_login.is_not(None)))
    await deactivate_old_users(guide_db, days=180)
    after = await guide_db.scalar(active)
    await outer.rollback()
{"deactivated": before - after, "active users who ever logged in": logged_in}

# %% [markdown]
# Every active user who ever logged in was deactivated: the cutoff comes from the clock of the
# day the code runs (a naive one, too), and the seed's logins all lie before its fixed clock,
# 2026-01-01, more than 180 days before today. A clean-up should take its clock as a parameter.
# In plain SQLAlchemy, with an aware clock (the seed's, so the answer is stable), only the users
# still active, and no commit, the statement and the number of rows it changed (`rowcount`):

# %%
from sqlalchemy import and_

cutoff = SEED_NOW - timedelta(days=180)
stale = update(User).where(and_(User.is_active, User.last_login < cutoff)).values(is_active=False)
print(stale)
async with nb.sessions() as db:
    result = await db.execute(stale)
    await db.rollback()
result.rowcount

# %% [markdown]
# blogdata's `deactivate_old_users` runs the same statement, takes `now` only timezone-aware,
# returns the count and does not commit. Afterwards no active user with an old login is left
# (our bulk users never logged in, so they stay as they are):

# %%
async with nb.sessions() as db:
    changed = await bulk.deactivate_old_users(db, days=180, now=SEED_NOW)
    left = await db.scalar(select(func.count()).where(User.is_active, User.last_login < cutoff))
    await db.rollback()
changed, left

# %% [markdown]
# ## Exercise
#
# `role` has four values: nearly all users are readers (our bulk rows), a handful are admins.
# Create an index on `users.role` (`CREATE INDEX … ON users (role)`) and run `ANALYZE users`.
# Then write `async def uses_index(db, role)` that explains `select(User).where(User.role ==
# role)` and returns whether the plan uses an index (`True` when a node type in
# `plan_nodes(plan)` contains `"Index"`). Try it for `"admin"` and `"reader"`, then set `answer`
# to the function itself: the check calls it for every role and watches for its `EXPLAIN`. Use
# the session `db` opened here:

# %%
db = nb.sessions()

# %%
answer = ...  # your uses_index function (no call)

# %%
await check_exercise_09(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
await db.execute(text("CREATE INDEX IF NOT EXISTS ix_users_role ON users (role)"))
await db.execute(text("ANALYZE users"))
await db.commit()


async def uses_index(db, role):
    plan = await explain(db, select(User).where(User.role == role))
    return any("Index" in node for node in plan_nodes(plan))


print({role: await uses_index(db, role) for role in ("admin", "reader")})
answer = uses_index
await check_exercise_09(answer, db)

# %% [markdown]
# The same index, two plans. From the statistics `ANALYZE` gathered, the planner knows that
# almost every row is a reader: for them, reading the table in order is cheaper than jumping
# through the index for each row. Admins are rare, so the index finds them in a few page reads.
# An index on a low-cardinality column only pays for its rare values; a partial index
# (`… ON users (role) WHERE role = 'admin'`) would serve them at a fraction of the size.

# %%
await db.close()

# %% [markdown]
# ## Further reading
#
# - SQLAlchemy: [Connection pooling](https://docs.sqlalchemy.org/en/20/core/pooling.html),
#   [ORM bulk INSERT statements](https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html),
#   ["Insert many values" behavior](https://docs.sqlalchemy.org/en/20/core/connections.html#engine-insertmanyvalues),
#   [Joining a Session into an External Transaction](https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites)
# - asyncpg: [`Connection.executemany` and `copy_records_to_table`](https://magicstack.github.io/asyncpg/current/api/index.html)
# - PostgreSQL: [`EXPLAIN`](https://www.postgresql.org/docs/current/sql-explain.html),
#   [Using EXPLAIN](https://www.postgresql.org/docs/current/using-explain.html),
#   [Multicolumn indexes](https://www.postgresql.org/docs/current/indexes-multicolumn.html),
#   [Index-only scans and covering indexes](https://www.postgresql.org/docs/current/indexes-index-only-scans.html),
#   [`COPY`](https://www.postgresql.org/docs/current/sql-copy.html)
# - pandas: [`read_sql`](https://pandas.pydata.org/docs/reference/api/pandas.read_sql.html),
#   [Nullable integer data type](https://pandas.pydata.org/docs/user_guide/integer_na.html)
#
# ## Summary
#
# - Without `RETURNING`, a list of dictionaries goes through asyncpg's `executemany` (one
#   prepared statement, parameter sets pipelined); only `INSERT … RETURNING` (and so `add_all`)
#   is batched by insertmanyvalues into multi-row `VALUES`, 1,000 rows per statement; `COPY` is
#   fastest of all.
# - The guide's `bulk_create_users` dumps a `password` the table has no column for: the key is
#   silently dropped and the insert fails; blogdata's hashes each password and never commits.
# - Check plans with `EXPLAIN` (or blogdata's `explain`): an index pays only when the planner
#   uses it, for selective filters such as a rare `role`; an index that duplicates another's
#   leading column only costs; and a pool should fail fast (`PoolExhaustedError`) when full.

# %%
await nb.close()
