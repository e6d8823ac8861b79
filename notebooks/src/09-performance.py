# %% [markdown]
# # 09 · Performance: pools, bulk inserts, indexes and fast loading
#
# The guide's performance tips are a pool configuration, a bulk insert, a bulk update and a few
# indexes. Each is worth measuring: the right bulk path is ten times faster than the obvious
# one, an index only helps if the planner uses it, and a pool that is too small should fail
# loudly rather than hang.
#
# **What you will learn**
# - what the pool settings mean, and what happens when every connection is busy;
# - three ways to insert many rows (ORM `add_all`, multi-row `INSERT`, `COPY`) and their costs;
# - how to check with `EXPLAIN` that a query uses the index you expect;
# - blogdata's loader against `pandas.read_sql`, and the three routes it chooses between.
#
# Timings in this notebook depend on the machine (cells marked to be ignored by the checks);
# the facts around them do not.
#

# %%
import asyncio
import time
from contextlib import AsyncExitStack
from datetime import timedelta

import pandas as pd
from sqlalchemy import delete, func, select, text, update

from blogdata.bulk import deactivate_old_users, insert_hashed_users
from blogdata.config import get_settings
from blogdata import User, create_engine, load_frame
from blogdata.explain import explain, plan_indexes, plan_nodes
from blogdata.loaders import ROUTE_ATTR, RouteUnavailableError
from blogdata.notebook import count_statements, tutorial_database
from blogdata.security import get_password_hash
from blogdata.seed import DEMO_PASSWORD, SEED_NOW

nb = await tutorial_database("09-performance")
nb

# %% [markdown]
# ## The connection pool
#
# An engine keeps a pool of open connections: `pool_size` stay open, up to `max_overflow` more
# are opened when all are busy, and a task that finds none free waits `pool_timeout` seconds.
# blogdata reads these from the settings (`BLOGDATA_POOL_SIZE` …); the defaults:

# %%
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
async with AsyncExitStack() as busy:
    for _ in range(2):
        await busy.enter_async_context(small.connect())
    await query()

# %%
await small.dispose()

# %% [markdown]
# `pool_pre_ping` tests a connection before handing it out, so a connection the server closed
# (a restart, an idle timeout) is replaced silently instead of failing your first query.
#
# ## Bulk inserts
#
# We prepare 10,000 user rows. Hashing a password is deliberately slow (argon2), so the rows
# share one hash here; `bulk_create_users` hashes each password, on several threads.

# %%
# NBVAL_IGNORE_OUTPUT
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
# A small helper runs one insert method in its own session, commits, checks the count, and
# removes the rows again.

# %%
async def timed(insert):
    async with nb.sessions() as db:
        started = time.perf_counter()
        await insert(db)
        await db.commit()
        elapsed = time.perf_counter() - started
        added = await db.scalar(select(func.count()).where(User.username.startswith("bulk")))
        await db.execute(delete(User).where(User.username.startswith("bulk")))
        await db.commit()
    assert added == N
    return f"{N:,} rows in {elapsed:.2f} s"


async def orm_add_all(db):
    db.add_all([User(**row) for row in rows])


async def insert_values(db):
    await insert_hashed_users(db, rows, copy_threshold=N + 1)


async def insert_copy(db):
    await insert_hashed_users(db, rows)

# %% [markdown]
# **ORM `add_all`**: builds 10,000 `User` objects and lets the unit of work flush them.

# %%
# NBVAL_IGNORE_OUTPUT
await timed(orm_add_all)

# %% [markdown]
# **Multi-row `INSERT … VALUES`** (SQLAlchemy's insertmanyvalues): plain dictionaries, a thousand
# rows per statement.

# %%
# NBVAL_IGNORE_OUTPUT
await timed(insert_values)

# %% [markdown]
# **`COPY`**: asyncpg streams the rows in PostgreSQL's binary format on the session's own
# connection, inside its transaction. `insert_hashed_users` switches to it from 1,000 rows.

# %%
# NBVAL_IGNORE_OUTPUT
await timed(insert_copy)

# %% [markdown]
# On our machine COPY is about 2.5 times faster than multi-row `INSERT`, and ten times faster than
# `add_all` (benchmarks/RESULTS.md). To SQLAlchemy's statement events both fast paths look like
# a handful of statements: the multi-row INSERT is reported once although it travels in batches
# of a thousand rows, and COPY bypasses the events altogether. The difference is in how the rows
# travel: as bound parameters of INSERT statements that PostgreSQL must parse and plan, or as
# one binary stream written straight into the table.

# %%
async with nb.sessions() as db:
    with count_statements(nb.engine) as values_path:
        await insert_values(db)
    await db.rollback()
    with count_statements(nb.engine) as copy_path:
        await insert_copy(db)
    await db.commit()
values_path.count, copy_path.count

# %% [markdown]
# A duplicate is reported by row before anything is written:

# %% tags=["raises-exception"]
async with nb.sessions() as db:
    await insert_hashed_users(db, rows[:3] + [rows[1]])

# %% [markdown]
# ## Indexes and `EXPLAIN`
#
# The 10,000 rows from the COPY above are committed. After `ANALYZE` refreshes the planner's
# statistics, `explain` returns PostgreSQL's plan as a dict. We look at the index names only:
# costs and timings differ from run to run and between server versions.

# %%
db = nb.sessions()
await db.execute(text("ANALYZE users"))
plan = await explain(db, select(User).where(User.email == "bulk04242@example.com"))
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# The guide's other lookups, each using the index made for it:

# %%
lookups = {
    "username": select(User).where(User.username == "bulk00007"),
    "created_at range": select(User).where(
        User.created_at >= SEED_NOW - timedelta(hours=2), User.created_at < SEED_NOW - timedelta(hours=1)
    ),
}
{name: plan_indexes(await explain(db, stmt)) for name, stmt in lookups.items()}

# %% [markdown]
# The guide also adds an index on `(email, username)`. For a lookup by email, or by email and
# username, it adds nothing: each column is unique on its own, and the planner prefers the
# smaller single-column index. Every index costs time on each insert, so keep the ones a plan
# actually uses (`pg_stat_user_indexes.idx_scan` counts them over time).
#
# A filter on a column without an index reads the whole table:

# %%
plan = await explain(db, select(User).where(User.full_name == "Nobody"))
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# With `analyze=True` the statement really runs (inside a savepoint that is rolled back), and the
# plan carries actual row counts:

# %%
plan = await explain(db, select(User).where(User.username.startswith("bulk000")), analyze=True)
int(plan["Plan"]["Actual Rows"])

# %%
await db.close()

# %% [markdown]
# ## Loading a DataFrame: blogdata's loader against `pandas.read_sql`
#
# `pandas.read_sql` does not accept an async engine, so the usual workaround runs it through
# `run_sync`. blogdata's `load_frame` reads with asyncpg directly and sets dtypes from the
# column types. Both read the 10,200 users (the seeded ones and our bulk rows).

# %%
stmt = select(User.id, User.email, User.is_active, User.created_at).order_by(User.id)

# %%
# NBVAL_IGNORE_OUTPUT
async with nb.engine.connect() as conn:
    started = time.perf_counter()
    ours = await load_frame(conn, stmt)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    theirs = await conn.run_sync(lambda sync_conn: pd.read_sql(stmt, sync_conn))
    theirs_s = time.perf_counter() - started
print(f"load_frame {ours_s:.3f} s, pandas.read_sql {theirs_s:.3f} s")

# %% [markdown]
# Same rows, but not the same dtypes: `load_frame` keeps the integer, boolean and string columns
# nullable (`Int64`, `boolean`, `string`), decided by the column types, not by the data.

# %%
pd.DataFrame({"load_frame": ours.dtypes.astype(str), "read_sql": theirs.dtypes.astype(str)})

# %%
len(ours) == len(theirs), (ours["email"] == theirs["email"]).all()

# %% [markdown]
# ### One loader, three routes
#
# `load_frame` is the only loader: it picks how the rows travel and says which in
# `frame.attrs["blogdata.route"]`. `"adbc"` is ADBC's binary COPY on a second connection that
# imports the session's snapshot (the fastest for big results, but it cannot see this session's
# uncommitted writes); `"copy"` is CSV COPY on the session's own connection; `"rows"` is the
# driver's records. Each route is used only where it gives exactly what `session.execute` gives,
# so forcing each one returns the same frame:

# %%
async with nb.sessions() as db:
    frames = {route: await load_frame(db, stmt, route=route) for route in ("adbc", "copy", "rows")}
    chosen = (await load_frame(db, stmt)).attrs[ROUTE_ATTR]
{route: frame.equals(frames["rows"]) for route, frame in frames.items()}, chosen

# %% [markdown]
# With a few hundred kilobytes the planner's estimate is small, so the default stays on the
# session's connection (`copy`); a big read goes to ADBC. Once the session has written, another
# connection cannot see the write, so the ADBC route refuses rather than return stale rows, and
# the default reads the write on the session's own connection:

# %%
async with nb.sessions() as db:
    await db.execute(update(User).where(User.id == 1).values(full_name="Changed, not committed"))
    try:
        await load_frame(db, stmt, route="adbc")
    except RouteUnavailableError as err:
        print(err)
    mine = await load_frame(db, select(User.full_name).where(User.id == 1))
    await db.rollback()
mine.attrs[ROUTE_ATTR], mine["full_name"].item()

# %% [markdown]
# We remove the bulk rows again, so the worked example runs on the seeded blog alone.

# %%
async with nb.sessions() as db:
    await db.execute(delete(User).where(User.username.startswith("bulk")))
    await db.commit()

# %% [markdown]
# ## Worked example: an inactive-user clean-up
#
# The guide's bulk update queries a `last_login` column its model lacks, with a naive
# `utcnow()`. blogdata's `deactivate_old_users` uses the real column and an aware clock, and
# returns the number of users it changed. We pass the seed's fixed clock so the answer is stable.

# %%
async with nb.sessions() as db:
    changed = await deactivate_old_users(db, days=180, now=SEED_NOW)
    still_active = await db.scalar(select(func.count()).where(User.is_active))
    await db.rollback()
changed, still_active

# %% [markdown]
# ## Exercise
#
# Does a filter on `role` use an index? Check with `explain`, then think about whether an index
# would help for a column with only four values.
#
# ### Solution

# %%
async with nb.sessions() as db:
    plan = await explain(db, select(User).where(User.role == "admin"))
plan_nodes(plan), plan_indexes(plan)

# %% [markdown]
# No index, a sequential scan. With four roles, most values match a large share of the rows, and
# reading the table is cheaper than jumping through an index; only a rare value (a handful of
# admins) would justify a partial index such as `WHERE role = 'admin'`.

# %%
await nb.close()
