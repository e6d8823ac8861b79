"""Hostile arguments: each is refused with one clear blogdata error, and the session lives on.

Two parts: regression tests for the inputs a hostile review found (each failed before the
checks in ``blogdata._checks`` existed), then a hypothesis property test that drives every public
function of crud, queries, transactions, bulk, aggregations, frames and the loaders with
generated hostile arguments and asserts: a normal result or a ``BlogdataError``, never another
exception, and afterwards the session still answers ``SELECT 1``.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import math
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError
from sqlalchemy import Select, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from blogdata import (
    aggregations,
    bulk,
    charts,
    crud,
    diagnostics,
    frames,
    loaders,
    queries,
    transactions,
)
from blogdata.crud import CRUDBase
from blogdata.db import sessions
from blogdata.describe import describe as describe_table
from blogdata.errors import BlogdataError, InvalidInputError
from blogdata.models import Account, Post, Tag, User
from blogdata.schemas import PostCreate, TagCreate, UserCreate

# --- regression tests: the inputs the review found ------------------------------------------------

BIG_IDS = [pytest.param(2**31, id="2**31"), pytest.param(2**63, id="2**63")]


async def _open_transaction(db: AsyncSession) -> None:
    """Start the caller's transaction, as real work would, so we can see it survive."""
    await db.scalar(select(1))
    assert db.in_transaction()


async def _assert_still_usable(db: AsyncSession) -> None:
    assert db.in_transaction()  # the caller's transaction was not ended ...
    assert await db.scalar(select(1)) == 1  # ... nor aborted


Call = Callable[[AsyncSession, Any], Awaitable[object]]

ID_CALLS: list[Any] = [
    pytest.param(lambda db, v: crud.user.get(db, v), "id", id="user.get"),
    pytest.param(lambda db, v: crud.post.get(db, v), "id", id="post.get"),
    pytest.param(lambda db, v: crud.tag.get(db, v), "id", id="tag.get"),
    pytest.param(lambda db, v: crud.user.exists(db, v), "id", id="user.exists"),
    pytest.param(lambda db, v: crud.user.remove(db, id=v), "id", id="user.remove"),
    pytest.param(lambda db, v: crud.post.remove(db, id=v), "id", id="post.remove"),
    pytest.param(
        lambda db, v: crud.user.update(db, id=v, obj_in={"full_name": "x"}), "id", id="user.update"
    ),
    pytest.param(lambda db, v: crud.tag.update(db, id=v, obj_in={}), "id", id="tag.update"),
    pytest.param(lambda db, v: crud.post.get_with_tags(db, v), "id", id="post.get_with_tags"),
    pytest.param(
        lambda db, v: crud.post.get_multi_by_author(db, author_id=v),
        "author_id",
        id="post.get_multi_by_author",
    ),
    pytest.param(lambda db, v: bulk.delete_users(db, [1, v]), r"ids\[1\]", id="bulk_delete"),
    pytest.param(
        lambda db, v: transactions.transfer_funds(db, v, 1, Decimal("1")),
        "from_id",
        id="transfer-from",
    ),
    pytest.param(
        lambda db, v: transactions.transfer_funds(db, 1, v, Decimal("1")),
        "to_id",
        id="transfer-to",
    ),
]


@pytest.mark.parametrize("value", BIG_IDS)
@pytest.mark.parametrize(("call", "name"), ID_CALLS)
async def test_an_id_beyond_postgresql_integer_is_refused_by_name(
    db: AsyncSession, call: Call, name: str, value: int
) -> None:
    await _open_transaction(db)
    with pytest.raises(InvalidInputError, match=f"{name} .*cannot be a row id"):
        await call(db, value)
    await _assert_still_usable(db)


@pytest.mark.parametrize("skip", [2**63, 10**30], ids=["2**63", "10**30"])
async def test_a_skip_beyond_bigint_is_refused(db: AsyncSession, skip: int) -> None:
    await _open_transaction(db)
    with pytest.raises(InvalidInputError, match="skip must be at most"):
        await crud.user.get_multi(db, skip=skip)
    await _assert_still_usable(db)


TEXT_CALLS: list[Any] = [
    pytest.param(lambda db, v: crud.user.get_by_email(db, email=v), "email", id="get_by_email"),
    pytest.param(
        lambda db, v: crud.user.get_by_username(db, username=v), "username", id="get_by_username"
    ),
    pytest.param(lambda db, v: crud.tag.get_by_name(db, name=v), "tag name", id="tag.get_by_name"),
    pytest.param(
        lambda db, v: crud.user.authenticate(db, email=v, password="long enough"),
        "email",
        id="authenticate",
    ),
    pytest.param(
        lambda db, v: crud.post.get_multi_by_tag(db, name=v), "tag name", id="get_multi_by_tag"
    ),
    pytest.param(lambda db, v: bulk.upsert_tags(db, ["ok", v]), "tag name", id="upsert_tags"),
    pytest.param(
        lambda db, v: crud.tag.get_or_create_many(db, names=["ok", v]),
        "tag name",
        id="get_or_create_many",
    ),
]


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        pytest.param("ada\x00@example.com", "NUL character", id="nul"),
        pytest.param("ada\ud800", "lone surrogate", id="lone-surrogate"),
    ],
)
@pytest.mark.parametrize(("call", "name"), TEXT_CALLS)
async def test_text_postgresql_cannot_hold_is_refused_before_sql_and_the_transaction_survives(
    db: AsyncSession, call: Call, name: str, value: str, problem: str
) -> None:
    await _open_transaction(db)
    with pytest.raises(InvalidInputError, match=f"{name} contains a {problem}"):
        await call(db, value)
    await _assert_still_usable(db)


async def test_bulk_upsert_tags_with_a_nul_keeps_the_callers_earlier_work(
    db: AsyncSession,
) -> None:
    db.add(Tag(name="earlier-work"))
    await db.flush()
    with pytest.raises(InvalidInputError, match="NUL"):
        await bulk.upsert_tags(db, ["fine", "bad\x00tag"])
    names = (await db.scalars(select(Tag.name).order_by(Tag.name))).all()
    assert names == ["earlier-work"]  # nothing of the batch went in, the earlier row stayed


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda db: bulk.deactivate_old_users(db, days=10**6), id="deactivate"),
        pytest.param(
            lambda db: aggregations.active_authors(db, days=10**6, now=datetime.now(UTC)),
            id="active_authors",
        ),
        pytest.param(
            lambda db: bulk.deactivate_old_users(db, days=7, now=datetime(1, 1, 2, tzinfo=UTC)),
            id="before-year-1",
        ),
    ],
)
async def test_a_look_back_window_beyond_the_calendar_is_refused(
    db: AsyncSession, call: Callable[[AsyncSession], Awaitable[object]]
) -> None:
    await _open_transaction(db)
    with pytest.raises(InvalidInputError, match="days"):
        await call(db)
    await _assert_still_usable(db)


@pytest.mark.parametrize(
    "seconds",
    [math.nan, math.inf, -math.inf, 1e12, 10**12, Decimal("NaN")],
    ids=["nan", "inf", "-inf", "1e12", "int-1e12", "decimal-nan"],
)
async def test_statement_timeout_refuses_durations_postgresql_cannot_enforce(
    db: AsyncSession, seconds: object
) -> None:
    await _open_transaction(db)
    before = await db.scalar(text("SHOW statement_timeout"))
    with pytest.raises(InvalidInputError, match="seconds must be"):
        async with transactions.statement_timeout(db, seconds):  # type: ignore[arg-type]
            pass
    await _assert_still_usable(db)
    assert await db.scalar(text("SHOW statement_timeout")) == before


LONE_SURROGATE_PASSWORD = "pass\ud800word"


def test_a_password_with_a_lone_surrogate_is_refused_by_the_schema_without_quoting_it() -> None:
    with pytest.raises(ValidationError, match="lone surrogate") as info:
        UserCreate(email="s@example.com", username="surrogate", password=LONE_SURROGATE_PASSWORD)
    assert "pass" not in str(info.value).replace("password", "")


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(
            lambda db, _: crud.user.authenticate(
                db, email="ada@example.com", password=LONE_SURROGATE_PASSWORD
            ),
            id="authenticate",
        ),
        pytest.param(
            lambda db, ada: crud.user.update(
                db, id=ada, obj_in={"password": LONE_SURROGATE_PASSWORD}
            ),
            id="update-with-a-dict",
        ),
        pytest.param(
            lambda db, _: _hash([LONE_SURROGATE_PASSWORD]),
            id="hash_passwords",
        ),
    ],
)
async def test_a_password_with_a_lone_surrogate_is_refused_with_invalid_input(
    db: AsyncSession, call: Call
) -> None:
    ada = User(email="ada@example.com", username="ada", hashed_password="h")
    db.add(ada)
    await db.flush()
    with pytest.raises(InvalidInputError, match="password") as info:
        await call(db, ada.id)
    assert "word" not in str(info.value).replace("password", "")  # nothing of it is quoted
    await _assert_still_usable(db)


async def _hash(passwords: list[str]) -> list[str]:
    return bulk.hash_passwords(passwords, workers=1)


# --- the property test: every public function, hostile arguments -------------------------------

# Values that broke something once, or sit on a boundary PostgreSQL or Python cares about.
EDGE_INTS = [0, -1, 1, 2, 2**31 - 1, 2**31, 2**63 - 1, 2**63, -(2**63) - 1, 10**30, 10**400]
EDGE_FLOATS = [math.nan, math.inf, -math.inf, 1e12, 1e300, -0.0, 5e-324, 0.5]
EDGE_DECIMALS = [
    Decimal(v)
    for v in ("NaN", "sNaN", "-NaN", "Infinity", "-Infinity", "1e30", "-1e30", "1e-30", "0.001")
] + [Decimal("9999999999.99"), Decimal("10000000000"), Decimal("12.50")]
EDGE_TEXT = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\ud800",
    "ok\udfff",
    "x" * 1_000_000,  # 1 MB
    "é" * 300,
    "'; DROP TABLE users; --",
    "' OR '1'='1",
    "%",
    "_",
    "\\",
    "$1",
    '"',
    "NaN",
    "1e30",
    "python",
    "ada@example.com",
    "created_at",
    "-id",
]
HOSTILE_CHARS = ["\x00", "\ud800", "\udfff", "'", '"', "%", "_", "\\", ";", "$1", "\n"]

ints = st.one_of(st.sampled_from(EDGE_INTS), st.integers())
floats = st.one_of(st.sampled_from(EDGE_FLOATS), st.floats())
decimals = st.one_of(st.sampled_from(EDGE_DECIMALS), st.decimals())
texts = st.one_of(
    st.sampled_from(EDGE_TEXT),
    st.text(max_size=30),
    st.builds(
        lambda a, b, c: a + b + c,
        st.text(max_size=5),
        st.sampled_from(HOSTILE_CHARS),
        st.text(max_size=5),
    ),
)
zones = st.sampled_from([UTC, timezone(timedelta(hours=14)), timezone(timedelta(hours=-12))])
datetimes = st.one_of(
    st.sampled_from(
        [
            datetime.min.replace(tzinfo=timezone(timedelta(hours=14))),
            datetime.max.replace(tzinfo=timezone(timedelta(hours=-12))),
            datetime.min.replace(tzinfo=UTC),
            datetime.max.replace(tzinfo=UTC),
            datetime(2026, 1, 1),  # noqa: DTZ001 - naive on purpose
        ]
    ),
    st.datetimes(timezones=zones),
    st.datetimes(),
)
#: A value of any type at all, for arguments called with the wrong one.
anything = st.one_of(
    ints, floats, decimals, texts, datetimes, st.none(), st.booleans(), st.just([]), st.just({})
)


def hostile(usual: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Mostly values of the argument's own type (hostile ones), sometimes of any other type."""
    return st.one_of(usual, usual, anything)


IDS = hostile(st.one_of(ints, st.integers(min_value=1, max_value=5)))
COUNTS = hostile(ints)
TEXT = hostile(texts)
TEXT_LISTS = hostile(st.lists(texts, max_size=3))
SORT_KEYS = hostile(st.one_of(texts, st.lists(texts, max_size=2)))
AMOUNTS = hostile(st.one_of(decimals, ints, texts, floats))
DURATIONS = hostile(st.one_of(floats, ints, decimals))
DATETIMES = hostile(datetimes)
LOADING = hostile(st.one_of(st.sampled_from(["lazy", "selectin", "joined"]), texts))
ROUTES = hostile(st.one_of(st.sampled_from(["auto", "copy", "rows"]), texts))
BACKENDS = hostile(st.one_of(st.sampled_from(["numpy_nullable", "pyarrow"]), texts))
MODELS = st.sampled_from([User, Post, Tag, Account])  # model arguments are classes, not data
#: What a chart is drawn from: a column, a "table.column" name, a statement, or anything else.
CHART_INPUTS = hostile(
    st.one_of(
        st.sampled_from(
            [Post.views, User.id, User.email, "posts.views", "users.role", select(Post.views)]
        ),
        texts,
    )
)
WHISKERS = hostile(st.one_of(floats, ints))

Draw = Callable[[st.SearchStrategy[Any]], Any]


def schema_or_dict(schema: type[BaseModel], fields: dict[str, st.SearchStrategy[Any]]) -> Any:
    """The schema built from hostile fields when it validates, else the raw dict (to be refused)."""

    def build(values: dict[str, Any]) -> Any:
        try:
            return schema.model_validate(values)
        except ValidationError:
            return values

    return st.fixed_dictionaries({}, optional=fields).map(build)


USER_FIELDS = {"email": TEXT, "username": TEXT, "password": TEXT, "full_name": TEXT, "role": TEXT}
POST_FIELDS = {"title": TEXT, "content": TEXT, "author_id": IDS, "tags": TEXT_LISTS}
UPDATE_DICTS = {
    "user": st.fixed_dictionaries(
        {},
        optional={k: v for k, v in USER_FIELDS.items() if k != "password"}
        | {"is_active": anything},
    ),
    "post": st.fixed_dictionaries(
        {}, optional={k: POST_FIELDS[k] for k in ("title", "content", "tags")}
    ),
    "tag": st.fixed_dictionaries({}, optional={"name": TEXT, "nickname": TEXT}),
}
CREATE_SCHEMAS = {
    "user": schema_or_dict(UserCreate, USER_FIELDS),
    "post": schema_or_dict(PostCreate, POST_FIELDS),
    "tag": schema_or_dict(TagCreate, {"name": TEXT}),
}


async def run_select(db: AsyncSession, stmt: Any) -> Any:
    """Execute a statement a builder returned, so values that only fail on the wire show up."""
    if isinstance(stmt, Select):
        return (await db.execute(stmt.limit(3))).unique().all()
    return stmt


# How to call each public function: ``(db, draw) -> awaitable``. Session-first functions get the
# test's session ``db`` (inside its rolled-back transaction, with a small blog in it); statement
# builders are called, then their statement runs on ``db``; the model argument of
# ``sortable_columns``/``order_by_clause`` is one of the mapped classes; ``isolation_level`` is
# hostile text only, since a real level cannot be set inside the test's outer transaction.

CRUD_CASES: dict[str, Callable[[CRUDBase[Any, Any, Any], str, AsyncSession, Draw], Awaitable[Any]]]
CRUD_CASES = {
    "get": lambda c, _, db, d: c.get(db, d(IDS)),
    "get_or_raise": lambda c, _, db, d: c.get_or_raise(db, d(IDS)),
    "exists": lambda c, _, db, d: c.exists(db, d(IDS)),
    "count": lambda c, _, db, d: c.count(db),
    "remove": lambda c, _, db, d: c.remove(db, id=d(IDS)),
    "get_multi": lambda c, _, db, d: c.get_multi(
        db, skip=d(COUNTS), limit=d(COUNTS), order_by=d(SORT_KEYS)
    ),
    "create": lambda c, name, db, d: c.create(db, obj_in=d(CREATE_SCHEMAS[name])),
    "update": lambda c, name, db, d: c.update(
        db, id=d(IDS), obj_in=d(st.one_of(UPDATE_DICTS[name], CREATE_SCHEMAS[name], anything))
    ),
    # users
    "get_by_email": lambda c, _, db, d: c.get_by_email(db, email=d(TEXT)),  # type: ignore[attr-defined]
    "get_by_username": lambda c, _, db, d: c.get_by_username(db, username=d(TEXT)),  # type: ignore[attr-defined]
    "authenticate": lambda c, _, db, d: c.authenticate(db, email=d(TEXT), password=d(TEXT)),  # type: ignore[attr-defined]
    # tags
    "get_by_name": lambda c, _, db, d: c.get_by_name(db, name=d(TEXT)),  # type: ignore[attr-defined]
    "get_or_create_many": lambda c, _, db, d: c.get_or_create_many(db, names=d(TEXT_LISTS)),  # type: ignore[attr-defined]
    # posts
    "get_with_tags": lambda c, _, db, d: c.get_with_tags(db, d(IDS)),  # type: ignore[attr-defined]
    "get_multi_by_author": lambda c, _, db, d: c.get_multi_by_author(  # type: ignore[attr-defined]
        db, author_id=d(IDS), skip=d(COUNTS), limit=d(COUNTS), order_by=d(SORT_KEYS)
    ),
    "get_multi_by_tag": lambda c, _, db, d: c.get_multi_by_tag(  # type: ignore[attr-defined]
        db, name=d(TEXT), skip=d(COUNTS), limit=d(COUNTS)
    ),
}


async def _keyset_page(fetch: Any, db: AsyncSession, d: Draw) -> Any:
    after = None
    if d(st.booleans()):
        after = queries.Keyset(d(DATETIMES), d(IDS))  # may refuse: that is part of the test
    return await fetch(db, after=after, limit=d(COUNTS))


async def _statement_count(db: AsyncSession, d: Draw) -> Any:
    with diagnostics.count_statements(d(st.one_of(st.just(db), anything))) as counter:
        await db.scalar(select(1))
    return counter.count


#: A plan as EXPLAIN (FORMAT JSON) gives it, or something else.
PLANS = hostile(
    st.one_of(
        st.just({"Plan": {"Node Type": "Seq Scan", "Relation Name": "users"}}),
        st.just({"Node Type": "Index Scan", "Index Name": "ix", "Plans": []}),
        st.dictionaries(texts, anything, max_size=3),
    )
)
STATEMENTS = hostile(st.one_of(st.just(select(User.id)), st.just(text("SELECT 1")), texts))


async def _scope(db: AsyncSession, d: Draw) -> None:
    """A unit of work on something that is not an engine (a real one would commit elsewhere)."""
    async with sessions.session_scope(d(anything), read_only=d(hostile(st.booleans()))) as work:
        await work.scalar(select(1))


async def _get_db(db: AsyncSession, d: Draw) -> None:
    """The guide's dependency takes no arguments: one request's worth, on the default engine."""
    async with contextlib.aclosing(sessions.get_db()) as requests:
        async for work in requests:
            await work.scalar(select(1))


async def _echo(db: AsyncSession, d: Draw) -> None:
    with diagnostics.echo_sql(d(st.one_of(st.just(db.bind), anything))):
        await db.scalar(select(1))


async def _drawn(axes: Awaitable[Any]) -> None:
    """Await a drawing chart function, then close its figure (Agg: nothing is shown)."""
    import matplotlib.pyplot as plt  # heavy, and only these cases draw

    drawn = await axes
    plt.close(drawn.figure)


async def _savepoint(db: AsyncSession, d: Draw) -> None:
    async with transactions.savepoint(db):
        await db.scalar(select(1))


async def _statement_timeout(db: AsyncSession, d: Draw) -> None:
    async with transactions.statement_timeout(db, d(DURATIONS)):
        pass


async def _stream(db: AsyncSession, d: Draw) -> Any:
    stmt = d(st.sampled_from([select(User.id, User.email), text("SELECT 1 AS one")]))
    frames_ = loaders.stream_frames(db, stmt, chunk_size=d(COUNTS), dtype_backend=d(BACKENDS))
    return [frame async for frame in frames_]


async def _value(result: Any) -> Any:
    return result


def _users(d: Draw) -> list[Any]:
    return list(d(st.lists(CREATE_SCHEMAS["user"], max_size=2)))


def _rows(d: Draw) -> list[dict[str, Any]]:
    row = st.fixed_dictionaries(
        {"email": TEXT, "username": TEXT, "hashed_password": TEXT},
        optional={"full_name": TEXT, "role": TEXT, "last_login": DATETIMES},
    )
    rows: list[dict[str, Any]] = d(st.lists(row, max_size=3))
    return rows


MAYBE_BOOLS = hostile(st.one_of(st.none(), st.booleans()))


async def _built(db: AsyncSession, build: Any) -> Any:
    """Build a statement (arguments are checked here), then run it through the loader."""
    return await loaders.load_frame(db, build())


MODULE_CASES: dict[str, Callable[[AsyncSession, Draw], Awaitable[Any]]] = {
    # queries: builders (run on db afterwards) and session-first fetchers
    "queries.active_users": lambda db, d: _value(queries.active_users()),
    "queries.users_created_since": lambda db, d: _value(queries.users_created_since(d(DATETIMES))),
    "queries.users_matching": lambda db, d: _value(
        queries.users_matching(
            active=d(hostile(st.one_of(st.none(), st.booleans()))),
            roles=d(hostile(st.one_of(st.none(), st.lists(texts, max_size=2)))),
            created_since=d(hostile(st.one_of(st.none(), datetimes))),
            text=d(hostile(st.one_of(st.none(), texts))),
        )
    ),
    "queries.escape_like": lambda db, d: _value(queries.escape_like(d(TEXT))),
    "queries.search_posts": lambda db, d: _value(queries.search_posts(d(TEXT))),
    "queries.posts_by_tag": lambda db, d: _value(queries.posts_by_tag(d(TEXT))),
    "queries.sortable_columns": lambda db, d: _value(queries.sortable_columns(d(MODELS))),
    "queries.order_by_clause": lambda db, d: _value(
        select(model := d(MODELS)).order_by(*queries.order_by_clause(model, d(SORT_KEYS)))
    ),
    "queries.check_page": lambda db, d: _value(
        queries.check_page(skip=d(COUNTS), limit=d(COUNTS))  # type: ignore[func-returns-value]  # None, or it refuses
    ),
    "queries.paginate": lambda db, d: _value(
        queries.paginate(select(User).order_by(User.id), skip=d(COUNTS), limit=d(COUNTS))
    ),
    "queries.posts_page": lambda db, d: _value(queries.posts_page(limit=d(COUNTS))),
    "queries.users_page": lambda db, d: _value(queries.users_page(limit=d(COUNTS))),
    "queries.fetch_posts_page": lambda db, d: _keyset_page(queries.fetch_posts_page, db, d),
    "queries.fetch_users_page": lambda db, d: _keyset_page(queries.fetch_users_page, db, d),
    "queries.users_with_posts": lambda db, d: _value(queries.users_with_posts(loading=d(LOADING))),
    "queries.posts_with_tags": lambda db, d: _value(queries.posts_with_tags(loading=d(LOADING))),
    "queries.posts_with_author": lambda db, d: _value(queries.posts_with_author()),
    "queries.users_with_posts_and_tags": lambda db, d: _value(queries.users_with_posts_and_tags()),
    "diagnostics.count_statements": _statement_count,
    "diagnostics.explain": lambda db, d: diagnostics.explain(
        db, d(st.one_of(st.just(select(User.id)), anything)), analyze=d(hostile(st.booleans()))
    ),
    "diagnostics.echo_sql": _echo,
    "diagnostics.plan_indexes": lambda db, d: _value(diagnostics.plan_indexes(d(PLANS))),
    "diagnostics.plan_nodes": lambda db, d: _value(diagnostics.plan_nodes(d(PLANS))),
    "diagnostics.plan_text": lambda db, d: _value(diagnostics.plan_text(d(PLANS))),
    "diagnostics.render_sql": lambda db, d: _value(
        diagnostics.render_sql(d(STATEMENTS), literal=d(hostile(st.booleans())))
    ),
    "diagnostics.show_sql": lambda db, d: _value(
        diagnostics.show_sql(d(STATEMENTS), literal=d(hostile(st.booleans())))  # type: ignore[func-returns-value]  # None, or it refuses
    ),
    # charts: numbers computed in SQL, then (for the drawing ones) drawn with matplotlib
    "charts.histogram_query": lambda db, d: _built(
        db, lambda: charts.histogram_query(d(CHART_INPUTS), bins=d(COUNTS))
    ),
    "charts.histogram_counts": lambda db, d: charts.histogram_counts(
        db, d(CHART_INPUTS), bins=d(COUNTS)
    ),
    "charts.boxplot_query": lambda db, d: _built(
        db, lambda: charts.boxplot_query(d(CHART_INPUTS), whis=d(WHISKERS))
    ),
    "charts.boxplot_stats": lambda db, d: charts.boxplot_stats(
        db, d(CHART_INPUTS), by=d(st.one_of(st.none(), CHART_INPUTS)), whis=d(WHISKERS)
    ),
    "charts.count_by_query": lambda db, d: _built(
        db, lambda: charts.count_by_query(d(CHART_INPUTS), n=d(COUNTS))
    ),
    "charts.count_by": lambda db, d: charts.count_by(db, d(CHART_INPUTS), n=d(COUNTS)),
    "charts.histogram": lambda db, d: _drawn(
        charts.histogram(db, d(CHART_INPUTS), bins=d(COUNTS), unit=d(TEXT), title=d(TEXT))
    ),
    "charts.boxplot": lambda db, d: _drawn(
        charts.boxplot(db, d(CHART_INPUTS), whis=d(WHISKERS), unit=d(TEXT), title=d(TEXT))
    ),
    "charts.bar_counts": lambda db, d: _drawn(
        charts.bar_counts(db, d(CHART_INPUTS), n=d(COUNTS), unit=d(TEXT), title=d(TEXT))
    ),
    # transactions
    "transactions.transfer_funds": lambda db, d: transactions.transfer_funds(
        db, d(IDS), d(IDS), d(AMOUNTS)
    ),
    "sessions.session_scope": _scope,
    "sessions.get_db": _get_db,
    "sessions.run_transaction": lambda db, d: sessions.run_transaction(
        async_sessionmaker(bind=db.bind, join_transaction_mode="create_savepoint"),
        lambda inner: transactions.transfer_funds(inner, d(IDS), d(IDS), d(AMOUNTS)),
        isolation_level=d(st.one_of(st.none(), texts)),
        retries=d(COUNTS),
    ),
    "transactions.savepoint": _savepoint,
    "transactions.statement_timeout": _statement_timeout,
    "transactions.insert_each_in_savepoint": lambda db, d: transactions.insert_each_in_savepoint(
        db,
        [
            User(email=d(texts), username=d(texts), hashed_password=d(texts))
            for _ in range(d(st.integers(0, 2)))
        ],
    ),
    # bulk
    "bulk.hash_passwords": lambda db, d: _value(
        bulk.hash_passwords(d(st.lists(TEXT, max_size=2)), workers=d(hostile(st.none() | ints)))
    ),
    "bulk.create_users": lambda db, d: bulk.create_users(db, _users(d), workers=1),
    "bulk.insert_hashed_users": lambda db, d: bulk.insert_hashed_users(
        db, _rows(d), copy_threshold=d(COUNTS)
    ),
    "bulk.upsert_tags": lambda db, d: bulk.upsert_tags(db, d(TEXT_LISTS)),
    "bulk.deactivate_old_users": lambda db, d: bulk.deactivate_old_users(
        db, days=d(COUNTS), now=d(hostile(st.one_of(st.none(), datetimes)))
    ),
    "bulk.delete_users": lambda db, d: bulk.delete_users(db, d(hostile(st.lists(IDS, max_size=3)))),
    # aggregations
    "aggregations.count_users": lambda db, d: aggregations.count_users(
        db, active=d(hostile(st.one_of(st.none(), st.booleans())))
    ),
    "aggregations.users_by_role": lambda db, d: aggregations.users_by_role(db),
    "aggregations.posts_per_author": lambda db, d: aggregations.posts_per_author(db),
    "aggregations.posts_per_tag": lambda db, d: aggregations.posts_per_tag(db),
    "aggregations.top_tags": lambda db, d: aggregations.top_tags(db, n=d(COUNTS)),
    "aggregations.posts_per_month": lambda db, d: aggregations.posts_per_month(db, by=d(TEXT)),
    "aggregations.active_authors": lambda db, d: aggregations.active_authors(
        db, days=d(COUNTS), now=d(DATETIMES)
    ),
    "aggregations.tag_cooccurrence": lambda db, d: aggregations.tag_cooccurrence(
        db, min_posts=d(COUNTS)
    ),
    "aggregations.author_activity": lambda db, d: aggregations.author_activity(db),
    # frames
    "frames.users_frame": lambda db, d: frames.users_frame(db),
    "frames.posts_frame": lambda db, d: frames.posts_frame(db, content=d(hostile(st.booleans()))),
    "frames.tags_frame": lambda db, d: frames.tags_frame(db),
    # builders: the statement is built from hostile arguments, then loaded
    "aggregations.count_users_query": lambda db, d: _built(
        db,
        lambda: aggregations.count_users_query(
            active=d(hostile(st.one_of(st.none(), st.booleans())))
        ),
    ),
    "aggregations.users_by_role_query": lambda db, d: _built(db, aggregations.users_by_role_query),
    "aggregations.posts_per_author_query": lambda db, d: _built(
        db, aggregations.posts_per_author_query
    ),
    "aggregations.posts_per_tag_query": lambda db, d: _built(db, aggregations.posts_per_tag_query),
    "aggregations.top_tags_query": lambda db, d: _built(
        db, lambda: aggregations.top_tags_query(n=d(COUNTS))
    ),
    "aggregations.posts_per_month_query": lambda db, d: _built(
        db, lambda: aggregations.posts_per_month_query(by=d(TEXT))
    ),
    "aggregations.active_authors_query": lambda db, d: _built(
        db, lambda: aggregations.active_authors_query(days=d(COUNTS), now=d(DATETIMES))
    ),
    "aggregations.tag_cooccurrence_query": lambda db, d: _built(
        db, lambda: aggregations.tag_cooccurrence_query(min_posts=d(COUNTS))
    ),
    "aggregations.author_activity_query": lambda db, d: _built(
        db, aggregations.author_activity_query
    ),
    "frames.users_frame_query": lambda db, d: _built(db, frames.users_frame_query),
    "frames.posts_frame_query": lambda db, d: _built(
        db, lambda: frames.posts_frame_query(content=d(hostile(st.booleans())))
    ),
    "frames.tags_frame_query": lambda db, d: _built(db, frames.tags_frame_query),
    # loaders: hostile chunk sizes and dtype backends on fixed statements
    "loaders.load_frame": lambda db, d: loaders.load_frame(
        db, select(User.id, User.email), dtype_backend=d(BACKENDS), route=d(ROUTES)
    ),
    "loaders.load_arrow": lambda db, d: loaders.load_arrow(
        db, select(User.id, User.email), route=d(ROUTES), max_bytes=d(hostile(st.integers()))
    ),
    "loaders.stream_frames": _stream,
    # describe: a table name is only ever a value
    "describe.describe": lambda db, d: describe_table(db, d(st.one_of(st.none(), texts))),
}

MODULES: dict[str, ModuleType] = {
    "queries": queries,
    "transactions": transactions,
    "bulk": bulk,
    "aggregations": aggregations,
    "frames": frames,
    "loaders": loaders,
    "describe": importlib.import_module("blogdata.describe"),  # the package's name is the function
    "diagnostics": diagnostics,
    "charts": charts,
    "sessions": sessions,
}


def _public_functions() -> list[str]:
    """Every public function, from each module's ``__all__`` and the crud objects' methods."""
    names = [
        f"{label}.{name}"
        for label, module in MODULES.items()
        for name in module.__all__
        if inspect.isfunction(getattr(module, name))
    ]
    for name in crud.__all__:
        obj = getattr(crud, name)
        if isinstance(obj, CRUDBase):
            names += [
                f"crud.{name}.{method}"
                for method in dir(obj)
                if not method.startswith("_") and inspect.iscoroutinefunction(getattr(obj, method))
            ]
    return sorted(names)


PUBLIC_FUNCTIONS = _public_functions()


def _case(name: str) -> Callable[[AsyncSession, Draw], Awaitable[Any]]:
    if name.startswith("crud."):
        _, obj_name, method = name.split(".")
        obj = getattr(crud, obj_name)
        return lambda db, d: CRUD_CASES[method](obj, obj_name, db, d)
    return MODULE_CASES[name]


def test_the_property_test_knows_how_to_call_every_public_function() -> None:
    known = set(MODULE_CASES) | {
        name
        for name in PUBLIC_FUNCTIONS
        if name.startswith("crud.") and name.split(".")[2] in CRUD_CASES
    }
    missing = sorted(set(PUBLIC_FUNCTIONS) - known)
    assert missing == [], f"add these to MODULE_CASES or CRUD_CASES: {missing}"
    stale = sorted(set(MODULE_CASES) - set(PUBLIC_FUNCTIONS))  # a case that never runs
    assert stale == [], f"these cases name no public function (moved or renamed?): {stale}"
    assert len(PUBLIC_FUNCTIONS) > 60


@pytest.fixture
async def blog_db(db: AsyncSession) -> AsyncSession:
    """The test's session with two users, their accounts, and a tagged post."""
    ada = User(email="ada@example.com", username="ada", hashed_password="h", full_name="Ada")
    bob = User(email="bob@example.com", username="bob", hashed_password="h")
    db.add_all([ada, bob])
    await db.flush()
    db.add_all([Account(owner_id=ada.id, balance=Decimal("100.00")), Account(owner_id=bob.id)])
    db.add(Post(title="hello", author_id=ada.id, tags=[Tag(name="python")]))
    await db.flush()
    return db


@settings(
    max_examples=10,
    deadline=None,
    derandomize=True,  # the same examples on every run and server: CI stays stable
    database=None,  # no .hypothesis folder in the repository
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # on purpose: one session across the examples
        HealthCheck.too_slow,
        HealthCheck.large_base_example,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
@pytest.mark.parametrize("name", PUBLIC_FUNCTIONS)
async def test_every_public_function_meets_hostile_arguments_with_a_blogdata_error_at_most(
    blog_db: AsyncSession, name: str, data: st.DataObject
) -> None:
    db = blog_db
    with contextlib.suppress(BlogdataError):  # a clear refusal is fine; anything else fails
        await run_select(db, await _case(name)(db, data.draw))
    assert await db.scalar(select(1)) == 1  # the session (and its transaction) still answers
