# %% [markdown]
# # 10 · Testing against a real database
#
# blogdata's tests run against a real PostgreSQL, never SQLite or mocks: the behaviour under
# test (constraints, `FOR UPDATE`, `timestamptz`, error codes) only exists there. The trick that
# keeps such tests fast and independent is to run **each test inside one transaction that is
# always rolled back**, even when the code under test commits.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (engine, session, commit),
# [notebook 07](07-transactions-and-savepoints.ipynb) (savepoints), pytest basics (a test
# function, a fixture) · **Time to learn:** 30 minutes
#
# **What you will learn**
#
# - the rolled-back test transaction, by hand in plain SQLAlchemy: a connection, an outer
#   transaction, and a session joined with `join_transaction_mode="create_savepoint"` that
#   turns the code's `commit()` into a savepoint;
# - why the guide's fixture leaks rows from one test into the next, and what happens when
#   pytest runs the guide's own `test_create_user`;
# - the same recipe as pytest [fixtures](glossary.ipynb#fixture), first in plain SQLAlchemy,
#   then blogdata's own in `tests/conftest.py`;
# - how to run a small pytest session, with async tests, from a notebook.

# %%
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import User
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_10

nb = await tutorial_database("10-testing")
nb

# %% [markdown]
# ## The rolled-back test transaction, by hand
#
# Each test gets a [session](glossary.ipynb#session) that lives inside a transaction the test
# itself never ends. The picture:
#
# ```mermaid
# flowchart TD
#   E["engine"] -->|"engine.connect()"| C["connection"]
#   C -->|"conn.begin()"| O["outer transaction"]
#   O --> S["AsyncSession(bind=conn,<br/>join_transaction_mode='create_savepoint')"]
#   S -->|"code under test: commit()"| SP["only a SAVEPOINT is released;<br/>the outer transaction stays open"]
#   S -->|"code under test: rollback()"| RS["ROLLBACK TO SAVEPOINT:<br/>only the code's own work is undone"]
#   O -->|"teardown: outer.rollback()"| R["ROLLBACK: nothing the test wrote remains"]
# ```
#
# Here it is by hand, in plain SQLAlchemy. A helper counts users from a *separate* connection,
# which sees only committed data:

# %%
async def committed_users():
    async with nb.engine.connect() as other:
        return await other.scalar(select(func.count()).select_from(User))


await committed_users()

# %% [markdown]
# The fixture opens a connection from the [engine](glossary.ipynb#engine), begins the outer
# transaction, and binds a session to the connection with
# [`join_transaction_mode`](glossary.ipynb#join_transaction_mode)`="create_savepoint"`:

# %%
conn = await nb.engine.connect()
outer = await conn.begin()
db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)

# %% [markdown]
# Now "the code under test" adds a user and [commits](glossary.ipynb#commit), as an app's unit
# of work would:

# %%
db.add(User(email="tess@example.com", username="tess", hashed_password="-"))
await db.commit()
print("inside the test:", await db.scalar(select(func.count()).select_from(User)))
print("committed for everyone else:", await committed_users())

# %% [markdown]
# The session's `commit()` only released a [savepoint](glossary.ipynb#savepoint); the outer
# transaction is still open, so no one else sees the row. At the end of the test, the fixture
# rolls the outer transaction back:

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
# `session.rollback()` at the end. The rollback undoes only what is *not yet committed*, and
# the guide's CRUD functions commit:

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
# ## Running pytest from the notebook
#
# To see fixtures under pytest, we write a small test project into a temporary folder and run
# pytest on it in a subprocess. Its report is trimmed to one line per test, the reasons for
# failures, and the summary without its duration:

# %%
import re


def pytest_report(stdout):
    report = []
    for line in stdout.splitlines():
        if "::" in line:  # one line per test, and the reasons for failures
            report.append(re.sub(r"\s*\[\s*\d+%\]$", "", line))  # drop the progress percentage
        elif summary := re.fullmatch(r"=+ (.*) in [\d.]+s.* =+", line):
            report.append(summary[1])  # "1 failed, 3 passed", without the duration
    return "\n".join(report)

# %% [markdown]
# `run_pytest` writes the files, runs pytest with only the pytest-asyncio plugin (it starts
# faster), and passes the notebook's database URL on in the environment:

# %%
import os
import subprocess
import sys
import tempfile
from pathlib import Path

PYTEST = [sys.executable, "-m", "pytest", "-p", "pytest_asyncio.plugin", "-p", "no:cacheprovider",
          "-v", "--no-header", "-rfE", "--color=no"]  # fmt: skip


def run_pytest(files):
    url = nb.engine.url.render_as_string(hide_password=False)
    env = {**os.environ, "NOTEBOOK_DATABASE_URL": url, "COLUMNS": "250",
           "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        for name, content in files.items():
            Path(folder, name).write_text(content)
        done = subprocess.run(PYTEST, cwd=folder, env=env, capture_output=True, text=True,
                              timeout=120)  # fmt: skip
    return pytest_report(done.stdout)

# %% [markdown]
# ### The guide's `test_create_user`, as written
#
# The guide's test setup, verbatim, plus the import of `Base` it leaves out. First its imports
# and its database URL (a database that does not exist here, which is as well: read on):

# %%
GUIDE_CONFTEST = '''
import pytest
from sqlalchemy.ext.asyncio import create_async_engine, AsyncSession
from sqlalchemy.orm import sessionmaker

from blogdata.models import Base

TEST_DATABASE_URL = "postgresql+asyncpg://user:pass@localhost/test_db"
'''

# %% [markdown]
# An engine fixture that builds every table with `create_all` before each test and drops every
# table with `drop_all` after it (so the migrations never run, and whatever database the URL
# names loses its tables):

# %%
GUIDE_CONFTEST += '''
@pytest.fixture
async def test_engine():
    engine = create_async_engine(TEST_DATABASE_URL, echo=True)
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.create_all)
    yield engine
    async with engine.begin() as conn:
        await conn.run_sync(Base.metadata.drop_all)
'''

# %% [markdown]
# And the session fixture, rolled back at the end (with `sessionmaker(class_=AsyncSession)`,
# which [notebook 01](01-engine-and-sessions.ipynb) showed mypy rejects):

# %%
GUIDE_CONFTEST += '''
@pytest.fixture
async def db_session(test_engine):
    async_session = sessionmaker(
        test_engine, class_=AsyncSession, expire_on_commit=False
    )
    async with async_session() as session:
        yield session
        await session.rollback()
'''

# %% [markdown]
# The test itself, verbatim, after the imports it leaves out (blogdata's `CRUDUser`, `User`
# and `UserCreate` have the guide's names):

# %%
GUIDE_TEST = '''
import pytest

from blogdata.crud import CRUDUser
from blogdata.models import User
from blogdata.schemas import UserCreate
'''

# %%
GUIDE_TEST += '''
@pytest.mark.asyncio
async def test_create_user(db_session):
    user_crud = CRUDUser(User)
    user_in = UserCreate(
        email="test@example.com",
        username="testuser",
        password="password123"
    )

    user = await user_crud.create(db_session, obj_in=user_in)

    assert user.email == "test@example.com"
    assert user.id is not None
'''

# %% [markdown]
# The guide gives no pytest configuration, so pytest-asyncio runs in its default *strict* mode,
# the one its `@pytest.mark.asyncio` marker is written for:

# %%
print(run_pytest({"pytest.ini": "[pytest]\n", "conftest.py": GUIDE_CONFTEST,
                  "test_guide.py": GUIDE_TEST}))  # fmt: skip

# %% [markdown]
# The test never starts. In strict mode pytest-asyncio runs only the async fixtures declared
# with `@pytest_asyncio.fixture`; the guide's are plain `@pytest.fixture`, so pytest itself
# gets an async generator it cannot run, and refuses. Declaring them with
# `@pytest_asyncio.fixture` fixes that, or `asyncio_mode = auto`, blogdata's choice, under which
# neither fixtures nor tests need a marker. But even then the fixtures would rebuild and drop
# every table around each test, and their rollback comes too late for code that commits.
#
# ### The recipe as fixtures, in plain SQLAlchemy
#
# The test project's `conftest.py` builds one engine with SQLAlchemy's `create_async_engine` on
# this notebook's database, for the whole pytest session:

# %%
CONFTEST = '''
import os

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine


@pytest.fixture(scope="session")
async def engine():
    engine = create_async_engine(os.environ["NOTEBOOK_DATABASE_URL"])
    yield engine
    await engine.dispose()
'''

# %% [markdown]
# Then the recipe of the diagram, `db`: one outer transaction per test, rolled back at the end:

# %%
CONFTEST += '''
@pytest.fixture
async def db(engine):
    async with engine.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        yield session
        await session.close()
        await outer.rollback()
'''

# %% [markdown]
# For comparison, the guide's fixture without its `create_all`/`drop_all`: a session on the
# engine, rolled back at the end.

# %%
CONFTEST += '''
@pytest.fixture
async def guide_db(engine):
    async with AsyncSession(engine, expire_on_commit=False) as session:
        yield session
        await session.rollback()
'''

# %% [markdown]
# The tests need the same imports as the guide's:

# %%
TESTS = '''
from sqlalchemy import func, select

from blogdata.crud import CRUDUser
from blogdata.models import User
from blogdata.schemas import UserCreate
'''

# %% [markdown]
# Then the guide's `test_create_user`, committing as the guide's `CRUDUser.create` does
# (blogdata's only flushes), and a test that expects no `testuser`. We write them once with a
# placeholder and run the pair once per fixture; pytest runs the files in name order.

# %%
TESTS += '''
async def test_create_user(FIXTURE):
    user_in = UserCreate(email="test@example.com", username="testuser", password="password123")
    user = await CRUDUser(User).create(FIXTURE, obj_in=user_in)
    await FIXTURE.commit()  # the code under test may commit: the guide's CRUD always does
    assert user.id is not None


async def test_no_testuser_is_left(FIXTURE):
    assert await FIXTURE.scalar(select(func.count()).where(User.username == "testuser")) == 0
'''

# %% [markdown]
# The pytest settings match blogdata's own (`[tool.pytest.ini_options]` in `pyproject.toml`):
# async tests and fixtures without markers (`asyncio_mode = auto`), one event loop for the
# whole session so the session-scoped engine's pool stays on its loop, and warnings as errors.

# %%
PYTEST_INI = '''
[pytest]
asyncio_mode = auto
asyncio_default_fixture_loop_scope = session
asyncio_default_test_loop_scope = session
filterwarnings = error
'''

# %%
print(run_pytest({
    "pytest.ini": PYTEST_INI,
    "conftest.py": CONFTEST,
    "test_1_recipe.py": TESTS.replace("FIXTURE", "db"),
    "test_2_guide_fixture.py": TESTS.replace("FIXTURE", "guide_db"),
}))  # fmt: skip

# %% [markdown]
# With the recipe, `test_create_user` committed, yet the next test finds no `testuser`. With
# the guide's fixture the same commit leaked into the next test. The leaked user is still in
# the database:

# %%
await committed_users()

# %% [markdown]
# ### blogdata's own fixtures
#
# blogdata's `tests/conftest.py` does the same with four fixtures:
#
# - `server_url`: `BLOGDATA_TEST_DATABASE_URL` if set, else an embedded PostgreSQL in a
#   temporary folder (one per test run, deleted afterwards);
# - `database_url`: a throwaway database for the run, built with `alembic upgrade head`, so the
#   [migrations](glossary.ipynb#migration) are tested on every run;
# - `engine`: one pooled engine for the whole run (session-scoped, on pytest-asyncio's session
#   event loop: a pool must stay on the loop that created it);
# - `db`: for each test, `rolled_back_session(engine)` from `tests/helpers.py`, the recipe
#   above plus one guard: the teardown rolls back only if the outer transaction is still active.
#
# Here is that helper, read from the repository:

# %%
import ast

import blogdata

helpers = Path(blogdata.__file__).parents[1] / "tests" / "helpers.py"
source = helpers.read_text()
tree = ast.parse(source)
print(ast.get_source_segment(source, next(
    node for node in tree.body if getattr(node, "name", "") == "rolled_back_session"
)))

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
# Show that a `rollback()` in the code under test only undoes its own work. Write
# `async def rollback_keeps_commits(engine, kept, dropped)` that does by hand what the `db`
# fixture does: open a connection on `engine`, begin the outer transaction, and bind a session
# with `join_transaction_mode="create_savepoint"`. Then, as the code under test: add a user
# named `kept` and commit; add one named `dropped`, flush, and roll back. Return the sorted
# usernames among `kept` and `dropped` that the session then sees, after finishing as the
# fixture does: close the session, roll back the outer transaction, close the connection. Set
# `answer` to the function itself: the check calls it with names of its own on `nb.engine` and
# watches its savepoints.

# %%
answer = ...  # your rollback_keeps_commits function (no call)

# %%
await check_exercise_10(answer, nb.engine)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def rollback_keeps_commits(engine, kept, dropped):
    conn = await engine.connect()
    outer = await conn.begin()
    db = AsyncSession(bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False)
    db.add(User(email=f"{kept}@example.com", username=kept, hashed_password="-"))
    await db.commit()
    db.add(User(email=f"{dropped}@example.com", username=dropped, hashed_password="-"))
    await db.flush()
    await db.rollback()
    names = select(User.username).where(User.username.in_([kept, dropped]))
    seen = sorted(await db.scalars(names))
    await db.close()
    await outer.rollback()
    await conn.close()
    return seen


print(await rollback_keeps_commits(nb.engine, "kept", "dropped"))
answer = rollback_keeps_commits
await check_exercise_10(answer, nb.engine)

# %% [markdown]
# With `create_savepoint`, the code's `rollback()` returns to the savepoint that the `commit()`
# of `kept` had started; the outer transaction, and so the test, carries on, and its rollback
# at the end removes `kept` too.
#
# ## Further reading
#
# - SQLAlchemy: [Joining a Session into an External Transaction (such as for test
#   suites)](https://docs.sqlalchemy.org/en/20/orm/session_transaction.html#joining-a-session-into-an-external-transaction-such-as-for-test-suites),
#   [`Session.join_transaction_mode`](https://docs.sqlalchemy.org/en/20/orm/session_api.html#sqlalchemy.orm.Session.params.join_transaction_mode),
#   [Asynchronous I/O (asyncio)](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html)
# - pytest: [How to use fixtures](https://docs.pytest.org/en/stable/how-to/fixtures.html)
# - pytest-asyncio: [Configuration (`asyncio_mode`)](https://pytest-asyncio.readthedocs.io/en/stable/reference/configuration.html)
# - PostgreSQL: [`SAVEPOINT`](https://www.postgresql.org/docs/current/sql-savepoint.html),
#   [`ROLLBACK TO SAVEPOINT`](https://www.postgresql.org/docs/current/sql-rollback-to.html)
#
# ## Summary
#
# - Run each test in one outer transaction, rolled back at the end, with the session joined by
#   `join_transaction_mode="create_savepoint"`: the code's commits and rollbacks become
#   savepoints, and no test sees another's rows.
# - The guide's `test_create_user` does not even start under pytest-asyncio's default strict
#   mode (plain `@pytest.fixture` on async fixtures); `asyncio_mode = auto` fixes that, not its
#   fixture's leak of committed rows or its `create_all`/`drop_all` around every test.
# - Test against the real PostgreSQL, with a database built by the migrations, as
#   `tests/conftest.py` does.

# %%
await nb.close()
