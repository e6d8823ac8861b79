"""Units of work: ``session_scope``, the guide's ``get_db``, ``SessionDep``, ``run_transaction``.

In FastAPI: ``async def create_post(db: SessionDep)`` (``from blogdata.db.sessions import
SessionDep``), or ``db: AsyncSession = Depends(get_db, scope="function")``; both commit before
the response is sent (see :func:`get_db`). Without an engine they use the default engine
(:func:`blogdata.db.engine.get_engine`). ``session_scope(read_only=True)`` opens a read session
(:mod:`blogdata.db.routing`).

``run_transaction(sessions, fn)`` is the unit of work that retries: it opens a session, begins (at
the isolation level asked for), awaits ``fn(session)``, commits, and when the database reports a
serialization failure or deadlock (SQLSTATE 40001, 40P01; ``RetryableConflictError``) runs the
whole unit again on a fresh session, by default up to 12 times, after a random wait under a
ceiling that doubles from 0.02 s to 2 s (exponential backoff with full jitter).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeAlias, TypeVar

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blogdata._checks import check_count, check_engine
from blogdata.db.engine import create_sessionmaker, get_engine
from blogdata.db.routing import read_session
from blogdata.errors import (
    RETRYABLE_SQLSTATES,
    DatabaseUnavailableError,
    InvalidInputError,
    RetryableConflictError,
)
from blogdata.translate import invalidate_connection, is_connection_lost, sqlstate_of, translating

__all__ = [
    "DEFAULT_RETRIES",
    "IsolationLevel",
    "get_db",
    "run_transaction",
    "session_scope",
]

IsolationLevel = Literal["READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE"]
_LEVELS: tuple[str, ...] = ("READ COMMITTED", "REPEATABLE READ", "SERIALIZABLE")

#: Default reruns of a transfer that owns its transaction, after SQLSTATE 40001/40P01. Twelve
#: waits of full jitter (ceilings 0.02 s doubling to 2 s) let 40 opposite transfers on one pair
#: of accounts all succeed under SERIALIZABLE on a loaded machine; three let 14-40% through
#: (tests/test_reliability.py, benchmarks/RESULTS.md).
DEFAULT_RETRIES = 12
#: Most reruns a caller may ask for.
MAX_RETRIES = 100
_BACKOFF_BASE = 0.01
_BACKOFF_CAP = 2.0


def _sessions(engine: AsyncEngine | None) -> async_sessionmaker[AsyncSession]:
    checked = check_engine(engine)
    return create_sessionmaker(checked if checked is not None else get_engine())


async def _quietly_rollback(session: AsyncSession) -> None:
    """Roll back ``session``; after a lost connection, discard the connection instead of failing."""
    try:
        await session.rollback()
    except Exception as exc:
        if not (is_connection_lost(exc, session) or isinstance(exc, DatabaseUnavailableError)):
            raise
        await invalidate_connection(session)
        await session.rollback()  # the transaction is gone with its connection: now a no-op


@asynccontextmanager
async def session_scope(
    engine: AsyncEngine | None = None, *, read_only: bool = False
) -> AsyncIterator[AsyncSession]:
    """Open one unit of work: commit on success, roll back on any exception.

    Usage: ``async with session_scope() as db: ...``; pass ``engine`` to use your own. A commit
    that fails is raised as blogdata's error (``ConnectionLostError`` if the connection was
    lost: run the unit of work again); the rollback and close after it never raise.
    ``read_only=True`` opens a read session on the read server instead (``BLOGDATA_READ_URL``,
    else the primary; see :mod:`blogdata.db.routing`): writes there raise ReadOnlySessionError.
    """
    if read_only:
        async with read_session(engine) as reader:
            yield reader
        return
    session = _sessions(engine)()
    try:
        try:
            yield session
            async with translating("committing the unit of work", connection=session):
                await session.commit()
        except BaseException:
            await _quietly_rollback(session)
            raise
    finally:
        try:
            await session.close()
        except Exception:  # only after a loss: the connection is discarded, not pooled
            await invalidate_connection(session)
            await session.close()


def _backoff(attempt: int) -> float:
    """Full jitter: a random wait up to an exponentially growing, capped ceiling."""
    return random.uniform(0, min(_BACKOFF_CAP, _BACKOFF_BASE * 2**attempt))


T = TypeVar("T")


async def run_transaction(
    sessions: async_sessionmaker[AsyncSession] | AsyncEngine | None,
    fn: Callable[[AsyncSession], Awaitable[T]],
    *,
    isolation_level: IsolationLevel | None = None,
    retries: int = DEFAULT_RETRIES,
) -> T:
    """Run ``fn(session)`` as one unit of work: begin, commit; rerun it all on 40001/40P01.

    Args:
        sessions: a session factory, an engine, or None for the default engine.
        fn: the unit of work; it may run several times, so keep side effects outside it.
        isolation_level: ``"READ COMMITTED"``, ``"REPEATABLE READ"`` or ``"SERIALIZABLE"``.
        retries: how many times (0 to 100) to run the unit again after a serialization failure
            or deadlock, each after a random wait under a ceiling doubling from 0.02 s to 2 s.

    Raises:
        RetryableConflictError: still conflicting after ``retries`` reruns.
        BlogdataError: whatever ``fn`` raised (nothing is committed then).
    """
    check_count(retries, "retries", maximum=MAX_RETRIES)
    if isolation_level is not None and isolation_level not in _LEVELS:
        raise InvalidInputError(
            f"isolation_level must be one of {_LEVELS}, got {isolation_level!r}"
        )
    if isinstance(sessions, async_sessionmaker):
        factory = sessions
    else:
        factory = create_sessionmaker(sessions if sessions is not None else get_engine())
    attempt = 0
    while True:
        attempt += 1
        try:
            async with translating("the statement"), factory() as db, db.begin():
                if isolation_level is not None:
                    await db.connection(execution_options={"isolation_level": isolation_level})
                return await fn(db)
        except RetryableConflictError as exc:
            if sqlstate_of(exc) in RETRYABLE_SQLSTATES and attempt <= retries:
                await asyncio.sleep(_backoff(attempt))
                continue
            raise


async def get_db() -> AsyncGenerator[AsyncSession, None]:
    """Yield a session that commits when the caller finishes and rolls back if it raises.

    The guide's dependency, usable with FastAPI's ``Depends`` without blogdata importing
    FastAPI. Declare it ``Depends(get_db, scope="function")`` (FastAPI >= 0.121.1), or use
    :data:`SessionDep`, which does: since FastAPI 0.118 the code after a dependency's
    ``yield`` runs *after the response has been sent* unless its scope is ``"function"``, so
    with a bare ``Depends(get_db)`` a commit that fails still answers 200. With
    ``scope="function"`` the commit runs before the response: a failed commit raises
    blogdata's error (e.g. ``AlreadyExistsError``), which FastAPI answers with a 500 unless
    the app maps it (an exception handler for ``BlogdataError``).
    """
    async with session_scope() as session:
        yield session


if TYPE_CHECKING:
    from fastapi import Depends

    #: ``Annotated[AsyncSession, Depends(get_db, scope="function")]``: FastAPI's session.
    SessionDep: TypeAlias = Annotated[AsyncSession, Depends(get_db, scope="function")]


def __getattr__(name: str) -> Any:
    """Build :data:`SessionDep` on first use, so importing blogdata never imports FastAPI."""
    if name == "SessionDep":
        from fastapi import Depends

        dependency = Annotated[AsyncSession, Depends(get_db, scope="function")]
        globals()[name] = dependency
        return dependency
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
