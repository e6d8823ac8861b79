# %% [markdown]
# # 08 · Migrations with Alembic
#
# The models say what the schema *should* be; the database has whatever was last applied to it.
# Alembic keeps the two in step with revision scripts: each one upgrades the schema by a step
# and knows how to undo it. blogdata builds every database (yours, the tests', these notebooks')
# by running its migrations, so they are exercised constantly.
#
# **What you will learn**
#
# - how to read the migration history and where a database stands (`current`, `head`);
# - how to check for drift between the models and the database (`check`);
# - how to autogenerate a revision for a model change, read it, upgrade and downgrade;
# - why the guide's `env.py` fails in a notebook or test, and the connection recipe that works.
#

# %%
import argparse
import asyncio
import shutil
import tempfile
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import Column, Index, MetaData, Text, inspect

from blogdata import migrate
from blogdata.models import Base
from blogdata.notebook import tutorial_database

nb = await tutorial_database("08-migrations")
nb

# %% [markdown]
# ## Where the database stands
#
# blogdata's revisions live in `migrations/versions/`. `ScriptDirectory` reads them; each has an
# id, the id it follows (`down_revision`) and a message.

# %%
scripts = ScriptDirectory.from_config(migrate.alembic_config())
for rev in reversed(list(scripts.walk_revisions())):
    print(f"{rev.down_revision or '(base)':>12} -> {rev.revision}  {rev.doc.splitlines()[0]}")

# %% [markdown]
# `tutorial_database` migrated this notebook's database to the newest revision, the *head*. Alembic records
# where a database is in a one-row table, `alembic_version`:

# %%
print("current:", await migrate.current(nb.engine), "| head:", migrate.head())

# %% [markdown]
# **Drift** is any difference between the models and the migrated database: a column added to a
# model but never migrated, a changed type, a forgotten index. `migrate.check` compares them
# (like `alembic check`); an empty list means none. blogdata's test suite asserts exactly this.

# %%
await migrate.check(nb.engine)

# %% [markdown]
# ## The pitfall: the guide's `env.py` in a running event loop
#
# The guide's async `env.py` ends with `asyncio.run(run_migrations_online())`. That is fine from
# the `alembic` command line, but a notebook, a test with pytest-asyncio, or an application
# already runs an event loop, and `asyncio.run` refuses to start a second one:

# %%
async def run_migrations_online():
    """Stand-in for the guide's coroutine: the error comes before it would even start."""


coroutine = run_migrations_online()
try:
    asyncio.run(coroutine)
except RuntimeError as exc:
    coroutine.close()  # never started; close it so Python doesn't warn
    print(f"RuntimeError: {exc}")

# %% [markdown]
# The fix is Alembic's "connection sharing" recipe: the caller opens the connection on *its*
# loop and hands the synchronous side of it to Alembic through `config.attributes`; `env.py`
# uses that connection instead of calling `asyncio.run`. blogdata's `migrations/env.py` does
# this when `config.attributes["connection"]` is set, and `blogdata.migrate.upgrade`,
# `downgrade`, `current` and `check` are thin wrappers around it. That is why all the calls
# above could simply be awaited.
#
# ## Autogenerating a revision, in a scratch folder
#
# Suppose we want a `bio` column on users. We will not touch the repository's migrations:
# we copy them into a temporary folder, with a minimal `env.py` that is the connection recipe
# and nothing else: it takes both the connection and the target metadata from the caller.

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

scratch = tempfile.TemporaryDirectory()
folder = Path(scratch.name)
repo_migrations = Path(migrate.alembic_config().get_main_option("script_location"))
shutil.copytree(
    repo_migrations / "versions",
    folder / "versions",
    ignore=shutil.ignore_patterns("__pycache__", "__init__.py"),
)
shutil.copy(repo_migrations / "script.py.mako", folder)
(folder / "env.py").write_text(ENV_PY)
sorted(str(path.relative_to(folder)) for path in folder.rglob("*.py*"))

# %% [markdown]
# The model change: instead of editing `blogdata.models`, we copy its tables into a separate
# `MetaData` and add the column there.

# %%
changed = MetaData(naming_convention=Base.metadata.naming_convention)
for table in Base.metadata.sorted_tables:
    table.to_metadata(changed)
changed.tables["users"].append_column(Column("bio", Text, comment="a short self-description"))
[column.name for column in changed.tables["users"].columns][-3:]

# %% [markdown]
# An Alembic `Config` for the scratch folder, and one helper that runs any Alembic command on a
# connection of the notebook's engine (`quiet` keeps Alembic from printing file paths):

# %%
cfg = Config(cmd_opts=argparse.Namespace(quiet=True))
cfg.set_main_option("script_location", str(folder))
cfg.set_main_option("file_template", "%%(rev)s")
cfg.attributes["target_metadata"] = changed


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
# types, nullability, indexes, constraints and (with our options) server defaults; it cannot
# see renames (it proposes a drop and an add) and knows nothing about data.

# %%
source = Path(script.path).read_text()
print(source[source.index("def upgrade") :].rstrip())

# %% [markdown]
# ## Upgrade, check, downgrade
#
# Upgrading to the new head runs `upgrade()` and moves `alembic_version` forward:

# %%
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
# ## Exercise
#
# Give `users.last_login` an index in the changed metadata and autogenerate a revision for it
# with `rev_id="index_last_login"`. (Autogenerate refuses to run unless the database is at the
# newest revision, so upgrade first.) Print its `upgrade()`, upgrade, check, and finally
# downgrade back to blogdata's head (`migrate.head()`).
#
# ### Solution

# %%
await alembic(command.upgrade, "head")  # back to add_user_bio
Index("ix_users_last_login", changed.tables["users"].c.last_login)
second = await alembic(
    command.revision, message="index last login", autogenerate=True, rev_id="index_last_login"
)
print(Path(second.path).name, "revises", second.down_revision)
generated = Path(second.path).read_text()
print(generated[generated.index("def upgrade") : generated.index("def downgrade")].rstrip())

# %%
await alembic(command.upgrade, "head")
await alembic(command.check)
print("at", await migrate.current(nb.engine), "with no drift against the changed models")
await alembic(command.downgrade, migrate.head())
print("back at", await migrate.current(nb.engine), "| drift:", await migrate.check(nb.engine))

# %% [markdown]
# Downgrading to a named revision runs every `downgrade()` in between, newest first.
#

# %%
scratch.cleanup()
await nb.close()
