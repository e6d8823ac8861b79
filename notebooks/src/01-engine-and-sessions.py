# %% [markdown]
# # 01 · Engine and sessions
#
# Everything blogdata does goes through two objects: an **engine**, which owns a pool of
# connections to PostgreSQL, and **sessions**, short units of work that borrow a connection,
# run statements and commit or roll back once. This notebook builds both and looks inside.
#
# **What you will learn**
#
# - how blogdata chooses its database, and how to show a URL without its password;
# - what the pool options mean, and what happens when the pool runs dry;
# - what `pool_pre_ping` buys you when the server drops a connection;
# - how to watch the SQL an engine sends (`echo`);
# - the two ways to get a session: `get_db` for web apps, `session_scope` for scripts;
# - three traps in the guide: an engine built at import time, `sessionmaker(class_=AsyncSession)`,
#   and `datetime.utcnow()`.
#
# This is the first notebook; the [README](../README.md) explains how to start JupyterLab.

# %%
import os
import subprocess
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from blogdata import User, create_engine, get_db, session_scope
from blogdata.config import get_settings, parse_database_url
from blogdata.database import dispose_default_engine
from blogdata.errors import ConnectionLostError
from blogdata.notebook import echo_sql, tutorial_database
from blogdata.seed import SEED_NOW
from blogdata.security import get_password_hash

nb = await tutorial_database("01-engine-and-sessions")
nb

# %% [markdown]
# `tutorial_database` gave this notebook its own database, freshly migrated and filled with a
# deterministic demo blog. The server is the one in `BLOGDATA_DATABASE_URL` or, when that is
# unset, an embedded PostgreSQL that blogdata starts for you.
#
# ## The URL
#
# A database URL names the dialect and driver, the user, the password, the host and the
# database. blogdata only accepts `postgresql+asyncpg://`.

# %%
url = make_url("postgresql+asyncpg://blog:s3cret@db.example.com:5432/blog")
print(url.drivername, url.username, url.host, url.port, url.database)

# %% [markdown]
# Never print a URL as it is: it holds the password. `render_as_string(hide_password=True)` (and
# `str(url)`) mask it; `nb.url` is already masked.

# %%
print(url.render_as_string(hide_password=True))

# %% [markdown]
# The notebook's own engine points at a database named after the notebook:

# %%
nb.engine.url.drivername, nb.engine.url.username, nb.engine.url.database

# %% [markdown]
# A bare `postgresql://` is a trap in SQLAlchemy 2.1: it now means the psycopg 3 driver, which
# is not installed. blogdata refuses it with a message that says what to write instead:

# %% tags=["raises-exception"]
parse_database_url("postgresql://blog:s3cret@db.example.com/blog")

# %% [markdown]
# ## Pool options
#
# Opening a PostgreSQL connection costs a few milliseconds and a server process, so the engine
# keeps a pool of open ones. blogdata reads the pool options from `BLOGDATA_*` variables; these
# are the defaults (the guide's performance section):

# %%
settings = get_settings()
{
    name: getattr(settings, name)
    for name in ("pool_size", "max_overflow", "pool_timeout", "pool_recycle", "pool_pre_ping")
}

# %% [markdown]
# - `pool_size`: connections kept open between uses;
# - `max_overflow`: extra connections opened when all of those are busy, closed when returned;
# - `pool_timeout`: seconds a caller waits for a free connection before giving up;
# - `pool_recycle`: connections older than this many seconds are replaced (servers and
#   firewalls drop idle connections);
# - `pool_pre_ping`: test each connection before handing it out (below).
#
# To see the limits, build a tiny engine: one pooled connection, one overflow, and a short wait.

# %%
tiny = create_engine(nb.engine.url, pool_size=1, max_overflow=1, pool_timeout=0.2)
first = await tiny.connect()
second = await tiny.connect()
print(tiny.pool.status())

# %% [markdown]
# Both connections are checked out: one from the pool, one overflow. A third caller waits
# `pool_timeout` seconds and then fails. blogdata turns SQLAlchemy's terse `TimeoutError` into
# an error that says what to do:

# %% tags=["raises-exception"]
await tiny.connect()

# %% [markdown]
# Returning the connections puts the pooled one back and closes the overflow one:

# %%
await first.close()
await second.close()
print(tiny.pool.status())
await tiny.dispose()

# %% [markdown]
# In real code you never hold connections like this: `async with` returns them as soon as the
# block ends.
#
# ## Pre-ping
#
# A pooled connection can die while it sits in the pool: the server restarts, or an
# administrator (here: us) terminates it. We take a connection, note its server process id,
# return it to the pool, and kill that process from another connection.

# %%
async def kill_pooled_connection(engine):
    """Return the pid of the engine's pooled connection after terminating it on the server."""
    async with engine.connect() as conn:
        pid = await conn.scalar(text("SELECT pg_backend_pid()"))
    async with nb.engine.connect() as admin:
        # Waits (up to 5 s) until the server process has really exited.
        await admin.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid})
    return pid


# %% [markdown]
# Without pre-ping, the next caller gets the dead connection and its statement fails. SQLAlchemy
# notices the disconnect and invalidates the connection; blogdata turns the driver's error
# (which one depends on the moment the driver notices the loss) into one `ConnectionLostError`
# that names the server and says what to do:

# %%
no_ping = create_engine(nb.engine.url, pool_size=1, pool_pre_ping=False)
await kill_pooled_connection(no_ping)
try:
    async with no_ping.connect() as conn:
        await conn.scalar(text("SELECT 1"))
except ConnectionLostError as exc:
    print(type(exc).__name__, "| says what to do:", "run the unit of work again" in str(exc))
await no_ping.dispose()

# %% [markdown]
# The connection is thrown away, but the statement that hit it is lost. With
# `pool_pre_ping=True` (blogdata's default) the pool runs a cheap ping first, sees the
# connection is dead, and quietly opens a new one:

# %%
with_ping = create_engine(nb.engine.url, pool_size=1, pool_pre_ping=True)
old_pid = await kill_pooled_connection(with_ping)
async with with_ping.connect() as conn:
    new_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
print("query worked on a new server process:", new_pid != old_pid)
await with_ping.dispose()

# %% [markdown]
# The ping costs one round trip per checkout; it is worth it for anything long-running.
#
# ## Watching the SQL: `echo`
#
# `create_engine(..., echo=True)` logs every statement. The guide turns it on for production,
# which floods the logs and, with parameters shown, can leak data; keep it for debugging.
# SQLAlchemy's log lines carry a timestamp and timings, so in notebooks we use `echo_sql`,
# which prints the same lines without them:

# %%
with echo_sql(nb.engine):
    async with nb.engine.connect() as conn:
        await conn.scalar(select(func.count()).select_from(User).where(User.role == "author"))

# %% [markdown]
# The log shows the implicit `BEGIN`, the SQL with a `$1` placeholder, its parameters
# (`('author',)`: values never get pasted into the SQL text), and the `ROLLBACK` when the
# connection went back to the pool without a commit. "generated" means
# SQLAlchemy compiled the statement; running it again reuses the compiled form ("cached").
#
# ## Sessions
#
# A session is a unit of work: it autobegins a transaction on its first statement, collects
# your changes, and either commits all of them or none. blogdata's session factories use
# `expire_on_commit=False`, so objects stay readable after a commit without a hidden reload
# (which in async code would fail).
#
# ### `session_scope` for scripts and notebooks
#
# `async with session_scope(engine) as db:` commits when the block ends normally and rolls back
# when it raises.

# %%
async with session_scope(nb.engine) as db:
    db.add(
        User(
            email="ada@example.com",
            username="ada",
            hashed_password=get_password_hash("correct horse"),
            role="author",
        )
    )

async with nb.sessions() as db:
    print(await db.scalar(select(User.username).where(User.email == "ada@example.com")))

# %% [markdown]
# The user was committed and another session sees it. Now the same with an error in the
# middle: nothing of the block survives.

# %%
try:
    async with session_scope(nb.engine) as db:
        db.add(User(email="bob@example.com", username="bob", hashed_password="-"))
        await db.flush()  # the INSERT has run inside the transaction...
        raise RuntimeError("something failed after the insert")
except RuntimeError as exc:
    print("caught:", exc)

async with nb.sessions() as db:
    print("bob saved:", await db.scalar(select(func.count()).where(User.username == "bob")))

# %% [markdown]
# ...and was rolled back with the rest of the block.
#
# ### `get_db` for web apps
#
# `get_db` is the guide's FastAPI dependency: an async generator that yields a session and
# commits (or rolls back) after the request. It uses blogdata's default engine, built on first
# use from `BLOGDATA_DATABASE_URL` or the embedded server. FastAPI drives it like this:

# %%
dependency = get_db()
db = await anext(dependency)  # FastAPI: before the request handler runs
print(await db.scalar(text("SELECT 'hello from a request'")))
await anext(dependency, None)  # after the handler returns: commit and close
await dispose_default_engine()

# %% [markdown]
# In an app you write `async def handler(db: AsyncSession = Depends(get_db))` and never call
# `anext` yourself. Unlike the guide's version, blogdata's CRUD functions never commit on their
# own: the dependency commits once per request (notebook 03 shows why).
#
# ## Three traps in the guide
#
# ### 1. An engine created at import time
#
# The guide creates its engine at module level. The URL is then frozen when the module is
# imported, and the pool belongs to the first event loop that uses it. A script that calls
# `asyncio.run` twice (or a test suite with a loop per test) breaks on the second call. Here is
# the guide's pattern as a small script:

# %%
guide_script = '''
import asyncio, os
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(os.environ["DEMO_URL"])  # the guide: built at import

async def ping():
    async with engine.connect() as conn:
        return await conn.scalar(text("SELECT 1"))

for attempt in (1, 2):
    try:
        print(f"asyncio.run #{attempt}:", asyncio.run(ping()))
    except Exception as exc:
        print(f"asyncio.run #{attempt}: {type(exc).__name__}")
'''
demo_env = {**os.environ, "DEMO_URL": nb.engine.url.render_as_string(hide_password=False)}
with tempfile.TemporaryDirectory() as folder:
    script = Path(folder, "guide_engine.py")
    script.write_text(guide_script)
    done = subprocess.run([sys.executable, script], env=demo_env, capture_output=True, text=True)
print(done.stdout, end="")

# %% [markdown]
# The second run fails: the pooled connection is tied to the first, now closed, event loop.
# blogdata never builds an engine at import: `create_engine()` reads the settings when called,
# `get_engine()` builds the default one on first use, and `dispose_default_engine()` forgets it,
# so each `asyncio.run` can start clean. Code that must cross event loops passes
# `poolclass=NullPool`, which opens a fresh connection per use.
#
# ### 2. `sessionmaker(class_=AsyncSession)`
#
# The guide's test fixture builds its session factory with the sync `sessionmaker` and
# `class_=AsyncSession`. It works at run time, but the type checker rejects it, and every session
# it makes is typed as `Any`, so typos go unnoticed. `async_sessionmaker` is the typed factory.
# We ask mypy about both:

# %%
snippet = '''
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

engine = create_async_engine("postgresql+asyncpg://app@localhost/blog")
GuideSession = sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
Session = async_sessionmaker(engine, expire_on_commit=False)
reveal_type(Session())
'''
with tempfile.TemporaryDirectory() as folder:
    Path(folder, "factories.py").write_text(snippet)
    checked = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", "--cache-dir", os.devnull,
         "--no-error-summary", "--no-color-output", "factories.py"],
        cwd=folder, capture_output=True, text=True,
    )
for line in checked.stdout.splitlines():
    if "note:     def" not in line:  # skip the long list of overloads
        print(line)

# %% [markdown]
# The guide's factory is an error; `async_sessionmaker` gives real `AsyncSession`s.
#
# ### 3. `datetime.utcnow()`
#
# The guide computes cut-offs with `datetime.utcnow()`. It returns a *naive* datetime: no time
# zone attached. It is deprecated since Python 3.12, and our columns are `timestamptz`, which
# come back *aware* (in UTC). Comparing the two fails:

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns here
    naive_now = datetime.utcnow()

async with nb.sessions() as db:
    first_signup = await db.scalar(select(func.min(User.created_at)))
print("tzinfo of utcnow():", naive_now.tzinfo, "| tzinfo from the database:", first_signup.tzinfo)

# %% tags=["raises-exception"]
first_signup < naive_now

# %% [markdown]
# The fix is an aware "now": `datetime.now(UTC)`. Comparisons, arithmetic and parameters then
# all agree. (The demo data is dated relative to a fixed clock, `SEED_NOW`, so that these
# notebooks print the same numbers every day.)

# %%
print(first_signup < datetime.now(UTC), SEED_NOW)

# %% [markdown]
# ## Worked example: a small report script
#
# Putting it together: a script builds its engine when it runs (not at import), uses one unit of
# work per task, and disposes of the engine at the end.

# %%
async def active_users_by_role(url):
    engine = create_engine(url)
    try:
        async with session_scope(engine) as db:
            rows = await db.execute(
                select(User.role, func.count())
                .where(User.is_active)
                .group_by(User.role)
                .order_by(User.role)
            )
            return dict(rows.all())
    finally:
        await engine.dispose()


await active_users_by_role(nb.engine.url)

# %% [markdown]
# ## Exercise
#
# Build an engine with `pool_size=2, max_overflow=0, pool_timeout=0.5` and check out two
# connections. What does `engine.pool.status()` say, and what happens to a third
# `engine.connect()`? Return both connections and dispose of the engine.
#
# ### Solution

# %%
engine = create_engine(nb.engine.url, pool_size=2, max_overflow=0, pool_timeout=0.5)
held = [await engine.connect(), await engine.connect()]
print(engine.pool.status())
try:
    await engine.connect()
except Exception as exc:
    print(type(exc).__name__)
for conn in held:
    await conn.close()
await engine.dispose()

# %% [markdown]
# With no overflow allowed, the third caller waits half a second and gets `PoolExhaustedError`.
#

# %%
await nb.close()
