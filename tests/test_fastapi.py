"""get_db in a real FastAPI app (issue 17, defect 13): the commit happens before the response.

The app runs in-process through ``httpx.ASGITransport``. A probe around the app looks at the
database from another connection at the moment the response starts: a row committed by then
was committed before the client could see the answer. A commit that fails is made with a
deferred unique constraint (checked only at COMMIT).

Before the fix, blogdata's documented way (``Depends(get_db)``) committed after the response
had been sent (FastAPI >= 0.118 runs a yield dependency's exit code then, unless its scope is
"function"), so a failed commit answered 200; the guide's own dependency still does, shown
below as the flaw blogdata's way avoids.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Annotated, Any

import httpx
import pytest
from fastapi import Depends, FastAPI
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.config import get_settings
from blogdata.db import sessions
from blogdata.db.engine import create_engine, create_sessionmaker, dispose_default_engine
from blogdata.db.sessions import get_db
from tests.helpers import execute_sql, scalar_sql

PROBE = "fastapi_probe"
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]], Any]


@pytest.fixture
async def app_database(scratch_url: URL, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[URL]:
    """A scratch database with a deferred unique key, made get_db's default database."""
    await execute_sql(
        scratch_url, f"CREATE TABLE {PROBE} (k int UNIQUE DEFERRABLE INITIALLY DEFERRED)"
    )
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", scratch_url.render_as_string(hide_password=False))
    get_settings(reload=True)
    await dispose_default_engine()
    try:
        yield scratch_url
    finally:
        await dispose_default_engine()
        monkeypatch.undo()
        get_settings(reload=True)


def _guide_get_db(url: URL) -> Callable[[], AsyncIterator[AsyncSession]]:
    """The guide's dependency: commit after ``yield``, with FastAPI's default scope."""
    engine = create_engine(url, poolclass=NullPool)
    sessions = create_sessionmaker(engine)

    async def guide_get_db() -> AsyncIterator[AsyncSession]:
        async with sessions() as db:
            try:
                yield db
                await db.commit()
            except Exception:
                await db.rollback()
                raise

    return guide_get_db


def _app(url: URL) -> FastAPI:
    app = FastAPI()
    guide = _guide_get_db(url)

    async def insert(db: AsyncSession, key: int, twice: bool) -> dict[str, bool]:
        for _ in range(2 if twice else 1):
            await db.execute(text(f"INSERT INTO {PROBE} VALUES (:k)"), {"k": key})
        return {"ok": True}  # the duplicate is only caught at COMMIT

    @app.post("/session-dep/{key}")
    async def with_session_dep(key: int, db: sessions.SessionDep, twice: bool = False) -> Any:
        return await insert(db, key, twice)

    @app.post("/function-scope/{key}")
    async def with_function_scope(
        key: int,
        db: Annotated[AsyncSession, Depends(get_db, scope="function")],
        twice: bool = False,
    ) -> Any:
        return await insert(db, key, twice)

    @app.post("/guide/{key}")
    async def with_guide_dependency(
        key: int,
        twice: bool = False,
        db: AsyncSession = Depends(guide),  # noqa: B008 - the guide's style; a local name
    ) -> Any:
        return await insert(db, key, twice)

    return app


async def _rows(url: URL, key: int) -> int:
    count = await scalar_sql(url, f"SELECT count(*) FROM {PROBE} WHERE k = {key}")
    assert isinstance(count, int)
    return count


async def _post(url: URL, path: str, key: int, *, twice: bool) -> tuple[int, int]:
    """POST through httpx in-process; return the status and the rows committed at its start."""
    seen: list[int] = []
    app = _app(url)

    async def probing(scope: Scope, receive: Any, send: Any) -> None:
        async def send_and_probe(message: Message) -> None:
            if message["type"] == "http.response.start":
                seen.append(await _rows(url, key))  # what a client acting on the answer sees
            await send(message)

        await app(scope, receive, send_and_probe)

    transport = httpx.ASGITransport(app=probing, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://app") as client:
        response = await client.post(f"{path}/{key}", params={"twice": twice})
    return response.status_code, seen[0]


BLOGDATA_WAYS = ["/session-dep", "/function-scope"]


@pytest.mark.parametrize("path", BLOGDATA_WAYS)
async def test_a_failed_commit_answers_5xx_and_commits_nothing(
    app_database: URL, path: str
) -> None:
    status, _ = await _post(app_database, path, 1, twice=True)
    assert status >= 500
    assert await _rows(app_database, 1) == 0


@pytest.mark.parametrize("path", BLOGDATA_WAYS)
async def test_a_good_request_is_committed_before_its_response_starts(
    app_database: URL, path: str
) -> None:
    status, committed_when_answered = await _post(app_database, path, 2, twice=False)
    assert status == 200
    assert committed_when_answered == 1


async def test_the_guides_dependency_answers_200_to_a_commit_that_failed(
    app_database: URL,
) -> None:
    # The flaw blogdata's way avoids: the commit runs after the response has been sent.
    status, _ = await _post(app_database, "/guide", 3, twice=True)
    assert status == 200
    assert await _rows(app_database, 3) == 0
    status, committed_when_answered = await _post(app_database, "/guide", 4, twice=False)
    assert status == 200
    assert committed_when_answered == 0  # answered before its commit
    assert await _rows(app_database, 4) == 1


def test_session_dep_is_built_on_first_use_so_importing_blogdata_never_imports_fastapi() -> None:
    import subprocess
    import sys

    code = (
        "import sys, blogdata, blogdata.db.sessions as d; "
        "assert 'fastapi' not in sys.modules; "
        "dep = d.SessionDep; "
        "assert dep.__metadata__[0].scope == 'function', dep; "
        "assert dep.__metadata__[0].dependency is d.get_db"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
