"""Pydantic v2 schemas for the CRUD layer: what comes in (Create/Update) and what goes out (Read).

Validation runs before any SQL: a real email check (email-validator, no DNS lookup), usernames of
3 to 50 letters, digits, ``_``, ``.`` or ``-`` (any script), passwords of 8 to 128 characters held
as ``SecretStr`` (never shown by ``repr``, logs or validation errors), titles of 1 to 255
characters, and tag names trimmed, lower-cased, 1 to 50 characters and de-duplicated.
``UserRead`` has no password field at all, so a hash can never leak through it.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    SecretStr,
    StringConstraints,
    field_validator,
)

from blogdata._checks import check_text, text_problem
from blogdata.errors import InvalidInputError
from blogdata.models import Role

__all__ = [
    "MAX_TAGS_PER_POST",
    "PASSWORD_MAX_LENGTH",
    "PASSWORD_MIN_LENGTH",
    "PostCreate",
    "PostRead",
    "PostUpdate",
    "TagCreate",
    "TagRead",
    "UserCreate",
    "UserRead",
    "UserUpdate",
    "check_tag_name",
    "normalize_tag_name",
]

PASSWORD_MIN_LENGTH = 8
#: Upper bound so nobody can make the server hash megabytes per login attempt.
PASSWORD_MAX_LENGTH = 128
TAG_MAX_LENGTH = 50
MAX_TAGS_PER_POST = 20


def _storable(value: str) -> str:
    """Refuse text PostgreSQL cannot store (a NUL character, a lone surrogate)."""
    problem = text_problem(value)
    if problem is not None:
        raise ValueError(f"text {problem}")
    return value


def normalize_tag_name(name: str) -> str:
    """Return ``name`` trimmed and lower-cased; raise ValueError if empty, too long or NUL."""
    if not isinstance(name, str):
        raise ValueError(f"a tag name must be a str, not {type(name).__name__}")
    cleaned = _storable(" ".join(name.split()).lower())
    if not cleaned:
        raise ValueError("a tag name must not be empty")
    if len(cleaned) > TAG_MAX_LENGTH:
        raise ValueError(f"a tag name must be at most {TAG_MAX_LENGTH} characters")
    return cleaned


def check_tag_name(name: object) -> str:
    """Return ``name`` as :func:`normalize_tag_name` gives it, else raise ``InvalidInputError``.

    The one check every operation taking a tag name runs before any SQL.
    """
    text = check_text(name, "tag name")
    try:
        return normalize_tag_name(text)
    except ValueError as exc:
        raise InvalidInputError(f"bad tag name {text[:60]!r}: {exc}") from None


def _lower_email(value: str) -> str:
    # Stored lower-case so "Alice@x.org" and "alice@x.org" cannot be two accounts.
    return value.lower()


_USERNAME = re.compile(r"[\w.-]{3,50}")


def _check_username(value: str) -> str:
    if not _USERNAME.fullmatch(value):
        raise ValueError("username must be 3 to 50 letters, digits, '_', '.' or '-'")
    return value


def _check_password(value: SecretStr) -> SecretStr:
    if text_problem(value.get_secret_value()) is not None:  # the message must not say where
        raise ValueError("password must not contain a NUL character or a lone surrogate")
    length = len(value.get_secret_value())
    if length < PASSWORD_MIN_LENGTH:
        raise ValueError(f"password must be at least {PASSWORD_MIN_LENGTH} characters")
    if length > PASSWORD_MAX_LENGTH:
        raise ValueError(f"password must be at most {PASSWORD_MAX_LENGTH} characters")
    return value


def _unique_tags(names: list[str]) -> list[str]:
    if len(names) > MAX_TAGS_PER_POST:
        raise ValueError(f"a post carries at most {MAX_TAGS_PER_POST} tags")
    return list(dict.fromkeys(normalize_tag_name(name) for name in names))


Email = Annotated[EmailStr, Field(max_length=255), AfterValidator(_lower_email)]
Username = Annotated[
    str,
    StringConstraints(strip_whitespace=True),
    AfterValidator(_check_username),
    Field(description="3 to 50 letters, digits, '_', '.' or '-'"),
]
Password = Annotated[SecretStr, AfterValidator(_check_password)]
FullName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_storable),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=255),
    AfterValidator(_storable),
]
Content = Annotated[str, AfterValidator(_storable)]
TagName = Annotated[str, AfterValidator(normalize_tag_name)]
TagList = Annotated[list[str], AfterValidator(_unique_tags)]


def _reject_null(value: object) -> object:
    """Refuse None in an update: leave the field out to keep it (the column is NOT NULL)."""
    if value is None:
        raise ValueError("leave the field out instead of setting it to null")
    return value


class _Schema(BaseModel):
    # Input values never appear in validation errors: they may be passwords.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class UserCreate(_Schema):
    """A new user: the plain password is hashed by ``crud.user.create`` and never stored."""

    email: Email
    username: Username
    password: Password
    full_name: FullName | None = None
    role: Role = "reader"


class UserUpdate(_Schema):
    """Changes to a user; only the fields you set are written, a given password is re-hashed."""

    email: Email | None = None
    username: Username | None = None
    password: Password | None = None
    full_name: FullName | None = None
    role: Role | None = None
    is_active: bool | None = None

    _not_null = field_validator("email", "username", "password", "role", "is_active")(_reject_null)


class UserRead(BaseModel):
    """A user as shown to the outside world: no password or hash field exists here."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    email: str
    username: str
    full_name: str | None
    role: str
    is_active: bool
    created_at: datetime
    updated_at: datetime | None = None
    last_login: datetime | None = None


class PostCreate(_Schema):
    """A new post; ``tags`` are names, created on the fly if they do not exist yet."""

    title: Title
    content: Content | None = None
    author_id: Annotated[int, Field(gt=0)]
    tags: TagList = Field(default_factory=list)
    published_at: AwareDatetime | None = None


class PostUpdate(_Schema):
    """Changes to a post; ``tags``, when given, replaces the post's whole tag set."""

    title: Title | None = None
    content: Content | None = None
    tags: TagList | None = None
    published_at: AwareDatetime | None = None

    _not_null = field_validator("title", "tags")(_reject_null)


class PostRead(BaseModel):
    """A post's own columns (relationships are loaded explicitly, never through this schema)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    content: str | None
    author_id: int
    created_at: datetime
    updated_at: datetime | None = None
    published_at: datetime | None = None
    views: int | None = None


class TagCreate(_Schema):
    """A new tag; the name is stored trimmed and lower-case."""

    name: TagName


class TagRead(BaseModel):
    """A tag as stored."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
