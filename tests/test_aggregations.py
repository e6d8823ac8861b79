"""Each aggregation against the same answer computed in pandas from the raw seeded tables."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Select, and_, case, func, insert, literal, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.orm import aliased

from blogdata import aggregations as agg
from blogdata._checks import INT8_MAX, check_count
from blogdata.diagnostics import explain, plan_indexes, render_sql
from blogdata.errors import InvalidInputError
from blogdata.loaders import load_frame, stream_frames
from blogdata.models import ROLES, Post, Tag, User, post_tags
from blogdata.seed import SEED_NOW, seed

COUNT, NAME, TIME, MEAN = "Int64", "string", "datetime64[us, UTC]", "Float64"


@pytest.fixture
async def raw(seeded_db: AsyncSession) -> dict[str, pd.DataFrame]:
    """The raw tables the aggregations read, loaded whole."""
    tables: dict[str, Any] = {"users": User, "posts": Post, "tags": Tag, "links": post_tags}
    return {name: await load_frame(seeded_db, select(t)) for name, t in tables.items()}


def assert_same(actual: pd.DataFrame, expected: pd.DataFrame, dtypes: dict[str, str]) -> None:
    """Same columns in the same order, the documented dtypes, and exactly the same values."""
    assert list(actual.columns) == list(dtypes)
    assert {c: str(actual[c].dtype) for c in actual.columns} == dtypes
    assert len(actual) > 0
    expected = expected.reset_index(drop=True)[list(dtypes)].astype(actual.dtypes.to_dict())
    pd.testing.assert_frame_equal(actual, expected, check_exact=True)


def by_count(frame: pd.DataFrame, count: str, tiebreak: list[str]) -> pd.DataFrame:
    return frame.sort_values([count, *tiebreak], ascending=[False] + [True] * len(tiebreak))


async def test_count_users_counts_all_or_only_active_users(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    users = raw["users"]
    assert await agg.count_users(seeded_db) == len(users) == 200
    assert await agg.count_users(seeded_db, active=True) == users["is_active"].sum()
    assert await agg.count_users(seeded_db, active=False) == (~users["is_active"]).sum()


async def test_users_by_role_lists_every_role_in_privilege_order(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    counts = raw["users"]["role"].value_counts().reindex(list(ROLES), fill_value=0)
    expected = pd.DataFrame({"role": list(ROLES), "users": counts.to_numpy()})
    assert_same(await agg.users_by_role(seeded_db), expected, {"role": NAME, "users": COUNT})


async def test_users_by_role_shows_zero_for_a_role_nobody_has(db: AsyncSession) -> None:
    frame = await agg.users_by_role(db)
    assert frame["role"].tolist() == list(ROLES)
    assert frame["users"].tolist() == [0, 0, 0, 0]


async def test_posts_per_author_matches_a_pandas_groupby(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    counts = raw["posts"].groupby("author_id").size().rename("posts").reset_index()
    names = raw["users"][["id", "username"]].rename(columns={"id": "author_id"})
    expected = by_count(counts.merge(names, on="author_id"), "posts", ["author_id"])
    assert_same(
        await agg.posts_per_author(seeded_db),
        expected,
        {"author_id": COUNT, "username": NAME, "posts": COUNT},
    )


def tag_counts(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    used = raw["links"].groupby("tag_id").size()
    tags = raw["tags"].assign(posts=raw["tags"]["id"].map(used).fillna(0).astype("int64"))
    return by_count(tags.rename(columns={"name": "tag"}), "posts", ["tag"])


async def test_posts_per_tag_matches_pandas_including_unused_tags(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    frame = await agg.posts_per_tag(seeded_db)
    assert_same(frame, tag_counts(raw), {"tag": NAME, "posts": COUNT})
    assert len(frame) == len(raw["tags"])


async def test_top_tags_is_the_head_of_posts_per_tag(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    frame = await agg.top_tags(seeded_db, n=5)
    assert_same(frame, tag_counts(raw).head(5), {"tag": NAME, "posts": COUNT})


def monthly(stamps: pd.Series) -> pd.DataFrame:
    months = stamps.dropna().dt.tz_localize(None).dt.to_period("M").dt.start_time
    counts = months.value_counts()
    every = pd.date_range(counts.index.min(), counts.index.max(), freq="MS")
    return pd.DataFrame(
        {"month": every.tz_localize("UTC"), "posts": counts.reindex(every, fill_value=0).to_numpy()}
    )


@pytest.mark.parametrize("by", ["created_at", "published_at"], ids=["written", "published"])
async def test_posts_per_month_matches_pandas_in_utc(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame], by: str
) -> None:
    frame = await agg.posts_per_month(seeded_db, by=by)  # type: ignore[arg-type]
    assert_same(frame, monthly(raw["posts"][by]), {"month": TIME, "posts": COUNT})


async def test_posts_per_month_fills_empty_months_and_ignores_the_session_time_zone(
    db: AsyncSession,
) -> None:
    await seed(db, users=3, posts_per_user=0, tags=0)
    utc = SEED_NOW.tzinfo
    for when in [datetime(2025, 1, 31, 23, 30, tzinfo=utc), datetime(2025, 4, 1, 2, 0, tzinfo=utc)]:
        db.add(Post(title="t", author_id=1, created_at=when))
    await db.flush()
    # 2025-04-01 02:00 UTC is still March in New York: the months must stay UTC months.
    await db.execute(text("SET LOCAL TIME ZONE 'America/New_York'"))
    frame = await agg.posts_per_month(db)
    assert frame["month"].dt.strftime("%Y-%m-%d %z").tolist() == [
        "2025-01-01 +0000",
        "2025-02-01 +0000",
        "2025-03-01 +0000",
        "2025-04-01 +0000",
    ]
    assert frame["posts"].tolist() == [1, 0, 0, 1]


async def test_posts_per_month_of_no_posts_is_empty_with_its_columns(db: AsyncSession) -> None:
    frame = await agg.posts_per_month(db)
    assert frame.empty
    assert list(frame.columns) == ["month", "posts"]
    assert str(frame["month"].dtype) == TIME


@pytest.mark.parametrize("days", [7, 30, 365], ids=["week", "month", "year"])
async def test_active_authors_matches_pandas_for_the_window(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame], days: int
) -> None:
    posts, now = raw["posts"], pd.Timestamp(SEED_NOW)
    recent = posts[(posts["created_at"] > now - pd.Timedelta(days=days))]
    recent = recent[recent["created_at"] <= now]
    grouped = recent.groupby("author_id")["created_at"].agg(["size", "max"]).reset_index()
    grouped.columns = ["author_id", "posts", "last_post"]
    names = raw["users"][["id", "username"]].rename(columns={"id": "author_id"})
    expected = by_count(grouped.merge(names, on="author_id"), "posts", ["author_id"])
    assert_same(
        await agg.active_authors(seeded_db, days=days, now=SEED_NOW),
        expected,
        {"author_id": COUNT, "username": NAME, "posts": COUNT, "last_post": TIME},
    )


@pytest.mark.parametrize("min_posts", [1, 10], ids=["all-pairs", "frequent-pairs"])
async def test_tag_cooccurrence_matches_a_pandas_self_join(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame], min_posts: int
) -> None:
    links = raw["links"].merge(raw["tags"], left_on="tag_id", right_on="id")[["post_id", "name"]]
    pairs = links.merge(links, on="post_id", suffixes=("_a", "_b"))
    pairs = pairs[pairs["name_a"] < pairs["name_b"]]
    counts = pairs.groupby(["name_a", "name_b"]).size().rename("posts").reset_index()
    counts = counts.rename(columns={"name_a": "tag_a", "name_b": "tag_b"})
    expected = by_count(counts[counts["posts"] >= min_posts], "posts", ["tag_a", "tag_b"])
    assert_same(
        await agg.tag_cooccurrence(seeded_db, min_posts=min_posts),
        expected,
        {"tag_a": NAME, "tag_b": NAME, "posts": COUNT},
    )


def old_tag_cooccurrence_query(*, min_posts: int = 1) -> Select[str, str, int]:
    """The oracle: ``tag_cooccurrence_query`` as it was before issue 19 (a self-join of links)."""
    check_count(min_posts, "min_posts", minimum=1, maximum=INT8_MAX)
    a, b = post_tags.alias("a"), post_tags.alias("b")
    pairs = (
        select(a.c.tag_id.label("x"), b.c.tag_id.label("y"), func.count().label("posts"))
        .join(b, and_(a.c.post_id == b.c.post_id, a.c.tag_id < b.c.tag_id))
        .group_by(a.c.tag_id, b.c.tag_id)
        .having(func.count() >= literal(min_posts))
        .subquery()
    )
    tag_x, tag_y = aliased(Tag, name="tag_x"), aliased(Tag, name="tag_y")
    x_first = tag_x.name.collate("C") < tag_y.name.collate("C")
    tag_a = case((x_first, tag_x.name), else_=tag_y.name).label("tag_a")
    tag_b = case((x_first, tag_y.name), else_=tag_x.name).label("tag_b")
    return (
        select(tag_a, tag_b, pairs.c.posts)
        .join(tag_x, tag_x.id == pairs.c.x)
        .join(tag_y, tag_y.id == pairs.c.y)
        .order_by(pairs.c.posts.desc(), tag_a.collate("C"), tag_b.collate("C"))
    )


#: Tag names whose code-point order differs from most collations' order: case, accents,
#: non-Latin scripts, punctuation and digits.
COOC_NAMES = ["b", "B", "a", "A", "é", "É", "e", "z", "ß", "ä", "Z", "日本", "_x", "10", "9", "aa"]


async def add_tagged_posts(db: AsyncSession, names: list[str], posts: list[list[int]]) -> None:
    """Add tags ``names`` (ids in that order) and one post per entry of ``posts`` (tag indexes).

    The links are inserted in the order given, so their heap order is not the id order.
    """
    await seed(db, users=1, posts_per_user=0, tags=0)
    tag_ids: list[int] = []
    if names:
        returned = await db.scalars(
            insert(Tag).returning(Tag.id, sort_by_parameter_order=True),
            [{"name": name} for name in names],
        )
        tag_ids = list(returned.all())
    if not posts:
        return
    post_ids = (
        await db.scalars(
            insert(Post).returning(Post.id, sort_by_parameter_order=True),
            [{"title": f"p{i}", "author_id": 1, "created_at": SEED_NOW} for i in range(len(posts))],
        )
    ).all()
    links = [
        {"post_id": post_id, "tag_id": tag_ids[t]}
        for post_id, tags in zip(post_ids, posts, strict=True)
        for t in tags
    ]
    if links:
        await db.execute(insert(post_tags), links)


async def assert_cooccurrence_as_oracle(db: AsyncSession, min_posts: int) -> pd.DataFrame:
    """The new statement, the public function and the old self-join give the same frame."""
    expected = await load_frame(db, old_tag_cooccurrence_query(min_posts=min_posts))
    new = await load_frame(db, agg.tag_cooccurrence_query(min_posts=min_posts))
    frame = await agg.tag_cooccurrence(db, min_posts=min_posts)
    assert {c: str(frame[c].dtype) for c in frame.columns} == {
        "tag_a": NAME,
        "tag_b": NAME,
        "posts": COUNT,
    }
    pd.testing.assert_frame_equal(new, expected, check_exact=True)
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    return frame


@st.composite
def tagged_posts(draw: st.DrawFn) -> tuple[list[str], list[list[int]], int]:
    """Random tags (names in random id order) and posts carrying 0 to all of them."""
    names = draw(st.lists(st.sampled_from(COOC_NAMES), min_size=0, max_size=7, unique=True))
    post = st.lists(st.integers(0, len(names) - 1), unique=True) if names else st.just([])
    posts = draw(st.lists(post, max_size=14))
    return names, posts, draw(st.integers(1, 4))


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(example=tagged_posts())
async def test_tag_cooccurrence_equals_the_old_self_join_on_random_tag_assignments(
    db: AsyncSession, example: tuple[list[str], list[list[int]], int]
) -> None:
    names, posts, min_posts = example
    savepoint = await db.begin_nested()
    try:
        await add_tagged_posts(db, names, posts)
        for threshold in sorted({1, min_posts, min_posts + 1}):
            await assert_cooccurrence_as_oracle(db, threshold)
    finally:
        await savepoint.rollback()


async def test_tag_cooccurrence_ties_and_posts_without_pairs(db: AsyncSession) -> None:
    # Posts with no tag or one tag give no pair; B-a and a-é tie on 2 posts and are ordered by
    # code point ("B" < "a"), although "a" sorts before "B" in most collations and ids differ.
    names = ["é", "b", "a", "B"]
    posts = [[], [0], [1], [1, 0], [0, 1], [0, 1, 2], [2, 3], [3, 2], [0, 2]]
    await add_tagged_posts(db, names, posts)
    frame = await assert_cooccurrence_as_oracle(db, 1)
    assert frame.to_dict("list") == {
        "tag_a": ["b", "B", "a", "a"],
        "tag_b": ["é", "a", "é", "b"],
        "posts": [3, 2, 2, 1],
    }
    assert (await assert_cooccurrence_as_oracle(db, 3)).to_dict("list") == {
        "tag_a": ["b"],
        "tag_b": ["é"],
        "posts": [3],
    }
    assert (await assert_cooccurrence_as_oracle(db, 4)).empty


async def test_tag_cooccurrence_does_not_depend_on_the_order_of_each_posts_tags(
    db: AsyncSession,
) -> None:
    # The same set {a, b} linked in both orders: with index scans and sorts off, the per-post
    # arrays come in heap order, so the set appears twice, as [a, b] and [b, a].
    await add_tagged_posts(db, ["a", "b", "c"], [[0, 1], [1, 0], [1, 0, 2], [2]])
    for setting in ("enable_indexscan", "enable_indexonlyscan", "enable_bitmapscan", "enable_sort"):
        await db.execute(text(f"SET LOCAL {setting} = off"))
    arrays = (
        await db.scalars(select(func.array_agg(post_tags.c.tag_id)).group_by(post_tags.c.post_id))
    ).all()
    assert any(list(arr) != sorted(arr) for arr in arrays)  # the case this test is about
    frame = await assert_cooccurrence_as_oracle(db, 1)
    assert frame.to_dict("list") == {
        "tag_a": ["a", "a", "b"],
        "tag_b": ["b", "c", "c"],
        "posts": [3, 1, 1],
    }


async def test_author_activity_matches_pandas(
    seeded_db: AsyncSession, raw: dict[str, pd.DataFrame]
) -> None:
    posts = raw["posts"].assign(length=raw["posts"]["content"].str.len())
    grouped = posts.groupby("author_id").agg(
        posts=("id", "size"),
        first_post=("created_at", "min"),
        last_post=("created_at", "max"),
        mean_length=("length", "mean"),
    )
    users = raw["users"][["id", "username", "role"]].rename(columns={"id": "author_id"})
    expected = by_count(grouped.reset_index().merge(users, on="author_id"), "posts", ["author_id"])
    frame = await agg.author_activity(seeded_db)
    assert_same(
        frame,
        expected,
        {
            "author_id": COUNT,
            "username": NAME,
            "role": NAME,
            "posts": COUNT,
            "first_post": TIME,
            "last_post": TIME,
            "mean_length": MEAN,
        },
    )
    assert frame["posts"].sum() == len(raw["posts"])


async def test_author_activity_mean_length_is_missing_when_no_post_has_content(
    db: AsyncSession,
) -> None:
    await seed(db, users=3, posts_per_user=0, tags=0)
    db.add(Post(title="empty draft", author_id=2, content=None, created_at=SEED_NOW))
    await db.flush()
    frame = await agg.author_activity(db)
    assert frame["posts"].tolist() == [1]
    assert frame["mean_length"].isna().all()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda db: agg.top_tags(db, n=0), "n must be a positive integer"),
        (lambda db: agg.active_authors(db, days=0, now=SEED_NOW), "days must be a positive"),
        (
            lambda db: agg.active_authors(db, days=3, now=datetime(2026, 1, 1)),  # noqa: DTZ001
            "now must be a time-zone-aware",
        ),
        (lambda db: agg.posts_per_month(db, by="views"), "by must be 'created_at'"),  # type: ignore[arg-type]  # refused on purpose
        (lambda db: agg.tag_cooccurrence(db, min_posts=0), "min_posts must be a positive"),
    ],
    ids=["zero-top-tags", "zero-days", "naive-now", "unknown-month-column", "zero-min-posts"],
)
async def test_bad_arguments_are_rejected_before_any_sql(
    db: AsyncSession, call: Any, message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await call(db)


async def test_active_authors_window_excludes_its_start_and_includes_now(db: AsyncSession) -> None:
    await seed(db, users=3, posts_per_user=0, tags=0)
    for author, when in [
        (1, SEED_NOW - timedelta(days=7)),
        (2, SEED_NOW),
        (3, SEED_NOW + timedelta(seconds=1)),
    ]:
        db.add(Post(title="t", author_id=author, created_at=when))
    await db.flush()
    frame = await agg.active_authors(db, days=7, now=SEED_NOW)
    assert frame["author_id"].tolist() == [2]


# --- every aggregation is a statement first ------------------------------------------------------

FRAME_CASES: dict[str, dict[str, Any]] = {
    "users_by_role": {},
    "posts_per_author": {},
    "posts_per_tag": {},
    "top_tags": {"n": 3},
    "posts_per_month": {"by": "published_at"},
    "active_authors": {"days": 30, "now": SEED_NOW},
    "tag_cooccurrence": {"min_posts": 2},
    "author_activity": {},
}


@pytest.mark.parametrize("name", list(FRAME_CASES), ids=list(FRAME_CASES))
async def test_each_aggregation_is_the_frame_of_its_builders_select(
    seeded_db: AsyncSession, name: str
) -> None:
    kwargs = FRAME_CASES[name]
    stmt = getattr(agg, f"{name}_query")(**kwargs)
    assert isinstance(stmt, Select)
    frame = await getattr(agg, name)(seeded_db, **kwargs)
    assert len(frame) > 0
    pd.testing.assert_frame_equal(await load_frame(seeded_db, stmt), frame, check_exact=True)
    chunks = [chunk async for chunk in stream_frames(seeded_db, stmt, chunk_size=7)]
    streamed = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(streamed, frame, check_exact=True)


@pytest.mark.parametrize("name", list(FRAME_CASES), ids=list(FRAME_CASES))
async def test_each_builders_select_can_be_shown_and_explained(
    seeded_db: AsyncSession, name: str
) -> None:
    stmt = getattr(agg, f"{name}_query")(**FRAME_CASES[name])
    assert render_sql(stmt).startswith(("SELECT", "WITH"))
    plan = await explain(seeded_db, stmt, analyze=True)
    assert plan["Plan"]["Actual Rows"] > 0


@pytest.mark.parametrize("active", [None, True, False], ids=["all", "active", "inactive"])
async def test_count_users_is_the_scalar_of_its_builders_select(
    seeded_db: AsyncSession, active: bool | None
) -> None:
    stmt = agg.count_users_query(active=active)
    assert await seeded_db.scalar(stmt) == await agg.count_users(seeded_db, active=active)
    assert list((await load_frame(seeded_db, stmt)).columns) == ["users"]


async def test_posts_per_month_is_a_select_without_text_sql() -> None:
    stmt = agg.posts_per_month_query()
    assert isinstance(stmt, Select)
    assert list(stmt.selected_columns.keys()) == ["month", "posts"]


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: agg.top_tags_query(n=0), "n must be a positive integer"),
        (lambda: agg.active_authors_query(days=0, now=SEED_NOW), "days must be a positive"),
        (lambda: agg.posts_per_month_query(by="views"), "by must be 'created_at'"),  # type: ignore[arg-type]  # refused on purpose
        (lambda: agg.tag_cooccurrence_query(min_posts=0), "min_posts must be a positive"),
    ],
    ids=["zero-top-tags", "zero-days", "unknown-month-column", "zero-min-posts"],
)
def test_builders_reject_bad_arguments_as_their_functions_do(call: Any, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()


# --- speed without rollups: the stored length and the covering indexes ---------------------------


async def test_author_activity_follows_content_edits_through_the_stored_length(
    db: AsyncSession,
) -> None:
    await seed(db, users=2, posts_per_user=0, tags=0)
    db.add_all(
        [
            Post(title="a", author_id=1, content="four", created_at=SEED_NOW),
            Post(title="b", author_id=1, content="sixsix", created_at=SEED_NOW),
        ]
    )
    await db.flush()
    assert (await agg.author_activity(db))["mean_length"].tolist() == [5.0]
    await db.execute(update(Post).where(Post.title == "b").values(content="twelve chars"))
    await db.execute(update(Post).where(Post.title == "a").values(content=None))
    assert (await agg.author_activity(db))["mean_length"].tolist() == [12.0]


async def test_the_stored_length_is_length_of_content_on_every_seeded_post(
    seeded_db: AsyncSession,
) -> None:
    differing = select(Post.id).where(
        Post.content_length.is_distinct_from(text("length(posts.content)"))
    )
    assert (await seeded_db.execute(differing)).all() == []


def _nodes_on(node: dict[str, Any], table: str) -> list[str]:
    found = [node["Node Type"]] if node.get("Relation Name") == table else []
    for child in node.get("Plans", []):
        found += _nodes_on(child, table)
    return found


@pytest.mark.parametrize(
    ("builder", "index"),
    [
        (agg.author_activity_query, "ix_posts_author_created"),
        (lambda: agg.active_authors_query(days=30, now=SEED_NOW), "idx_post_created_id"),
    ],
    ids=["author-activity", "active-authors"],
)
async def test_the_per_author_scans_read_their_covering_index_alone(
    seeded_engine: AsyncEngine, seeded_db: AsyncSession, builder: Any, index: str
) -> None:
    async with seeded_engine.connect() as conn:  # as on a real database: statistics, visibility
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        await conn.execute(text("VACUUM ANALYZE posts"))
    # The seeded blog is small enough for a seq scan: forbid it, so the plan shows which index
    # PostgreSQL would read. One lacking a column the query needs could not be read alone.
    await seeded_db.execute(text("SET LOCAL enable_seqscan = off"))
    await seeded_db.execute(text("SET LOCAL enable_bitmapscan = off"))
    plan = await explain(seeded_db, builder())
    assert index in plan_indexes(plan)
    assert _nodes_on(plan["Plan"], "posts") == ["Index Only Scan"]
