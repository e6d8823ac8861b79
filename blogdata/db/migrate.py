"""Alembic from Python: ``upgrade``, ``downgrade``, ``current`` and ``check``, all awaitable.

Alembic's commands call ``asyncio.run``, which fails inside a running loop (a notebook, pytest,
an app). These helpers open the connection themselves and hand it to ``migrations/env.py``
through ``config.attributes["connection"]``, so they work from async code. The scripts are found
through the installed package (``blogdata.migrations``), so a wheel install works too.

An unknown revision raises ``InvalidInputError``; a database error while migrating is translated
like any other (``QueryError``, ``ConnectionLostError`` ...).
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.script.revision import RevisionError
from alembic.util import CommandError
from sqlalchemy import NullPool
from sqlalchemy.engine import URL, Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from blogdata.db.engine import create_engine
from blogdata.errors import InvalidInputError
from blogdata.models import Base
from blogdata.translate import translating

__all__ = [
    "CONFIGURE_OPTIONS",
    "alembic_config",
    "check",
    "current",
    "downgrade",
    "head",
    "upgrade",
]

#: Options shared by env.py and ``check`` so that ``alembic check`` and ours agree.
CONFIGURE_OPTIONS: dict[str, Any] = {"compare_type": True, "compare_server_default": True}

Target = str | URL | AsyncEngine | AsyncConnection | None


def alembic_config(url: str | URL | None = None) -> Config:
    """Return an Alembic ``Config`` pointing at blogdata's migrations (no alembic.ini needed)."""
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(str(files("blogdata.migrations")))))
    if url is not None:
        rendered = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
        cfg.set_main_option("sqlalchemy.url", rendered.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    return cfg


def head() -> str:
    """Return the newest revision id of blogdata's migrations."""
    heads = ScriptDirectory.from_config(alembic_config()).get_heads()
    return heads[0]


async def _on_connection(target: Target, work: Callable[[Connection], Any]) -> Any:
    """Run ``work`` on a sync connection of ``target``, committing when we own the transaction."""
    if isinstance(target, AsyncConnection):
        async with translating("migrating", connection=target):
            return await target.run_sync(work)
    if isinstance(target, AsyncEngine):
        engine = target
    else:
        engine = create_engine(target, poolclass=NullPool)
    try:
        async with engine.begin() as conn, translating("migrating", connection=conn):
            return await conn.run_sync(work)
    finally:
        if engine is not target:
            await engine.dispose()


def _command(fn: Callable[..., Any], revision: str) -> Callable[[Connection], None]:
    def work(connection: Connection) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = connection
        try:
            fn(cfg, revision)
        except (CommandError, RevisionError) as exc:
            raise InvalidInputError(
                f"cannot migrate to {revision!r}: {exc}; use head, base, a relative step such "
                "as -1, or a revision id from `alembic history`"
            ) from exc

    return work


async def upgrade(url: Target = None, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (default: settings, then embedded) to ``revision``."""
    await _on_connection(url, _command(command.upgrade, revision))


async def downgrade(url: Target = None, revision: str = "-1") -> None:
    """Downgrade the database at ``url`` to ``revision`` (``"base"`` removes every table)."""
    await _on_connection(url, _command(command.downgrade, revision))


async def current(url: Target = None) -> str | None:
    """Return the revision the database is at, or None if it has never been migrated."""

    def work(connection: Connection) -> str | None:
        rev: str | None = MigrationContext.configure(connection).get_current_revision()
        return rev

    result: str | None = await _on_connection(url, work)
    return result


async def check(url: Target = None) -> list[str]:
    """Return the differences between the models and the migrated database; empty means none."""

    def work(connection: Connection) -> list[str]:
        ctx = MigrationContext.configure(connection, opts=CONFIGURE_OPTIONS)
        return [repr(diff) for diff in compare_metadata(ctx, Base.metadata)]

    result: list[str] = await _on_connection(url, work)
    return result
