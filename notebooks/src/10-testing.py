# %% [markdown]
# # 10 · Testing against a real database
#
# blogdata's tests run against a real PostgreSQL, never SQLite or mocks: the behaviour under
# test (constraints, `FOR UPDATE`, `timestamptz`, error codes) only exists there. The trick that
# keeps such tests fast and independent is to run **each test inside one transaction that is
# always rolled back**, even when the code under test commits.
#
# **What you will learn**
#
# - the fixtures in `tests/conftest.py`: one server, one migrated database, one transaction
#   per test;
# - how `join_transaction_mode="create_savepoint"` turns the code's `commit()` into a savepoint;
# - why the guide's test fixture leaks rows from one test into the next;
# - how to run a small pytest session, with async tests, from a notebook.
#

# %%
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import User
from blogdata.notebook import tutorial_database

nb = await tutorial_database("10-testing")
nb

# %% [markdown]
# ## The harness, piece by piece
#
# `tests/conftest.py` provides four fixtures:
#
# - `server_url`: `BLOGDATA_TEST_DATABASE_URL` if set, else an embedded PostgreSQL in a
#   temporary folder (one per test run, deleted afterwards);
# - `database_url`: a throwaway database for the run, built with `alembic upgrade head`, so the
#   migrations are tested on every run;
# - `engine`: one pooled engine for the whole run (session-scoped, on pytest-asyncio's session
#   event loop: a pool must stay on the loop that created it);
# - `db`: for each test, a connection with an outer transaction, and a session joined to it.
#
# The last one is the heart of it. Here it is by hand. A helper counts users from a *separate*
# connection, which sees only committed data:

# %%
async def committed_users():
    async with nb.engine.connect() as other:
        return await other.scalar(select(func.count()).select_from(User))


await committed_users()

# %% [markdown]
# The fixture opens a connection, begins the outer transaction, and binds a session to the
# connection with `join_transaction_mode="create_savepoint"`:

# %%
conn = await nb.engine.connect()
outer = await conn.begin()
db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)

# %% [markdown]
# Now "the code under test" adds a user and commits, as an app's unit of work would:

# %%
db.add(User(email="tess@example.com", username="tess", hashed_password="-"))
await db.commit()
print("inside the test:", await db.scalar(select(func.count()).select_from(User)))
print("committed for everyone else:", await committed_users())

# %% [markdown]
# The session's `commit()` only released a savepoint; the outer transaction is still open, so
# no one else sees the row. At the end of the test, the fixture rolls the outer transaction back:

# %%
await db.close()
await outer.rollback()
await conn.close()
print("after the test:", await committed_users())

# %% [markdown]
# Every test starts from the same data, and a rollback is far cheaper than recreating tables.
#
# ## The pitfall: the guide's fixture
#
# The guide's `db_session` fixture opens a session on the engine, yields it, and calls
# `session.rollback()` at the end. (It also builds the factory with
# `sessionmaker(class_=AsyncSession)`, which notebook 01 showed mypy rejects, and recreates
# every table with `create_all` for each test, which never runs the migrations.) The rollback
# undoes only what is *not yet committed*, and the guide's CRUD functions commit:

# %%
async with AsyncSession(nb.engine, expire_on_commit=False) as guide_session:  # the guide's fixture
    guide_session.add(User(email="leaky@example.com", username="leaky", hashed_password="-"))
    await guide_session.commit()  # the guide's CRUD.create
    await guide_session.rollback()  # the fixture's teardown: too late
print("after the guide's test:", await committed_users())

# %% [markdown]
# The row outlived its test. The next test that creates `leaky@example.com` fails with a
# unique violation, and counts depend on test order. We remove it by hand (the guide's suite
# would have to do this after every test):

# %%
async with nb.sessions() as cleanup:
    await cleanup.delete(await cleanup.scalar(select(User).where(User.username == "leaky")))
    await cleanup.commit()
await committed_users()

# %% [markdown]
# ## A pytest session from the notebook
#
# To see both fixtures under pytest, we write a small test project into a temporary folder and
# run pytest on it in a subprocess. Its `conftest.py` builds an engine on this notebook's
# database and defines both fixtures: `db` (the savepoint recipe) and `guide_db` (the guide's).

# %%
CONFTEST = '''
import os

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import create_engine


@pytest.fixture(scope="session")
async def engine():
    engine = create_engine(os.environ["NOTEBOOK_DATABASE_URL"])
    yield engine
    await engine.dispose()


@pytest.fixture
async def db(engine):
    """blogdata's recipe: one outer transaction per test, rolled back at the end."""
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        yield session
        await session.close()
        await outer.rollback()


@pytest.fixture
async def guide_db(engine):
    """The guide's fixture: a session on the engine, rolled back at the end."""
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()
'''

# %% [markdown]
# The tests: each fixture gets a test that signs a user up and commits, followed by a test that
# expects the original 200 users. The file runs top to bottom, so the second test of each pair
# sees whatever the first one left behind.

# %%
TESTS = '''
from sqlalchemy import func, select

from blogdata.models import User


async def signup(session):
    session.add(User(email="new@example.com", username="new", hashed_password="-"))
    await session.commit()
    return await session.scalar(select(func.count()).select_from(User))


async def test_signup_commits_with_the_recipe(db):
    assert await signup(db) == 201


async def test_the_recipe_leaves_200_users(db):
    assert await db.scalar(select(func.count()).select_from(User)) == 200


async def test_signup_commits_with_the_guide_fixture(guide_db):
    assert await signup(guide_db) == 201


async def test_the_guide_fixture_leaves_200_users(guide_db):
    assert await guide_db.scalar(select(func.count()).select_from(User)) == 200
'''

# %% [markdown]
# The pytest settings match blogdata's own (`[tool.pytest.ini_options]` in `pyproject.toml`):
# async tests without markers (`asyncio_mode = auto`), one event loop for the whole session so
# the session-scoped engine's pool stays on its loop, and warnings as errors.

# %%
PYTEST_INI = '''
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
'''


def run_pytest(files):
    """Run pytest on `files` in a temporary folder; return its report without timings."""
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            Path(folder, name).write_text(content)
        env = {
            **os.environ,
            "NOTEBOOK_DATABASE_URL": nb.engine.url.render_as_string(hide_password=False),
            "COLUMNS": "200",  # pytest truncates report lines to the terminal width
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",  # load only pytest-asyncio: starts faster
        }
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "pytest_asyncio.plugin", "-v", "--no-header",
             "-p", "no:cacheprovider", "-rf", "--color=no"],
            cwd=folder, env=env, capture_output=True, text=True, timeout=120,
        )
    report = []
    for line in done.stdout.splitlines():
        if "::" in line:  # one line per test, and the reasons for failures
            report.append(re.sub(r"\s*\[\s*\d+%\]$", "", line))  # drop the progress percentage
        elif summary := re.fullmatch(r"=+ (.*) in [\d.]+s.* =+", line):
            report.append(summary[1])  # "1 failed, 3 passed", without the duration
    return "\n".join(report)


print(run_pytest({"pytest.ini": PYTEST_INI, "conftest.py": CONFTEST, "test_signup.py": TESTS}))

# %% [markdown]
# The recipe's pair passes: the first test committed, yet the second still finds 200 users. The
# guide's pair fails on its second test: the first test's commit leaked into it. The leaked user
# is still in the database:

# %%
await committed_users()

# %% [markdown]
# ## How blogdata's own suite runs
#
# - `make test` runs every test and then every notebook under strict nbval, against the
#   embedded server; with `BLOGDATA_TEST_DATABASE_URL=postgresql+asyncpg://…` set, against that
#   server instead. CI does both.
# - Tests that need real commits visible to other connections (concurrency, lost updates)
#   create their own throwaway database with `create_database`/`drop_database` from
#   `tests/conftest.py`, instead of the rolled-back `db`.
# - No mocks, no SQLite, no timing assertions: each test asserts behaviour that could fail.
#
# ## Exercise
#
# Write a test for the recipe showing that a `rollback()` in the code under test only undoes
# its own work: the test commits user `kept`, then adds user `dropped`, flushes, rolls back,
# and asserts that `kept` is still there and `dropped` is not. Run it with `run_pytest`.
#
# ### Solution

# %%
EXERCISE = '''
from sqlalchemy import select

from blogdata.models import User


async def test_rollback_in_the_code_only_undoes_its_own_savepoint(db):
    db.add(User(email="kept@example.com", username="kept", hashed_password="-"))
    await db.commit()
    db.add(User(email="dropped@example.com", username="dropped", hashed_password="-"))
    await db.flush()
    await db.rollback()
    names = await db.scalars(select(User.username).where(User.username.in_(["kept", "dropped"])))
    assert names.all() == ["kept"]
'''
print(run_pytest({"pytest.ini": PYTEST_INI, "conftest.py": CONFTEST, "test_rollback.py": EXERCISE}))

# %% [markdown]
# With `create_savepoint`, the code's `rollback()` returns to the last savepoint, which the
# `commit()` of `kept` had started; the outer transaction, and so the test, carries on.
#

# %%
await nb.close()
