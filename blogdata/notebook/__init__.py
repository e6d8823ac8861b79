"""Jupyter: open a database, make a tutorial's own, the engine ``%sql`` uses, ``run``.

Two ways to get a database, named for what they do:

- ``await open_database()`` opens an existing database for analysis (the configured one, or the
  URL given) and never drops, migrates or seeds anything;
- ``await tutorial_database("01-engine-and-sessions")`` drops and recreates the database
  ``nb_01_engine_and_sessions`` on the configured server (``BLOGDATA_DATABASE_URL``, else the
  embedded one), migrates it with Alembic and seeds it deterministically, so a tutorial never sees
  another's leftovers and gives the same outputs on every run, in any order, in parallel. It
  drops only a database blogdata made (marked, see ``blogdata.db.engine.create_database``): an
  ``nb_...`` database of someone else's is refused with ``NotOursError`` and left untouched.

Either is where ``%sql`` then runs. Both entry points own their transactions (the seed commits).

Notebooks ``await`` at top level; ``run`` is only for code that cannot (a sync function that must
call async code). It applies nest-asyncio2 to the running loop on its first call, never on import.
"""

from __future__ import annotations

import asyncio
import math
import re
import sys
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)

from blogdata import seed as seeding
from blogdata.db import migrate
from blogdata.db.engine import (
    create_database,
    create_engine,
    create_sessionmaker,
    drop_database,
    get_engine,
    url_or_start_embedded,
)
from blogdata.db.routing import create_read_engine, read_url
from blogdata.errors import InvalidInputError

__all__ = [
    "Notebook",
    "open_database",
    "tutorial_database",
    "database_name",
    "current_engine",
    "run",
    "use_engine",
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
        engine = create_read_engine(url)
        resolved = (
            engine.url if url is not None or read_url() is not None else url_or_start_embedded()
        )
    else:
        resolved = url_or_start_embedded(url)
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
    url = await create_database(url_or_start_embedded().set(database="postgres"), database)
    engine = create_engine(url)
    try:
        await migrate.upgrade(engine)
        if seed is not None:
            await seeding.seed(engine, users=max(1, round(200 * scale)), random_seed=seed)
    except BaseException:
        await engine.dispose()
        raise
    return _remember(name, database, engine, url, made_here=True)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to completion from sync code, even inside a notebook's running event loop.

    The one sync bridge (``%sql`` uses it too). Inside a running loop, nest-asyncio2 is applied to
    that loop on the first call (never on import) and the coroutine runs on it, so pooled
    connections stay valid; in a plain IPython shell it runs on the loop IPython's top-level
    ``await`` uses; elsewhere on a fresh loop of its own, closed afterwards. Ctrl-C cancels the
    coroutine (the loaders then cancel the query on the server) before it is raised.
    """
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        shell_loop = _ipython_loop()
        if shell_loop is None:
            # Not asyncio.run: once nest-asyncio2 is applied anywhere it replaces asyncio.run
            # with a version that leaves its loop open. This loop is ours, and closed.
            own = asyncio.new_event_loop()
            try:
                return own.run_until_complete(coro)
            finally:
                own.run_until_complete(own.shutdown_asyncgens())
                own.close()
        loop = shell_loop
    else:
        import nest_asyncio2  # third-party, applied only when a sync caller needs it

        nest_asyncio2.apply(loop)  # idempotent: a patched loop is left as it is
    task = loop.create_task(coro)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        raise


def _ipython_loop() -> asyncio.AbstractEventLoop | None:
    """Return the loop a running IPython shell's top-level ``await`` uses (None outside IPython)."""
    if "IPython" not in sys.modules:  # never import IPython (heavy) just to find out
        return None
    from IPython import get_ipython  # third-party: already loaded, see above
    from IPython.core.async_helpers import get_asyncio_loop

    if get_ipython() is None:
        return None
    loop: asyncio.AbstractEventLoop = get_asyncio_loop()  # type: ignore[no-untyped-call]
    return loop


_chosen: dict[str, AsyncEngine] = {}


def use_engine(engine: AsyncEngine | None) -> None:
    """Make ``%sql`` run on ``engine`` (None: back to the notebook's or the configured one)."""
    if engine is None:
        _chosen.clear()
    else:
        _chosen["engine"] = engine


def current_engine() -> AsyncEngine:
    """Return the engine ``%sql`` runs on: ``use_engine``'s, the latest notebook's, the default."""
    if "engine" in _chosen:
        return _chosen["engine"]
    opened = list(_open.values())
    return opened[-1].engine if opened else get_engine()
