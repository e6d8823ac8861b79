"""Bulk create, insert (VALUES and COPY), upsert, update and delete of users and tags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.bulk import (
    create_users,
    deactivate_old_users,
    delete_users,
    hash_passwords,
    insert_hashed_users,
    upsert_tags,
)
from blogdata.errors import AlreadyExistsError, InvalidInputError
from blogdata.models import Account, Tag, User
from blogdata.schemas import UserCreate
from blogdata.security import verify_password

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _rows(count: int, *, prefix: str = "user") -> list[dict[str, Any]]:
    return [
        {
            "email": f"{prefix}{i}@example.com",
            "username": f"{prefix}{i}",
            "hashed_password": "not-a-real-hash",
            "created_at": NOW - timedelta(minutes=i),
        }
        for i in range(count)
    ]


async def _count(db: AsyncSession) -> int:
    return int(await db.scalar(select(func.count()).select_from(User)) or 0)


async def test_bulk_create_users_hashes_every_password(db: AsyncSession) -> None:
    users = [
        UserCreate(email=f"P{i}@Example.com", username=f"person{i}", password=f"secret-pass-{i}")
        for i in range(3)
    ]
    assert await create_users(db, users, workers=2) == 3
    stored = (await db.execute(select(User.email, User.hashed_password).order_by(User.id))).all()
    assert [email for email, _ in stored] == [f"p{i}@example.com" for i in range(3)]
    for i, (_, hashed) in enumerate(stored):
        assert hashed.startswith("$argon2id$")
        assert verify_password(f"secret-pass-{i}", hashed)
        assert not verify_password(f"secret-pass-{i + 1}", hashed)


def test_hash_passwords_keeps_the_order_of_its_input() -> None:
    hashes = hash_passwords(["first-password", "second-password"], workers=2)
    assert verify_password("first-password", hashes[0])
    assert verify_password("second-password", hashes[1])


@pytest.mark.parametrize("count", [3, 1500], ids=["insert-values", "copy"])
async def test_insert_hashed_users_writes_every_row_on_both_paths(
    db: AsyncSession, count: int
) -> None:
    rows = _rows(count)
    rows[0]["last_login"] = NOW
    for row in rows[1:]:
        row["last_login"] = None
    assert await insert_hashed_users(db, rows) == count
    assert await _count(db) == count
    first = await db.scalar(select(User).where(User.username == "user0"))
    assert first is not None
    assert (first.role, first.is_active, first.last_login) == ("reader", True, NOW)
    assert first.created_at == NOW


@pytest.mark.parametrize("count", [4, 1500], ids=["insert-values", "copy"])
async def test_a_duplicate_inside_the_batch_names_the_rows_and_inserts_nothing(
    db: AsyncSession, count: int
) -> None:
    rows = _rows(count)
    rows[3]["username"] = "user1"
    with pytest.raises(AlreadyExistsError, match=r"rows \[1, 3\] share username 'user1'") as info:
        await insert_hashed_users(db, rows)
    assert info.value.field == "username"
    assert await _count(db) == 0


@pytest.mark.parametrize("count", [4, 1500], ids=["insert-values", "copy"])
async def test_a_duplicate_of_an_existing_user_names_the_row_and_inserts_nothing(
    db: AsyncSession, count: int
) -> None:
    await insert_hashed_users(db, _rows(1, prefix="old"))
    rows = _rows(count)
    rows[2]["email"] = "old0@example.com"
    with pytest.raises(AlreadyExistsError, match="row 2 has email 'old0@example.com'"):
        await insert_hashed_users(db, rows)
    assert await _count(db) == 1


@pytest.mark.parametrize("count", [4, 1500], ids=["insert-values", "copy"])
async def test_a_violation_found_by_the_database_leaves_no_partial_batch(
    db: AsyncSession, count: int
) -> None:
    # Skip our own pre-check, as a concurrent writer would: the savepoint still undoes all rows.
    await insert_hashed_users(db, _rows(1, prefix="user"))
    rows = _rows(count)[1:] + _rows(1)
    with pytest.raises(AlreadyExistsError):
        await insert_hashed_users(db, rows, check_duplicates=False)
    assert await _count(db) == 1  # the session is still usable


async def test_bulk_create_reports_duplicates_before_hashing(db: AsyncSession) -> None:
    users = [
        UserCreate(email="same@example.com", username=f"twin{i}", password="long-enough")
        for i in range(2)
    ]
    with pytest.raises(AlreadyExistsError, match=r"rows \[0, 1\] share email") as info:
        await create_users(db, users)
    assert info.value.field == "email"
    assert await _count(db) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        pytest.param({"nickname": "x"}, "unknown users column", id="unknown-column"),
        pytest.param({"created_at": datetime(2026, 1, 1)}, "naive datetime", id="naive-timestamp"),
    ],
)
async def test_insert_hashed_users_rejects_bad_rows(
    db: AsyncSession, change: dict[str, Any], message: str
) -> None:
    rows = _rows(2)
    rows[0].update(change)
    rows[1].update(change)
    with pytest.raises(InvalidInputError, match=message):
        await insert_hashed_users(db, rows)


async def test_rows_with_different_columns_are_rejected(db: AsyncSession) -> None:
    rows = _rows(2)
    rows[1]["role"] = "author"
    with pytest.raises(InvalidInputError, match="row 1 has columns"):
        await insert_hashed_users(db, rows)


async def test_bulk_upsert_tags_inserts_new_names_and_returns_every_id(db: AsyncSession) -> None:
    db.add(Tag(name="python"))
    await db.flush()
    existing = await db.scalar(select(Tag.id).where(Tag.name == "python"))
    ids = await upsert_tags(db, ["  Python ", "SQL", "sql", "pandas"])
    assert sorted(ids) == ["pandas", "python", "sql"]
    assert ids["python"] == existing
    assert await db.scalar(select(func.count()).select_from(Tag)) == 3
    assert await upsert_tags(db, ["sql"]) == {"sql": ids["sql"]}


async def test_bulk_upsert_tags_rejects_an_empty_name(db: AsyncSession) -> None:
    with pytest.raises(InvalidInputError, match="must not be empty"):
        await upsert_tags(db, ["ok", "   "])


async def test_deactivate_old_users_uses_last_login_and_returns_the_count(
    db: AsyncSession,
) -> None:
    rows = _rows(4)
    logins = [NOW - timedelta(days=100), NOW - timedelta(days=29), None, NOW - timedelta(days=31)]
    for row, login in zip(rows, logins, strict=True):
        row["last_login"] = login
    await insert_hashed_users(db, rows)
    assert await deactivate_old_users(db, days=30, now=NOW) == 2
    active = (await db.scalars(select(User.username).where(User.is_active).order_by(User.id))).all()
    assert active == ["user1", "user2"]  # recent login, and never logged in
    assert await deactivate_old_users(db, days=30, now=NOW) == 0


async def test_deactivate_old_users_defaults_to_the_current_time(db: AsyncSession) -> None:
    rows = _rows(1)
    rows[0]["last_login"] = datetime.now(UTC) - timedelta(days=2)
    await insert_hashed_users(db, rows)
    assert await deactivate_old_users(db, days=3) == 0
    assert await deactivate_old_users(db, days=1) == 1


@pytest.mark.parametrize(
    ("days", "now"),
    [
        pytest.param(30, datetime(2026, 1, 1), id="naive-now"),
        pytest.param(-1, NOW, id="negative-days"),
        pytest.param(1.5, NOW, id="float-days"),
    ],
)
async def test_deactivate_old_users_rejects_bad_arguments(
    db: AsyncSession, days: Any, now: datetime
) -> None:
    with pytest.raises(InvalidInputError):
        await deactivate_old_users(db, days=days, now=now)


async def test_bulk_delete_users_removes_them_with_their_accounts(db: AsyncSession) -> None:
    await insert_hashed_users(db, _rows(5))
    ids = list((await db.scalars(select(User.id).order_by(User.id))).all())
    db.add(Account(owner_id=ids[0], balance=Decimal("5.00")))
    await db.flush()
    assert await delete_users(db, [ids[0], ids[2], 10**9]) == 2
    assert await _count(db) == 3
    assert await db.scalar(select(func.count()).select_from(Account)) == 0
    assert await delete_users(db, []) == 0
