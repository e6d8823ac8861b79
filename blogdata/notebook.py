"""Jupyter helpers: open a database, make a tutorial's own, ``show_sql``, ``run``, a counter.

Two ways to get a database, named for what they do:

- ``await open_database()`` opens an existing database for analysis (the configured one, or the
  URL given) and never drops, migrates or seeds anything;
- ``await tutorial_database("01-engine-and-sessions")`` drops and recreates the database
  ``nb_01_engine_and_sessions`` on the configured server (``BLOGDATA_DATABASE_URL``, else the
  embedded one), migrates it with Alembic and seeds it deterministically, so a tutorial never sees
  another's leftovers and gives the same outputs on every run, in any order, in parallel. It
  drops only a database blogdata made (marked, see ``blogdata.database.create_database``): an
  ``nb_...`` database of someone else's is refused with ``NotOursError`` and left untouched.

Either is where ``%sql`` then runs. Both entry points own their transactions (the seed commits).

Notebooks ``await`` at top level; ``run`` is only for code that cannot (a sync function that must
call async code). It applies nest-asyncio2 to the running loop on its first call, never on import.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import sys
from collections.abc import Coroutine, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import asyncpg as _asyncpg_dialect
from sqlalchemy.engine import URL
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.sql import ClauseElement

from blogdata import migrate
from blogdata.database import (
    create_database,
    create_engine,
    create_sessionmaker,
    drop_database,
    resolve_url,
)
from blogdata.errors import InvalidInputError

__all__ = [
    "Notebook",
    "open_database",
    "tutorial_database",
    "count_statements",
    "database_name",
    "echo_sql",
    "render_sql",
    "run",
    "show_sql",
]

T = TypeVar("T")

# No "_": it is what "-" becomes, so "sales-q1" and "sales_q1" would share nb_sales_q1.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]*")
_MAX_NAME = 60  # PostgreSQL truncates identifiers at 63 bytes; "nb_" takes three
_open: dict[str, Notebook] = {}


def database_name(name: str) -> str:
    """Return the database name for notebook ``name`` (``"01-engine"`` → ``"nb_01_engine"``).

    One name, one database: names are lowercase letters, digits and ``-`` only, so no two
    names map to the same database (``_`` is refused, as it is what ``-`` turns into).

    Raises:
        InvalidInputError: ``name`` is not lowercase letters, digits and ``-``.
    """
    dashed = name.replace("_", "-") if isinstance(name, str) else ""
    if "_" in name and _NAME.fullmatch(dashed) and len(name) <= _MAX_NAME:
        raise InvalidInputError(
            f'notebook name {name!r} contains "_"; write it with "-" instead '
            f"({dashed!r}): both would use the database "
            f"{'nb_' + name!r}, so one notebook would drop the other's"
        )
    if not isinstance(name, str) or not _NAME.fullmatch(name) or len(name) > _MAX_NAME:
        raise InvalidInputError(
            f"notebook name {name[:80] if isinstance(name, str) else name!r} is not valid; use "
            f'up to {_MAX_NAME} lowercase letters, digits and "-", starting with a letter or '
            'digit, e.g. "01-engine-and-sessions"'
        )
    return "nb_" + name.replace("-", "_")


@dataclass
class Notebook:
    """A notebook's own database: its engine, a session factory and its URL (password hidden)."""

    name: str
    database: str
    # Left out of the repr: object addresses and socket paths would change on every run.
    engine: AsyncEngine = field(repr=False)
    sessions: async_sessionmaker[AsyncSession] = field(repr=False)
    url: str = field(repr=False)
    made_here: bool = field(default=True, repr=False)  # False: opened, someone else's data

    async def close(self, *, drop: bool = False) -> None:
        """Close the engine's connections; with ``drop=True`` also drop a tutorial's database.

        Raises:
            InvalidInputError: ``drop=True`` on a database ``open_database`` opened.
            NotOursError: the database no longer carries blogdata's marker (it is kept).
        """
        if drop and not self.made_here:
            raise InvalidInputError(
                f"{self.database} was opened for analysis, not made by tutorial_database; "
                "blogdata never drops it (close() without drop=True closes the connections)"
            )
        await self.engine.dispose()
        if _open.get(self.name) is self:
            del _open[self.name]
        if drop:
            await drop_database(self.engine.url.set(database="postgres"), self.database)


async def _release(name: str) -> None:
    """Dispose of the engine an earlier call opened under ``name``, if any."""
    previous = _open.pop(name, None)
    if previous is not None:
        await previous.engine.dispose()


def _remember(
    name: str, database: str, engine: AsyncEngine, url: URL, *, made_here: bool
) -> Notebook:
    """Build the ``Notebook`` for ``engine``, kept under ``name`` (%sql uses the latest)."""
    notebook = Notebook(
        name=name,
        database=database,
        engine=engine,
        sessions=create_sessionmaker(engine),
        url=url.render_as_string(hide_password=True),
        made_here=made_here,
    )
    _open[name] = notebook
    return notebook


async def open_database(url: str | URL | None = None, *, read: bool = False) -> Notebook:
    """Open an existing database for analysis; nothing is dropped, migrated or seeded.

    ``url`` defaults to the configured one (``BLOGDATA_DATABASE_URL``, else the embedded server).
    With ``read=True`` the connection is an analysis connection on the read server
    (``BLOGDATA_READ_URL``, or ``url``; else the primary): every transaction is READ ONLY and a
    write raises ``ReadOnlySessionError``. The server is asked ``SELECT 1`` first, so a wrong URL
    fails here, with a blogdata error.
    """
    if read:
        from blogdata.routing import create_read_engine, read_url

        engine = create_read_engine(url)
        resolved = engine.url if url is not None or read_url() is not None else resolve_url()
    else:
        resolved = resolve_url(url)
        engine = create_engine(resolved)
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except BaseException:
        await engine.dispose()
        raise
    database = resolved.database or "postgres"
    await _release(database)
    return _remember(database, database, engine, resolved, made_here=False)


async def tutorial_database(name: str, *, seed: int | None = 42, scale: float = 1.0) -> Notebook:
    """Give tutorial notebook ``name`` a fresh database: dropped, recreated, migrated, seeded.

    Only a database blogdata made is dropped and recreated (``create_database``'s marker); a
    database of that name that blogdata did not make is left untouched, and refused.

    Args:
        name: the notebook's name, e.g. ``"01-engine-and-sessions"``; the database is
            ``nb_01_engine_and_sessions`` on the configured server, else the embedded one.
        seed: the random seed for ``blogdata.seed.seed``; None leaves the tables empty.
        scale: multiplies the seeded users (200 at scale 1.0) and so every other table.

    Raises:
        InvalidInputError: the name or the scale is not valid.
        NotOursError: the database exists and blogdata did not make it (nothing is changed).
    """
    database = database_name(name)
    if isinstance(scale, bool) or not isinstance(scale, int | float) or not 0 < scale < math.inf:
        raise InvalidInputError(f"scale must be a positive number, got {scale!r}")
    await _release(name)  # re-running the setup cell: release the old pool first
    url = await create_database(resolve_url().set(database="postgres"), database)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        if seed is not None:
            from blogdata.seed import seed as seed_database

            await seed_database(engine, users=max(1, round(200 * scale)), seed=seed)
    except BaseException:
        await engine.dispose()
        raise
    return _remember(name, database, engine, url, made_here=True)


def _compiled(stmt: ClauseElement, literal: bool) -> Any:
    dialect = _asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
    if literal:
        return stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    # render_postcompile expands IN lists into one placeholder per value, as asyncpg sees them.
    return stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


def _tidy(sql: str) -> str:
    return "\n".join(line.rstrip() for line in sql.strip().splitlines())


def render_sql(stmt: ClauseElement, *, literal: bool = False) -> str:
    """Return the SQL asyncpg sends to PostgreSQL for ``stmt``, with its parameters.

    By default the SQL keeps its ``$1, $2 …`` placeholders and each parameter follows on a
    ``-- $n = value`` line; ``literal=True`` writes the values inline instead (for reading only,
    and only for types that can be rendered; otherwise the placeholder form is returned).
    """
    if literal:
        try:
            return _tidy(str(_compiled(stmt, True)))
        except (CompileError, NotImplementedError):
            pass
    compiled = _compiled(stmt, False)
    lines = [_tidy(str(compiled))]
    params = compiled.params
    for position, key in enumerate(compiled.positiontup or (), start=1):
        lines.append(f"-- ${position} = {params[key]!r}")
    return "\n".join(lines)


def show_sql(stmt: ClauseElement, *, literal: bool = False) -> None:
    """Print the SQL PostgreSQL will run for ``stmt``, with its parameters (see ``render_sql``)."""
    print(render_sql(stmt, literal=literal))  # noqa: T201 - printing is the point in a notebook


class _EchoFormatter(logging.Formatter):
    """SQLAlchemy's echo line without the timings, so that outputs repeat exactly."""

    _TIMING = re.compile(r"\[(generated in|cached since) [0-9.e-]+s( ago)?\]")

    def format(self, record: logging.LogRecord) -> str:
        return self._TIMING.sub(lambda m: f"[{m[1]} …]", super().format(record))


@contextmanager
def echo_sql(engine: AsyncEngine) -> Iterator[None]:
    """Print what ``echo=True`` logs for ``engine`` inside the block, without times or dates.

    SQLAlchemy's own echo handler prefixes each line with a timestamp and reports statement
    timings; this one prints the message only, to the current ``sys.stdout``.
    """
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_EchoFormatter("%(message)s"))
    others = logger.handlers[:]
    for other in others:  # e.g. the timestamped handler of an earlier echo=True engine
        logger.removeHandler(other)
    logger.addHandler(handler)  # before echo is switched on, so no default handler is added
    previous = engine.sync_engine.echo
    engine.sync_engine.echo = True
    try:
        yield
    finally:
        engine.sync_engine.echo = previous
        logger.removeHandler(handler)
        for other in others:
            logger.addHandler(other)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even inside a notebook's running event loop.

    Inside a running loop, nest-asyncio2 is applied to that loop on the first call (never on
    import), and the coroutine runs on it, so pooled connections stay valid. Without a running
    loop this is ``asyncio.run``.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        # Not asyncio.run: once nest-asyncio2 is applied anywhere it replaces asyncio.run with a
        # version that leaves its loop open. This loop is ours, and closed.
        own = asyncio.new_event_loop()
        try:
            return own.run_until_complete(coro)
        finally:
            own.run_until_complete(own.shutdown_asyncgens())
            own.close()
    import nest_asyncio2

    nest_asyncio2.apply(loop)  # idempotent: a patched loop is left as it is
    return loop.run_until_complete(coro)


def count_statements(
    target: AsyncEngine | AsyncConnection | AsyncSession,
) -> AbstractContextManager[Any]:
    """Count the SQL statements run through ``target`` in a ``with`` block (``blogdata.queries``).

    Usage: ``with count_statements(nb.engine) as counter: ...``, then ``counter.count``.
    """
    from blogdata.queries import count_statements as _count_statements

    manager: AbstractContextManager[Any] = _count_statements(target)
    return manager
