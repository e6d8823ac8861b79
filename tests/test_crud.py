"""CRUD: the guide's methods, flushing not committing, errors translated, sessions kept usable."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from blogdata import crud
from blogdata.db.engine import create_engine
from blogdata.errors import (
    AlreadyExistsError,
    InvalidInputError,
    NotFoundError,
    QueryError,
    RelatedRowMissingError,
)
from blogdata.models import Post, Tag, User, post_tags
from blogdata.schemas import PostCreate, PostUpdate, TagCreate, UserCreate, UserUpdate
from blogdata.security import get_password_hash, verify_password
from tests.helpers import migrated_database

PASSWORD = "correct horse battery"
HASH = get_password_hash(PASSWORD)


def _user(name: str, *, active: bool = True) -> User:
    # Cheap users for tests that are not about hashing: one precomputed hash.
    return User(email=f"{name}@example.org", username=name, hashed_password=HASH, is_active=active)


async def _add(db: AsyncSession, *objs: User) -> None:
    db.add_all(objs)
    await db.flush()


async def _count(db: AsyncSession, model: type[User] | type[Post] | type[Tag]) -> int:
    return int(await db.scalar(select(func.count()).select_from(model)) or 0)


# --- users ---------------------------------------------------------------------------------------


async def test_create_user_stores_an_argon2_hash_and_never_the_password(db: AsyncSession) -> None:
    user = await crud.user.create(
        db, obj_in=UserCreate(email="Ada@Example.org", username="ada", password=PASSWORD)
    )
    assert user.id is not None
    assert user.email == "ada@example.org"
    assert user.created_at.tzinfo is not None  # server default loaded, no lazy IO later
    assert user.hashed_password.startswith("$argon2id$")
    assert PASSWORD not in user.hashed_password
    assert PASSWORD not in repr(user)
    stored = await db.scalar(
        text("SELECT hashed_password FROM users WHERE id = :i"), {"i": user.id}
    )
    assert stored == user.hashed_password


async def test_get_by_email_ignores_case_and_get_by_username_finds_unicode(
    db: AsyncSession,
) -> None:
    await _add(db, _user("zoë_ü"))
    found = await crud.user.get_by_email(db, email="  ZOË_Ü@example.org ")
    assert found is not None and found.username == "zoë_ü"
    assert await crud.user.get_by_username(db, username="zoë_ü") is found
    assert await crud.user.get_by_email(db, email="nobody@example.org") is None


@pytest.mark.parametrize(
    ("email", "username", "field"),
    [
        pytest.param("ada@example.org", "someone_else", "email", id="duplicate-email"),
        pytest.param("ADA@example.org", "someone_else", "email", id="duplicate-email-other-case"),
        pytest.param("other@example.org", "ada", "username", id="duplicate-username"),
    ],
)
async def test_a_duplicate_raises_already_exists_naming_the_field_and_the_session_stays_usable(
    db: AsyncSession, email: str, username: str, field: str
) -> None:
    await _add(db, _user("ada"))
    with pytest.raises(AlreadyExistsError) as info:
        await crud.user.create(
            db, obj_in=UserCreate(email=email, username=username, password=PASSWORD)
        )
    assert info.value.field == field
    assert field in str(info.value)
    assert isinstance(info.value.__cause__, Exception)  # raised from the database error
    # Only the savepoint rolled back: earlier work survives and new work succeeds.
    assert await crud.user.get_by_username(db, username="ada") is not None
    await crud.tag.create(db, obj_in=TagCreate(name="after-the-error"))
    assert (await _count(db, User), await _count(db, Tag)) == (1, 1)


async def test_update_writes_only_the_set_fields(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    ada.full_name = "Ada"
    await db.flush()
    updated = await crud.user.update(db, db_obj=ada, obj_in=UserUpdate(role="author"))
    assert (updated.role, updated.full_name, updated.email) == ("author", "Ada", "ada@example.org")
    assert updated.updated_at is not None  # onupdate value loaded after the flush


async def test_update_with_a_password_rehashes_it(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    await crud.user.update(db, id=ada.id, obj_in=UserUpdate(password="a new passphrase"))
    assert ada.hashed_password != HASH
    assert verify_password("a new passphrase", ada.hashed_password)


async def test_a_failed_update_leaves_the_object_as_stored(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"), _user("bob"))
    with pytest.raises(AlreadyExistsError) as info:
        await crud.user.update(db, db_obj=ada, obj_in=UserUpdate(username="bob"))
    assert info.value.field == "username"
    assert ada.username == "ada"  # reloaded, readable without hidden IO


async def test_update_and_remove_of_a_missing_id_raise_not_found(db: AsyncSession) -> None:
    with pytest.raises(NotFoundError, match="no users row with id 999999"):
        await crud.user.remove(db, id=999_999)
    with pytest.raises(NotFoundError):
        await crud.user.update(db, id=999_999, obj_in=UserUpdate(full_name="x"))


async def test_update_needs_exactly_one_target(db: AsyncSession) -> None:
    with pytest.raises(InvalidInputError, match="exactly one"):
        await crud.user.update(db, obj_in=UserUpdate(full_name="x"))


async def test_remove_deletes_the_row_and_returns_it(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    removed = await crud.user.remove(db, id=ada.id)
    assert removed is ada
    assert await crud.user.exists(db, ada.id) is False
    assert await crud.user.count(db) == 0


@pytest.mark.parametrize(
    ("email", "password", "why"),
    [
        pytest.param("ada@example.org", "wrong password", "wrong password", id="wrong-password"),
        pytest.param("nobody@example.org", PASSWORD, "unknown email", id="unknown-email"),
        pytest.param("old@example.org", PASSWORD, "inactive user", id="inactive-user"),
        pytest.param("broken@example.org", PASSWORD, "malformed hash", id="malformed-hash"),
    ],
)
async def test_authenticate_returns_none(
    db: AsyncSession, email: str, password: str, why: str
) -> None:
    broken = _user("broken")
    broken.hashed_password = "$argon2id$this-is-not-a-hash"
    await _add(db, _user("ada"), _user("old", active=False), broken)
    assert await crud.user.authenticate(db, email=email, password=password) is None, why


async def test_authenticate_returns_the_active_user_for_the_right_password(
    db: AsyncSession,
) -> None:
    await _add(db, ada := _user("ada"))
    assert await crud.user.authenticate(db, email="ADA@example.org", password=PASSWORD) is ada


# --- generic reads -----------------------------------------------------------------------------


async def test_get_multi_pages_through_rows_in_the_requested_order(db: AsyncSession) -> None:
    await _add(db, *(_user(name) for name in ["carol", "ada", "bob", "dave"]))
    names = [u.username for u in await crud.user.get_multi(db, order_by="username")]
    assert names == ["ada", "bob", "carol", "dave"]
    page = await crud.user.get_multi(db, skip=1, limit=2, order_by="-username")
    assert [u.username for u in page] == ["carol", "bob"]
    assert await crud.user.count(db) == 4


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"skip": -1}, "skip must be 0 or more", id="negative-skip"),
        pytest.param({"limit": 0}, "limit must be at least 1", id="zero-limit"),
        pytest.param({"limit": 1001}, "above the maximum of 1000", id="limit-above-cap"),
        pytest.param({"order_by": "usrname"}, 'Did you mean "username"', id="typo-sort-key"),
        pytest.param({"order_by": "hashed_password"}, "unknown sort key", id="secret-sort-key"),
        pytest.param(
            {"order_by": "'; DROP TABLE users; --"}, "unknown sort key", id="sql-in-sort-key"
        ),
    ],
)
async def test_get_multi_rejects_bad_arguments_before_any_sql(
    db: AsyncSession, kwargs: dict[str, object], message: str
) -> None:
    await _add(db, _user("ada"))
    with pytest.raises(InvalidInputError, match=message):
        await crud.user.get_multi(db, **kwargs)  # type: ignore[arg-type]
    assert await crud.user.count(db) == 1  # the table is intact


# --- posts and tags ----------------------------------------------------------------------------


async def test_create_post_gets_or_creates_its_tags(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    db.add(Tag(name="python"))
    await db.flush()
    first = await crud.post.create(
        db, obj_in=PostCreate(title="Ünïcode ✓ title", author_id=ada.id, tags=["Python", "SQL"])
    )
    second = await crud.post.create(
        db, obj_in=PostCreate(title="again", author_id=ada.id, tags=[" sql "])
    )
    assert [t.name for t in first.tags] == ["python", "sql"]
    assert second.tags[0] is first.tags[1]
    assert await _count(db, Tag) == 2
    assert first.title == "Ünïcode ✓ title"
    assert first.created_at is not None


async def test_a_255_character_title_is_stored_whole(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    post = await crud.post.create(db, obj_in=PostCreate(title="é" * 255, author_id=ada.id))
    assert await db.scalar(select(func.length(Post.title)).where(Post.id == post.id)) == 255


async def test_a_post_for_a_missing_author_raises_related_row_missing_and_keeps_the_session(
    db: AsyncSession,
) -> None:
    with pytest.raises(RelatedRowMissingError, match="author_id"):
        await crud.post.create(
            db, obj_in=PostCreate(title="orphan", author_id=999_999, tags=["lonely"])
        )
    # The savepoint undid the tag insert too, and the session can carry on.
    assert await _count(db, Tag) == 0
    await _add(db, _user("ada"))
    assert await _count(db, User) == 1


async def test_a_duplicate_tag_raises_already_exists(db: AsyncSession) -> None:
    await crud.tag.create(db, obj_in=TagCreate(name="Python"))
    with pytest.raises(AlreadyExistsError) as info:
        await crud.tag.create(db, obj_in=TagCreate(name=" python"))
    assert info.value.field == "name"
    assert (await crud.tag.get_by_name(db, name="PYTHON")) is not None


async def test_other_database_errors_become_query_errors_carrying_the_sqlstate(
    db: AsyncSession,
) -> None:
    created = await crud.tag.create(db, obj_in=TagCreate(name="short"))
    with pytest.raises(QueryError) as info:
        await crud.tag.update(db, db_obj=created, obj_in={"name": "x" * 51})  # varchar(50)
    assert info.value.sqlstate == "22001"
    assert created.name == "short"
    with pytest.raises(InvalidInputError, match="no column"):
        await crud.tag.update(db, db_obj=created, obj_in={"colour": "red"})


async def test_posts_by_author_and_by_tag(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"), bob := _user("bob"))
    for i in range(3):
        await crud.post.create(
            db, obj_in=PostCreate(title=f"ada {i}", author_id=ada.id, tags=["a", f"n{i}"])
        )
    await crud.post.create(db, obj_in=PostCreate(title="bob", author_id=bob.id, tags=["a"]))
    by_ada = await crud.post.get_multi_by_author(db, author_id=ada.id, order_by="title")
    assert [p.title for p in by_ada] == ["ada 0", "ada 1", "ada 2"]
    tagged = await crud.post.get_multi_by_tag(db, name=" A ")
    assert sorted(p.title for p in tagged) == ["ada 0", "ada 1", "ada 2", "bob"]
    assert [p.title for p in await crud.post.get_multi_by_tag(db, name="n1")] == ["ada 1"]


async def test_update_post_tags_replaces_the_tag_set(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    post = await crud.post.create(
        db, obj_in=PostCreate(title="t", author_id=ada.id, tags=["a", "b"])
    )
    db.expunge(post)  # start from a fresh load whose tags are not loaded
    fresh = await crud.post.update(db, id=post.id, obj_in=PostUpdate(tags=["b", "c"], title="u"))
    assert [t.name for t in fresh.tags] == ["b", "c"]
    reloaded = await crud.post.get_with_tags(db, post.id)
    assert reloaded is not None
    assert (reloaded.title, sorted(t.name for t in reloaded.tags)) == ("u", ["b", "c"])


async def test_removing_a_tag_removes_its_links_but_not_the_posts(db: AsyncSession) -> None:
    await _add(db, ada := _user("ada"))
    post = await crud.post.create(db, obj_in=PostCreate(title="t", author_id=ada.id, tags=["x"]))
    await crud.tag.remove(db, id=post.tags[0].id)
    links = await db.scalar(select(func.count()).select_from(post_tags))
    assert (links, await _count(db, Post)) == (0, 1)


# --- units of work: the caller commits ---------------------------------------------------------


@pytest.fixture(scope="module")
async def committing_url(server_url: URL) -> AsyncIterator[URL]:
    """A throwaway migrated database for tests that must really commit."""
    async with migrated_database(server_url, "blogdata_crud") as url:
        yield url


@pytest.fixture
async def committing(committing_url: URL) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A session factory on the throwaway database, emptied after each test."""
    engine = create_engine(committing_url)
    try:
        yield async_sessionmaker(engine, expire_on_commit=False)
    finally:
        async with engine.begin() as conn:
            await conn.execute(text("TRUNCATE users, posts, tags, post_tags, accounts CASCADE"))
        await engine.dispose()


async def _committed_count(engine: AsyncEngine, table: str) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(f"SELECT count(*) FROM {table}")) or 0)


async def test_crud_calls_do_not_commit_on_their_own(
    committing: async_sessionmaker[AsyncSession],
) -> None:
    async with committing() as db:
        await crud.tag.create(db, obj_in=TagCreate(name="pending"))
        engine = db.bind
        assert isinstance(engine, AsyncEngine)
        assert await _committed_count(engine, "tags") == 0  # flushed, not committed
        await db.commit()
        assert await _committed_count(engine, "tags") == 1


async def test_several_crud_calls_roll_back_together_when_the_caller_fails(
    committing: async_sessionmaker[AsyncSession],
) -> None:
    with pytest.raises(RuntimeError, match="caller changed its mind"):
        async with committing() as db, db.begin():
            ada = await crud.user.create(
                db, obj_in=UserCreate(email="ada@example.org", username="ada", password=PASSWORD)
            )
            await crud.post.create(db, obj_in=PostCreate(title="t", author_id=ada.id, tags=["x"]))
            await crud.user.update(db, db_obj=ada, obj_in=UserUpdate(role="author"))
            raise RuntimeError("caller changed its mind")
    async with committing() as db:
        assert (await _count(db, User), await _count(db, Post), await _count(db, Tag)) == (0, 0, 0)


async def test_two_sessions_creating_the_same_new_tag_at_once_both_succeed(
    committing: async_sessionmaker[AsyncSession],
) -> None:
    async with committing() as setup, setup.begin():
        setup.add_all([_user("ada"), _user("bob")])
    async with committing() as first, committing() as second, committing() as watcher:
        ada = await crud.user.get_by_username(first, username="ada")
        bob = await crud.user.get_by_username(second, username="bob")
        assert ada is not None and bob is not None
        one = await crud.post.create(
            first, obj_in=PostCreate(title="first", author_id=ada.id, tags=["brand-new"])
        )
        # The second insert must wait on the first's uncommitted row: start it, see it wait.
        racing = asyncio.create_task(
            crud.post.create(
                second, obj_in=PostCreate(title="second", author_id=bob.id, tags=["Brand-New"])
            )
        )
        for _ in range(500):
            waiting = await watcher.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
            await watcher.rollback()
            if waiting or racing.done():
                break
            await asyncio.sleep(0.01)
        assert waiting == 1, "the second session should be blocked on the first one's tag"
        await first.commit()
        two = await racing
        await second.commit()
        assert one.tags[0].id == two.tags[0].id
    async with committing() as db:
        assert await _count(db, Tag) == 1
        assert await db.scalar(select(func.count()).select_from(post_tags)) == 2
