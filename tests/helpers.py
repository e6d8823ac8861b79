"""Helpers the tests import: databases of their own, one-off SQL, sessions, notebook scripts.

A plain module (fixtures live in ``conftest.py``, which pytest finds by itself; no test imports
it). ``create_database`` and ``drop_database`` are blogdata's own, re-exported here for the tests
that make their own databases.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from types import ModuleType

from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db import migrate
from blogdata.db.engine import create_database, create_engine, drop_database
from blogdata.servers import embedded, replica

__all__ = [
    "create_database",
    "drop_database",
    "execute_sql",
    "migrated_database",
    "notebook_script",
    "pooled_engine",
    "rolled_back_session",
    "scalar_sql",
]

REPO = Path(__file__).resolve().parents[1]


@asynccontextmanager
async def migrated_database(server: URL, prefix: str) -> AsyncIterator[URL]:
    """Create a uniquely named database on ``server``, migrate it to head, drop it afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    url = await create_database(server, name)
    try:
        await migrate.upgrade(url)
        yield url
    finally:
        await drop_database(server, name)


async def execute_sql(url: URL, *statements: str) -> None:
    """Run ``statements`` on ``url`` in one committed transaction, on a connection of their own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def scalar_sql(url: URL, sql: str) -> object:
    """Return the first value ``sql`` gives on ``url``, on a connection of its own."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return await conn.scalar(text(sql))
    finally:
        await engine.dispose()


@asynccontextmanager
async def pooled_engine(url: URL) -> AsyncIterator[AsyncEngine]:
    """A pooled engine on ``url``, disposed on exit."""
    eng = create_engine(url)
    try:
        yield eng
    finally:
        await eng.dispose()


@asynccontextmanager
async def rolled_back_session(eng: AsyncEngine) -> AsyncIterator[AsyncSession]:
    """A session joined to an outer transaction that is always rolled back on exit.

    With ``join_transaction_mode="create_savepoint"`` the code under test may commit or roll
    back: that only releases or rolls back a SAVEPOINT inside the outer transaction.
    """
    async with eng.connect() as conn:
        outer = await conn.begin()
        session = AsyncSession(
            bind=conn, join_transaction_mode="create_savepoint", expire_on_commit=False
        )
        try:
            yield session
        finally:
            await session.close()
            if outer.is_active:
                await outer.rollback()


def notebook_script(name: str) -> ModuleType:
    """Import ``notebooks/<name>.py`` (a script such as ``execute`` or ``docs``, not a package)."""
    path = REPO / "notebooks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"nb_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@contextmanager
def server_home(prefix: str, *, start: bool = True) -> Iterator[Path]:
    """A temporary folder for a primary (started unless ``start=False``) and its standby.

    Both servers are stopped and the folder deleted on the way out, whatever happened.
    """
    home = Path(tempfile.mkdtemp(prefix=prefix))
    home.chmod(0o755)  # ours: the servers' system user must traverse it
    try:
        if start:
            embedded.start(home)
        yield home
    finally:
        replica.stop(home)
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)
