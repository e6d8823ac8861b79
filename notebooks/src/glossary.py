# %% [markdown]
# # Glossary
#
# The terms the notebooks use, in alphabetical order. Each notebook links a term here the first
# time it uses it; each entry ends with the notebooks whose code or output shows the term at
# work. (Headings are lower-case so that their link anchors are stable.)

# %% [markdown]
# ## asyncattrs
#
# **AsyncAttrs.** A mixin for the declarative base (`class Base(AsyncAttrs, DeclarativeBase)`)
# that adds `obj.awaitable_attrs`: `await post.awaitable_attrs.tags` loads a relationship or
# expired attribute with an explicit `await` instead of [lazy loading](#lazy-loading).
#
# Shown in: [02](02-models-and-relationships.ipynb), [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## autobegin
#
# **Autobegin.** A SQLAlchemy `Session` starts a transaction by itself the first time it needs
# the database (a query, a flush). There is no explicit `BEGIN` to write, and no way to run
# outside a transaction: calling `session.begin()` on a session that has already autobegun is an
# error.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## autogenerate
#
# **Autogenerate.** Alembic comparing the models' metadata with a live database and writing a
# draft migration for the differences. It misses some kinds of change, CHECK constraints among
# them, so every draft is read before it is committed.
#
# Shown in: [08](08-migrations.ipynb).

# %% [markdown]
# ## commit
#
# **Commit.** Ending the transaction so its changes become permanent and visible to other
# connections. In blogdata, operations that take a session only [flush](#flush); the entry point
# that opened the session (`session_scope`, `get_db`, `run_transaction`, the CLI) commits once,
# so several calls form one [unit of work](#unit-of-work).
#
# Shown in: [01](01-engine-and-sessions.ipynb), [03](03-crud.ipynb), [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## connection pool
#
# **Connection pool.** The engine's set of open connections, lent to sessions and returned
# afterwards. `pool_size` connections are kept open; when all are lent out, up to `max_overflow`
# more (the overflow) are opened, and closed again when they come back. A caller waits at most
# `pool_timeout` seconds for a free one before an error.
#
# Shown in: [01](01-engine-and-sessions.ipynb), [09](09-performance.ipynb).

# %% [markdown]
# ## connection sharing
#
# **Connection sharing.** Alembic's recipe for running migrations on a connection the caller
# already has: the caller sets `config.attributes["connection"]` before calling
# `command.upgrade(config, ...)`, and `env.py` migrates on that connection instead of making its
# own. With asyncio the caller opens an async connection and passes its synchronous side
# through `conn.run_sync(...)`, so `env.py` needs no `asyncio.run`, which fails inside a running
# event loop (a notebook, an async test, an app migrating at start-up).
#
# Shown in: [08](08-migrations.ipynb).

# %% [markdown]
# ## copy
#
# **COPY.** PostgreSQL's bulk protocol for moving rows in and out of a table or query as one
# stream: the fastest way to load or read many rows. blogdata's seed, `bulk.insert_hashed_users`
# and `load_frame` use it.
#
# Shown in: [09](09-performance.ipynb).

# %% [markdown]
# ## deadlock
#
# **Deadlock.** Two transactions each wait for a lock the other holds. PostgreSQL notices the
# cycle after `deadlock_timeout` (1 s by default) and aborts one of them with
# [SQLSTATE](#sqlstate) 40P01; the other proceeds. Locking rows in a fixed order (by id) prevents
# it.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## dependency scope
#
# **Dependency scope.** When FastAPI runs the code after a dependency's `yield`. Since FastAPI
# 0.118 it runs by default after the response has been sent, so a commit there that fails can no
# longer change the answer the client got. With `Depends(dep, scope="function")` (FastAPI 0.121
# and later) it runs as soon as the endpoint function returns, before the response. blogdata's `SessionDep` uses
# `scope="function"`.
#
# Shown in: [01](01-engine-and-sessions.ipynb).

# %% [markdown]
# ## dtype backend
#
# **dtype backend.** Which pandas column types a loader returns: `numpy_nullable` (`Int64`,
# `boolean`, `string` with `<NA>` for NULL) or `pyarrow` (`int64[pyarrow]`, …).
#
# Shown in: [06](06-aggregations.ipynb), [11](11-exploring-the-blog.ipynb).

# %% [markdown]
# ## eager loading
#
# **Eager loading.** Loading relationships together with their parents: `selectinload` runs one
# extra `SELECT … WHERE id IN (…)` (chunked, 500 keys per statement), `joinedload` adds a `JOIN`
# to the main query.
#
# Shown in: [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## engine
#
# **Engine.** `AsyncEngine`: the long-lived object that knows the database URL and owns the
# [connection pool](#connection-pool). Create one per database and process, at startup, never at
# import time.
#
# Shown in: [01](01-engine-and-sessions.ipynb).

# %% [markdown]
# ## executemany
#
# **executemany.** The driver running one prepared statement with many sets of parameters.
# asyncpg pipelines the rows over one prepared `INSERT`; it returns no rows.
#
# Shown in: [09](09-performance.ipynb).

# %% [markdown]
# ## expire on commit
#
# **Expire on commit.** By default a commit marks every loaded object as stale, so the next
# attribute access reloads it. In async code that reload is hidden IO and fails
# ([MissingGreenlet](#missinggreenlet)); blogdata's sessions use `expire_on_commit=False`.
#
# Shown in: [01](01-engine-and-sessions.ipynb), [02](02-models-and-relationships.ipynb).

# %% [markdown]
# ## explain
#
# **EXPLAIN.** `EXPLAIN` shows the plan PostgreSQL chose for a statement (which indexes, which
# joins); `EXPLAIN ANALYZE` also runs it and reports real timings. `blogdata.diagnostics.explain`
# runs it for a SQLAlchemy statement.
#
# Shown in: [04](04-query-patterns.ipynb), [09](09-performance.ipynb).

# %% [markdown]
# ## fixture
#
# **Fixture.** A pytest function that prepares what a test needs (an engine, a session in a
# transaction that is rolled back afterwards) and cleans up after it.
#
# Shown in: [10](10-testing.ipynb).

# %% [markdown]
# ## flush
#
# **Flush.** Sending the session's pending changes (`INSERT`, `UPDATE`, `DELETE`) to the database
# *inside* the current transaction. After a flush, new rows have their ids and other statements
# in the same transaction see them; nobody else does until the [commit](#commit).
# `session.flush()` does it explicitly; a query autoflushes first.
#
# Shown in: [02](02-models-and-relationships.ipynb), [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## gini
#
# **Gini coefficient.** A measure of how unequally something is shared, from 0 (everyone has the
# same) to 1 (one has everything): twice the area between the Lorenz curve and the diagonal. Used
# for how posts are spread over authors.
#
# Shown in: [11](11-exploring-the-blog.ipynb).

# %% [markdown]
# ## having
#
# **HAVING.** The SQL clause that filters *groups*, after `GROUP BY`, on an aggregate
# (`HAVING count(posts.id) >= 10`), where `WHERE` filters rows before they are grouped. In
# SQLAlchemy: `select(...).group_by(...).having(func.count(Post.id) >= 10)`.
#
# Shown in: [06](06-aggregations.ipynb).

# %% [markdown]
# ## hot standby
#
# **Hot standby.** A read-only copy of a PostgreSQL server that replays the primary's [WAL](#wal)
# as it arrives and answers queries meanwhile.
#
# Shown in: [12](12-scaling-out.ipynb).

# %% [markdown]
# ## identity map
#
# **Identity map.** The session's dictionary from primary key to the one Python object that
# represents that row. Loading the same row twice in one session gives the *same* object, and a
# changed object wins over a fresh query's values until it is flushed or expired.
# `session.expunge_all()` empties it.
#
# Shown in: [02](02-models-and-relationships.ipynb), [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## insertmanyvalues
#
# **insertmanyvalues.** SQLAlchemy's way to insert many rows *and* get values back
# (`insert(...).returning(...)`, see [RETURNING](#returning)): it rewrites the statement into
# multi-row `VALUES` batches of up to `insertmanyvalues_page_size` (1000) rows each.
#
# Shown in: [09](09-performance.ipynb).

# %% [markdown]
# ## isolation level
#
# **Isolation level.** How much a transaction sees of concurrent ones. PostgreSQL's default, READ
# COMMITTED, gives each statement a fresh [snapshot](#snapshot); REPEATABLE READ keeps one for
# the whole transaction; SERIALIZABLE also aborts transactions whose combined effect no serial
# order could produce. SQLAlchemy sets it with `execution_options(isolation_level=...)`, and adds
# `"AUTOCOMMIT"` for statements that cannot run in a transaction (`VACUUM`, `CREATE DATABASE`).
#
# Shown in: [12](12-scaling-out.ipynb).

# %% [markdown]
# ## join_transaction_mode
#
# **join_transaction_mode.** How a `Session` bound to a connection that is already in a
# transaction joins it. With `"create_savepoint"` the session's `commit()` and `rollback()` only
# release or roll back a [savepoint](#savepoint), and the outer transaction stays the caller's:
# the rolled-back test [fixture](#fixture).
#
# Shown in: [10](10-testing.ipynb).

# %% [markdown]
# ## keyset pagination
#
# **Keyset pagination.** Paging by remembering the last row's sort key (`WHERE (created_at, id) <
# (:last_created, :last_id) ORDER BY created_at DESC, id DESC LIMIT n`) instead of `OFFSET`. Each
# page costs the same, and rows inserted meanwhile do not shift the pages.
#
# Shown in: [04](04-query-patterns.ipynb).

# %% [markdown]
# ## lazy loading
#
# **Lazy loading.** Loading a relationship the first time its attribute is read. In async
# SQLAlchemy that read cannot do IO implicitly, so it raises [MissingGreenlet](#missinggreenlet);
# blogdata declares relationships `lazy="raise"` to fail with a clearer message.
#
# Shown in: [02](02-models-and-relationships.ipynb), [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## loader option
#
# **Loader option.** A `select(...).options(...)` argument that says how *this* statement loads a
# relationship, overriding the mapping's `lazy=` for the objects it returns: `selectinload`,
# `joinedload` ([eager loading](#eager-loading)), `lazyload`, `raiseload`. Options chain along a
# path: `selectinload(User.posts).selectinload(Post.tags)`.
#
# Shown in: [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## lost update
#
# **Lost update.** Two transactions read the same value, both compute a new one from it and both
# write: the second write silently discards the first. [Row locks](#row-lock) or an atomic
# `UPDATE … SET x = x + 1` prevent it.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## migration
#
# **Migration.** A versioned script (Alembic revision) that changes the schema from one revision
# to the next, with an `upgrade` and a `downgrade`. The database records its current revision in
# `alembic_version`.
#
# Shown in: [08](08-migrations.ipynb).

# %% [markdown]
# ## migration drift
#
# **Migration drift.** A database (or a model) that differs from what the migrations produce.
# `blogdata.db.migrate.check` reports the differences [autogenerate](#autogenerate) can see.
#
# Shown in: [08](08-migrations.ipynb).

# %% [markdown]
# ## missinggreenlet
#
# **MissingGreenlet.** The error async SQLAlchemy raises when code tries to do database IO
# without `await`, typically an expired or lazy attribute touched after the fact. The fix is to
# load what you need up front.
#
# Shown in: [02](02-models-and-relationships.ipynb).

# %% [markdown]
# ## n plus one
#
# **N+1 queries.** Loading a list with one query, then the related rows of each item with one
# more query per item: N+1 round trips where 1 or 2 would do. [Eager loading](#eager-loading) is
# the fix.
#
# Shown in: [05](05-relationship-loading.ipynb).

# %% [markdown]
# ## naive datetime
#
# **Naive datetime.** A Python `datetime` without `tzinfo`: a wall-clock reading that names no
# instant. Sent as a parameter for a `timestamptz`, asyncpg takes it as the client process's local
# time, so the same code means different instants on differently configured machines (and the
# error hides on a machine set to UTC). Send aware values instead: `datetime.now(UTC)`,
# `datetime(2024, 1, 1, tzinfo=UTC)`. Python refuses to compare a naive with an aware value.
#
# Shown in: [02](02-models-and-relationships.ipynb), [04](04-query-patterns.ipynb).

# %% [markdown]
# ## non-repeatable read
#
# **Non-repeatable read.** One transaction reads the same row twice and gets two different
# values, because another transaction committed a change in between. READ COMMITTED allows it
# (each statement takes a new [snapshot](#snapshot)); REPEATABLE READ and SERIALIZABLE prevent it
# (see [isolation level](#isolation-level)).
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## offline mode
#
# **Offline mode.** `alembic upgrade head --sql`: print the SQL of the migrations instead of
# running them, for a DBA to review or apply.
#
# Shown in: [08](08-migrations.ipynb).

# %% [markdown]
# ## on conflict do nothing
#
# **ON CONFLICT DO NOTHING.** `INSERT … ON CONFLICT DO NOTHING`: PostgreSQL skips a row that
# would violate a unique constraint instead of raising an error. If another, uncommitted
# transaction has inserted the same key, the `INSERT` waits for it to end and then skips the row,
# so two sessions creating the same tag at once both succeed. Only inserted rows come back from
# [RETURNING](#returning), so a get-or-create follows it with a `SELECT`. In SQLAlchemy:
# `sqlalchemy.dialects.postgresql.insert(Tag).on_conflict_do_nothing()`.
#
# Shown in: [03](03-crud.ipynb).

# %% [markdown]
# ## onupdate
#
# **onupdate.** `mapped_column(onupdate=func.now())`: a value SQLAlchemy adds to every `UPDATE` it
# writes for the row (unless the statement sets the column itself). It is not in the table's DDL,
# so an `UPDATE` from psql or another program leaves the column alone. A server-side value such as
# `now()` is not fetched back after an `UPDATE`: the attribute is expired.
#
# Shown in: [02](02-models-and-relationships.ipynb).

# %% [markdown]
# ## parquet
#
# **Parquet.** A columnar file format for tables, with types and compression: a DataFrame written
# to Parquet reads back with the same dtypes.
#
# Shown in: [11](11-exploring-the-blog.ipynb).

# %% [markdown]
# ## passive_deletes
#
# **passive_deletes.** `relationship(..., passive_deletes=True)`: when the parent is deleted,
# SQLAlchemy does not load the children to delete or unlink them one by one, and leaves it to the
# database's `ON DELETE CASCADE`: one `DELETE` instead of a `SELECT` and one statement per child.
#
# Shown in: [02](02-models-and-relationships.ipynb).

# %% [markdown]
# ## pendingrollbackerror
#
# **PendingRollbackError.** The error a SQLAlchemy `Session` raises on every use after a
# [flush](#flush) failed in it: the failed flush rolled its transaction back, and the session
# refuses further statements, even plain reads, until `session.rollback()` is called, so that
# code cannot carry on as if the lost changes had been made.
#
# Shown in: [03](03-crud.ipynb).

# %% [markdown]
# ## percentile_cont
#
# **percentile_cont.** PostgreSQL's ordered-set aggregate for a percentile with interpolation:
# `percentile_cont(0.5) WITHIN GROUP (ORDER BY x)` is the median. In SQLAlchemy:
# `func.percentile_cont(0.5).within_group(column)`.
#
# Shown in: [11](11-exploring-the-blog.ipynb).

# %% [markdown]
# ## pre-ping
#
# **Pre-ping.** `pool_pre_ping=True`: before lending a pooled connection, the pool checks that it
# still works and silently replaces one the server closed. It costs a round trip per checkout.
#
# Shown in: [01](01-engine-and-sessions.ipynb), [09](09-performance.ipynb).

# %% [markdown]
# ## replication lag
#
# **Replication lag.** How far a standby's replay of the [WAL](#wal) trails the primary: a read
# on the standby may not yet see a row the primary just committed.
#
# Shown in: [12](12-scaling-out.ipynb).

# %% [markdown]
# ## result
#
# **Result.** What `await session.execute(stmt)` returns: the rows of one statement, to be read
# once. `.all()` gives `Row`s (named tuples); `.scalars()` the first column of each row (with
# `select(User)`, the `User` objects); `.scalar()` the first column of the first row, or `None`;
# `.scalar_one()` exactly one value, else an error; `.unique()` drops duplicate rows (required
# after `joinedload` of a collection). `session.scalars(stmt)` and `session.scalar(stmt)` are
# shortcuts.
#
# Shown in: [01](01-engine-and-sessions.ipynb), [04](04-query-patterns.ipynb).

# %% [markdown]
# ## returning
#
# **RETURNING.** A PostgreSQL clause that makes `INSERT`, `UPDATE` or `DELETE` send back values
# of the rows it touched (`INSERT … RETURNING id`), saving a second query. SQLAlchemy writes it
# with `.returning(...)`, and the ORM uses it to learn new rows' ids at [flush](#flush).
#
# Shown in: [02](02-models-and-relationships.ipynb), [03](03-crud.ipynb), [09](09-performance.ipynb).

# %% [markdown]
# ## row lock
#
# **Row lock.** `SELECT … FOR UPDATE` (`select(...).with_for_update()`) locks the selected rows
# until the transaction ends, so a concurrent transaction that wants to change them waits instead
# of working from a stale read.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## savepoint
#
# **Savepoint.** A named point inside a transaction (`SAVEPOINT`, `session.begin_nested()`) that
# can be rolled back to without losing the work done before it. Used to try a risky statement,
# such as an insert that may hit a unique constraint, and carry on.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb), [10](10-testing.ipynb).

# %% [markdown]
# ## serialization failure
#
# **Serialization failure.** [SQLSTATE](#sqlstate) 40001: PostgreSQL aborted a REPEATABLE READ or
# SERIALIZABLE transaction because it conflicted with a concurrent one. The only fix is to run
# the whole transaction again, which `run_transaction` does.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## session
#
# **Session.** `AsyncSession`: a short-lived workspace that borrows a connection from the
# [pool](#connection-pool), tracks objects in its [identity map](#identity-map) and runs one
# transaction at a time. Not safe to share between concurrent tasks.
#
# Shown in: [01](01-engine-and-sessions.ipynb).

# %% [markdown]
# ## session timezone
#
# **Session TimeZone.** PostgreSQL's per-connection `TimeZone` setting (`SET TIME ZONE
# 'Asia/Tokyo'`), defaulting to the server's configuration. It does not change the instant a
# `timestamptz` stores, but decides how it is shown as text and where days and months begin for
# `date_trunc`, `::date` and `extract`: the same query can count different months on two
# connections. `date_trunc('month', ts, 'UTC')` names the zone itself.
#
# Shown in: [06](06-aggregations.ipynb).

# %% [markdown]
# ## snapshot
#
# **Snapshot.** The set of committed transactions a statement or transaction can see. Under READ
# COMMITTED each statement takes a new one; under REPEATABLE READ and SERIALIZABLE the whole
# transaction keeps its first (see [isolation level](#isolation-level)). A transaction always
# sees its own uncommitted writes. A transaction can share its snapshot: `pg_export_snapshot()`
# names it, and another connection's `SET TRANSACTION SNAPSHOT '<name>'` (first thing in a
# REPEATABLE READ transaction) sees exactly the same rows, which is how `dask_frame`'s
# partitions all read one moment.
#
# Shown in: [07](07-transactions-and-savepoints.ipynb), [12](12-scaling-out.ipynb).

# %% [markdown]
# ## sqlstate
#
# **SQLSTATE.** The five-character code PostgreSQL gives every error (`23505` unique violation,
# `23503` foreign key violation, `40001` [serialization failure](#serialization-failure), `40P01`
# [deadlock](#deadlock)): the reliable way to tell errors apart, unlike their messages. asyncpg
# exposes it as `exc.sqlstate`; on SQLAlchemy's wrapped error it is `exc.orig.sqlstate`
# (blogdata's `sqlstate_of(exc)` finds it).
#
# Shown in: [02](02-models-and-relationships.ipynb), [03](03-crud.ipynb), [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## synchronize_session
#
# **synchronize_session.** How an ORM-enabled bulk `update()` or `delete()` keeps the objects
# already loaded in the session in step with the rows it changed. `"evaluate"` applies the
# `WHERE` criteria in Python to those objects, `"fetch"` learns the changed rows' keys (with
# [RETURNING](#returning) on PostgreSQL), `False` does nothing; the default, `"auto"`, tries
# `"evaluate"` and falls back to `"fetch"`. Set it with
# `execution_options(synchronize_session=...)`.
#
# Shown in: [04](04-query-patterns.ipynb).

# %% [markdown]
# ## torn read
#
# **Torn read.** A result assembled from parts read at different moments, each on its own
# connection and [snapshot](#snapshot): a row that moved between the parts' reads is counted
# twice or not at all, and nothing in the result says so. Dask's `read_sql_query` reads its
# partitions this way; `dask_frame` reads them all in one exported snapshot.
#
# Shown in: [12](12-scaling-out.ipynb).

# %% [markdown]
# ## transaction pooling
#
# **Transaction pooling.** PgBouncer's mode that lends a server connection for one transaction at
# a time, so many clients share few connections. Session state (`SET`, prepared statements) does
# not survive between transactions: asyncpg's statement cache must be off, unless PgBouncer (1.21
# or later) tracks prepared statements itself with `max_prepared_statements`.
#
# Shown in: [12](12-scaling-out.ipynb).

# %% [markdown]
# ## unit of work
#
# **Unit of work.** The set of changes that succeed or fail together: one transaction. The caller
# decides its boundaries; functions that take a session contribute to it but never close it.
#
# Shown in: [03](03-crud.ipynb), [07](07-transactions-and-savepoints.ipynb).

# %% [markdown]
# ## wal
#
# **WAL.** The write-ahead log: PostgreSQL writes every change there before it changes the
# tables, for crash recovery. Replication ships it to standbys, which replay it; a position in it
# is an LSN.
#
# Shown in: [12](12-scaling-out.ipynb).
