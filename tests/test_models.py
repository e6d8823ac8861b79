"""Models: server defaults, constraints, cascades, exact money, and a repr without secrets."""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import pytest
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.models import Account, Base, Post, Tag, User, post_tags


def _user(name: str = "ada", **extra: object) -> User:
    values = {"email": f"{name}@example.com", "username": name, "hashed_password": "$argon2$x"}
    return User(**(values | extra))


async def test_server_defaults_fill_role_activity_and_an_aware_creation_time(
    db: AsyncSession,
) -> None:
    await db.execute(insert(User).values(email="a@example.com", username="a", hashed_password="x"))
    user = (await db.scalars(select(User))).one()
    assert user.role == "reader"
    assert user.is_active is True
    assert user.created_at.tzinfo is not None
    assert user.created_at.utcoffset() == UTC.utcoffset(None)
    assert user.last_login is None and user.updated_at is None


async def test_repr_never_shows_the_password_hash(db: AsyncSession) -> None:
    user = _user(hashed_password="$argon2id$v=19$secret-hash")
    db.add(user)
    await db.flush()
    assert "secret-hash" not in repr(user)
    assert "ada" in repr(user)


@pytest.mark.parametrize(
    ("model", "values", "constraint"),
    [
        (User, {"role": "overlord"}, "ck_users_role_known"),
        (Account, {"balance": Decimal("-0.01")}, "ck_accounts_balance_not_negative"),
        (Post, {"views": -1}, "ck_posts_views_not_negative"),
    ],
    ids=["unknown-role", "negative-balance", "negative-views"],
)
async def test_check_constraints_reject_impossible_values(
    db: AsyncSession, model: type[Base], values: dict[str, object], constraint: str
) -> None:
    owner = _user()
    db.add(owner)
    await db.flush()
    rows: dict[type[Base], dict[str, object]] = {
        User: {"email": "x@example.com", "username": "x", "hashed_password": "h"},
        Account: {"owner_id": owner.id},
        Post: {"title": "t", "author_id": owner.id},
    }
    with pytest.raises(IntegrityError, match=constraint):
        async with db.begin_nested():
            await db.execute(insert(model).values(**rows[model], **values))


@pytest.mark.parametrize("field", ["email", "username"])
async def test_email_and_username_are_unique(db: AsyncSession, field: str) -> None:
    db.add(_user("first"))
    await db.flush()
    clash = {"email": "other@example.com", "username": "other"} | {
        field: "first@example.com" if field == "email" else "first"
    }
    with pytest.raises(IntegrityError, match=f"ix_users_{field}"):
        async with db.begin_nested():
            db.add(User(hashed_password="h", **clash))


async def test_money_is_exact_decimal(db: AsyncSession) -> None:
    owner = _user()
    db.add(owner)
    await db.flush()
    account = Account(owner_id=owner.id, balance=Decimal("0.10"))
    db.add(account)
    await db.flush()
    account.balance += Decimal("0.20")
    await db.flush()
    await db.refresh(account)
    assert account.balance == Decimal("0.30")  # float would give 0.30000000000000004


async def test_deleting_a_post_removes_its_tag_links_but_not_the_tags(db: AsyncSession) -> None:
    author = _user()
    tag = Tag(name="python")
    db.add_all([author, tag])
    await db.flush()
    post = Post(title="Hello", author_id=author.id)
    db.add(post)
    await db.flush()
    await db.execute(insert(post_tags).values(post_id=post.id, tag_id=tag.id))
    await db.execute(delete(Post).where(Post.id == post.id))
    assert await db.scalar(select(func.count()).select_from(post_tags)) == 0
    assert await db.scalar(select(func.count()).select_from(Tag)) == 1


async def test_deleting_a_user_removes_their_posts_and_accounts(db: AsyncSession) -> None:
    author = _user()
    db.add(author)
    await db.flush()
    db.add_all([Post(title="p", author_id=author.id), Account(owner_id=author.id)])
    await db.flush()
    await db.execute(delete(User).where(User.id == author.id))
    assert await db.scalar(select(func.count()).select_from(Post)) == 0
    assert await db.scalar(select(func.count()).select_from(Account)) == 0


async def test_a_post_needs_an_existing_author(db: AsyncSession) -> None:
    with pytest.raises(IntegrityError, match="fk_posts_author_id_users"):
        async with db.begin_nested():
            db.add(Post(title="orphan", author_id=999_999))


def test_every_column_is_documented() -> None:
    undocumented = [
        f"{table.name}.{column.name}"
        for table in Base.metadata.sorted_tables
        for column in table.columns
        if not column.comment
    ]
    assert undocumented == []


async def test_a_posts_tags_load_in_name_order(db: AsyncSession) -> None:
    from sqlalchemy.orm import selectinload

    author = _user()
    tags = [Tag(name=name) for name in ("zeta", "alpha", "mu")]
    db.add_all([author, *tags])
    await db.flush()
    post = Post(title="ordered", author_id=author.id)
    db.add(post)
    await db.flush()
    await db.execute(insert(post_tags), [{"post_id": post.id, "tag_id": t.id} for t in tags])
    db.expunge_all()
    loaded = await db.scalar(select(Post).options(selectinload(Post.tags)))
    assert loaded is not None
    assert [t.name for t in loaded.tags] == ["alpha", "mu", "zeta"]
