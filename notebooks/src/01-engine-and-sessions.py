# %% [markdown]
# # 01 · Engine and sessions
#
# Everything blogdata does goes through two objects: an [**engine**](glossary.ipynb#engine),
# which owns a [pool](glossary.ipynb#connection-pool) of connections to PostgreSQL, and
# [**sessions**](glossary.ipynb#session), short [units of work](glossary.ipynb#unit-of-work)
# that borrow a connection, run statements and [commit](glossary.ipynb#commit) or roll back
# once. Get these two right and the rest of the guide follows; get them wrong and you meet dead
# connections, exhausted pools and half-saved work. This notebook builds both and looks inside.
#
# **What you will learn**
#
# - how blogdata chooses its database, and how to show a URL without its password;
# - what the pool options mean, and what happens when the pool runs dry;
# - what [`pool_pre_ping`](glossary.ipynb#pre-ping) buys you when the server drops a connection;
# - how to watch the SQL an engine sends (`echo`), and what the guide's `echo=True` does;
# - the two ways to get a session: `get_db` in a FastAPI app, `session_scope` in scripts;
# - three traps in the guide: an engine built at import time, `sessionmaker(class_=AsyncSession)`,
#   and `datetime.utcnow()`.
#
# This is the first tutorial notebook: [00 · Start here](00-start-here.ipynb) shows the order
# and how to run them, and the [README](../README.md) explains how to start JupyterLab.

# %%
import logging
import os
import subprocess
import sys
import tempfile
import warnings
from datetime import UTC, datetime
from pathlib import Path

import httpx
from fastapi import Depends, FastAPI
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from blogdata import User, UserCreate, create_engine, crud, get_db, session_scope
from blogdata.config import get_settings, parse_database_url
from blogdata.db.engine import dispose_default_engine
from blogdata.diagnostics import echo_sql
from blogdata.errors import ConnectionLostError
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_01
from blogdata.security import get_password_hash
from blogdata.seed import SEED_NOW

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
# `pool_pre_ping=True` (blogdata's default) the pool runs a cheap
# ping first, sees the connection is dead, and quietly opens a new one:

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
# `echo=True` makes an engine log every statement it sends, with its parameters. The guide's
# engine configuration, the one engine its whole app gets its sessions from, passes it
# unconditionally. Here it is verbatim, on this notebook's database instead of the guide's
# `user:pass@localhost` placeholder:

# %%
DATABASE_URL = nb.engine.url  # the guide: "postgresql+asyncpg://user:pass@localhost/db"

engine = create_async_engine(
    DATABASE_URL,
    echo=True,           # SQL logging
    pool_pre_ping=True,  # Connection health check
    pool_size=10,        # Connection pool size
    max_overflow=20      # Extra connections when pool full
)

# %% [markdown]
# The guide says no more than "SQL logging": nothing about production, and nothing about
# turning it off. What the flag does is visible on the logger: creating the engine attached a
# handler that writes SQLAlchemy's engine log to standard output.

# %%
sql_log = logging.getLogger("sqlalchemy.engine.Engine")
print("echo:", engine.echo, "| log handlers:", [type(h).__name__ for h in sql_log.handlers])
print("writes to stdout:", sql_log.handlers[-1].stream is sys.stdout)

# %% [markdown]
# So wherever that module is imported (tests, a notebook, the production server), every
# statement and every parameter value goes to stdout, with a timestamp and its timing. That is
# the guide's setting as written; it is meant for debugging. Those log lines would differ on
# every run, so in notebooks we use `echo_sql`, which prints the same lines without timestamps
# and timings. One query through the guide's engine:

# %%
with echo_sql(engine):
    async with engine.connect() as conn:
        await conn.scalar(select(func.count()).select_from(User).where(User.role == "author"))

# %% [markdown]
# The engine's first connection starts with three statements of its own: the dialect asks the
# server about itself. Then comes our query: the implicit `BEGIN`, the SQL with a `$1`
# placeholder, its parameters (`('author',)`: values never get pasted into the SQL text, but
# they do reach the log, so with echo on, emails and other personal data would too), and the
# `ROLLBACK` when the connection went back to the pool without a commit. "generated" means SQLAlchemy compiled the statement;
# running it again reuses the compiled form ("cached").
#
# We close the guide's engine and take its stdout handler off the logger again:

# %%
await engine.dispose()
sql_log.removeHandler(sql_log.handlers[-1])
sql_log.handlers

# %% [markdown]
# blogdata's engines echo only when the environment asks for it: `BLOGDATA_ECHO=true`, off by
# default. Debug logging becomes a setting you switch on for one run, not a line of code that
# ships.

# %%
settings.echo, nb.engine.echo

# %% [markdown]
# ## Sessions
#
# A session is a unit of work: it [autobegins](glossary.ipynb#autobegin) a transaction on its
# first statement, collects your changes, and either commits all of them or none. blogdata's
# session factories use [`expire_on_commit=False`](glossary.ipynb#expire-on-commit), so objects
# stay readable after a commit without a hidden reload (which in async code would fail with
# [`MissingGreenlet`](glossary.ipynb#missinggreenlet)).
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

# %% [markdown]
# The block ended, so the user was committed. A small helper asks a *new* session which of some
# usernames exist; a new session sees committed rows only.

# %%
async def saved_usernames(*names):
    """Return which of ``names`` exist, as a fresh session sees them (committed rows only)."""
    async with nb.sessions() as other:
        found = await other.scalars(select(User.username).where(User.username.in_(names)))
        return sorted(found.all())


await saved_usernames("ada")

# %% [markdown]
# Now the same with an error in the middle. The [flush](glossary.ipynb#flush) sends the INSERT
# inside the transaction; then the block raises:

# %%
try:
    async with session_scope(nb.engine) as db:
        db.add(User(email="bob@example.com", username="bob", hashed_password="-"))
        await db.flush()  # the INSERT has run inside the transaction...
        raise RuntimeError("something failed after the insert")
except RuntimeError as exc:
    print("caught:", exc)

await saved_usernames("ada", "bob")

# %% [markdown]
# ...and was rolled back with the rest of the block: no `bob`.
#
# ### `get_db` in a FastAPI app
#
# A web app opens one unit of work per request. The guide writes it as a FastAPI dependency: an
# async generator that yields a session, commits after the request handler returns, and rolls
# back if the handler raised. Here it is verbatim, with this notebook's session factory as the
# guide's `AsyncSessionLocal` (we call it `guide_get_db` to keep blogdata's `get_db` apart):

# %%
AsyncSessionLocal = nb.sessions  # the guide: async_sessionmaker(engine, expire_on_commit=False)


async def guide_get_db():
    async with AsyncSessionLocal() as session:
        try:
            yield session
            await session.commit()
        except Exception:
            await session.rollback()
            raise

# %% [markdown]
# A real FastAPI app with three endpoints. Two create a user with `crud.user.create`, which only
# flushes (blogdata's CRUD never commits; [notebook 03](03-crud.ipynb) shows why); the second
# then fails, as if the welcome mail could not be sent. The third redeems a voucher code twice:
# the table's UNIQUE key is `DEFERRABLE INITIALLY DEFERRED`, so the duplicate is only caught by
# the COMMIT. `make_app` takes the `Depends(...)` to use, so that the same app can run on the
# guide's `get_db` and on blogdata's.

# %%
async with nb.engine.begin() as conn:
    await conn.execute(text(
        "CREATE TABLE vouchers (code text UNIQUE DEFERRABLE INITIALLY DEFERRED)"
    ))


def make_app(session):
    app = FastAPI()

    @app.post("/signup")
    async def signup(user_in: UserCreate, db: AsyncSession = session):
        user = await crud.user.create(db, obj_in=user_in)
        return {"username": user.username, "role": user.role}

    @app.post("/signup-and-mail")
    async def signup_and_mail(user_in: UserCreate, db: AsyncSession = session):
        await crud.user.create(db, obj_in=user_in)  # the INSERT runs (flush)...
        raise RuntimeError("mail server down")  # ...then the request fails

    @app.post("/redeem/{code}")
    async def redeem(code: str, db: AsyncSession = session):
        for _ in range(2):  # both INSERTs run; the duplicate fails at COMMIT
            await db.execute(text("INSERT INTO vouchers VALUES (:code)"), {"code": code})
        return {"redeemed": code}

    return app

# %% [markdown]
# `httpx` can call an ASGI app in-process, without a server or a port: `ASGITransport` hands
# each request straight to the app. A signup is a JSON body that FastAPI validates with
# `UserCreate`:

# %%
def signup_json(username):
    return {"email": f"{username}@example.com", "username": username, "password": "pw-123456"}


transport = httpx.ASGITransport(app=make_app(Depends(guide_get_db)))
client = httpx.AsyncClient(transport=transport, base_url="http://test")

# %% [markdown]
# A successful request: the handler returns, FastAPI resumes the dependency after its `yield`,
# and the dependency commits.

# %%
response = await client.post("/signup", json=signup_json("grace.h"))
response.status_code, response.json()

# %% [markdown]
# Committed: another session sees Grace.

# %%
await saved_usernames("grace.h")

# %% [markdown]
# A failing request: the handler's exception is thrown into the dependency at its `yield`, which
# rolls back and re-raises. By default `ASGITransport` passes the app's exception on to the
# caller, which is what a test wants to see (a server answers with a 500, shown below):

# %%
try:
    await client.post("/signup-and-mail", json=signup_json("linus.t"))
except RuntimeError as exc:
    print("the app raised:", exc)

# %% [markdown]
# Linus's INSERT had run, yet no other session ever sees him: the request's unit of work was
# rolled back as a whole.

# %%
await saved_usernames("grace.h", "linus.t")

# %% [markdown]
# The pitfall: since FastAPI 0.118 the code after a dependency's `yield` runs *after the response
# has been sent*, unless the dependency is declared with `scope="function"`. The guide's commit
# comes too late to change the answer: redeeming a voucher whose commit fails answers 200
# (this client answers as a server would, `raise_app_exceptions=False`):

# %%
late = httpx.ASGITransport(app=make_app(Depends(guide_get_db)), raise_app_exceptions=False)
async with httpx.AsyncClient(transport=late, base_url="http://test") as late_client:
    redeemed = await late_client.post("/redeem/WELCOME")
async with nb.engine.connect() as conn:
    stored = await conn.scalar(text("SELECT count(*) FROM vouchers"))
redeemed.status_code, redeemed.json(), stored

# %% [markdown]
# 200 and `{"redeemed": "WELCOME"}`, yet nothing was stored: the client was told a lie.
#
# blogdata's `get_db` keeps the guide's contract, built on `session_scope` (so a failed commit
# is a blogdata error and a lost connection is rolled back cleanly). It takes its sessions from
# blogdata's default engine, which an app configures through `BLOGDATA_DATABASE_URL`. We point
# that at this notebook's database for the next three cells. This time the transport answers a
# failed request the way a server does, with a 500 response (`raise_app_exceptions=False`):

# %%
saved_setting = os.environ.get("BLOGDATA_DATABASE_URL")
os.environ["BLOGDATA_DATABASE_URL"] = nb.engine.url.render_as_string(hide_password=False)
get_settings(reload=True)
await client.aclose()
transport = httpx.ASGITransport(
    app=make_app(Depends(get_db, scope="function")), raise_app_exceptions=False
)
client = httpx.AsyncClient(transport=transport, base_url="http://test")

# %% [markdown]
# The same three requests, now through blogdata's `get_db`, declared so that it commits before
# the response is sent: `Depends(get_db, scope="function")`:

# %%
signed_up = await client.post("/signup", json=signup_json("ken.t"))
mail_failed = await client.post("/signup-and-mail", json=signup_json("dennis.r"))
redeemed = await client.post("/redeem/WELCOME")
print("/signup:", signed_up.status_code, signed_up.json())
print("/signup-and-mail:", mail_failed.status_code, mail_failed.text)
print("/redeem:", redeemed.status_code, redeemed.text)
await saved_usernames("ken.t", "dennis.r")

# %% [markdown]
# Ken was committed before his 200 was sent, Dennis rolled back, and the voucher whose commit
# failed answered 500. In an app you write `db: SessionDep` (`from blogdata.db.sessions import
# SessionDep`: `Annotated[AsyncSession, Depends(get_db, scope="function")]`) and never see the
# generator; a bare `Depends(get_db)` would have the guide's flaw. We put the setting back:

# %%
await client.aclose()
await dispose_default_engine()
if saved_setting is None:
    del os.environ["BLOGDATA_DATABASE_URL"]
else:
    os.environ["BLOGDATA_DATABASE_URL"] = saved_setting
settings = get_settings(reload=True)

# %% [markdown]
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

# %% [markdown]
# We run it in a separate Python process, on this notebook's database:

# %%
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
# The guide's test [fixture](glossary.ipynb#fixture) builds its session factory with the sync
# `sessionmaker` and `class_=AsyncSession`. It works at run time, but the type checker rejects
# it, and every session it makes is typed as `Any`, so typos go unnoticed. `async_sessionmaker`
# is the typed factory. Both, in a small module:

# %%
snippet = '''
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import sessionmaker

engine = create_async_engine("postgresql+asyncpg://app@localhost/blog")
GuideSession = sessionmaker(engine, class_=AsyncSession, expire_on_commit=False)
Session = async_sessionmaker(engine, expire_on_commit=False)
reveal_type(Session())
'''

# %% [markdown]
# We ask mypy (strict) about it:

# %%
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
# come back *aware* (in UTC).

# %%
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns here
    naive_now = datetime.utcnow()

async with nb.sessions() as db:
    first_signup = await db.scalar(select(func.min(User.created_at)))
print("tzinfo of utcnow():", naive_now.tzinfo, "| tzinfo from the database:", first_signup.tzinfo)

# %% [markdown]
# Comparing the two fails:

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
            stmt = select(User.role, func.count()).where(User.is_active).group_by(User.role)
            rows = await db.execute(stmt.order_by(User.role))
            return dict(rows.all())
    finally:
        await engine.dispose()


await active_users_by_role(nb.engine.url)

# %% [markdown]
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
# ## Summary
#
# - An engine owns a pool: size it, let `pool_pre_ping` replace dead connections, build it when
#   the program runs (not at import), and dispose of it at the end.
# - `echo=True` logs every statement and its parameters wherever the code runs: the guide sets
#   it unconditionally; blogdata switches it on only through `BLOGDATA_ECHO`.
# - One session per unit of work: `get_db` (per request, as `SessionDep`, i.e.
#   `Depends(get_db, scope="function")`, so the commit comes before the response) and
#   `session_scope` commit once when the work succeeds and roll all of it back when it raises.

# %%
await nb.close()
