"""Settings read from the environment (``BLOGDATA_*``), and database URL checks.

Only ``postgresql+asyncpg://`` URLs are accepted: SQLAlchemy 2.1 maps a bare ``postgresql://``
to psycopg, which blogdata does not use. Passwords never reach a message, a log line or a repr.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from blogdata.errors import ConfigurationError

__all__ = [
    "EXPECTED_URL_FORM",
    "Settings",
    "get_settings",
    "parse_database_url",
    "parse_read_url",
]

EXPECTED_URL_FORM = "postgresql+asyncpg://user:password@host:5432/dbname"


def parse_database_url(value: str | URL) -> URL:
    """Parse and check a database URL; raise ConfigurationError unless it is postgresql+asyncpg.

    No part of the URL is ever quoted in the error: it may hold a password.
    """
    if isinstance(value, str) and value.count("@") > 1:
        # "u:p@ss@host" parses as host "ss@host": refuse instead of guessing where the
        # password ends (and then naming its tail as a host in a connection error).
        raise ConfigurationError(
            "BLOGDATA_DATABASE_URL has more than one '@', so its user name, password and host "
            "cannot be told apart; percent-encode '@' inside the user name or password as %40 "
            "(and ':' as %3A, '/' as %2F), e.g. with urllib.parse.quote(password, safe='')"
        )
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigurationError(
            f"BLOGDATA_DATABASE_URL could not be parsed as a URL; use the form {EXPECTED_URL_FORM}"
        ) from None
    except ValueError:  # int() of the port: its message would quote the URL
        raise ConfigurationError(
            "BLOGDATA_DATABASE_URL has a port that is not a number; use the form "
            f"{EXPECTED_URL_FORM} (percent-encode ':' in the password as %3A)"
        ) from None
    if url.drivername != "postgresql+asyncpg":
        hint = (
            " (a bare postgresql:// means psycopg in SQLAlchemy 2.1)"
            if url.drivername == "postgresql"
            else ""
        )
        raise ConfigurationError(
            f"BLOGDATA_DATABASE_URL uses the driver {url.drivername!r}{hint}, but blogdata needs "
            f"asyncpg; use the form {EXPECTED_URL_FORM}, or unset it to use the embedded server"
        )
    return url


def parse_read_url(value: str | URL) -> URL:
    """Parse and check the read server's URL (``BLOGDATA_READ_URL``) like the main one."""
    try:
        url = make_url(value)
    except ArgumentError:
        raise ConfigurationError(
            f"BLOGDATA_READ_URL could not be parsed as a URL; use the form {EXPECTED_URL_FORM}"
        ) from None
    if url.drivername != "postgresql+asyncpg":
        raise ConfigurationError(
            f"BLOGDATA_READ_URL uses the driver {url.drivername!r}, but blogdata needs asyncpg; "
            f"use the form {EXPECTED_URL_FORM}, or unset it to read from the primary"
        )
    return url


class Settings(BaseSettings):
    """blogdata's settings; each field is read from ``BLOGDATA_<FIELD>``.

    Pool defaults follow the guide's performance section.
    """

    model_config = SettingsConfigDict(
        env_prefix="BLOGDATA_", extra="ignore", hide_input_in_errors=True
    )

    database_url: SecretStr | None = Field(
        default=None, description="postgresql+asyncpg:// URL; unset means the embedded server"
    )
    home: Path | None = Field(
        default=None, description="folder for the embedded server's data; default: user data dir"
    )
    echo: bool = Field(default=False, description="log every SQL statement")
    pool_size: int = Field(default=20, ge=1, description="connections kept open in the pool")
    max_overflow: int = Field(default=10, ge=0, description="extra connections when busy")
    pool_timeout: float = Field(default=30.0, gt=0, description="seconds to wait for a connection")
    pool_recycle: int = Field(default=1800, description="reconnect connections older than this (s)")
    pool_pre_ping: bool = Field(default=True, description="test a connection before handing it out")
    connect_timeout: float = Field(default=5.0, gt=0, description="seconds to wait for the server")
    read_url: SecretStr | None = Field(
        default=None, description="postgresql+asyncpg:// URL of a read server (a hot standby)"
    )
    read_fallback: bool = Field(
        default=False, description="read from the primary while the read server is unreachable"
    )
    pgbouncer: bool = Field(
        default=False, description="connect through PgBouncer in transaction mode"
    )

    def __init__(self, **values: Any) -> None:
        """Read the settings (``values`` override the environment); raise ConfigurationError.

        The error names each bad variable and the fix, never the value given (a URL may hold a
        password).
        """
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(_describe(err) for err in exc.errors(include_input=False))
            raise ConfigurationError(problems) from None

    @field_validator("database_url", "read_url", mode="after")
    @classmethod
    def _check_url(cls, value: SecretStr | None, info: ValidationInfo) -> SecretStr | None:
        if value is not None and value.get_secret_value().strip():
            parse = parse_read_url if info.field_name == "read_url" else parse_database_url
            try:
                parse(value.get_secret_value())
            except ConfigurationError as exc:
                raise ValueError(str(exc)) from None
            return value
        return None

    @property
    def read(self) -> URL | None:
        """The configured read server's URL, or None when reads use the primary."""
        if self.read_url is None:
            return None
        return parse_read_url(self.read_url.get_secret_value())

    @property
    def url(self) -> URL | None:
        """The configured URL, or None when the embedded server should be used."""
        if self.database_url is None:
            return None
        return parse_database_url(self.database_url.get_secret_value())


def _describe(err: Any) -> str:
    message = str(err["msg"]).removeprefix("Value error, ")
    name = "BLOGDATA_" + "_".join(str(p) for p in err["loc"]).upper()
    return message if message.startswith(name) else f"{name}: {message}"


@lru_cache(maxsize=1)
def _cached_settings() -> Settings:
    return Settings()


def get_settings(*, reload: bool = False) -> Settings:
    """Return the settings from the environment; raise ConfigurationError when they are invalid."""
    if reload:
        _cached_settings.cache_clear()
    return _cached_settings()  # a ConfigurationError is not cached: the next call reads afresh
