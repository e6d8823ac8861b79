"""No password or password hash in a log line, a message or a repr, whatever the echo level."""

from __future__ import annotations

import logging
import traceback
from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata import crud
from blogdata.bulk import create_users, insert_hashed_users
from blogdata.config import Settings, get_settings, parse_database_url
from blogdata.db.engine import create_engine
from blogdata.errors import AlreadyExistsError, ConfigurationError
from blogdata.models import User
from blogdata.schemas import UserCreate
from blogdata.security import get_password_hash, redact_password_hashes
from tests.helpers import rolled_back_session

PASSWORD = "Plain-Secret-9431"


@pytest.fixture(params=[True, "debug"], ids=["echo-true", "echo-debug"])
async def echoing(request: pytest.FixtureRequest, database_url: URL) -> AsyncIterator[AsyncEngine]:
    """An engine with ``echo=True`` or ``echo="debug"`` on the run's database."""
    engine = create_engine(database_url, echo=request.param)
    try:
        yield engine
    finally:
        await engine.dispose()


def _assert_no_hash(text: str, *hashes: str) -> None:
    assert "$argon2" not in text
    for hashed in hashes:
        assert hashed not in text
    assert PASSWORD not in text


async def _hashes(db: AsyncSession) -> list[str]:
    return list((await db.scalars(select(User.hashed_password))).all())


async def test_echo_never_logs_a_hash_while_creating_updating_and_authenticating_users(
    echoing: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    async with rolled_back_session(echoing) as db:
        with caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"):
            user = await crud.user.create(
                db,
                obj_in=UserCreate(email="echo@example.com", username="echoer", password=PASSWORD),
            )
            await crud.user.update(db, db_obj=user, obj_in={"password": PASSWORD + "-new"})
            assert await crud.user.authenticate(
                db, email="echo@example.com", password=PASSWORD + "-new"
            )
            await create_users(
                db,
                [
                    UserCreate(email=f"bulk{i}@example.com", username=f"bulk{i}", password=PASSWORD)
                    for i in range(3)
                ],
            )
        hashes = await _hashes(db)
    assert len(hashes) == 4
    assert "INSERT INTO users" in caplog.text and "UPDATE users" in caplog.text  # it did log
    if echoing.sync_engine.echo == "debug":
        assert "Row (" in caplog.text  # rows were logged, their hashes hidden
    _assert_no_hash(caplog.text, *hashes)


async def test_debug_logging_without_echo_hides_hashes_too(
    engine: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    # Logging configured the usual way (no echo): connections made now log at DEBUG.
    with caplog.at_level(logging.DEBUG, logger="sqlalchemy.engine"):
        async with rolled_back_session(engine) as db:
            await crud.user.create(
                db,
                obj_in=UserCreate(email="quiet@example.com", username="quiet", password=PASSWORD),
            )
            found = (await db.scalars(select(User).where(User.username == "quiet"))).one()
            await db.execute(select(User.hashed_password))
    assert "INSERT INTO users" in caplog.text and "Row (" in caplog.text
    _assert_no_hash(caplog.text, found.hashed_password)


async def test_a_database_error_never_shows_the_hash_among_its_parameters(
    db: AsyncSession,
) -> None:
    hashed = get_password_hash(PASSWORD)
    row = {"email": "twice@example.com", "username": "twice", "hashed_password": hashed}
    await insert_hashed_users(db, [row])
    with pytest.raises(AlreadyExistsError) as info:
        await insert_hashed_users(db, [row], check_duplicates=False)
    shown = "".join(traceback.format_exception(info.value))
    assert "INSERT INTO users" in shown  # the chained SQLAlchemy error is part of it
    _assert_no_hash(shown, hashed)


def test_redact_password_hashes_hides_argon2_and_bcrypt_and_keeps_other_dollars() -> None:
    text = repr(("$2b$12$abcdefghijklmnopqrstuv", get_password_hash("x"), "costs $5"))
    clean = redact_password_hashes(text)
    assert "$2b$" not in clean and "$argon2" not in clean and "costs $5" in clean


# --- the database URL: never quoted back ----------------------------------------------------

SECRET_PARTS = ("alice", "Qx7v", "Zr8k", "db-server-7", "salesdb")

BAD_URLS = {
    "bare-postgresql": "postgresql://alice:Qx7v@db-server-7/salesdb",
    "garbage": "not a url alice Qx7v",
    "unencoded-at-in-password": "postgresql+asyncpg://alice:Qx7v@Zr8k@db-server-7/salesdb",
    "unencoded-at-in-user": "postgresql+asyncpg://alice@Zr8k:Qx7v@db-server-7/salesdb",
    "slash-and-at": "postgresql+asyncpg://alice:Qx7v@Zr8k/x@db-server-7/salesdb",
    "port-not-a-number": "postgresql+asyncpg://alice:Qx7v@db-server-7:Zr8k/salesdb",
}


def _assert_quotes_nothing(err: BaseException) -> None:
    for text in (str(err), repr(err), "".join(traceback.format_exception(err))):
        for part in SECRET_PARTS:
            assert part not in text, (part, text)


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_settings_built_directly_refuse_a_bad_url_without_quoting_it(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        Settings(database_url=url)
    _assert_quotes_nothing(info.value)
    assert "BLOGDATA_DATABASE_URL" in str(info.value)


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
def test_a_bad_url_from_the_environment_is_refused_without_quoting_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", url)
    try:
        with pytest.raises(ConfigurationError) as info:
            get_settings(reload=True)
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
    _assert_quotes_nothing(info.value)


@pytest.mark.parametrize(
    "url",
    [BAD_URLS["unencoded-at-in-password"], BAD_URLS["unencoded-at-in-user"]],
    ids=["password", "user"],
)
def test_an_ambiguous_userinfo_is_refused_with_advice_on_percent_encoding(url: str) -> None:
    with pytest.raises(ConfigurationError, match="percent-encode '@'.*%40") as info:
        parse_database_url(url)
    _assert_quotes_nothing(info.value)


def test_a_non_numeric_port_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="port that is not a number") as info:
        parse_database_url(BAD_URLS["port-not-a-number"])
    _assert_quotes_nothing(info.value)


def test_a_percent_encoded_at_sign_is_accepted() -> None:
    url = parse_database_url("postgresql+asyncpg://alice%40corp:Qx7v%40Zr8k@db-server-7/salesdb")
    assert (url.username, url.password, url.host) == ("alice@corp", "Qx7v@Zr8k", "db-server-7")


def test_a_bad_number_given_directly_names_the_variable_not_the_value() -> None:
    values: dict[str, Any] = {"pool_size": "Zr8k"}
    with pytest.raises(ConfigurationError, match="BLOGDATA_POOL_SIZE") as info:
        Settings(**values)
    _assert_quotes_nothing(info.value)
