"""Query patterns: filters, checked ordering, offset and keyset pages, search, eager loading."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Select, func, literal, select
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.diagnostics import count_statements
from blogdata.errors import InvalidInputError
from blogdata.models import Post, Tag, User
from blogdata.queries import (
    MAX_LIMIT,
    Keyset,
    active_users,
    escape_like,
    fetch_posts_page,
    fetch_users_page,
    order_by_clause,
    paginate,
    posts_by_tag,
    posts_with_author,
    posts_with_tags,
    search_posts,
    users_created_since,
    users_matching,
    users_with_posts,
    users_with_posts_and_tags,
)

T0 = datetime(2026, 1, 1, tzinfo=UTC)
INJECTION = "'; DROP TABLE users; --"


@dataclass
class Blog:
    users: list[User]
    posts: list[Post]


@pytest.fixture
async def blog(db: AsyncSession) -> Blog:
    """Four users (one inactive), eight posts an hour apart, three tags on most posts."""
    users = [
        User(email="ada@example.org", username="ada", full_name="Ada Lovelace", role="admin"),
        User(email="bob@example.org", username="bob", full_name="Bob", role="author"),
        User(email="zoe@example.org", username="zoë", full_name="Zoë Ünal", role="author"),
        User(email="old@example.org", username="old", role="reader", is_active=False),
    ]
    for day, user in enumerate(users):
        user.hashed_password = "x"
        user.created_at = T0 + timedelta(days=day)
    tags = [Tag(name="python"), Tag(name="sql"), Tag(name="pandas")]
    titles = [
        "Intro to SQL",
        "100% coverage",
        "snake_case names",
        "Async Python",
        "Why not SQLite",
        "Pandas tips",
        "sql window functions",
        "A plain post",
    ]
    posts = []
    for i, title in enumerate(titles):
        post = Post(
            title=title,
            author=users[i % 3],
            created_at=T0 + timedelta(hours=i),
            tags=tags[: i % 4],
        )
        posts.append(post)
    db.add_all([*users, *posts])
    await db.flush()
    db.expunge_all()  # tests start from the database, not from objects already in memory
    return Blog(users, posts)


async def _titles(db: AsyncSession, stmt: Select[Post]) -> list[str]:
    return [p.title for p in (await db.scalars(stmt)).all()]


# --- filters -------------------------------------------------------------------------------------


async def test_active_users_leaves_out_the_inactive_one(db: AsyncSession, blog: Blog) -> None:
    names = [u.username for u in (await db.scalars(active_users())).all()]
    assert names == ["ada", "bob", "zoë"]


async def test_users_created_since_an_aware_datetime(db: AsyncSession, blog: Blog) -> None:
    since = datetime(2026, 1, 3, 1, tzinfo=UTC) - timedelta(hours=2)  # 2 Jan, 23:00 UTC
    names = [u.username for u in (await db.scalars(users_created_since(since))).all()]
    assert names == ["zoë", "old"]


def test_users_created_since_a_naive_datetime_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="naive datetime; give it a time zone"):
        users_created_since(datetime(2026, 1, 1))


async def test_users_matching_combines_and_with_or(db: AsyncSession, blog: Blog) -> None:
    stmt = users_matching(active=True, roles=["author", "admin"], text="O")
    # "o" is in bob's and zoë's names, and in ada's full name "Lovelace" (or_); old is inactive.
    assert [u.username for u in (await db.scalars(stmt)).all()] == ["ada", "bob", "zoë"]
    stmt = users_matching(roles=["author"], created_since=T0 + timedelta(days=2))
    assert [u.username for u in (await db.scalars(stmt)).all()] == ["zoë"]
    unicode = users_matching(text="ünal")
    assert [u.username for u in (await db.scalars(unicode)).all()] == ["zoë"]


def test_users_matching_rejects_an_unknown_role() -> None:
    with pytest.raises(InvalidInputError, match="unknown role"):
        users_matching(roles=["root"])


# --- ordering and offset pages -----------------------------------------------------------------


async def test_order_by_accepts_column_keys_and_descending_prefix(
    db: AsyncSession, blog: Blog
) -> None:
    stmt = select(User).order_by(*order_by_clause(User, ["-role", "username"]))
    assert [u.username for u in (await db.scalars(stmt)).all()] == ["old", "bob", "zoë", "ada"]


@pytest.mark.parametrize(
    ("key", "message"),
    [
        pytest.param("autor_id", 'Did you mean "author_id"', id="typo"),
        pytest.param("-titel", 'Did you mean "title"', id="typo-descending"),
        pytest.param(INJECTION, "unknown sort key", id="sql-injection"),
        pytest.param("title; DELETE FROM posts", "unknown sort key", id="sql-suffix"),
        pytest.param("posts.title", "unknown sort key", id="qualified-name"),
    ],
)
async def test_an_unknown_sort_key_is_rejected_and_never_reaches_sql(
    db: AsyncSession, blog: Blog, key: str, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        order_by_clause(Post, key)
    assert await db.scalar(select(func.count()).select_from(User)) == 4
    assert await db.scalar(select(func.count()).select_from(Post)) == 8


def test_the_unknown_sort_key_message_reads_as_sentences() -> None:
    with pytest.raises(InvalidInputError) as typo:
        order_by_clause(Post, "-titel")
    assert str(typo.value).startswith(
        "unknown sort key '-titel' for posts. Did you mean \"title\"? Sortable keys: id, title, "
    )
    with pytest.raises(InvalidInputError) as unknown:
        order_by_clause(User, "nonsense")
    expected = "unknown sort key 'nonsense' for users. Sortable keys: id, "
    assert str(unknown.value).startswith(expected)


def test_the_password_hash_is_not_a_sort_key() -> None:
    with pytest.raises(InvalidInputError):
        order_by_clause(User, "hashed_password")


async def test_paginate_returns_consecutive_pages(db: AsyncSession, blog: Blog) -> None:
    base = select(Post).order_by(*order_by_clause(Post, "created_at"))
    first = await _titles(db, paginate(base, skip=0, limit=3))
    second = await _titles(db, paginate(base, skip=3, limit=3))
    assert first + second == [p.title for p in blog.posts[:6]]
    assert len(await _titles(db, paginate(base, limit=MAX_LIMIT))) == 8


@pytest.mark.parametrize(
    ("skip", "limit", "message"),
    [
        pytest.param(-1, 10, "skip must be 0 or more, got -1", id="negative-skip"),
        pytest.param(0, -5, "limit must be at least 1", id="negative-limit"),
        pytest.param(0, 0, "limit must be at least 1", id="zero-limit"),
        pytest.param(0, MAX_LIMIT + 1, f"above the maximum of {MAX_LIMIT}", id="above-cap"),
        pytest.param(0, True, "limit must be an integer", id="bool-limit"),
        pytest.param("0", 10, "skip must be an integer", id="string-skip"),
    ],
)
def test_bad_page_arguments_raise_clear_errors(skip: object, limit: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        paginate(select(Post), skip=skip, limit=limit)  # type: ignore[arg-type]


# --- keyset pages ------------------------------------------------------------------------------


async def test_keyset_pages_stay_correct_when_a_row_is_inserted_between_pages(
    db: AsyncSession, blog: Blog
) -> None:
    newest_first = [p.title for p in reversed(blog.posts)]
    offset_base = select(Post).order_by(*order_by_clause(Post, "-created_at"))
    offset_page1 = await _titles(db, paginate(offset_base, limit=3))
    keyset_page1 = await fetch_posts_page(db, limit=3)
    assert offset_page1 == [p.title for p in keyset_page1.items] == newest_first[:3]

    # A new post arrives while the reader looks at page 1.
    author = await db.scalar(select(User).where(User.username == "ada"))
    db.add(Post(title="Breaking news", author=author, created_at=T0 + timedelta(days=1)))
    await db.flush()

    offset_page2 = await _titles(db, paginate(offset_base, skip=3, limit=3))
    assert offset_page2[0] == newest_first[2]  # offsets shift: page 1's last post again
    assert keyset_page1.next is not None
    keyset_page2 = await fetch_posts_page(db, after=keyset_page1.next, limit=3)
    assert [p.title for p in keyset_page2.items] == newest_first[3:6]


async def test_keyset_pages_cover_every_row_once_and_end_with_no_next(
    db: AsyncSession, blog: Blog
) -> None:
    # Two posts share a created_at: the id breaks the tie, so neither is lost at a boundary.
    author = await db.scalar(select(User).where(User.username == "bob"))
    db.add(Post(title="Same instant", author=author, created_at=T0 + timedelta(hours=4)))
    await db.flush()
    seen: list[int] = []
    after: Keyset | None = None
    pages = 0
    while True:
        page = await fetch_posts_page(db, after=after, limit=2)
        seen += [p.id for p in page.items]
        pages += 1
        if page.next is None:
            break
        after = page.next
    expected = await db.scalars(select(Post.id).order_by(Post.created_at.desc(), Post.id.desc()))
    assert seen == list(expected)
    assert pages == 5  # 9 rows, 2 per page


async def test_the_last_keyset_page_has_no_next_even_when_it_is_full(
    db: AsyncSession, blog: Blog
) -> None:
    first = await fetch_posts_page(db, limit=4)
    assert first.next is not None
    second = await fetch_posts_page(db, after=first.next, limit=4)
    assert (len(second.items), second.next) == (4, None)


async def test_users_have_keyset_pages_too(db: AsyncSession, blog: Blog) -> None:
    page = await fetch_users_page(db, limit=3)
    assert [u.username for u in page.items] == ["old", "zoë", "bob"]
    assert page.next is not None
    rest = await fetch_users_page(db, after=page.next, limit=3)
    assert ([u.username for u in rest.items], rest.next) == (["ada"], None)


def test_a_keyset_with_a_naive_timestamp_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="naive"):
        Keyset(datetime(2026, 1, 1), 1)


# --- search ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("sql", ["sql window functions", "Why not SQLite", "Intro to SQL"], id="case"),
        pytest.param("100%", ["100% coverage"], id="percent-is-literal"),
        pytest.param("%", ["100% coverage"], id="lone-percent"),
        pytest.param("_", ["snake_case names"], id="underscore-is-literal"),
        pytest.param("e_c", ["snake_case names"], id="underscore-not-any-char"),
        pytest.param(INJECTION, [], id="sql-injection"),
        pytest.param("\\", [], id="backslash"),
    ],
)
async def test_title_search_is_case_insensitive_and_literal(
    db: AsyncSession, blog: Blog, text: str, expected: list[str]
) -> None:
    assert await _titles(db, search_posts(text)) == expected
    assert await db.scalar(select(func.count()).select_from(User)) == 4


@pytest.mark.parametrize("text", ["", "   ", "x" * 256], ids=["empty", "blank", "too-long"])
def test_empty_or_huge_search_text_is_rejected(text: str) -> None:
    with pytest.raises(InvalidInputError, match="search text"):
        search_posts(text)


def test_escape_like_escapes_the_escape_character_first() -> None:
    assert escape_like(r"50%_\x") == r"50\%\_\\x"


async def test_posts_by_tag_finds_posts_carrying_it(db: AsyncSession, blog: Blog) -> None:
    assert await _titles(db, posts_by_tag(" PANDAS ")) == ["A plain post", "Async Python"]


# --- relationship loading, counted -------------------------------------------------------------


async def test_lazy_loading_costs_one_query_per_post_selectin_two_joined_one(
    db: AsyncSession, blog: Blog
) -> None:
    await db.scalar(select(1))  # start the session's transaction outside the counted blocks
    with count_statements(db) as lazy:
        posts = (await db.scalars(posts_with_tags(loading="lazy"))).all()
        lazy_tags = [sorted(t.name for t in await p.awaitable_attrs.tags) for p in posts]
    db.expunge_all()
    with count_statements(db) as selectin:
        posts = (await db.scalars(posts_with_tags(loading="selectin"))).all()
        selectin_tags = [sorted(t.name for t in p.tags) for p in posts]
    db.expunge_all()
    with count_statements(db) as joined:
        posts = (await db.scalars(posts_with_tags(loading="joined"))).unique().all()
        joined_tags = [sorted(t.name for t in p.tags) for p in posts]
    assert len(posts) == 8
    assert lazy_tags == selectin_tags == joined_tags
    assert (lazy.count, selectin.count, joined.count) == (1 + 8, 2, 1)
    assert "JOIN" in joined.statements[0]
    assert " IN (" in selectin.statements[1]


async def test_joined_collection_without_unique_raises(db: AsyncSession, blog: Blog) -> None:
    result = await db.execute(users_with_posts(loading="joined"))
    with pytest.raises(InvalidRequestError, match="unique"):
        result.scalars().all()


async def test_joined_many_to_one_needs_no_unique(db: AsyncSession, blog: Blog) -> None:
    await db.scalar(select(1))
    with count_statements(db) as counter:
        posts = (await db.scalars(posts_with_author())).all()
    assert len(posts) == 8
    assert all(p.author.id == p.author_id for p in posts)
    assert {p.author.username for p in posts} == {"ada", "bob", "zoë"}
    assert counter.count == 1


async def test_nested_selectin_loads_users_posts_and_tags_in_three_queries(
    db: AsyncSession, blog: Blog
) -> None:
    await db.scalar(select(1))
    with count_statements(db) as counter:
        users = (await db.scalars(users_with_posts_and_tags())).all()
        tag_count = sum(len(p.tags) for u in users for p in u.posts)
    assert counter.count == 3
    assert tag_count == sum(i % 4 for i in range(8))


async def test_selectin_and_joined_users_with_posts_agree(db: AsyncSession, blog: Blog) -> None:
    selectin = (await db.scalars(users_with_posts())).all()
    by_selectin = {u.username: sorted(p.title for p in u.posts) for u in selectin}
    db.expunge_all()
    joined = (await db.scalars(users_with_posts(loading="joined"))).unique().all()
    assert by_selectin == {u.username: sorted(p.title for p in u.posts) for u in joined}
    assert by_selectin["old"] == []


async def test_count_statements_works_on_an_engine_and_stops_counting_after_the_block(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        with count_statements(engine) as counter:
            await conn.execute(select(1))
            await conn.execute(select(literal(2)))
        await conn.execute(select(literal(3)))
    assert counter.count == 2
    assert all(s.startswith("SELECT") for s in counter.statements)


def test_count_statements_rejects_other_targets() -> None:
    with (
        pytest.raises(InvalidInputError, match="count_statements needs"),
        count_statements(
            "postgresql://"  # type: ignore[arg-type]
        ),
    ):
        pass


def test_an_unknown_loading_strategy_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="unknown loading"):
        posts_with_tags(loading="subquery")  # type: ignore[arg-type]
