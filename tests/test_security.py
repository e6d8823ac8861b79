"""Password hashing: argon2 through pwdlib, and malformed hashes that never raise."""

from __future__ import annotations

import re

import pytest
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pydantic import SecretStr

from blogdata.security import DUMMY_HASH, get_password_hash, needs_rehash, verify_password

PASSWORD = "correct horse battery"
HASH = get_password_hash(PASSWORD)


def _params(hashed: str) -> str:
    match = re.match(r"^\$(argon2id)\$v=\d+\$(m=\d+,t=\d+,p=\d+)\$", hashed)
    assert match is not None, hashed
    return f"{match.group(1)}:{match.group(2)}"


def test_a_hash_verifies_its_own_password_and_never_contains_it() -> None:
    assert HASH.startswith("$argon2id$")
    assert PASSWORD not in HASH
    assert verify_password(PASSWORD, HASH) is True


def test_a_wrong_password_does_not_verify() -> None:
    assert verify_password("correct horse batterY", HASH) is False


def test_hashing_twice_gives_different_salted_hashes_that_both_verify() -> None:
    other = get_password_hash(PASSWORD)
    assert other != HASH
    assert verify_password(PASSWORD, other)


def test_a_secret_str_password_is_hashed_and_verified_like_a_plain_one() -> None:
    hashed = get_password_hash(SecretStr(PASSWORD))
    assert verify_password(SecretStr(PASSWORD), hashed)
    assert verify_password(PASSWORD, hashed)


@pytest.mark.parametrize(
    "stored",
    [
        pytest.param("", id="empty"),
        pytest.param(None, id="none"),
        pytest.param("not-a-hash", id="garbage"),
        pytest.param("$2b$12$KIXQJq3Gq0pG0wzYvYk5ue", id="bcrypt-not-enabled"),
        pytest.param("$argon2id$v=19$m=65536,t=3,p=4$abc$def", id="argon2-broken-salt"),
        pytest.param("$argon2id$v=19$m=65536,t=3,p=4$$", id="argon2-empty-parts"),
        pytest.param(HASH[:-10], id="argon2-truncated"),
        pytest.param("ünïcødé$$$", id="unicode-junk"),
    ],
)
def test_a_malformed_stored_hash_verifies_as_false_without_raising(stored: str | None) -> None:
    assert verify_password(PASSWORD, stored) is False


def test_the_dummy_hash_costs_the_same_as_a_real_hash() -> None:
    # Same algorithm and cost parameters: verifying against it takes the same work.
    assert _params(DUMMY_HASH) == _params(HASH)
    assert needs_rehash(DUMMY_HASH) is False
    assert verify_password(PASSWORD, DUMMY_HASH) is False


def test_a_hash_made_with_weaker_settings_needs_rehashing() -> None:
    weak = PasswordHash((Argon2Hasher(time_cost=1, memory_cost=8192),)).hash(PASSWORD)
    assert verify_password(PASSWORD, weak)
    assert needs_rehash(weak) is True
    assert needs_rehash(HASH) is False
