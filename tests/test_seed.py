from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.cli import main
from blogdata.config import get_settings
from blogdata.db.engine import create_engine
from blogdata.errors import InvalidInputError, QueryError
from blogdata.loaders import load_frame
from blogdata.models import ROLES, Account, Post, Tag, User, post_tags
from blogdata.security import verify_password
from blogdata.seed import (
    _CLUSTERS,
    DEMO_PASSWORD,
    DEMO_PASSWORD_HASH,
    SEED_NOW,
    _Blog,
    _vocabulary,
    reset,
    seed,
)
from tests.helpers import create_database, drop_database, migrated_database

TABLES: dict[str, Any] = {
    "users": User.__table__,
    "accounts": Account.__table__,
    "tags": Tag.__table__,
    "posts": Post.__table__,
    "post_tags": post_tags,
}


async def frames(db: AsyncSession) -> dict[str, pd.DataFrame]:
    """Every blog table as a frame, in primary-key order."""
    return {
        name: await load_frame(db, select(table).order_by(*table.primary_key.columns))
        for name, table in TABLES.items()
    }


async def test_the_same_arguments_give_identical_tables_in_another_database(
    db: AsyncSession, seeded_db: AsyncSession
) -> None:
    await seed(db)  # the defaults, as the seeded_url fixture used
    mine, theirs = await frames(db), await frames(seeded_db)
    for name in TABLES:
        pd.testing.assert_frame_equal(mine[name], theirs[name], check_exact=True, obj=name)


async def test_a_different_seed_gives_different_data(
    db: AsyncSession, seeded_db: AsyncSession
) -> None:
    await seed(db, random_seed=7)
    mine, theirs = await frames(db), await frames(seeded_db)
    assert len(mine["users"]) == len(theirs["users"])
    assert not mine["users"]["username"].equals(theirs["users"]["username"])
    assert not mine["posts"]["author_id"].equals(theirs["posts"]["author_id"])


async def test_moving_now_moves_the_users_and_keeps_every_post_in_its_authors_life(
    db: AsyncSession,
) -> None:
    await seed(db, users=30)
    before = await frames(db)
    await reset(db)
    later = SEED_NOW + timedelta(days=10)
    await seed(db, users=30, now=later)
    after = await frames(db)
    shift = pd.Timedelta(days=10)
    for column in ["created_at", "last_login"]:
        pd.testing.assert_series_equal(after["users"][column], before["users"][column] + shift)
    # Post times follow the calendar's weekly and seasonal rhythm, so they do not simply shift
    # (and ids, which follow the times, get their titles and views in a new order); each author
    # still writes as many posts, and the titles and views are the same ones.
    for column in ["author_id", "title", "views"]:
        counts = [frame["posts"][column].value_counts(dropna=False) for frame in (after, before)]
        pd.testing.assert_series_equal(counts[0].sort_index(), counts[1].sort_index())
    signup = after["users"].set_index("id")["created_at"]
    created = after["posts"]["created_at"]
    assert (created >= after["posts"]["author_id"].map(signup).to_numpy()).all()
    assert (created < pd.Timestamp(later)).all()


def test_posts_follow_a_weekly_rhythm_and_no_month_is_squeezed() -> None:
    blog = _Blog(2000, 5.0, 30, 42, SEED_NOW)
    blog._plan_post_numbers()
    created = pd.to_datetime(blog.created_us, unit="us")
    per_weekday = pd.Series(created.day_of_week).value_counts(normalize=True).sort_index()
    assert per_weekday[[5, 6]].max() < per_weekday[[0, 1, 2, 3, 4]].min()  # quiet weekends
    months = pd.Series(1, index=created).resample("MS").sum()
    # The seed's last month is an ordinary month, not a pile-up before ``now`` (it used to
    # hold a quarter of all posts, 2.2x the month before it).
    assert months.iloc[-1] < 1.3 * months.iloc[-2]
    assert months.iloc[-1] < 0.12 * months.sum()


async def test_the_counts_follow_the_arguments(db: AsyncSession) -> None:
    summary = await seed(db, users=120, posts_per_user=2.5, tags=12, random_seed=3)
    counts = {
        name: await db.scalar(select(func.count()).select_from(table))
        for name, table in TABLES.items()
    }
    assert counts == {
        "users": 120,
        "accounts": 120,
        "tags": 12,
        "posts": 300,
        "post_tags": summary.post_tags,
    }
    assert (summary.users, summary.posts, summary.tags) == (120, 300, 12)
    assert summary.rows == sum(n or 0 for n in counts.values())


async def test_the_seeded_blog_looks_like_a_real_one(seeded_db: AsyncSession) -> None:
    t = await frames(seeded_db)
    users, posts, links = t["users"], t["posts"], t["post_tags"]
    assert users["username"].is_unique and users["email"].is_unique
    assert t["tags"]["name"].is_unique
    assert set(users["role"]) == set(ROLES)
    assert users["role"].value_counts().idxmax() == "reader"
    assert 0 < (~users["is_active"]).sum() < len(users) / 4
    assert 0 < users["last_login"].isna().sum() < len(users) / 4
    assert (users["hashed_password"] == DEMO_PASSWORD_HASH).all()
    assert (t["accounts"]["owner_id"] == users["id"]).all()
    assert all(isinstance(b, type(t["accounts"]["balance"][0])) for b in t["accounts"]["balance"])
    # Long tail: the busiest author writes many times the median author's posts.
    per_author = posts["author_id"].value_counts()
    assert per_author.max() >= 5 * per_author.median()
    assert set(users.loc[users["id"].isin(per_author.index), "role"]) <= {
        "author",
        "editor",
        "admin",
    }
    # Popular and niche subjects: the most used tag is used several times more than the median.
    per_tag = links["tag_id"].value_counts()
    assert per_tag.max() >= 3 * per_tag.median()
    assert set(links.groupby("post_id").size()) <= {1, 2, 3, 4, 5}
    # Every published post has 1 to 5 tags; some drafts are not tagged yet.
    untagged = set(posts["id"]) - set(links["post_id"])
    assert untagged and untagged <= set(posts.loc[posts["published_at"].isna(), "id"])
    assert posts["views"].isna().any() and posts["published_at"].isna().any()
    now = pd.Timestamp(SEED_NOW)
    for column in ("created_at", "updated_at", "published_at"):
        assert posts[column].max() <= now
    assert (
        posts["published_at"].dropna() >= posts.loc[posts["published_at"].notna(), "created_at"]
    ).all()
    assert users["created_at"].min() >= now - pd.Timedelta(days=540)
    assert 30 <= posts["title"].str.len().mean() <= 50
    assert 350 <= posts["content"].str.len().mean() <= 500


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


async def tagged_posts(db: AsyncSession) -> pd.DataFrame:
    """One row per post: its title, content, author and the list of its tags' names."""
    t = await frames(db)
    names = t["tags"].set_index("id")["name"]
    tags = t["post_tags"].assign(tag=t["post_tags"]["tag_id"].map(names))
    return t["posts"].set_index("id").join(tags.groupby("post_id")["tag"].agg(list))


async def test_the_top_tags_are_real_blog_subjects(seeded_db: AsyncSession) -> None:
    posts = await tagged_posts(seeded_db)
    counts = posts["tag"].explode().value_counts()
    vocabulary = {t.name for t in _vocabulary(200)}
    assert set(counts.index) <= vocabulary
    # The most used tags are among their subjects' favourites (python, pandas, travel, ...),
    # not stopwords: the old seed's favourite, "through", was on 40% of the posts.
    favourites = {t.partition(":")[0] for c in _CLUSTERS for t in c.tags[:3]}
    assert set(counts.index[:5]) <= favourites
    assert counts.iloc[0] < 0.25 * len(posts)
    assert not set(counts.index) & {"through", "i", "it", "the", "and", "of"}


def test_the_vocabulary_spans_the_subjects_first_and_stays_unique_beyond_it() -> None:
    first = _vocabulary(len(_CLUSTERS))
    assert [t.cluster for t in first] == list(range(len(_CLUSTERS)))  # one per subject
    many = _vocabulary(1000)
    assert len({t.name for t in many}) == 1000
    assert max(len(t.name) for t in many) <= 50  # tags.name is a varchar(50)
    assert all(_words(t.name.replace("-", " ")) <= _words(t.words) for t in many)


async def test_a_posts_tags_share_its_subject(seeded_db: AsyncSession) -> None:
    posts = await tagged_posts(seeded_db)
    cluster = {t.name: t.cluster for t in _vocabulary(40)}
    human = posts[posts["author_id"] != DIGEST_ID].dropna(subset=["tag"])
    pairs = [
        (cluster[a], cluster[b])
        for tags in human["tag"]
        for i, a in enumerate(tags)
        for b in tags[i + 1 :]
    ]
    same = sum(a == b for a, b in pairs) / len(pairs)
    # By chance (tags drawn by popularity alone) about one pair in ten would share a subject.
    assert same > 0.6, same


async def test_every_title_names_one_of_its_posts_tags(seeded_db: AsyncSession) -> None:
    posts = await tagged_posts(seeded_db)
    words = {t.name: _words(t.words) for t in _vocabulary(40)}
    posts = posts.dropna(subset=["tag"])  # drafts not tagged yet
    misses = [
        (title, tags)
        for title, tags in zip(posts["title"], posts["tag"], strict=True)
        if not any(words[tag] & _words(title) for tag in tags)
    ]
    assert misses == []
    # and the text is about the post's subject: it uses one of the subject's phrases.
    phrases = {t.name: _CLUSTERS[t.cluster].phrases for t in _vocabulary(40)}
    texts = posts.dropna(subset=["content"])
    assert all(
        any(p in text for tag in tags for p in phrases[tag])
        for text, tags in zip(texts["content"], texts["tag"], strict=True)
    )


DIGEST_ID = 4  # the default seed's automated account: the first author to sign up


async def test_one_automated_account_posts_several_times_a_day_and_no_person_does(
    seeded_db: AsyncSession,
) -> None:
    t = await frames(seeded_db)
    users, posts = t["users"].set_index("id"), t["posts"]
    bot = users.loc[DIGEST_ID]
    assert (bot["username"], bot["full_name"]) == ("daily.digest", "Daily Digest")
    assert pd.isna(bot["last_login"])  # it never logs in
    span = posts.groupby("author_id")["created_at"].agg(["count", "min", "max"])
    days = (span["max"] - span["min"]) / pd.Timedelta(days=1)
    per_day = (span["count"] / days.clip(lower=1)).where(span["count"] >= 10)
    assert per_day[DIGEST_ID] > 3.5
    people = per_day.drop(DIGEST_ID)
    assert people.max() < 1, people.nlargest(3)
    share = span["count"] / len(posts)
    assert share.drop(DIGEST_ID).max() < 0.15  # no one person writes the blog
    assert 0.02 < share[DIGEST_ID] <= 0.05
    # Most people write a few posts, some write dozens.
    assert 3 <= span["count"].drop(DIGEST_ID).median() <= 15
    assert span["count"].drop(DIGEST_ID).max() >= 40
    # It posts every six hours, five past the hour, and is published at once.
    mine = posts[posts["author_id"] == DIGEST_ID]
    assert set(mine["created_at"].dt.hour) == {0, 6, 12, 18}
    assert set(mine["created_at"].dt.minute) <= {5, 6}
    assert (mine["published_at"] - mine["created_at"] <= pd.Timedelta(minutes=1)).all()


def test_small_blogs_have_no_automated_account() -> None:
    assert _Blog(30, 5.0, 40, 42, SEED_NOW).n_digest == 0
    assert "daily.digest" not in _Blog(30, 5.0, 40, 42, SEED_NOW).usernames


def test_the_shared_hash_is_the_demo_password() -> None:
    assert verify_password(DEMO_PASSWORD, DEMO_PASSWORD_HASH)


async def test_new_rows_get_ids_after_the_seeded_ones(db: AsyncSession) -> None:
    await seed(db, users=10, posts_per_user=1, tags=3)
    tag = Tag(name="brand-new")
    db.add(tag)
    await db.flush()
    assert tag.id == 4
    assert await db.scalar(text("SELECT nextval(pg_get_serial_sequence('users', 'id'))")) == 11


async def test_seeding_a_database_that_has_rows_is_refused(db: AsyncSession) -> None:
    await seed(db, users=5)
    with pytest.raises(InvalidInputError, match=r"users, accounts, tags, posts, post_tags"):
        await seed(db, users=5)
    await reset(db)
    assert await db.scalar(select(func.count()).select_from(User)) == 0
    await seed(db, users=5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"users": 0}, "users must be a positive integer"),
        ({"users": -3}, "users must be a positive integer"),
        ({"users": 2.5}, "users must be a positive integer"),
        ({"posts_per_user": -1}, "posts_per_user must be a finite number"),
        ({"posts_per_user": float("nan")}, "posts_per_user must be a finite number"),
        ({"tags": -1}, "tags must be an integer"),
        ({"random_seed": -1}, "random_seed must be an integer"),
        ({"now": datetime(2026, 1, 1)}, "now must be a time-zone-aware datetime"),  # noqa: DTZ001
    ],
    ids=["zero-users", "negative-users", "fractional-users", "negative-posts", "nan-posts",
         "negative-tags", "negative-seed", "naive-now"],
)  # fmt: skip
async def test_bad_arguments_are_rejected_before_any_sql(
    db: AsyncSession, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        await seed(db, **kwargs)


async def test_zero_tags_and_zero_posts_still_seed_users(db: AsyncSession) -> None:
    summary = await seed(db, users=8, posts_per_user=0, tags=0)
    assert (summary.posts, summary.tags, summary.post_tags) == (0, 0, 0)
    assert await db.scalar(select(func.count()).select_from(User)) == 8


async def test_an_unmigrated_database_is_a_clear_error(server_url: URL) -> None:
    name = f"blogdata_empty_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    eng = create_engine(url)
    try:
        with pytest.raises(QueryError, match="blogdata migrate upgrade") as info:
            await seed(eng, users=5)
        assert info.value.sqlstate == "42P01"
    finally:
        await eng.dispose()
        await drop_database(server_url, name)


async def test_an_engine_target_commits_its_own_transaction(server_url: URL) -> None:
    async with migrated_database(server_url, "blogdata_seedcommit") as url:
        eng: AsyncEngine = create_engine(url)
        try:
            await seed(eng, users=5, posts_per_user=1)
            async with eng.connect() as conn:
                assert await conn.scalar(select(func.count()).select_from(Post)) == 5
            await reset(eng)
            async with eng.connect() as conn:
                assert await conn.scalar(select(func.count()).select_from(User)) == 0
        finally:
            await eng.dispose()


@pytest.fixture
async def cli_database(server_url: URL, monkeypatch: pytest.MonkeyPatch) -> Any:
    name = f"blogdata_seedcli_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", url.render_as_string(hide_password=False))
    get_settings(reload=True)
    try:
        yield url
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
        await drop_database(server_url, name)


def test_the_seed_command_migrates_seeds_and_resets(
    cli_database: URL, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["seed", "--users", "12", "--seed", "5", "--posts-per-user", "2"]) == 0
    out = capsys.readouterr()
    assert "12 users, 24 posts, 40 tags" in out.out
    assert DEMO_PASSWORD in out.out
    assert "\r" not in out.err  # captured output is no terminal: no progress frames in it
    assert main(["seed", "--users", "12"]) == 1
    assert "already have rows" in capsys.readouterr().err
    assert main(["seed", "--users", "3", "--tags", "2", "--reset"]) == 0
    assert "3 users, 15 posts, 2 tags" in capsys.readouterr().out


async def test_big_loads_rebuild_exactly_the_foreign_keys_and_indexes_they_dropped(
    db: AsyncSession,
) -> None:
    from blogdata.seed import _drop_checks

    catalog = text(
        "SELECT conname AS name, pg_get_constraintdef(oid) AS def FROM pg_constraint "
        "WHERE connamespace = 'public'::regnamespace "
        "UNION ALL SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
        "ORDER BY 1, 2"
    )
    before = (await db.execute(catalog)).all()
    driver = (await (await db.connection()).get_raw_connection()).driver_connection
    assert driver is not None
    rebuild = await _drop_checks(driver)
    during = (await db.execute(catalog)).all()
    assert {"fk_posts_author_id_users", "ix_posts_author_id"} <= {n for n, _ in before} - {
        n for n, _ in during
    }
    for statement in rebuild:
        await driver.execute(statement)
    assert (await db.execute(catalog)).all() == before


async def test_seeding_through_an_engine_analyses_so_describe_has_row_estimates(
    server_url: URL,
) -> None:
    from blogdata.describe import describe

    async with migrated_database(server_url, "bd_seed_analyze") as url:
        engine = create_engine(url)
        try:
            summary = await seed(engine, users=40)
            async with engine.connect() as conn:
                tables = (await describe(conn)).set_index("name")["estimated_rows"]
        finally:
            await engine.dispose()
    expected = {"users": summary.users, "accounts": summary.accounts, "tags": summary.tags,
                "posts": summary.posts, "post_tags": summary.post_tags}  # fmt: skip
    assert {name: tables[name] for name in expected} == expected


async def test_seeding_in_a_callers_transaction_analyses_only_when_asked(
    server_url: URL,
) -> None:
    # A database of its own: ANALYZE's row estimates outlive a rollback (updated in place).
    estimate = text("SELECT reltuples FROM pg_class WHERE oid = 'users'::regclass")
    async with migrated_database(server_url, "bd_seed_analyze") as url:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn, conn.begin() as transaction:
                await seed(conn, users=20)
                assert await conn.scalar(estimate) < 0  # never analysed: the caller decides
                await reset(conn)
                await seed(conn, users=20, analyze=True)
                assert await conn.scalar(estimate) == 20
                await transaction.rollback()
        finally:
            await engine.dispose()


async def test_progress_outside_a_terminal_or_notebook_writes_nothing(
    db: AsyncSession, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import blogdata.seed as seeding

    monkeypatch.setattr(seeding, "_PROGRESS_DELAY", 0.0)  # even a bar shown at once
    await seed(db, users=20, progress=True)
    assert capsys.readouterr().err == ""
