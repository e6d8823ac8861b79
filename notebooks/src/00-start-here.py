# %% [markdown]
# # 00 · Start here
#
# **blogdata** is a toolkit for exploring a PostgreSQL database from Jupyter: you point a
# notebook at a database and get pandas DataFrames back, through async SQLAlchemy. Its example
# database is a small blog (users, their accounts, posts, tags) that it can create and fill with
# realistic, deterministic data. These notebooks are a course in two parts: **learning** async
# SQLAlchemy (one notebook per section of the async SQLAlchemy guide the project started from,
# with the guide's mistakes run, shown and fixed), then **exploring** the blog as an analyst
# would.
#
# **Prerequisites:** Python (functions, classes, `async`/`await`), a little SQL (`SELECT …
# WHERE … ORDER BY`) · **Time to learn:** 10 minutes
#
# **What you will find here**
#
# - how to run the notebooks;
# - the notebooks in reading order, with what each one needs and how long it takes;
# - a basic path, an advanced path and an analyst's path through them;
# - how each notebook is built, and how the exercises work.

# %% [markdown]
# ## How to run them
#
# From a clone of the repository, `make lab` sets everything up and opens JupyterLab on this
# folder, with a PostgreSQL server of its own (embedded: nothing to install). To use your own
# server instead, set `BLOGDATA_DATABASE_URL` before starting, e.g.
# `postgresql+asyncpg://user@host:5432/postgres`.
#
# Run a notebook top to bottom (*Run → Run All Cells*). Each tutorial creates its **own**
# database, named after it (`nb_03_crud` for notebook 03), drops it first if it exists, migrates
# it and seeds it: you can re-run a notebook, run them in any order, or break things freely. The
# cells use top-level `await`, which Jupyter supports directly.
#
# This cell checks that blogdata is installed in the kernel you are running (if it fails, start
# JupyterLab with `make lab`):

# %%
import blogdata

print(blogdata.__doc__.splitlines()[0])

# %% [markdown]
# ## The notebooks, in order
#
# | # | notebook | guide section | what you do |
# |---|---|---|---|
# | 01 | [Engine and sessions](01-engine-and-sessions.ipynb) | Database setup: engine configuration, session dependency | engine → session → one unit of work, the Result API, the pool, `get_db` in a FastAPI app |
# | 02 | [Models and relationships](02-models-and-relationships.ipynb) | Model definition: basic model, relationships, many-to-many | declare models and relationships, `onupdate`, time zones, `MissingGreenlet` |
# | 03 | [CRUD](03-crud.ipynb) | CRUD operations: generic base, specialised CRUD | run the guide's `CRUDBase`, then blogdata's; why CRUD never commits |
# | 04 | [Query patterns](04-query-patterns.ipynb) | Query patterns: basic queries, pagination | filters, checked ordering, offset vs keyset pages, escaped search |
# | 05 | [Relationship loading](05-relationship-loading.ipynb) | Query patterns: relationship loading | count N+1 queries, then `selectinload` and `joinedload` |
# | 06 | [Aggregations](06-aggregations.ipynb) | Query patterns: aggregation | group-bys into DataFrames, `%sql`, the SQL behind each |
# | 07 | [Transactions and savepoints](07-transactions-and-savepoints.ipynb) | Transaction patterns | lose money with the guide's transfer, then fix it; savepoints; retries |
# | 08 | [Migrations](08-migrations.ipynb) | Migration with Alembic | upgrade, downgrade, autogenerate and its blind spots, offline SQL |
# | 09 | [Performance](09-performance.ipynb) | Performance tips | pool tuning, bulk writes, indexes and `EXPLAIN`, fast loading |
# | 10 | [Testing](10-testing.ipynb) | Testing | one rolled-back transaction per test, run by pytest from the notebook |
# | 11 | [Exploring the blog](11-exploring-the-blog.ipynb) | (the analyst's part) | describe, `%sql`, streaming, Parquet, medians, a Lorenz curve, charts |
# | 12 | [Scaling out](12-scaling-out.ipynb) | (beyond the guide) | a hot standby and PgBouncer: read sessions, replication lag |
#
# What each notebook expects you to know, and how long it takes, as its own first cell states
# it (this table is read from the notebooks, so it always matches them):

# %%
import json
import re
from pathlib import Path

from IPython.display import Markdown

HEADER = re.compile(r"\*\*Prerequisites:\*\*\s*(.*?)\s*·\s*\*\*Time to learn:\*\*\s*([^\n]*)", re.S)
LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")  # [text](target) -> text: the table above links
rows = ["| notebook | prerequisites | time to learn |", "|---|---|---|"]
for path in sorted(Path().glob("[01][0-9]-*.ipynb"))[1:]:
    cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "markdown"]
    intro = next("".join(c["source"]) for c in cells if "".join(c["source"]).startswith("# "))
    found = HEADER.search(intro)
    prerequisites = LINK.sub(r"\1", " ".join(found[1].split())) if found else "—"
    time = found[2] if found else "—"
    rows.append(f"| {intro.splitlines()[0][2:]} | {prerequisites} | {time} |")
Markdown("\n".join(rows))

# %% [markdown]
# ## Three paths
#
# - **Basic path**: 01 → 02 → 03 → 04 → 05 → 06 → 07 → 10, in order,
#   skipping every section marked "(advanced)" and every "Aside". That is async SQLAlchemy as
#   the guide teaches it, with its bugs fixed.
# - **Advanced path**: the same notebooks with their advanced sections and asides, then
#   [08](08-migrations.ipynb) (migrations), [09](09-performance.ipynb) (performance) and
#   [12](12-scaling-out.ipynb) (a standby and a connection pooler).
# - **Analyst's path**: for DataFrames only, [06](06-aggregations.ipynb) then
#   [11](11-exploring-the-blog.ipynb).
#
# Every notebook starts and ends with a line linking the previous one, this page, the
# [glossary](glossary.ipynb) and the next one.
#
# ## How each notebook is built
#
# - The first cell says why the topic matters, what you need to know first, how long it takes,
#   and **what you will learn**; the second creates the notebook's database. Everything else is
#   imported in the cell that first uses it.
# - **SQLAlchemy first, then blogdata.** Each pattern is written in plain SQLAlchemy 2.x first
#   (the guide's own code where the guide has it, with the SQL it sends beside it), and only
#   then the blogdata helper that wraps it. Where the guide's code has a bug, the notebook runs
#   the guide's code as written, shows what goes wrong in an output, and then shows the fix.
# - Every claim in the prose is shown by an output in the same notebook; CI re-runs every
#   notebook and compares every output, so what you read here is what the code does today.
# - Detours are in sections headed "Aside", with a note to skip them on first reading.
# - Terms are linked to the [glossary](glossary.ipynb) the first time they appear; each
#   notebook ends with **Further reading** (the official documentation of what it used), an
#   **exercise** and a three-point **summary**.
#
# An exercise has three cells: one for your answer (`answer = ...`), a check that tells you
# whether it is right (and what to look at if it is not), and a collapsed solution: click the
# bar on its left to open it. The stored outputs are the solution's.
#
# ## Further reading
#
# - SQLAlchemy: the [Unified Tutorial](https://docs.sqlalchemy.org/en/20/tutorial/index.html)
#   and [Asynchronous I/O (asyncio)](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html)
# - asyncpg: [Usage](https://magicstack.github.io/asyncpg/current/usage.html)
# - PostgreSQL: [the tutorial](https://www.postgresql.org/docs/current/tutorial.html)
# - pandas: [Getting started](https://pandas.pydata.org/docs/getting_started/index.html)
#
# ## Summary
#
# - `make lab` opens these notebooks on an embedded PostgreSQL; `BLOGDATA_DATABASE_URL` points
#   them at yours. Each notebook makes its own database and can be re-run at will.
# - Each notebook states its prerequisites and time; the basic path is 01–07 and 10 without the
#   asides, the analyst's path 06 and 11.
# - Plain SQLAlchemy first, the guide's code run as written where it has a bug, then blogdata's
#   fix; every claim backed by an output.
