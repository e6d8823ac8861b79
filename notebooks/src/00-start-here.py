# %% [markdown]
# # 00 · Start here
#
# **blogdata** is a toolkit for exploring a PostgreSQL database from Jupyter: you point a
# notebook at a database and get pandas DataFrames back, through async SQLAlchemy. Its example
# database is a small blog (users, their accounts, posts, tags) that it can create and fill with
# realistic, deterministic data. These notebooks are a course in two parts: **learning** the
# patterns of async SQLAlchemy (one notebook per section of the async SQLAlchemy guide the
# project started from, with the guide's mistakes shown and fixed), then **exploring** the blog
# as an analyst would.
#
# **What you will find here**
# - how to run the notebooks, and what each one needs;
# - which notebook teaches which section of the guide, in reading order;
# - how the exercises work.

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
# The one code cell of this notebook checks that blogdata is installed in the kernel you are
# running (if it fails, start JupyterLab with `make lab`):

# %%
import blogdata

print(blogdata.__doc__.splitlines()[0])

# %% [markdown]
# ## The notebooks, in order
#
# | # | notebook | guide section | what you do |
# |---|---|---|---|
# | 01 | [Engine and sessions](01-engine-and-sessions.ipynb) | Database setup: engine configuration, session dependency | build the engine and its pool, watch the SQL, drive `get_db` through a FastAPI app |
# | 02 | [Models and relationships](02-models-and-relationships.ipynb) | Model definition: basic model, relationships, many-to-many | read the schema, meet `MissingGreenlet`, link posts and tags |
# | 03 | [CRUD](03-crud.ipynb) | CRUD operations: generic base, specialised CRUD | create, read, update, delete; why CRUD never commits |
# | 04 | [Query patterns](04-query-patterns.ipynb) | Query patterns: basic queries, pagination | filters, checked ordering, offset vs keyset pages, escaped search |
# | 05 | [Relationship loading](05-relationship-loading.ipynb) | Query patterns: relationship loading | count N+1 queries, then `selectinload` and `joinedload` |
# | 06 | [Aggregations](06-aggregations.ipynb) | Query patterns: aggregation | group-bys into DataFrames, `%sql`, the SQL behind each |
# | 07 | [Transactions and savepoints](07-transactions-and-savepoints.ipynb) | Transaction patterns | lose money with the guide's transfer, then fix it; savepoints; retries |
# | 08 | [Migrations](08-migrations.ipynb) | Migration with Alembic | upgrade, downgrade, autogenerate and its blind spots, offline SQL |
# | 09 | [Performance](09-performance.ipynb) | Performance tips | pool tuning, three ways to bulk insert, indexes and `EXPLAIN`, fast loading |
# | 10 | [Testing](10-testing.ipynb) | Testing | one rolled-back transaction per test, run by pytest from the notebook |
# | 11 | [Exploring the blog](11-exploring-the-blog.ipynb) | (the analyst's part) | describe, `%sql`, streaming, Parquet, medians, a Lorenz curve, charts |
# | 12 | [Scaling out](12-scaling-out.ipynb) | (beyond the guide) | a hot standby and PgBouncer: read sessions, replication lag |
#
# Notebooks 01 to 10 build on each other and are best read in order. An analyst who only wants
# DataFrames can start at [06](06-aggregations.ipynb) and go on to
# [11](11-exploring-the-blog.ipynb). Every notebook starts and ends with a line linking the
# previous one, this page, the [glossary](glossary.ipynb) and the next one.

# %% [markdown]
# ## How each notebook is built
#
# - The first cell says why the topic matters and **what you will learn**; the second is the
#   only one that imports anything, and it creates the notebook's database.
# - Where the guide has a bug, the notebook runs the guide's code as written first, shows what
#   goes wrong, and then shows blogdata's fix.
# - Terms are linked to the [glossary](glossary.ipynb) the first time they appear.
# - Each notebook ends with an **exercise** and a three-point **summary**.
#
# An exercise has three cells: one for your answer (`answer = ...`), a check that tells you
# whether it is right (and what to look at if it is not), and a collapsed solution: click the
# bar on its left to open it. The stored outputs are the solution's, and CI re-runs every
# notebook and compares every output, so what you read here is what the code does today.

# %% [markdown]
# ## Summary
#
# - `make lab` opens these notebooks on an embedded PostgreSQL; `BLOGDATA_DATABASE_URL` points
#   them at yours.
# - Each notebook makes its own database and can be re-run at will.
# - Read 01 to 10 in order to learn async SQLAlchemy; 06 and 11 are the analyst's path.
