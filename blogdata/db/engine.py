"""Engines: ``create_engine``, the default engine, and databases blogdata makes and drops.

Sessions and units of work (``session_scope``, ``get_db``, ``SessionDep``, ``run_transaction``)
live in :mod:`blogdata.db.sessions`, read engines in :mod:`blogdata.db.routing`.

No engine exists until one is asked for. The default engine (used by ``get_db`` and
``session_scope`` without arguments) is built once from the settings, or on the embedded server
when ``BLOGDATA_DATABASE_URL`` is unset; an asyncpg pool belongs to one event loop, so code that
calls ``asyncio.run`` more than once should pass its own engine, or call ``dispose_default_engine``.

Every engine made here also:

- turns a lost connection (server restart, ``pg_terminate_backend``, a dropped socket) into
  ``ConnectionLostError`` naming the server, and invalidates that connection (SQLAlchemy's
  ``handle_error`` hook), so no raw driver error escapes and no dead connection is reused;
- makes ``rollback()`` and ``close()`` after a loss succeed: a connection whose socket is
  already closed is invalidated instead of being sent a ROLLBACK;
- keeps password hashes out of its log lines at every echo level (``echo=True`` parameters and
  ``echo="debug"`` rows) and out of the parameters shown in SQLAlchemy's error messages.

After a ``DatabaseUnavailableError`` (``ConnectionLostError`` included) a caller with a session
of their own rolls it back (``await db.rollback()``, which does not raise) and runs the unit of
work again; ``session_scope`` and ``get_db`` do that rollback themselves.
"""

from __future__ import annotations

import inspect
import logging
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy import NullPool, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import dialect as pg_dialect
from sqlalchemy.engine import URL, Connection, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

from blogdata._checks import check_text
from blogdata._url import server_address
from blogdata.config import get_settings, parse_database_url
from blogdata.errors import (
    AlreadyExistsError,
    ConfigurationError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotOursError,
    PoolExhaustedError,
)
from blogdata.security import redact_password_hashes
from blogdata.servers.embedded import embedded_url
from blogdata.translate import (
    _driver_closed,
    is_connection_lost,
    sqlstate_of,
    translate_db_error,
    translating,
)

__all__ = [
    "create_database",
    "create_engine",
    "create_sessionmaker",
    "dispose_default_engine",
    "drop_database",
    "get_engine",
    "one_off_engine",
    "url_or_start_embedded",
]

_POOL_ARGS = ("pool_size", "max_overflow", "pool_timeout", "pool_recycle")


def url_or_start_embedded(url: str | URL | None = None) -> URL:
    """Return ``url``, else ``BLOGDATA_DATABASE_URL``, else start the embedded server: its URL."""
    if url is not None:
        return parse_database_url(url)
    configured = get_settings().url
    if configured is not None:
        return configured
    return embedded_url()


#: ``connect_args`` SQLAlchemy's asyncpg adapter takes itself; the others go to asyncpg.connect.
_ADAPTER_ARGS = frozenset({"prepared_statement_cache_size", "prepared_statement_name_func"})
_DRIVER_ARGS = frozenset(inspect.signature(asyncpg.connect).parameters) - {"dsn", "loop"}
_TLS_MODES = frozenset({"require", "verify-ca", "verify-full"})


def split_connect_args(connect_args: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``connect_args`` into the adapter's and asyncpg's; refuse a name neither takes."""
    if not isinstance(connect_args, dict):
        raise ConfigurationError(
            f"connect_args must be a dict of asyncpg.connect arguments, not "
            f"{type(connect_args).__name__}"
        )
    unknown = sorted(set(connect_args) - _DRIVER_ARGS - _ADAPTER_ARGS, key=str)
    if unknown:
        raise ConfigurationError(
            f"connect_args has {', '.join(repr(name) for name in unknown)}, which neither "
            "asyncpg.connect nor SQLAlchemy's asyncpg adapter takes; see asyncpg.connect's "
            "arguments (ssl, server_settings, command_timeout ...), or put the setting in the URL"
        )
    adapter = {k: v for k, v in connect_args.items() if k in _ADAPTER_ARGS}
    driver = {k: v for k, v in connect_args.items() if k not in _ADAPTER_ARGS}
    return adapter, driver


def _demands_tls(kwargs: dict[str, Any]) -> bool:
    """Return whether asyncpg is asked for TLS it must not go without (not just preferred)."""
    value = kwargs.get("ssl")
    if value is True or isinstance(value, ssl.SSLContext) or kwargs.get("direct_tls"):
        return True
    return isinstance(value, str) and value.strip().lower().replace("_", "-") in _TLS_MODES


def _check_tls_possible(kwargs: dict[str, Any], where: str) -> None:
    """Refuse TLS over a Unix socket: asyncpg would silently connect in plain text."""
    if not _demands_tls(kwargs):
        return
    host = kwargs.get("host")
    hosts = host if isinstance(host, list | tuple) else [host]
    if any(h is None or str(h).startswith("/") for h in hosts):
        raise ConfigurationError(
            f"TLS was demanded (connect_args ssl=...) for PostgreSQL at {where}, but a Unix "
            "socket carries no TLS and asyncpg would connect in plain text; connect over TCP "
            "(a host name or address in the URL) to use TLS, or drop ssl for a local socket"
        )


def _tls_error(exc: BaseException, where: str) -> ConfigurationError | None:
    """Return the ConfigurationError for a TLS failure while connecting, or None."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigurationError(
            f"TLS to PostgreSQL at {where} failed: the server's certificate was not accepted "
            f"({exc.verify_message or exc}); give connect_args={{'ssl': ...}} an SSLContext that "
            "trusts the server's CA (ssl.create_default_context(cafile=...)) and a host name "
            "the certificate names, or fix the server's certificate"
        )
    if isinstance(exc, ssl.SSLError):
        return ConfigurationError(
            f"TLS to PostgreSQL at {where} failed during the handshake ({exc}); check the "
            "SSLContext in connect_args and the server's ssl settings"
        )
    if "rejected SSL upgrade" in str(exc):
        return ConfigurationError(
            f"PostgreSQL at {where} does not accept TLS (its ssl setting is off), but "
            "connect_args demand it; turn ssl on in the server, or connect without ssl"
        )
    return None


def connector(url: URL, timeout: float, **extra: Any) -> Any:
    """Build an asyncpg connect function that fails fast and names the server it tried.

    ``extra`` goes to ``asyncpg.connect`` (e.g. ``statement_cache_size=0`` for PgBouncer, or
    the caller's ``connect_args``) and wins over what the URL says. TLS is never dropped: a
    demand for it over a Unix socket is refused (ConfigurationError), and a failed handshake
    or certificate check is a ConfigurationError naming TLS.
    """
    from sqlalchemy.dialects.postgresql.asyncpg import dialect

    _, kwargs = dialect().create_connect_args(url)  # type: ignore[no-untyped-call]
    kwargs.pop("async_creator_fn", None)
    kwargs.update(extra)
    kwargs.setdefault("timeout", timeout)
    where = server_address(url)
    _check_tls_possible(kwargs, where)

    async def connect() -> Any:
        try:
            return await asyncpg.connect(**kwargs)
        except asyncpg.ClientConfigurationError as exc:
            raise ConfigurationError(
                f"the connection settings for PostgreSQL at {where} are invalid ({exc}); fix "
                "connect_args or the URL's query"
            ) from exc
        except (
            OSError,
            TimeoutError,
            asyncpg.CannotConnectNowError,
            asyncpg.PostgresConnectionError,
            asyncpg.exceptions.OperatorInterventionError,
        ) as exc:
            tls = _tls_error(exc, where)
            if tls is not None:
                raise tls from exc
            fix = (
                "start that server, or unset BLOGDATA_DATABASE_URL to use the embedded one"
                if not where.startswith("the Unix socket")
                else "start it with `blogdata db start`"
            )
            raise DatabaseUnavailableError(
                f"cannot reach PostgreSQL at {where} ({exc.__class__.__name__}: {exc}); {fix}"
            ) from exc
        except asyncpg.InvalidCatalogNameError as exc:
            raise ConfigurationError(
                f"PostgreSQL at {where} has no database {url.database!r} ({exc}); create it "
                "(e.g. `createdb`), or fix the database name in the URL (BLOGDATA_DATABASE_URL)"
            ) from exc
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise ConfigurationError(
                f"PostgreSQL at {where} refused the login as {url.username!r} ({exc}); fix the "
                "user name or password in the URL (BLOGDATA_DATABASE_URL), or create that role"
            ) from exc

    return connect


class _HideHashes(logging.Filter):
    """Replace password hashes in SQLAlchemy's log lines: echoed parameters and debug rows."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "$" in message:
            clean = redact_password_hashes(message)
            if clean != message:
                record.msg, record.args = clean, None
        return True


_HIDE_HASHES = _HideHashes()


def _on_error(context: ExceptionContext) -> BaseException | None:
    """Hide hashes in the error's parameters; make a lost connection a ConnectionLostError."""
    wrapped = context.sqlalchemy_exception
    if wrapped is not None and wrapped.params is not None:
        shown = repr(wrapped.params)
        if redact_password_hashes(shown) != shown:
            wrapped.hide_parameters = True
    if context.is_pre_ping:  # a failed ping only makes the pool reconnect
        return None
    if context.is_disconnect or is_connection_lost(context.original_exception):
        context.is_disconnect = True  # SQLAlchemy then invalidates the connection
        url = context.engine.url if context.engine is not None else None
        return translate_db_error(context.original_exception, doing="a statement", connection=url)
    return None


def _discard_if_closed(conn: Connection, *args: Any) -> None:
    """Before a ROLLBACK, invalidate a connection whose socket is gone (so rollback succeeds)."""
    if not conn.invalidated and _driver_closed(conn):
        conn.invalidate()


def _harden(engine: AsyncEngine) -> AsyncEngine:
    sync = engine.sync_engine
    event.listen(sync, "handle_error", _on_error)
    event.listen(sync, "rollback", _discard_if_closed)
    event.listen(sync, "rollback_savepoint", _discard_if_closed)
    logger: Any = sync.logger  # a Logger, or an InstanceLogger wrapping one when echo is set
    underlying: logging.Logger = getattr(logger, "logger", logger)
    if _HIDE_HASHES not in underlying.filters:
        underlying.addFilter(_HIDE_HASHES)
    return engine


class _QueuePool(AsyncAdaptedQueuePool):
    """The async queue pool, whose checkout timeout says what happened and what to do."""

    def _do_get(self) -> ConnectionPoolEntry:
        try:
            return super()._do_get()
        except sa_exc.TimeoutError as exc:
            raise PoolExhaustedError(
                f"no database connection became free within {self._timeout:g} s: all "
                f"{self.size()} pooled and {self._max_overflow} overflow connections are in use. "
                "Close sessions as soon as their work is done (async with), run fewer tasks at "
                "once, or raise BLOGDATA_POOL_SIZE, BLOGDATA_MAX_OVERFLOW or BLOGDATA_POOL_TIMEOUT"
            ) from exc


def create_engine(url: str | URL | None = None, **overrides: Any) -> AsyncEngine:
    """Create an ``AsyncEngine`` on asyncpg with the pool options from the settings.

    The engine reports a lost connection as ``ConnectionLostError`` and never logs a password
    hash (see the module docstring).

    Args:
        url: a ``postgresql+asyncpg://`` URL; None means the settings, then the embedded server.
        **overrides: any ``create_async_engine`` argument, e.g. ``echo=True`` or
            ``poolclass=NullPool`` (which drops the pool-size options); ``pgbouncer=True``
            overrides ``BLOGDATA_PGBOUNCER``. ``connect_args`` go to ``asyncpg.connect``
            (``ssl``, ``server_settings``, ``command_timeout`` ...; they win over the URL's
            query) or to SQLAlchemy's adapter (``prepared_statement_cache_size``).

    Raises:
        ConfigurationError: ``connect_args`` names an argument asyncpg does not take, comes
            with ``async_creator``, or demands TLS over a Unix socket (which has none). A
            TLS handshake or certificate check that fails is a ConfigurationError naming TLS
            when the engine connects: TLS is never silently dropped.
    """
    settings = get_settings()
    resolved = url_or_start_embedded(url)
    options: dict[str, Any] = {
        "echo": settings.echo,
        "pool_pre_ping": settings.pool_pre_ping,
        "pool_size": settings.pool_size,
        "max_overflow": settings.max_overflow,
        "pool_timeout": settings.pool_timeout,
        "pool_recycle": settings.pool_recycle,
    }
    options.update(overrides)
    # A pool timeout becomes PoolExhaustedError (with advice) instead of SQLAlchemy's TimeoutError.
    options.setdefault("poolclass", _QueuePool)
    if options.get("poolclass") is NullPool:
        for name in _POOL_ARGS:
            options.pop(name, None)
    timeout = options.pop("connect_timeout", settings.connect_timeout)
    adapter_args, driver_args = split_connect_args(options.pop("connect_args", {}))
    custom = options.pop("async_creator", None)
    if custom is not None and driver_args:
        raise ConfigurationError(
            f"connect_args ({', '.join(sorted(driver_args))}) cannot be honoured with "
            "async_creator, which makes the connection itself; pass them to asyncpg.connect "
            "in your async_creator, or drop async_creator"
        )
    if options.pop("pgbouncer", settings.pgbouncer):
        connect = custom or connector(
            resolved, timeout, **{"statement_cache_size": 0, **driver_args}
        )
        return _pgbouncer_engine(resolved, connect, adapter_args, options)
    connect = custom or connector(resolved, timeout, **driver_args)
    return _engine(resolved, connect, adapter_args, options)


def _engine(
    url: URL, connect: Any, adapter_args: dict[str, Any], options: dict[str, Any]
) -> AsyncEngine:
    """Build the hardened engine whose connections come from ``connect``."""
    holder: list[AsyncEngine] = []

    def creator() -> Any:
        # async_creator would drop the adapter's arguments: pass them as SQLAlchemy does.
        return holder[0].sync_engine.dialect.dbapi.connect(  # type: ignore[union-attr]
            async_creator_fn=connect, **adapter_args
        )

    engine = _harden(_create_async_engine(url, creator=creator, **options))
    holder.append(engine)
    return engine


def _unique_statement_name() -> str:
    return f"__blogdata_{uuid.uuid4().hex}__"


def _pgbouncer_engine(
    url: URL, connect: Any, adapter_args: dict[str, Any], options: dict[str, Any]
) -> AsyncEngine:
    """Build an engine safe behind PgBouncer in transaction mode (``BLOGDATA_PGBOUNCER=true``).

    SQLAlchemy's documented asyncpg + PgBouncer recipe: no prepared-statement cache (neither
    SQLAlchemy's nor asyncpg's), a unique name for every prepared statement, and ``NullPool``
    (PgBouncer is the pool; pass ``poolclass=`` to override).
    """
    if "poolclass" not in options or options["poolclass"] is _QueuePool:
        options["poolclass"] = NullPool
    if options["poolclass"] is NullPool:
        for name in _POOL_ARGS:
            options.pop(name, None)
    adapter = {
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": _unique_statement_name,
        **adapter_args,
    }
    return _engine(url, connect, adapter, options)


@asynccontextmanager
async def one_off_engine(
    url: str | URL | None = None, **overrides: Any
) -> AsyncIterator[AsyncEngine]:
    """Yield an engine for one job, without a pool (``NullPool``), disposed of on exit.

    For commands and helpers that connect once or twice and are done; ``overrides`` go to
    :func:`create_engine` (e.g. ``isolation_level="AUTOCOMMIT"``).
    """
    engine = create_engine(url, poolclass=NullPool, **overrides)
    try:
        yield engine
    finally:
        await engine.dispose()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Return a session factory for ``engine`` with ``expire_on_commit=False``."""
    return async_sessionmaker(engine, expire_on_commit=False)


_default: dict[str, Any] = {}


def get_engine() -> AsyncEngine:
    """Return the process-wide default engine, creating it on first use."""
    if "engine" not in _default:
        engine = create_engine()
        _default["engine"] = engine
        _default["sessions"] = create_sessionmaker(engine)
    engine_: AsyncEngine = _default["engine"]
    return engine_


async def dispose_default_engine() -> None:
    """Close the default engine's connections and forget it (the next use builds a new one)."""
    engine: AsyncEngine | None = _default.pop("engine", None)
    _default.pop("sessions", None)
    if engine is not None:
        await engine.dispose()


#: The comment blogdata puts on every database it creates: its proof of ownership. Only a
#: database whose comment starts with it is ever dropped by ``create_database``/``drop_database``.
DATABASE_MARKER = "made by blogdata"
_MARK = (
    f"{DATABASE_MARKER}: its create_database and drop_database may drop and recreate it; "
    "remove this comment to keep them away"
)
_MARK_LITERAL = "'" + _MARK.replace("'", "''") + "'"  # COMMENT takes no bound parameters


@asynccontextmanager
async def _administer(server: URL, doing: str) -> AsyncIterator[Any]:
    """Yield one AUTOCOMMIT connection to ``server`` (CREATE/DROP DATABASE need it)."""
    async with (
        one_off_engine(server, isolation_level="AUTOCOMMIT") as admin,
        admin.connect() as conn,
        translating(doing, connection=conn),
    ):
        yield conn  # an AsyncConnection


async def _owned(conn: Any, name: str) -> bool | None:
    """Return None if database ``name`` does not exist, else whether it carries the marker."""
    found = (
        await conn.execute(
            text(
                "SELECT coalesce(shobj_description(oid, 'pg_database'), '') "
                "FROM pg_database WHERE datname = :n"
            ),
            {"n": name},
        )
    ).first()
    return None if found is None else str(found[0]).startswith(DATABASE_MARKER)


def _not_ours(name: str, server: URL, doing: str) -> Exception:

    quoted = _quoted(name)
    return NotOursError(
        f"database {name!r} on {server_address(server)} exists but blogdata did not make it "
        f"(it has no {DATABASE_MARKER!r} comment), so blogdata will not {doing} it; choose "
        "another name, or drop it yourself if it is no longer needed "
        f"(DROP DATABASE {quoted}; one made by a blogdata older than this check has no such "
        "comment either)"
    )


def _created_meanwhile(exc: Exception, name: str) -> Exception | None:
    """Return a clear error if database ``name`` appeared since it was checked, else None."""
    if sqlstate_of(exc) not in ("42P04", "23505"):  # duplicate_database; pg_database's index
        return None
    return AlreadyExistsError(
        f"database {name!r} was created by someone else while blogdata was creating it; run "
        "again (blogdata then checks whether it made that one), or choose another name"
    )


_MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1; longer names are silently cut


def _quoted(name: object) -> str:
    """Return database ``name`` checked (1-63 bytes, no NUL) and quoted as an identifier."""
    checked = check_text(name, "database name")
    if not 0 < len(checked.encode()) <= _MAX_IDENTIFIER_BYTES:
        raise InvalidInputError(
            f"database name {checked[:80]!r} must be 1 to {_MAX_IDENTIFIER_BYTES} bytes long "
            "(PostgreSQL would silently cut a longer one)"
        )
    return str(pg_dialect().identifier_preparer.quote_identifier(checked))  # type: ignore[no-untyped-call]


async def create_database(server: str | URL, name: str) -> URL:
    """Create an empty database ``name``, marked as blogdata's; return its URL.

    An old database of that name is dropped first only if blogdata made it (its comment starts
    with :data:`DATABASE_MARKER`); users still connected to it are disconnected (``FORCE``).
    ``server`` is the URL of another database on the same server (e.g. ``postgres``), where the
    commands run. The check, the drop, the creation and the marker run one after the other on
    one connection. PostgreSQL runs neither CREATE nor DROP DATABASE inside a transaction, so
    they are not one atomic unit: a database dropped and recreated by someone else between the
    check and the drop would be dropped; of two calls at once for one name, one may fail with
    ``AlreadyExistsError`` or ``NotOursError`` (run it again); and if the connection is lost
    between ``CREATE DATABASE`` and the marker, the new, empty database stays unmarked and is
    refused afterwards (drop it yourself).

    Raises:
        InvalidInputError: ``name`` is not 1 to 63 bytes of text without NUL.
        NotOursError: a database ``name`` exists without blogdata's marker (nothing is changed).
        AlreadyExistsError: someone else created database ``name`` at the same moment.
        DatabaseUnavailableError: the server cannot be reached.
    """
    url = url_or_start_embedded(server)
    quoted = _quoted(name)
    async with _administer(url, f"creating database {name!r}") as conn:
        owned = await _owned(conn, name)
        if owned is False:
            raise _not_ours(name, url, "drop and recreate")
        if owned:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
        try:
            await conn.execute(text(f"CREATE DATABASE {quoted}"))
        except Exception as exc:
            meanwhile = _created_meanwhile(exc, name)
            if meanwhile is None:
                raise
            raise meanwhile from exc
        await conn.execute(text(f"COMMENT ON DATABASE {quoted} IS {_MARK_LITERAL}"))
    return url.set(database=name)


async def drop_database(server: str | URL, name: str) -> None:
    """Drop database ``name`` if blogdata made it, disconnecting anyone still in it.

    A missing database is not an error (nothing to do). ``server`` is the URL of another
    database on the same server, where the command runs; the check and the drop share one
    connection.

    Raises:
        InvalidInputError: ``name`` is not 1 to 63 bytes of text without NUL.
        NotOursError: database ``name`` lacks blogdata's marker (it is left as it is).
        DatabaseUnavailableError: the server cannot be reached.
    """
    url = url_or_start_embedded(server)
    quoted = _quoted(name)
    async with _administer(url, f"dropping database {name!r}") as conn:
        owned = await _owned(conn, name)
        if owned is False:
            raise _not_ours(name, url, "drop")
        if owned:
            await conn.execute(text(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)"))
