# %% [markdown]
# # 08 · Migrations with Alembic
#
# The models say what the schema *should* be; the database has whatever was last applied to it.
# Alembic keeps the two in step with revision scripts, each a [migration](glossary.ipynb#migration):
# it upgrades the schema by a step and knows how to undo it. blogdata builds every database
# (yours, the tests', these notebooks') by running its migrations, so they are exercised
# constantly.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (engines and connections),
# [notebook 02](02-models-and-relationships.ipynb) (models), a shell's command line ·
# **Time to learn:** 40 minutes
#
# **What you will learn**
#
# - how to read the migration history and where a database stands (`current`, `head`);
# - how to check for [drift](glossary.ipynb#migration-drift), and the drift it cannot see:
#   CHECK constraints;
# - why the guide's `alembic.ini`, password included, is a trap, and what blogdata does instead;
# - the guide's `env.py` run by the real `alembic` command (`init -t async`,
#   `revision --autogenerate`, `upgrade`, `downgrade`) in a scratch project, why it fails from a
#   notebook, and the fix;
# - blogdata's `migrations/env.py`, part by part;
# - [offline mode](glossary.ipynb#offline-mode): the SQL of a migration, without a database;
# - how to [autogenerate](glossary.ipynb#autogenerate) a revision, read it, upgrade and
#   downgrade, and which `blogdata.db.migrate` call matches each `alembic` command.

# %%
from pathlib import Path

from sqlalchemy import text

from blogdata.db import migrate
from blogdata.models import Base
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_08

nb = await tutorial_database("08-migrations")
nb

# %% [markdown]
# ## Where the database stands
#
# blogdata's revisions live in `migrations/versions/`. `ScriptDirectory` reads them; each has an
# id, the id it follows (`down_revision`) and a message.

# %%
from alembic.script import ScriptDirectory

scripts = ScriptDirectory.from_config(migrate.alembic_config())
revisions = list(reversed(list(scripts.walk_revisions())))
for rev in revisions:
    print(f"{rev.down_revision or '(base)':>12} -> {rev.revision}  {rev.doc.splitlines()[0]}")

# %% [markdown]
# `tutorial_database` migrated this notebook's database to the newest revision, the *head*.
# Alembic records where a database is in a one-row table, `alembic_version`:

# %%
print("current:", await migrate.current(nb.engine), "| head:", migrate.head())

# %% [markdown]
# **Drift** is any difference between the models and the migrated database: a column added to a
# model but never migrated, a changed type, a forgotten index. `migrate.check` compares them
# (like `alembic check`); an empty list means none. blogdata's test suite asserts exactly this.

# %%
await migrate.check(nb.engine)

# %% [markdown]
# ## The drift nobody reports: CHECK constraints
#
# blogdata relies on CHECK constraints to refuse impossible rows: a negative or NaN balance, a
# negative view count, an unknown role. The models declare three:

# %%
from sqlalchemy import CheckConstraint

sorted(
    (table.name, constraint.name, str(constraint.sqltext))
    for table in Base.metadata.sorted_tables
    for constraint in table.constraints
    if isinstance(constraint, CheckConstraint)
)

# %% [markdown]
# We drop the balance CHECK on a connection of our own. PostgreSQL's DDL is transactional, so we
# can roll the drop back afterwards. Then we ask for drift:

# %%
conn = await nb.engine.connect()
await conn.execute(text("ALTER TABLE accounts DROP CONSTRAINT ck_accounts_balance_not_negative"))
await migrate.check(conn)

# %% [markdown]
# No drift reported. Alembic's comparison (`compare_metadata`, which `alembic check` and
# `revision --autogenerate` both use) does not look at CHECK constraints at all. Yet the
# database now accepts what the models forbid:

# %%
await conn.execute(text("UPDATE accounts SET balance = -5 WHERE id = 1"))
await conn.scalar(text("SELECT balance FROM accounts WHERE id = 1"))

# %%
await conn.rollback()  # the constraint and the balance are back
await conn.close()

# %% [markdown]
# The same blind spot works the other way: a CHECK added to a model produces no migration (we
# will see it below), so each one has to be written by hand, as blogdata's revision 0003 was.
# The exercise at the end writes the check Alembic lacks.
#
# ## The guide's `alembic.ini`: a password in a committed file
#
# The guide configures Alembic with this `alembic.ini`, verbatim. We write it into a scratch
# folder and let Alembic read it:

# %%
import tempfile

from alembic.config import Config

GUIDE_INI = """\
[alembic]
script_location = alembic
sqlalchemy.url = postgresql+asyncpg://user:pass@localhost/db
"""
scratch = tempfile.TemporaryDirectory()
folder = Path(scratch.name)
(folder / "alembic.ini").write_text(GUIDE_INI)
Config(str(folder / "alembic.ini")).get_main_option("sqlalchemy.url")

# %% [markdown]
# `alembic init` puts this file at the repository's root, and it gets committed: the password
# then sits in every clone, fork, backup and CI cache, and in git's history after it is
# changed; pointing at another database means editing a tracked file. It is also read by
# Python's `configparser`, for which `%` is special, and generated passwords often contain one.
# Such a password does not even load, and the error message carries the rest of the URL,
# password included, into whatever log catches it:

# %% tags=["raises-exception"]
(folder / "alembic.ini").write_text(GUIDE_INI.replace("user:pass@", "user:p%ss@"))
Config(str(folder / "alembic.ini")).get_main_option("sqlalchemy.url")

# %% [markdown]
# blogdata has no `alembic.ini`. Since version 1.16 Alembic reads its settings from
# `[tool.alembic]` in `pyproject.toml`, and blogdata's holds no URL at all:

# %%
import tomllib

migrations_dir = Path(migrate.alembic_config().get_main_option("script_location"))
pyproject = tomllib.loads((migrations_dir.parent / "pyproject.toml").read_text())
pyproject["tool"]["alembic"]

# %% [markdown]
# The URL comes from the environment: `migrations/env.py` asks blogdata's settings, which read
# `BLOGDATA_DATABASE_URL` (else use the embedded server). The secret stays in the environment of
# the process that migrates (a CI secret, an uncommitted `.env`), and blogdata keeps it in a
# SQLAlchemy `URL`, which hides the password whenever it is printed or logged:

# %%
from sqlalchemy import make_url

make_url("postgresql+asyncpg://user:pass@localhost/db")

# %% [markdown]
# ## The guide's setup, run by the `alembic` command
#
# Now the guide's own files, run by the real `alembic` command as the guide's "Migration
# Commands" do, in a project of their own: a folder inside the scratch folder, and a scratch
# database that this notebook creates now and drops at the end of the section.

# %%
import re
import subprocess
import sys

ALEMBIC = Path(sys.executable).with_name("alembic")  # the alembic of this environment
project = folder / "guide"
project.mkdir()


def alembic_cli(*args):
    """Run the alembic command in the project folder; print its output, paths made relative."""
    run = subprocess.run([ALEMBIC, *args], cwd=project, capture_output=True, text=True)
    lines = (run.stdout + run.stderr).replace(str(project), "<project>").splitlines()
    if run.returncode:  # a traceback: its last line says what went wrong
        lines = [*lines[-1:], f"(exit status {run.returncode})"]
    print("\n".join(line for line in lines if "[alembic.runtime.plugins]" not in line))


def write(path, content):
    """Write a file of the scratch project."""
    path.write_text(content)


alembic_cli("init", "-t", "async", "alembic")

# %% [markdown]
# `alembic init -t async` wrote the async template: `alembic.ini`, and in `alembic/` an
# `env.py`, a `versions/` folder and the `script.py.mako` template of revision files. The scratch
# database, created on the notebook's server (`CREATE DATABASE` cannot run in a transaction,
# hence `AUTOCOMMIT`):

# %%
SCRATCH_DB = "nb_08_migrations_guide"
async with nb.engine.connect() as conn:
    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
    await conn.execute(text(f"DROP DATABASE IF EXISTS {SCRATCH_DB} WITH (FORCE)"))
    await conn.execute(text(f"CREATE DATABASE {SCRATCH_DB}"))
scratch_url = nb.engine.url.set(database=SCRATCH_DB)
scratch_url.database

# %% [markdown]
# The guide keeps the URL in `alembic.ini`; so does this throwaway project (the file is deleted
# with the scratch folder). `%` is doubled for `configparser`, and nothing is printed:

# %%
url = scratch_url.render_as_string(hide_password=False).replace("%", "%%")
ini = (project / "alembic.ini").read_text()
ini = re.sub(r"(?m)^sqlalchemy\.url = .*$", lambda m: f"sqlalchemy.url = {url}", ini)
write(project / "alembic.ini", ini)

# %% [markdown]
# The models: the guide's `User`, verbatim but for its `posts` relationship (there is no `Post`
# in this small project), on a `Base` of its own, in `models.py` (the template's
# `prepend_sys_path = .` lets `env.py` import it):

# %%
MODELS = '''
from datetime import datetime
from typing import Optional

from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import func


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True, index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    username: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[Optional[datetime]] = mapped_column(onupdate=func.now())
'''
write(project / "models.py", MODELS)

# %% [markdown]
# The guide's `env.py` shows only the code below the template's header: it uses `context`,
# `config` and `target_metadata` without defining them. So we keep the template's header
# (imports, `config`, logging from `alembic.ini`), point `target_metadata` at the models, and
# put the guide's code, verbatim, below it. The header, without its comments:

# %%
GUIDE_ENV = '''
import asyncio
from sqlalchemy.ext.asyncio import create_async_engine

def run_migrations_offline():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()

def do_run_migrations(connection):
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()

async def run_migrations_online():
    connectable = create_async_engine(
        config.get_main_option("sqlalchemy.url")
    )
    async with connectable.connect() as connection:
        await connection.run_sync(do_run_migrations)
    await connectable.dispose()

if context.is_offline_mode():
    run_migrations_offline()
else:
    asyncio.run(run_migrations_online())
'''
template = (project / "alembic" / "env.py").read_text()
header = template[: template.index("target_metadata = None")]
header += "from models import Base\n\ntarget_metadata = Base.metadata\n"
write(project / "alembic" / "env.py", header + GUIDE_ENV)
print("\n".join(line for line in header.splitlines() if line and not line.startswith("#")))

# %% [markdown]
# The guide's first command, `alembic revision --autogenerate -m "Add user table"`, compares the
# models with the empty database and writes a revision. (`--rev-id` fixes the revision's id,
# otherwise random, so that this notebook's output repeats.)

# %%
alembic_cli("revision", "--autogenerate", "-m", "Add user table", "--rev-id", "0001")

# %% [markdown]
# Read what it wrote before applying it (the file's header holds a creation date; we print
# from `upgrade` on):

# %%
revision = (project / "alembic" / "versions" / "0001_add_user_table.py").read_text()
print(revision[revision.index("def upgrade") :].strip())

# %% [markdown]
# Two things in it come from the guide's model, not from Alembic: `index=True` on the primary
# key adds `ix_users_id`, a second index on `id` that the primary key's own index makes
# useless; and `created_at` is a `DateTime()` without `timezone=True`, a
# `timestamp without time zone`, which stores wall-clock times whose zone nobody recorded.
# Autogenerate writes what the models say; reading the revision is where such things are caught.
#
# The guide's `alembic upgrade head` applies it, and `alembic downgrade -1` takes it back:

# %%
alembic_cli("upgrade", "head")

# %%
alembic_cli("downgrade", "-1")

# %% [markdown]
# From the command line the guide's `env.py` works. Its bug shows when migrations run from
# Python code that already runs an event loop: a notebook (as here), a test under
# pytest-asyncio, an application migrating at start-up. The same `env.py`, called through
# Alembic's Python API from this notebook (a `Config` without the ini file, so that Alembic does
# not reconfigure the notebook's logging):

# %%
import gc
import warnings

from alembic import command

guide_cfg = Config()
guide_cfg.set_main_option("script_location", str(project / "alembic"))
guide_cfg.set_main_option("prepend_sys_path", str(project))
guide_cfg.set_main_option("sqlalchemy.url", url)
with warnings.catch_warnings():
    warnings.simplefilter("ignore", RuntimeWarning)  # "coroutine ... was never awaited"
    try:
        command.upgrade(guide_cfg, "head")
    except RuntimeError as exc:
        print(f"{type(exc).__name__}: {exc}")
    gc.collect()

# %% [markdown]
# `asyncio.run` starts an event loop of its own, and refuses to while one is running. The fix is
# Alembic's "[connection sharing](glossary.ipynb#connection-sharing)" recipe for asyncio: the
# caller opens the connection on *its*
# loop and hands its synchronous side to Alembic in `config.attributes["connection"]`; `env.py`
# uses it when it is there, and keeps `asyncio.run` for the command line. Only the guide's last
# four lines change:

# %%
FIXED_TAIL = '''
if context.is_offline_mode():
    run_migrations_offline()
elif config.attributes.get("connection") is None:  # the alembic command: no loop is running
    asyncio.run(run_migrations_online())
else:  # a caller with a running loop passed its connection
    do_run_migrations(config.attributes["connection"])
'''
guide_body = GUIDE_ENV[: GUIDE_ENV.index("if context.is_offline_mode()")]
write(project / "alembic" / "env.py", header + guide_body + FIXED_TAIL)

# %% [markdown]
# From the notebook: a connection of an engine on the scratch database, and `run_sync` to run
# Alembic's synchronous command on it. `engine.begin()` commits when the block ends.

# %%
from sqlalchemy.ext.asyncio import create_async_engine


def upgrade_on(sync_connection):
    guide_cfg.attributes["connection"] = sync_connection
    command.upgrade(guide_cfg, "head")


scratch_engine = create_async_engine(scratch_url)
async with scratch_engine.begin() as conn:
    await conn.run_sync(upgrade_on)
async with scratch_engine.connect() as conn:
    print(await conn.scalar(text("SELECT version_num FROM alembic_version")))

# %% [markdown]
# And the `alembic` command still works with the fixed file: it finds no connection in
# `config.attributes` and calls `asyncio.run` as before.

# %%
alembic_cli("downgrade", "base")

# %% [markdown]
# The scratch database has served; we drop it (`WITH (FORCE)` would also close any connection
# left open to it).

# %%
await scratch_engine.dispose()
async with nb.engine.connect() as conn:
    conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
    await conn.execute(text(f"DROP DATABASE {SCRATCH_DB} WITH (FORCE)"))

# %% [markdown]
# blogdata's own `env.py` applies the same recipe, with more care, as the next section shows.
#
# ## blogdata's `migrations/env.py`, part by part
#
# We read the file from the migrations folder and print it in pieces, each followed by what it
# does. A small helper prints the lines from one that starts with `start` up to the next part:

# %%
env_lines = (migrations_dir / "env.py").read_text().splitlines()


def show_env(start, end=None):
    """Print env.py from the line starting with `start` to the one starting with `end`."""
    first = next(i for i, line in enumerate(env_lines) if line.startswith(start))
    rest = [i for i, line in enumerate(env_lines) if end and line.startswith(end) and i > first]
    print("\n".join(env_lines[first : rest[0] if rest else None]).rstrip())

# %%
show_env('"""', "target_metadata")

# %% [markdown]
# It starts from Alembic's `pyproject_async` template. Logging is configured only for the
# `alembic` command: `blogdata.db.migrate` sets `configure_logger` to False, so a notebook or a test
# gets no Alembic log lines on stderr.

# %%
show_env("target_metadata", "def run_migrations_offline")

# %% [markdown]
# `target_metadata` is blogdata's models, what autogenerate and `check` compare against. `_url`
# returns a URL only when a caller put one in the config (`migrate.alembic_config(url)`);
# otherwise the settings decide, from the environment, as above.

# %%
show_env("def run_migrations_offline", "def do_run_migrations")

# %% [markdown]
# Offline mode (the next section) writes SQL instead of running it: no connection, and the URL
# serves only to pick the dialect. `literal_binds` writes values into the SQL text.

# %%
show_env("def do_run_migrations", "if context.is_offline_mode")

# %% [markdown]
# Online mode is where the two callers part. The `alembic` command has no loop running, so
# `asyncio.run` is fine: it makes a `NullPool` engine (one connection, closed at the end) and
# commits. `blogdata.db.migrate` passes its own connection in `config.attributes["connection"]`,
# and the migrations run on it, inside the caller's transaction. That is why `migrate.upgrade`,
# `downgrade`, `current` and `check` can simply be awaited. The last lines choose the mode:

# %%
show_env("if context.is_offline_mode")

# %% [markdown]
# ## Offline mode: the SQL, without a database
#
# `alembic upgrade head --sql` prints the SQL a migration would run, for a DBA to review or to
# apply by hand. From Python it is `command.upgrade(..., sql=True)`, writing to the config's
# `output_buffer`. Here the SQL of revision 0003, from its predecessor to it (`from:to`):

# %%
import io

offline = migrate.alembic_config()
offline.output_buffer = io.StringIO()
command.upgrade(offline, f"{revisions[1].revision}:{revisions[2].revision}", sql=True)
print(offline.output_buffer.getvalue().strip())

# %% [markdown]
# It replaces a CHECK, by hand, as autogenerate never would, and moves `alembic_version` along,
# all between `BEGIN` and `COMMIT`. From nothing to head, the script creates every table:

# %%
offline.output_buffer = io.StringIO()
command.upgrade(offline, "head", sql=True)
script_lines = offline.output_buffer.getvalue().splitlines()
[line for line in script_lines if line.startswith("CREATE TABLE")]

# %% [markdown]
# ## Autogenerating a revision, in a scratch folder
#
# Suppose we want a `bio` column on users. We will not touch the repository's migrations: we
# copy them into the scratch folder, with a minimal `env.py` that is the connection recipe and
# nothing else: it takes both the connection and the target metadata from the caller.

# %%
ENV_PY = '''
from alembic import context

config = context.config
context.configure(
    connection=config.attributes["connection"],
    target_metadata=config.attributes["target_metadata"],
    compare_type=True,
    compare_server_default=True,
)
with context.begin_transaction():
    context.run_migrations()
'''

# %%
import shutil

skip = shutil.ignore_patterns("__pycache__", "__init__.py")
shutil.copytree(migrations_dir / "versions", folder / "versions", ignore=skip)
shutil.copy(migrations_dir / "script.py.mako", folder)
(folder / "env.py").write_text(ENV_PY)
sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py*"))

# %% [markdown]
# The model change: instead of editing `blogdata.models`, we copy its tables into a separate
# `MetaData` and add the column there.

# %%
from sqlalchemy import Column, MetaData, Text

changed = MetaData(naming_convention=Base.metadata.naming_convention)
for table in Base.metadata.sorted_tables:
    table.to_metadata(changed)
changed.tables["users"].append_column(Column("bio", Text, comment="a short self-description"))
[column.name for column in changed.tables["users"].columns][-3:]

# %% [markdown]
# An Alembic `Config` for the scratch folder (`quiet` keeps Alembic from printing file paths):

# %%
import argparse

cfg = Config(cmd_opts=argparse.Namespace(quiet=True))
cfg.set_main_option("script_location", str(folder))
cfg.set_main_option("file_template", "%%(rev)s")
cfg.attributes["target_metadata"] = changed

# %% [markdown]
# And one helper that runs any Alembic command on a connection of the notebook's engine, the
# way `blogdata.db.migrate` does:

# %%
async def alembic(fn, *args, **kwargs):
    """Run an alembic.command function on a connection of the notebook's engine, then commit."""

    def work(sync_connection):
        cfg.attributes["connection"] = sync_connection
        return fn(cfg, *args, **kwargs)

    async with nb.engine.begin() as conn:
        return await conn.run_sync(work)

# %% [markdown]
# Before generating anything, `alembic check` with the changed metadata reports the drift:

# %% tags=["raises-exception"]
await alembic(command.check)

# %% [markdown]
# Now autogenerate. Revision ids are random by default, which would make every run of this
# notebook different (and is why real ids look like `a661c77fcce7`); we pass `rev_id` to fix it.

# %%
script = await alembic(
    command.revision, message="add user bio", autogenerate=True, rev_id="add_user_bio"
)
print(Path(script.path).name, "revises", script.down_revision)

# %% [markdown]
# Always read what was generated before applying it. Autogenerate compares tables, columns,
# types, nullability, indexes, unique and foreign key constraints and (with our options)
# server defaults; it cannot see renames (it proposes a drop and an add) or CHECKs, and knows
# nothing about data.

# %%
source = Path(script.path).read_text()
print(source[source.index("def upgrade") :].rstrip())

# %% [markdown]
# ## Upgrade, check, downgrade
#
# Upgrading to the new head runs `upgrade()` and moves `alembic_version` forward:

# %%
from sqlalchemy import inspect

await alembic(command.upgrade, "head")
print("current:", await migrate.current(nb.engine))


async def user_columns():
    async with nb.engine.connect() as conn:
        found = await conn.run_sync(lambda c: inspect(c).get_columns("users"))
    return [column["name"] for column in found][-3:]


await user_columns()

# %% [markdown]
# The scratch project's check now passes: database and changed metadata agree.

# %%
await alembic(command.check)
print("no drift against the changed models")

# %% [markdown]
# Now the CHECK blind spot from the model side: we add a CHECK on `bio` to the changed models.
# The database has no such constraint, and `alembic check` still finds nothing to do, so
# `revision --autogenerate` would write an empty revision:

# %%
bio_check = CheckConstraint("bio <> ''", name="bio_not_empty")
changed.tables["users"].append_constraint(bio_check)
await alembic(command.check)
print("no drift reported; the changed models have", bio_check.name)
async with nb.engine.connect() as conn:
    users_checks = await conn.run_sync(lambda c: inspect(c).get_check_constraints("users"))
print("the database's CHECKs on users:", [check["name"] for check in users_checks])

# %% [markdown]
# But blogdata's own models have no `bio`, so from their point of view the database has drifted
# ahead. This is what CI would catch if someone migrated without committing the model change:

# %%
await migrate.check(nb.engine)

# %% [markdown]
# Downgrading one step runs `downgrade()`: the column goes, and the database is back at
# blogdata's head with no drift.

# %%
await alembic(command.downgrade, "-1")
print("current:", await migrate.current(nb.engine), "| drift:", await migrate.check(nb.engine))
await user_columns()

# %% [markdown]
# Downgrades destroy data (the `bio` values are gone for good), so in production one usually
# only moves forward, with a new revision that reverts the change.
#
# ## The commands side by side
#
# Every `alembic` command of the guide, and the rest used above, with blogdata's way to run it.
# `url` may be a URL, an `AsyncEngine` or an `AsyncConnection`; left out, it is the configured
# database. The `alembic` commands run from the repository root (they read `[tool.alembic]`).
#
# | `alembic` command | `blogdata.db.migrate` call (awaitable) | `blogdata` CLI |
# |---|---|---|
# | `alembic upgrade head` | `await migrate.upgrade(url)` | `blogdata migrate upgrade` |
# | `alembic upgrade <rev>` | `await migrate.upgrade(url, "<rev>")` | `blogdata migrate upgrade <rev>` |
# | `alembic downgrade -1` | `await migrate.downgrade(url)` | `blogdata migrate downgrade` |
# | `alembic downgrade base` | `await migrate.downgrade(url, "base")` | `blogdata migrate downgrade base` |
# | `alembic current` | `await migrate.current(url)` | `blogdata migrate current` |
# | `alembic heads` | `migrate.head()` (not awaited: it reads files) | shown by `blogdata migrate current` |
# | `alembic check` | `await migrate.check(url)`: a list, empty when there is no drift | `blogdata migrate check` |
# | `alembic history` | `ScriptDirectory.from_config(migrate.alembic_config()).walk_revisions()` | none |
# | `alembic upgrade head --sql` | `command.upgrade(cfg, "head", sql=True)`, `cfg = migrate.alembic_config()` with `cfg.output_buffer` set | none |
# | `alembic revision --autogenerate -m "…"` | none: it writes a file into `migrations/versions/`; run it, then read and edit the file | none |
#
# ## Exercise
#
# `migrate.check` cannot see CHECK constraints, so guard them yourself. Write
# `async def missing_checks(conn)` that takes an `AsyncConnection` and returns the set of names
# of the models' CHECK constraints (read from `Base.metadata` when it runs) that the database
# does not have. `inspect(sync_connection).get_check_constraints(table_name)` lists a table's
# CHECKs as dicts with a `"name"`; run it through `await conn.run_sync(...)`. Set `answer` to the
# function. The check runs it on this notebook's database as migrated, after dropping a CHECK
# from each of two tables, and with one more CHECK declared on a model (all undone afterwards).

# %%
answer = ...  # your missing_checks function (no call)

# %%
await check_exercise_08(answer, nb.engine)

# %% [markdown]
# ### Solution
#
# The names the models declare, minus the names the database has, over every table:

# %% tags=["solution"]
def database_checks(sync_connection):
    inspector = inspect(sync_connection)
    tables = Base.metadata.tables
    return {check["name"] for name in tables for check in inspector.get_check_constraints(name)}


async def missing_checks(conn):
    declared = {
        constraint.name
        for table in Base.metadata.tables.values()
        for constraint in table.constraints
        if isinstance(constraint, CheckConstraint)
    }
    return declared - await conn.run_sync(database_checks)

# %% tags=["solution"]
answer = missing_checks
await check_exercise_08(answer, nb.engine)

# %% [markdown]
# ## Further reading
#
# - Alembic: [Tutorial](https://alembic.sqlalchemy.org/en/latest/tutorial.html) (`init`,
#   `revision`, `upgrade`, `downgrade`, `current`, `history`),
#   [Auto Generating Migrations](https://alembic.sqlalchemy.org/en/latest/autogenerate.html)
#   (what autogenerate detects, and what it cannot),
#   [Cookbook: Using Asyncio with Alembic](https://alembic.sqlalchemy.org/en/latest/cookbook.html#using-asyncio-with-alembic)
#   and [Programmatic API use (connection sharing) With Asyncio](https://alembic.sqlalchemy.org/en/latest/cookbook.html#programmatic-api-use-connection-sharing-with-asyncio),
#   [Generating SQL Scripts (a.k.a. "Offline Mode")](https://alembic.sqlalchemy.org/en/latest/offline.html),
#   [Commands API](https://alembic.sqlalchemy.org/en/latest/api/commands.html).
# - SQLAlchemy: [Reflecting Database Objects](https://docs.sqlalchemy.org/en/20/core/reflection.html)
#   (`inspect(...).get_check_constraints`),
#   [Configuring Constraint Naming Conventions](https://docs.sqlalchemy.org/en/20/core/constraints.html#configuring-constraint-naming-conventions).
# - PostgreSQL: [`CREATE DATABASE`](https://www.postgresql.org/docs/current/sql-createdatabase.html),
#   [`DROP DATABASE`](https://www.postgresql.org/docs/current/sql-dropdatabase.html),
#   [CHECK constraints](https://www.postgresql.org/docs/current/ddl-constraints.html#DDL-CONSTRAINTS-CHECK-CONSTRAINTS).

# %% [markdown]
# ## Summary
#
# - `migrate.current`, `migrate.head` and `migrate.check` (`alembic current`, `heads`, `check`)
#   say where a database stands; autogenerate and `check` compare tables, columns, indexes and
#   keys, but never CHECK constraints: write those migrations, and their test, by hand.
# - Keep the URL out of files: blogdata has `[tool.alembic]` in `pyproject.toml` and an
#   `env.py` that takes the URL from the environment (or the caller's connection), never an
#   `alembic.ini` with a password.
# - The guide's `env.py` works from the `alembic` command but its `asyncio.run` fails inside a
#   running loop; with Alembic's connection-sharing recipe it runs on a connection the caller
#   hands it (notebook, test, app) and still from the command line. `--sql` (offline mode)
#   writes the same steps as a script to review.

# %%
scratch.cleanup()
await nb.close()
