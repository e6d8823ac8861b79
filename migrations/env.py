"""Alembic environment (async), from Alembic's ``pyproject_async`` template.

The URL comes from blogdata's settings (``BLOGDATA_DATABASE_URL``, else the embedded server), or
from ``sqlalchemy.url`` when a caller sets it. Code that already holds a connection passes it in
``config.attributes["connection"]`` and the migrations run on it, inside its transaction.
"""

from __future__ import annotations

import asyncio
import logging
from logging.config import fileConfig
from pathlib import Path

from alembic import context
from sqlalchemy import NullPool
from sqlalchemy.engine import Connection

from blogdata.db.engine import create_engine, url_or_start_embedded
from blogdata.db.migrate import CONFIGURE_OPTIONS
from blogdata.models import Base

config = context.config
if config.attributes.get("configure_logger", True):
    # The `alembic` command: log like Alembic's own ini would, without needing an alembic.ini.
    if config.config_file_name is not None and Path(config.config_file_name).exists():
        fileConfig(config.config_file_name, disable_existing_loggers=False)
    else:
        logging.basicConfig(format="%(levelname)-5.5s [%(name)s] %(message)s")
        logging.getLogger("alembic").setLevel(logging.INFO)

target_metadata = Base.metadata


def _url() -> str | None:
    # Without an alembic.ini there is no main section: the settings decide the URL.
    if not config.file_config.has_section(config.config_ini_section):
        return None
    return config.get_main_option("sqlalchemy.url") or None


def run_migrations_offline() -> None:
    """Emit the migration SQL as a script, without connecting."""
    context.configure(
        url=_url() or "postgresql+asyncpg:///blogdata",
        target_metadata=target_metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        **CONFIGURE_OPTIONS,
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, **CONFIGURE_OPTIONS)
    with context.begin_transaction():
        context.run_migrations()


async def run_async_migrations() -> None:
    engine = create_engine(url_or_start_embedded(_url()), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
            await connection.commit()
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        asyncio.run(run_async_migrations())
    else:
        do_run_migrations(connection)


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
