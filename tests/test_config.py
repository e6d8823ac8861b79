"""Settings: URL validation, pool defaults, and no password anywhere it could leak."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from blogdata.config import Settings, get_settings, parse_database_url
from blogdata.errors import ConfigurationError

SECRET = "s3cr3t-pw"


SetEnv = Callable[..., None]


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[SetEnv]:
    """Set BLOGDATA_* variables for one test and re-read the settings afterwards."""

    def set_env(**values: str) -> None:
        for key, value in values.items():
            monkeypatch.setenv(f"BLOGDATA_{key.upper()}", value)

    yield set_env
    monkeypatch.undo()
    get_settings(reload=True)


def test_pool_defaults_follow_the_guides_performance_section() -> None:
    settings = Settings()
    assert (settings.pool_size, settings.max_overflow) == (20, 10)
    assert (settings.pool_timeout, settings.pool_recycle, settings.pool_pre_ping) == (
        30,
        1800,
        True,
    )


def test_an_asyncpg_url_is_accepted_and_its_password_hidden(env: SetEnv) -> None:
    env(database_url=f"postgresql+asyncpg://app:{SECRET}@db.example:6543/blog", pool_size="5")
    settings = get_settings(reload=True)
    assert settings.url is not None
    assert settings.url.port == 6543 and settings.url.database == "blog"
    assert settings.pool_size == 5
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert SECRET not in str(settings.url)


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://app:{SECRET}@db/blog",
        f"postgresql+psycopg://app:{SECRET}@db/blog",
        f"mysql+aiomysql://app:{SECRET}@db/blog",
        f"sqlite+aiosqlite:///{SECRET}.db",
        f"not a url {SECRET}",
    ],
    ids=["bare-postgresql-means-psycopg", "psycopg", "mysql", "sqlite", "garbage"],
)
def test_a_url_that_is_not_postgresql_asyncpg_is_refused_without_echoing_it(
    env: SetEnv, url: str
) -> None:
    env(database_url=url)
    with pytest.raises(ConfigurationError) as info:
        get_settings(reload=True)
    message = str(info.value)
    assert "postgresql+asyncpg://" in message
    assert SECRET not in message


def test_bare_postgresql_url_explains_the_psycopg_default() -> None:
    with pytest.raises(ConfigurationError, match="psycopg"):
        parse_database_url("postgresql://u@h/d")


def test_an_empty_url_means_the_embedded_server(env: SetEnv) -> None:
    env(database_url="")
    assert get_settings(reload=True).url is None


def test_a_bad_number_names_the_variable(env: SetEnv) -> None:
    env(pool_size="zero")
    with pytest.raises(ConfigurationError, match="BLOGDATA_POOL_SIZE"):
        get_settings(reload=True)
