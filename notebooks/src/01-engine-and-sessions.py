# %% [markdown]
# # 01 · Engine and sessions
#
# Everything an async SQLAlchemy program does goes through two objects: an
# [**engine**](glossary.ipynb#engine), which owns a [pool](glossary.ipynb#connection-pool) of
# connections to PostgreSQL, and [**sessions**](glossary.ipynb#session), short
# [units of work](glossary.ipynb#unit-of-work) that borrow a connection, run statements and
# [commit](glossary.ipynb#commit) or roll back once. Get these two right and the rest of the
# guide follows; get them wrong and you meet exhausted pools, dead connections and half-saved
# work.
#
# **Prerequisites:** [00 · Start here](00-start-here.ipynb), Python's `async`/`await` ·
# **Time to learn:** 30 minutes (45 with the asides)
#
# **What you will learn**
#
# - engine → session → one unit of work, in plain SQLAlchemy 2.x, then blogdata's `session_scope`;
# - the [Result](glossary.ipynb#result) API: `execute`, `scalars`, `scalar`, `scalar_one`,
#   `unique()`, with the SQL beside;
# - what `pool_size`, `max_overflow` and `pool_timeout` mean, and what happens when the pool runs
#   dry;
# - `get_db` in a FastAPI app: the guide's dependency answers 200 although its commit failed,
#   and blogdata's `SessionDep` fixes it;
# - (asides, skip on first reading) [pre-ping](glossary.ipynb#pre-ping), the guide's
#   `echo=True`, an engine built at import time, `sessionmaker(class_=AsyncSession)` under mypy.

# %%
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_01

nb = await tutorial_database("01-engine-and-sessions")
nb

# %% [markdown]
# `tutorial_database` gave this notebook its own database, freshly migrated and filled with a
# deterministic demo blog; `nb.engine.url` points at it (on the server in
# `BLOGDATA_DATABASE_URL`, or on an embedded PostgreSQL that blogdata starts for you).
#
# ## 1. The engine
#
# `create_async_engine` takes a URL (`postgresql+asyncpg://user:password@host:5432/database`)
# and pool options. Creating it opens nothing; the first `connect()` opens a connection, and
# leaving the `async with` block returns it to the pool instead of closing it.

# %%
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

engine = create_async_engine(nb.engine.url, pool_size=5, max_overflow=10)
print(engine.pool.status())
async with engine.connect() as conn:
    result = await conn.execute(text("SELECT current_database(), 1 + 1 AS two"))
    print(result.all())
print(engine.pool.status())

# %% [markdown]
# Before the first `connect()` the pool held nothing; afterwards one connection waits in it
# ("Connections in pool: 1") and none is checked out. The pool section below takes these
# numbers apart.
#
# ## 2. The session
#
# A session is what ORM code talks to. `async_sessionmaker` is a factory bound to the engine;
# each session it makes borrows a connection on its first statement and gives it back when it
# commits, rolls back or closes. `expire_on_commit=False` keeps loaded objects readable after a
# commit (in async code a hidden reload would fail: [notebook 02](02-models-and-relationships.ipynb)).

# %%
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from blogdata.models import User

Session = async_sessionmaker(engine, expire_on_commit=False)
async with Session() as db:
    first_user = await db.scalar(select(User).order_by(User.id).limit(1))
first_user

# %% [markdown]
# ```mermaid
# flowchart LR
#     F["async_sessionmaker<br/>(the factory)"] -->|"Session()"| S[session]
#     S -->|"first statement: checkout"| P[engine's pool]
#     P --> C[(connection)]
#     C --> PG[(PostgreSQL)]
#     S -.->|"commit / rollback / close: checkin"| P
# ```
#
# The pool's count of checked-out connections follows a session through it:

# %%
from sqlalchemy import func

db = Session()
print("new session:", engine.pool.checkedout())
await db.scalar(select(func.count()).select_from(User))
print("after its first statement:", engine.pool.checkedout())
await db.commit()
print("after commit:", engine.pool.checkedout())
await db.close()

# %% [markdown]
#
# ## 3. Reading results: the Result API
#
# `select(...)` builds a statement; the session runs it. What comes back depends on the method:
#
# | call | returns | use it for |
# |---|---|---|
# | `await db.execute(stmt)` | a `Result` of `Row`s (named tuples) | several columns |
# | `await db.scalars(stmt)` | the *first column* of each row (`.all()` makes a list) | a list of objects |
# | `await db.scalar(stmt)` | the first column of the first row, or `None` | one value, a count |
# | `result.scalar_one()` | exactly one value; raises on none or several | a row that must exist |
# | `result.scalar_one_or_none()` | one value or `None`; raises on several | the guide's `get` |
# | `result.unique()` | the rows with duplicates removed | `joinedload` of a collection |
#
# One statement, shown with the SQL asyncpg receives (`show_sql`: `$1` is a bound parameter,
# never pasted into the text):

# %%
from blogdata.diagnostics import show_sql

stmt = select(User.id, User.username).where(User.role == "author").order_by(User.id).limit(3)
show_sql(stmt)

# %% [markdown]
# `execute` gives rows, each a tuple of the selected columns:

# %%
db = Session()
(await db.execute(stmt)).all()

# %% [markdown]
# `scalars` keeps only the first column of each row, here the ids. With `select(User)` the first
# (only) column is the `User` object itself, which is why ORM code reads `db.scalars(select(User))`.

# %%
(await db.scalars(stmt)).all()

# %% [markdown]
# `scalar` gives one value, the natural call for an aggregate:

# %%
count_authors = select(func.count()).select_from(User).where(User.role == "author")
show_sql(count_authors)
await db.scalar(count_authors) > 0

# %% [markdown]
# `scalar_one` insists on exactly one row, so a missing row is an error at the line that
# assumed it, not a `None` three calls later:

# %% tags=["raises-exception"]
(await db.execute(select(User.username).where(User.id == -1))).scalar_one()

# %% [markdown]
# `unique()` is needed when a statement joins a collection: `joinedload(User.posts)` returns one
# row per (user, post) pair, and SQLAlchemy refuses to hand those out until you ask it to fold
# the duplicate users back into one:

# %% tags=["raises-exception"]
from sqlalchemy.orm import joinedload

with_posts = select(User).options(joinedload(User.posts)).where(User.id == first_user.id)
(await db.scalars(with_posts)).all()

# %%
users = (await db.scalars(with_posts)).unique().all()
await db.close()
len(users), users[0].id == first_user.id

# %% [markdown]
# The statement's SQL, with its `LEFT OUTER JOIN posts`, is shown in
# [notebook 05](05-relationship-loading.ipynb), which compares `joinedload` and `selectinload`.
#
# ## 4. One unit of work
#
# A session [autobegins](glossary.ipynb#autobegin) a transaction on its first statement.
# `async with db.begin():` makes the transaction's end explicit: it commits when the block ends
# normally and rolls back when it raises. A small helper asks a *new* session which of some
# usernames exist; a new session sees committed rows only.

# %%
async def saved_usernames(*names):
    """Return which of ``names`` exist, as a fresh session sees them (committed rows only)."""
    async with Session() as other:
        found = await other.scalars(select(User.username).where(User.username.in_(names)))
        return sorted(found.all())


async with Session() as db, db.begin():
    db.add(User(email="ada@example.com", username="ada", hashed_password="-"))

await saved_usernames("ada")

# %% [markdown]
# Committed. Now the same with an error in the middle: the [flush](glossary.ipynb#flush) sends
# the INSERT inside the transaction, then the block raises.

# %%
try:
    async with Session() as db, db.begin():
        db.add(User(email="bob@example.com", username="bob", hashed_password="-"))
        await db.flush()  # the INSERT has run inside the transaction...
        raise RuntimeError("something failed after the insert")
except RuntimeError as exc:
    print("caught:", exc)

await saved_usernames("ada", "bob")

# %% [markdown]
# ...and was rolled back with the rest of the block: no `bob`.
#
# blogdata's `session_scope(engine)` is this pattern as one call, for scripts and notebooks
# (`get_db` below is the same for web requests). It adds what the bare pattern lacks: a failed
# commit becomes a blogdata error that says what to do, and a connection lost mid-transaction is
# discarded instead of failing again in the rollback.

# %%
from blogdata import session_scope

async with session_scope(nb.engine) as db:
    db.add(User(email="cy@example.com", username="cy", hashed_password="-"))

await saved_usernames("ada", "bob", "cy")

# %% [markdown]
# ## 5. The pool: size, overflow, timeout
#
# Opening a PostgreSQL connection costs a few milliseconds and a server process, so the engine
# keeps open ones in a pool. Three options bound it:
#
# - `pool_size`: connections kept open between uses;
# - `max_overflow`: extra connections opened when all of those are checked out, closed when
#   they come back;
# - `pool_timeout`: seconds a caller waits for a free connection before giving up.
#
# ```mermaid
# flowchart LR
#     A[caller 1] -->|checked out| kept
#     B[caller 2] -->|checked out| extra
#     C[caller 3] -.->|"waits pool_timeout seconds,<br/>then TimeoutError"| pool
#     subgraph pool ["pool: pool_size=1, max_overflow=1"]
#         kept[("pooled connection<br/>kept open when returned")]
#         extra[("overflow connection<br/>closed when returned")]
#     end
#     kept --> PG[(PostgreSQL)]
#     extra --> PG
# ```
#
# The picture, run: a tiny engine with one pooled connection, one overflow and a short wait.

# %%
tiny = create_async_engine(nb.engine.url, pool_size=1, max_overflow=1, pool_timeout=0.2)
first = await tiny.connect()
second = await tiny.connect()
print(tiny.pool.status())

# %% [markdown]
# Two connections checked out, the pool's one and an overflow one ("Current Overflow: 1"). A
# third caller waits 0.2 s and gets SQLAlchemy's `TimeoutError`:

# %% tags=["raises-exception"]
await tiny.connect()

# %% [markdown]
# Returning the connections keeps the pooled one open and closes the overflow one:

# %%
await first.close()
await second.close()
print(tiny.pool.status())
await tiny.dispose()

# %% [markdown]
# In real code you never hold connections like this: `async with` returns them when the block
# ends. A pool runs dry when more units of work are open at once than `pool_size +
# max_overflow`, for example a web app under load whose requests hold sessions too long.
#
# blogdata's `create_engine(url, **options)` builds the same engine with defaults from
# `BLOGDATA_*` variables (these are the guide's performance-section values):

# %%
from blogdata import create_engine
from blogdata.config import get_settings

settings = get_settings()
{name: getattr(settings, name) for name in ("pool_size", "max_overflow", "pool_timeout")}

# %% [markdown]
# It also turns the pool's terse timeout into an error that names the limits and what to do:

# %% tags=["raises-exception"]
tiny = create_engine(nb.engine.url, pool_size=1, max_overflow=0, pool_timeout=0.2)
held = await tiny.connect()
try:
    await tiny.connect()
finally:
    await held.close()
    await tiny.dispose()

# %% [markdown]
# ## 6. One unit of work per request: `get_db` in FastAPI
#
# A web app opens one unit of work per request. The guide writes it as a FastAPI dependency:
# an async generator that yields a session, commits after the request handler returns, and
# rolls back if the handler raised. Here it is verbatim, with the session factory from above
# as the guide's `AsyncSessionLocal`:

# %%
AsyncSessionLocal = Session  # the guide: async_sessionmaker(engine, expire_on_commit=False)


async def get_db():
    async with AsyncSessionLocal() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise

# %% [markdown]
# A real FastAPI app with two endpoints. `/signup` adds a user. `/redeem/{code}` inserts a
# voucher code twice into a table whose UNIQUE key is `DEFERRABLE INITIALLY DEFERRED`, so the
# duplicate is caught only by the COMMIT, as a commit-time failure would be in real life (a
# deferred constraint, a serialization failure, a lost connection). `make_app` takes the
# `Depends(...)` to use, so the same app runs on the guide's dependency and on blogdata's.

# %%
from fastapi import Depends, FastAPI
from sqlalchemy.ext.asyncio import AsyncSession

async with nb.engine.begin() as conn:
    await conn.execute(
        text("CREATE TABLE vouchers (code text UNIQUE DEFERRABLE INITIALLY DEFERRED)")
    )


def make_app(session_dependency):
    app = FastAPI()

    @app.post("/signup/{username}")
    async def signup(username: str, db: AsyncSession = session_dependency):
        db.add(User(email=f"{username}@example.com", username=username, hashed_password="-"))
        return {"signed up": username}

    @app.post("/redeem/{code}")
    async def redeem(code: str, db: AsyncSession = session_dependency):
        for _ in range(2):  # both INSERTs run; the duplicate fails at COMMIT
            await db.execute(text("INSERT INTO vouchers VALUES (:code)"), {"code": code})
        return {"redeemed": code}

    return app

# %% [markdown]
# `httpx` calls an ASGI app in-process, without a server or a port: `ASGITransport` hands each
# request straight to the app (FastAPI's `TestClient` is the same thing, synchronous).
# `raise_app_exceptions=False` makes it answer a failed request as a server would, with a 500.

# %%
import httpx


def client_for(app):
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://test")


async with client_for(make_app(Depends(get_db))) as client:
    signed_up = await client.post("/signup/grace")
    redeemed = await client.post("/redeem/WELCOME")
async with nb.engine.connect() as conn:
    vouchers = await conn.scalar(text("SELECT count(*) FROM vouchers"))
print("/signup:", signed_up.status_code, signed_up.json(), await saved_usernames("grace"))
print("/redeem:", redeemed.status_code, redeemed.json(), "| vouchers stored:", vouchers)

# %% [markdown]
# The signup was committed. The voucher answered **200** and `{"redeemed": "WELCOME"}`, yet
# nothing was stored: the client was told a lie. Since FastAPI 0.118 the code after a
# dependency's `yield` runs *after the response has been sent*, unless the dependency is
# declared with [`scope="function"`](glossary.ipynb#dependency-scope); the guide's commit comes too
# late to change the answer.
#
# blogdata's `get_db` is the guide's dependency built on `session_scope`, and `SessionDep` is
# `Annotated[AsyncSession, Depends(get_db, scope="function")]`: the commit runs before the
# response. `get_db` takes its sessions from blogdata's default engine, which an app configures
# with `BLOGDATA_DATABASE_URL`; we point that at this notebook's database:

# %%
import os

from blogdata.db.engine import dispose_default_engine
from blogdata.db.sessions import SessionDep

saved_setting = os.environ.get("BLOGDATA_DATABASE_URL")
os.environ["BLOGDATA_DATABASE_URL"] = nb.engine.url.render_as_string(hide_password=False)
settings = get_settings(reload=True)

# %% [markdown]
# The same two requests on an app whose endpoints take `db: SessionDep`:

# %%
def make_fixed_app():
    app = FastAPI()

    @app.post("/signup/{username}")
    async def signup(username: str, db: SessionDep):
        db.add(User(email=f"{username}@example.com", username=username, hashed_password="-"))
        return {"signed up": username}

    @app.post("/redeem/{code}")
    async def redeem(code: str, db: SessionDep):
        for _ in range(2):
            await db.execute(text("INSERT INTO vouchers VALUES (:code)"), {"code": code})
        return {"redeemed": code}

    return app


async with client_for(make_fixed_app()) as client:
    signed_up = await client.post("/signup/ken")
    redeemed = await client.post("/redeem/WELCOME")
print("/signup:", signed_up.status_code, signed_up.json(), await saved_usernames("ken"))
print("/redeem:", redeemed.status_code, redeemed.text)

# %% [markdown]
# Ken was committed before his 200 was sent, and the voucher whose commit failed answered 500.
# (An app maps blogdata's errors to better answers with an exception handler for
# `BlogdataError`.) A bare `Depends(get_db)` would have the guide's flaw: use `SessionDep`, or
# `Depends(get_db, scope="function")`. We put the setting back, and dispose of the engine we
# built in section 1:

# %%
await dispose_default_engine()
if saved_setting is None:
    del os.environ["BLOGDATA_DATABASE_URL"]
else:
    os.environ["BLOGDATA_DATABASE_URL"] = saved_setting
settings = get_settings(reload=True)
await engine.dispose()  # the engine of sections 1 to 6

# %% [markdown]
# ## Worked example: a small report script
#
# Putting it together: a script builds its engine when it runs (not at import, see the aside
# below), uses one unit of work, and disposes of the engine at the end.

# %%
async def active_users_by_role(url):
    report_engine = create_engine(url)
    try:
        async with session_scope(report_engine) as db:
            stmt = select(User.role, func.count()).where(User.is_active).group_by(User.role)
            rows = await db.execute(stmt.order_by(User.role))
            return dict(rows.all())
    finally:
        await report_engine.dispose()


await active_users_by_role(nb.engine.url)

# %% [markdown]
# ### Aside: pre-ping (advanced)
#
# *Skip this on first reading.* A pooled connection can die while it sits in the pool: the
# server restarts, a firewall or a pooler drops idle connections, or an administrator (here:
# us) terminates it. We take a connection, note its server process id, return it to the pool,
# and kill that process from another connection.

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
# Without pre-ping, the next caller gets the dead connection and its statement fails. blogdata
# turns the driver's error (which one depends on the moment the driver notices the loss) into
# one `ConnectionLostError` that says what to do:

# %%
from blogdata.errors import ConnectionLostError

no_ping = create_engine(nb.engine.url, pool_size=1, pool_pre_ping=False)
await kill_pooled_connection(no_ping)
try:
    async with no_ping.connect() as conn:
        await conn.scalar(text("SELECT 1"))
except ConnectionLostError as exc:
    print(type(exc).__name__, "| says what to do:", "run the unit of work again" in str(exc))
await no_ping.dispose()

# %% [markdown]
# With `pool_pre_ping=True` (blogdata's default and the guide's) the pool runs a cheap ping
# first, sees the connection is dead, and quietly opens a new one. The ping costs one round
# trip per checkout.

# %%
with_ping = create_engine(nb.engine.url, pool_size=1, pool_pre_ping=True)
old_pid = await kill_pooled_connection(with_ping)
async with with_ping.connect() as conn:
    new_pid = await conn.scalar(text("SELECT pg_backend_pid()"))
print("query worked on a new server process:", new_pid != old_pid)
await with_ping.dispose()

# %% [markdown]
# ### Aside: the guide's `echo=True`
#
# *Skip this on first reading.* The guide's engine passes `echo=True` ("SQL logging")
# unconditionally. Verbatim, on this notebook's database:

# %%
DATABASE_URL = nb.engine.url  # the guide: "postgresql+asyncpg://user:pass@localhost/db"

guide_engine = create_async_engine(
    DATABASE_URL,
    echo=True,           # SQL logging
    pool_pre_ping=True,  # Connection health check
    pool_size=10,        # Connection pool size
    max_overflow=20      # Extra connections when pool full
)

# %% [markdown]
# Creating it attached a handler that writes SQLAlchemy's engine log to standard output:

# %%
import logging
import sys

sql_log = logging.getLogger("sqlalchemy.engine.Engine")
print("writes to stdout:", sql_log.handlers[-1].stream is sys.stdout)

# %% [markdown]
# So wherever the guide's module is imported (tests, a notebook, the production server), every
# statement and every parameter value goes to stdout, with a timestamp and its timing. Those
# lines differ on every run, so here `echo_sql` prints the same lines without them:

# %%
from blogdata.diagnostics import echo_sql

with echo_sql(guide_engine):
    async with guide_engine.connect() as conn:
        await conn.scalar(select(User.email).where(User.username == "ada"))

# %% [markdown]
# The first connection starts with the dialect's own questions to the server; then `BEGIN`, our
# SQL with its `$1` placeholder, its parameters (`('ada',)`: with echo on, emails and other
# personal data reach the log), and the `ROLLBACK` when the connection went back to the pool.
# blogdata's engines echo only when `BLOGDATA_ECHO=true` is set for one run. We close the
# guide's engine and take its handler off the logger:

# %%
await guide_engine.dispose()
sql_log.removeHandler(sql_log.handlers[-1])
settings.echo, nb.engine.echo

# %% [markdown]
# ### Aside: an engine built at import time
#
# *Skip this on first reading.* The guide creates its engine at module level. The pool then
# belongs to the first event loop that uses it, so a script that calls `asyncio.run` twice (or
# a test suite with a loop per test) breaks on the second call. The pattern as a small script,
# run in a separate Python process on this notebook's database:

# %%
import subprocess
import tempfile
from pathlib import Path

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
    Path(folder, "guide_engine.py").write_text(guide_script)
    done = subprocess.run(
        [sys.executable, "guide_engine.py"], cwd=folder, env=demo_env, capture_output=True, text=True
    )
print(done.stdout, end="")

# %% [markdown]
# The second run fails: the pooled connection is tied to the first, now closed, event loop.
# blogdata never builds an engine at import: `create_engine()` reads the settings when called,
# `get_engine()` builds the default one on first use, and `dispose_default_engine()` forgets it.
# Code that must cross event loops passes `poolclass=NullPool` (a fresh connection per use).
#
# ### Aside: `sessionmaker(class_=AsyncSession)` under mypy
#
# *Skip this on first reading.* The guide's test [fixture](glossary.ipynb#fixture) builds its
# session factory with the sync `sessionmaker` and `class_=AsyncSession`. It works at run time,
# but the type checker rejects it; `async_sessionmaker` is the typed factory. Both, checked by
# mypy (strict):

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
# ## Exercise
#
# Write `async def third_connection(url, pool_size)`: build an engine with
# `create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.5)`, check out
# `pool_size` connections (`await engine.connect()`), then try one more, catch the exception it
# raises and return it (`except Exception as exc: return exc`). Give the connections back and
# dispose of the engine before returning. Try it with `await third_connection(nb.engine.url, 2)`,
# then set `answer` to the function itself: the check calls it with a pool size of its own.

# %%
answer = ...  # your third_connection function (no call)

# %%
await check_exercise_01(answer, nb.engine.url)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def third_connection(url, pool_size):
    engine = create_engine(url, pool_size=pool_size, max_overflow=0, pool_timeout=0.5)
    held = [await engine.connect() for _ in range(pool_size)]
    try:
        await engine.connect()
    except Exception as exc:
        return exc
    finally:
        for conn in held:
            await conn.close()
        await engine.dispose()


print(await third_connection(nb.engine.url, 2))
answer = third_connection
await check_exercise_01(answer, nb.engine.url)

# %% [markdown]
# With no overflow allowed, the third caller waits half a second and gets `PoolExhaustedError`,
# whose message names the limits it hit.
#
# ## Further reading
#
# - SQLAlchemy: [Asynchronous I/O (asyncio)](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html)
#   (`create_async_engine`, `async_sessionmaker`, `AsyncSession`)
# - SQLAlchemy: [Working with Engines and Connections](https://docs.sqlalchemy.org/en/20/core/connections.html)
#   and [Connection Pooling](https://docs.sqlalchemy.org/en/20/core/pooling.html)
#   (`pool_size`, `max_overflow`, `pool_timeout`, pre-ping)
# - SQLAlchemy: [Session Basics](https://docs.sqlalchemy.org/en/20/orm/session_basics.html) and
#   [Managing Transactions](https://docs.sqlalchemy.org/en/20/orm/session_transaction.html)
# - SQLAlchemy: [Working with Engine Results](https://docs.sqlalchemy.org/en/20/core/connections.html#sqlalchemy.engine.Result)
#   (`Result`, `scalars`, `scalar_one`, `unique`) and the tutorial's
#   [Working with Data](https://docs.sqlalchemy.org/en/20/tutorial/data.html)
# - SQLAlchemy: [Configuring Logging](https://docs.sqlalchemy.org/en/20/core/engines.html#configuring-logging) (`echo`)
# - FastAPI: [Dependencies with yield](https://fastapi.tiangolo.com/tutorial/dependencies/dependencies-with-yield/)
# - asyncpg: [API reference](https://magicstack.github.io/asyncpg/current/api/index.html)
#
# ## Summary
#
# - Engine → session → unit of work: one engine per program (built when it runs, disposed at
#   the end) owns a pool bounded by `pool_size + max_overflow`; each session borrows a
#   connection, and `async with db.begin()` (or blogdata's `session_scope`) commits everything
#   or rolls everything back.
# - `execute` gives rows, `scalars` first columns, `scalar` one value, `scalar_one` exactly one
#   or an error; a joined collection needs `unique()`.
# - Per request, the guide's `get_db` commits after the response is sent, so a failed commit
#   answers 200; blogdata's `SessionDep` (`Depends(get_db, scope="function")`) commits first.

# %%
await nb.close()
