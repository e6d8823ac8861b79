"""Schemas: validation happens before any SQL, and passwords never show."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from blogdata.models import User
from blogdata.schemas import (
    MAX_TAGS_PER_POST,
    PostCreate,
    PostUpdate,
    TagCreate,
    UserCreate,
    UserRead,
    UserUpdate,
)

SECRET = "hunter2-but-longer"
GOOD_USER: dict[str, Any] = {"email": "ada@example.org", "username": "ada", "password": SECRET}


def test_a_valid_user_is_accepted_with_its_email_lower_cased() -> None:
    user = UserCreate(**{**GOOD_USER, "email": "Ada.Lovelace@Example.ORG"})
    assert user.email == "ada.lovelace@example.org"
    assert user.role == "reader"
    assert user.password.get_secret_value() == SECRET


@pytest.mark.parametrize(
    "username", ["zoë", "Łukasz_K", "用户名", "o'neil".replace("'", "."), "a-b", "x" * 50]
)
def test_unicode_and_punctuated_usernames_within_the_rules_are_accepted(username: str) -> None:
    assert UserCreate(**{**GOOD_USER, "username": username}).username == username


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("email", "not-an-email", id="email-no-at"),
        pytest.param("email", "ada@", id="email-no-domain"),
        pytest.param("email", "a" * 250 + "@example.org", id="email-too-long"),
        pytest.param("username", "ab", id="username-too-short"),
        pytest.param("username", "x" * 51, id="username-too-long"),
        pytest.param("username", "ada lovelace", id="username-space"),
        pytest.param("username", "'; DROP TABLE users; --", id="username-sql"),
        pytest.param("password", "short", id="password-too-short"),
        pytest.param("password", "x" * 129, id="password-too-long"),
        pytest.param("role", "superuser", id="role-unknown"),
        pytest.param("hashed_password", "$argon2id$...", id="extra-field-hash"),
    ],
)
def test_a_bad_user_field_is_rejected(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as info:
        UserCreate(**{**GOOD_USER, field: value})
    assert info.value.errors()[0]["loc"] == (field,)


def test_the_password_never_appears_in_repr_str_dumps_or_errors() -> None:
    user = UserCreate(**GOOD_USER)
    for text in (repr(user), str(user), user.model_dump_json(), repr(user.model_dump())):
        assert SECRET not in text
    with pytest.raises(ValidationError) as info:
        UserCreate(email="bad", username="ok_name", password="seven77")
    assert "seven77" not in str(info.value)
    assert "at least 8 characters" in str(info.value)


def test_user_read_has_no_password_field_and_reads_a_model() -> None:
    assert not any("password" in name for name in UserRead.model_fields)
    row = User(
        id=7,
        email="ada@example.org",
        username="ada",
        full_name="Ada",
        hashed_password="$argon2id$secret",
        is_active=True,
        role="author",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    read = UserRead.model_validate(row)
    assert read.id == 7
    assert "argon2" not in read.model_dump_json()


def test_user_update_keeps_only_the_fields_that_were_set() -> None:
    assert UserUpdate(full_name="Ada L.").model_dump(exclude_unset=True) == {"full_name": "Ada L."}


@pytest.mark.parametrize("field", ["email", "username", "password", "is_active"])
def test_user_update_rejects_null_for_a_required_column(field: str) -> None:
    with pytest.raises(ValidationError, match="leave the field out"):
        UserUpdate(**{field: None})


def test_a_255_character_title_is_accepted() -> None:
    assert len(PostCreate(title="t" * 255, author_id=1).title) == 255


@pytest.mark.parametrize(
    "title",
    [
        pytest.param("t" * 256, id="256-chars"),
        pytest.param("", id="empty"),
        pytest.param("   ", id="only-spaces"),
    ],
)
def test_a_bad_title_is_rejected(title: str) -> None:
    with pytest.raises(ValidationError):
        PostCreate(title=title, author_id=1)


def test_tag_names_are_trimmed_lower_cased_and_deduplicated_in_order() -> None:
    post = PostCreate(title="x", author_id=1, tags=[" Python ", "SQL", "python", "Data  Science"])
    assert post.tags == ["python", "sql", "data science"]
    assert TagCreate(name="  PostgreSQL ").name == "postgresql"


@pytest.mark.parametrize(
    "tags",
    [
        pytest.param([""], id="empty-name"),
        pytest.param(["   "], id="blank-name"),
        pytest.param(["x" * 51], id="name-too-long"),
        pytest.param([f"t{i}" for i in range(MAX_TAGS_PER_POST + 1)], id="too-many"),
    ],
)
def test_bad_tags_are_rejected(tags: list[str]) -> None:
    with pytest.raises(ValidationError):
        PostCreate(title="x", author_id=1, tags=tags)


@pytest.mark.parametrize("author_id", [0, -1])
def test_a_non_positive_author_id_is_rejected(author_id: int) -> None:
    with pytest.raises(ValidationError):
        PostCreate(title="x", author_id=author_id)


def test_a_naive_published_at_is_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        PostCreate(title="x", author_id=1, published_at=datetime(2026, 1, 1))


def test_post_update_with_tags_normalises_them() -> None:
    assert PostUpdate(tags=["A", "a", "B"]).model_dump(exclude_unset=True) == {"tags": ["a", "b"]}
