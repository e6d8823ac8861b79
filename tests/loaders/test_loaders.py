"""Loaders: the dtype contract, labels and order, visibility of the caller's writes, streaming,
and bad input, through every path."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs
import pytest
from pandas.api.extensions import ExtensionDtype
from sqlalchemy import Integer, bindparam, func, literal_column, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.errors import InvalidInputError, QueryError
from blogdata.loaders import ROUTE_ATTR, DtypeBackend, load_frame, stream_frames
from blogdata.models import Account, Post, User

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)

NULLABLE: dict[str, ExtensionDtype] = {
    "id": pd.Int64Dtype(),
    "title": pd.StringDtype(),
    "content": pd.StringDtype(),
    "author_id": pd.Int64Dtype(),
    "created_at": pd.DatetimeTZDtype("us", "UTC"),
    "updated_at": pd.DatetimeTZDtype("us", "UTC"),
    "published_at": pd.DatetimeTZDtype("us", "UTC"),
    "views": pd.Int64Dtype(),
}
ARROW: dict[str, ExtensionDtype] = {
    "id": pd.ArrowDtype(pa.int64()),
    "title": pd.ArrowDtype(pa.string()),
    "content": pd.ArrowDtype(pa.string()),
    "author_id": pd.ArrowDtype(pa.int64()),
    "created_at": pd.ArrowDtype(pa.timestamp("us", tz="UTC")),
    "updated_at": pd.ArrowDtype(pa.timestamp("us", tz="UTC")),
    "published_at": pd.ArrowDtype(pa.timestamp("us", tz="UTC")),
    "views": pd.ArrowDtype(pa.int64()),
}
EXPECTED: dict[DtypeBackend, dict[str, ExtensionDtype]] = {
    "numpy_nullable": NULLABLE,
    "pyarrow": ARROW,
}


async def _blog(db: AsyncSession, posts: int = 5) -> User:
    """Add one author with ``posts`` posts (views NULL on odd ones, updated_at always NULL)."""
    user = User(email="ada@example.com", username="ada", hashed_password="x", created_at=T0)
    db.add(user)
    await db.flush()
    db.add_all(
        Post(
            title=f"post {i}",
            content="" if i == 0 else f"body {i}",
            author_id=user.id,
            created_at=T0 + dt.timedelta(hours=i),
            published_at=None if i % 2 else T0,
            views=None if i % 2 else i * 10,
        )
        for i in range(posts)
    )
    db.add(Account(owner_id=user.id, balance=Decimal("12.34")))
    await db.flush()
    return user


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
@pytest.mark.parametrize(
    "make_stmt",
    [
        pytest.param(lambda: select(Post).order_by(Post.id), id="orm-entity-select"),
        pytest.param(lambda: Post.__table__, id="table"),
        pytest.param(lambda: Post, id="mapped-class"),
        pytest.param(
            lambda: text(
                "SELECT id, title, content, author_id, created_at, updated_at, published_at, views"
                " FROM posts ORDER BY id"
            ),
            id="text",
        ),
    ],
)
async def test_posts_load_with_the_dtype_contract_from_every_kind_of_statement(
    db: AsyncSession, backend: DtypeBackend, make_stmt: object
) -> None:
    await _blog(db)
    stmt = make_stmt()  # type: ignore[operator]
    frame = await load_frame(db, stmt, dtype_backend=backend)
    expected = EXPECTED[backend]
    if stmt is Post.__table__:  # the whole table: the generated content_length (an integer) too
        expected = {**expected, "content_length": expected["views"]}
    assert frame.dtypes.to_dict() == expected
    assert len(frame) == 5
    # updated_at is NULL in every row: its dtype still comes from the column type.
    assert frame["updated_at"].isna().all()
    assert frame["views"].isna().sum() == 2
    # An empty string stays an empty string, distinct from NULL.
    assert sorted(frame["content"].tolist()) == ["", "body 1", "body 2", "body 3", "body 4"]
    assert frame["created_at"].min() == pd.Timestamp(T0)


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_an_empty_result_keeps_its_columns_and_dtypes(
    db: AsyncSession, backend: DtypeBackend
) -> None:
    frame = await load_frame(db, select(Post).where(Post.id < 0), dtype_backend=backend)
    assert frame.empty
    assert frame.dtypes.to_dict() == EXPECTED[backend]


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_booleans_are_nullable_and_numerics_stay_exact(
    db: AsyncSession, backend: DtypeBackend
) -> None:
    await _blog(db)
    stmt = text(
        "SELECT b, n FROM (VALUES (true, 0.1::numeric), (NULL, NULL), (false, 0.30::numeric))"
        " AS t(b, n)"
    )
    frame = await load_frame(db, stmt, dtype_backend=backend)
    assert str(frame["b"].dtype) == ("boolean" if backend == "numpy_nullable" else "bool[pyarrow]")
    assert frame["b"].tolist()[0] is True and frame["b"].isna().tolist() == [False, True, False]
    # Unconstrained numeric: exact Decimal objects in both backends.
    assert frame["n"].dtype == object
    assert frame["n"].tolist()[0] == Decimal("0.1") and frame["n"].tolist()[2] == Decimal("0.30")
    balances = await load_frame(db, select(Account.balance), dtype_backend=backend)
    if backend == "pyarrow":
        assert balances["balance"].dtype == pd.ArrowDtype(pa.decimal128(38, 2))
    else:
        assert balances["balance"].dtype == object
    assert balances["balance"].tolist() == [Decimal("12.34")]


async def test_columns_keep_the_statements_labels_and_order(db: AsyncSession) -> None:
    await _blog(db)
    stmt = (
        select(
            Post.views.label("v"),
            User.id,
            Post.id,
            func.count().over().label("n"),
            func.count(),
        )
        .join(User)
        .group_by(Post.views, User.id, Post.id)
        .order_by(Post.id)
    )
    frame = await load_frame(db, stmt)
    assert list(frame.columns) == ["v", "id", "id_1", "n", "count"]
    assert frame["count"].dtype == pd.Int64Dtype()


async def test_bound_parameters_are_passed_not_inlined(db: AsyncSession) -> None:
    await _blog(db)
    tricky = "x'; DROP TABLE posts; --"
    stmt = select(Post.id).where((Post.title == tricky) | Post.id.in_([-1, -2]))
    assert (await load_frame(db, stmt)).empty
    by_text = text("SELECT id FROM posts WHERE views >= :v ORDER BY id").bindparams(
        bindparam("v", 20, type_=Integer)
    )
    assert (await load_frame(db, by_text))["id"].size == 2  # views 20 and 40
    assert (await load_frame(db, select(func.count()).select_from(Post)))["count"].item() == 5


async def test_load_frame_sees_the_sessions_uncommitted_and_pending_writes(
    db: AsyncSession,
) -> None:
    user = await _blog(db)
    db.add(Post(title="not flushed yet", author_id=user.id, created_at=T0))  # autoflush applies
    frame = await load_frame(db, select(Post.title).order_by(Post.id))
    assert frame["title"].iloc[-1] == "not flushed yet"
    assert len(frame) == 6


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_stream_frames_yields_bounded_chunks_with_identical_dtypes(
    db: AsyncSession, backend: DtypeBackend
) -> None:
    await _blog(db, posts=7)
    chunks = [
        chunk
        async for chunk in stream_frames(
            db, select(Post).order_by(Post.id), chunk_size=3, dtype_backend=backend
        )
    ]
    assert [len(c) for c in chunks] == [3, 3, 1]
    assert all(c.dtypes.to_dict() == EXPECTED[backend] for c in chunks)
    whole = await load_frame(db, select(Post).order_by(Post.id), dtype_backend=backend)
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)


async def test_stream_frames_of_an_empty_result_yields_nothing(db: AsyncSession) -> None:
    assert [c async for c in stream_frames(db, select(Post), chunk_size=10)] == []


@pytest.mark.parametrize("chunk_size", [0, -5, 2.5], ids=["zero", "negative", "not-an-int"])
async def test_stream_frames_rejects_a_chunk_size_that_is_not_positive(
    db: AsyncSession, chunk_size: float
) -> None:
    with pytest.raises(InvalidInputError, match="chunk_size"):
        async for _ in stream_frames(db, select(Post), chunk_size=chunk_size):  # type: ignore[arg-type]
            pass


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param("SELECT 1", id="plain-string"),
        pytest.param(None, id="none"),
        pytest.param(42, id="number"),
        pytest.param(Post.id, id="a-column"),
    ],
)
async def test_something_that_is_not_a_statement_is_rejected(db: AsyncSession, bad: object) -> None:
    with pytest.raises(InvalidInputError, match="select"):
        await load_frame(db, bad)  # type: ignore[arg-type]


async def test_an_unknown_dtype_backend_is_rejected(db: AsyncSession) -> None:
    with pytest.raises(InvalidInputError, match="dtype_backend"):
        await load_frame(db, select(Post), dtype_backend="numpy")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("stmt", "sqlstate", "fragment"),
    [
        pytest.param(text("SELECT nope FROM posts"), "42703", "nope", id="unknown-column"),
        pytest.param(select(literal_column("1/0")), "22012", "division by zero", id="runtime"),
    ],
)
async def test_a_sql_error_carries_the_databases_message_and_sqlstate(
    db: AsyncSession, stmt: object, sqlstate: str, fragment: str
) -> None:
    with pytest.raises(QueryError, match=fragment) as caught:
        await load_frame(db, stmt)  # type: ignore[arg-type]
    assert caught.value.sqlstate == sqlstate


async def test_pending_orm_changes_are_flushed_before_the_load(
    db: AsyncSession,
) -> None:
    db.add(User(email="p@example.com", username="pending", hashed_password="x"))
    frame = await load_frame(db, select(User.username))
    assert frame["username"].tolist() == ["pending"] and frame.attrs[ROUTE_ATTR] == "binary"


async def test_a_non_iso_datestyle_still_gives_exact_timestamps(db: AsyncSession) -> None:
    # The COPY text of a timestamp follows DateStyle; the loader must not misread it.
    await _blog(db)
    expected = await load_frame(db, select(Post.created_at).order_by(Post.id))
    await db.execute(text("SET LOCAL DateStyle = 'SQL, DMY'"))
    frame = await load_frame(db, select(Post.created_at).order_by(Post.id))
    pd.testing.assert_frame_equal(frame, expected)
    assert frame["created_at"].iloc[1] == pd.Timestamp("2026-01-01 01:00", tz="UTC")


@pytest.mark.parametrize("backend", ["numpy_nullable", "pyarrow"])
async def test_types_outside_the_table_arrive_as_python_objects(
    db: AsyncSession, backend: DtypeBackend
) -> None:
    stmt = text(
        "SELECT ARRAY[1, 2] AS numbers, '{\"a\": 1}'::jsonb AS doc, 7::int AS n, NULL::uuid AS u"
    )
    frame = await load_frame(db, stmt, dtype_backend=backend)
    assert list(frame.columns) == ["numbers", "doc", "n", "u"]
    assert frame["numbers"].dtype == object and frame["numbers"].iloc[0] == [1, 2]
    assert frame["u"].dtype == object and frame["u"].isna().all()
    assert frame["n"].iloc[0] == 7


async def test_a_connection_and_compound_or_textual_selects_load_too(
    db: AsyncSession,
) -> None:
    await _blog(db)
    conn = await db.connection()
    union = (
        select(Post.id, Post.title)
        .where(Post.id < 0)
        .union_all(select(User.id, User.username))
        .order_by("id")
    )
    frame = await load_frame(conn, union)
    assert list(frame.columns) == ["id", "title"] and frame["title"].tolist() == ["ada"]
    textual = text("SELECT title AS headline FROM posts ORDER BY id").columns(Post.title)
    assert (await load_frame(conn, textual))["headline"].tolist()[:2] == ["post 0", "post 1"]


async def test_many_concurrent_copy_loads_with_tiny_buffers_all_finish(engine: AsyncEngine) -> None:
    # More loads than the default executor has threads, each buffer far smaller than its data:
    # the writers must wait on the event loop, never for a thread the parsers hold.
    import asyncio

    import pyarrow as pa

    from blogdata.loaders._copy import copy_to_table

    async def one(n: int) -> int:
        async with engine.connect() as conn:
            driver = (await conn.get_raw_connection()).driver_connection
            table = await copy_to_table(
                driver,
                f"SELECT g, repeat('x', 200) FROM generate_series(1, {2_000 + n}) AS g",
                [pa.int64(), pa.large_string()],
                limit=4_096,
            )
            return int(table.num_rows)

    loads = 12
    counts = await asyncio.wait_for(asyncio.gather(*(one(n) for n in range(loads))), 120)
    assert counts == [2_000 + n for n in range(loads)]


async def test_a_session_time_zone_does_not_shift_the_instants(db: AsyncSession) -> None:
    await _blog(db)
    stmt = text("SELECT created_at, created_at + interval '0.123456 s' AS later FROM posts")
    expected = await load_frame(db, stmt)
    await db.execute(text("SET LOCAL TimeZone = 'Asia/Kolkata'"))
    frame = await load_frame(db, stmt)
    pd.testing.assert_frame_equal(frame, expected)
    assert str(frame["later"].dtype) == "datetime64[us, UTC]"
    assert frame["later"].min() == pd.Timestamp("2026-01-01 00:00:00.123456", tz="UTC")


async def test_stream_frames_outside_a_transaction_streams_copy_and_says_a_cursor_needs_one(
    engine: AsyncEngine,
) -> None:
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        assert list((await load_frame(conn, select(Post.id))).columns) == ["id"]  # loads work
        stmt = text("SELECT g FROM generate_series(1, 5) AS g")
        chunks = [c async for c in stream_frames(conn, stmt, chunk_size=2)]
        assert [len(c) for c in chunks] == [2, 2, 1]
        assert {c.attrs[ROUTE_ATTR] for c in chunks} == {"binary"}
        with pytest.raises(InvalidInputError, match="transaction"):
            async for _ in stream_frames(conn, select(Post.id), route="rows"):
                pass


@pytest.mark.parametrize("route", ["adbc", "ADBC", "fast", ""])
async def test_an_unknown_route_is_refused_naming_the_valid_ones(
    db: AsyncSession, route: str
) -> None:
    # Regression (issue 17): there is no second-connection route any more.
    with pytest.raises(InvalidInputError, match="'auto', 'binary', 'copy', 'rows'"):
        await load_frame(db, select(Post), route=route)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="'auto', 'binary', 'copy', 'rows'"):
        async for _ in stream_frames(db, select(Post), route=route):  # type: ignore[arg-type]
            pass


async def test_the_loaders_open_no_second_connection(engine: AsyncEngine) -> None:
    # Regression (issue 17): a big result went through a second, pooled connection.
    import blogdata.loaders as loaders

    assert not hasattr(loaders, "close_idle_connections")
    assert not hasattr(loaders, "APPLICATION_NAME")
    stmt = text("SELECT g, repeat('x', 40) AS pad FROM generate_series(1, 300000) AS g")
    async with AsyncSession(engine) as db:
        pid = (await db.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        before = await _backends(engine, pid)
        frame = await load_frame(db, stmt)
        assert len(frame) == 300_000 and frame.attrs[ROUTE_ATTR] == "binary"
        assert await _backends(engine, pid) == before


async def _backends(engine: AsyncEngine, session_pid: int) -> int:
    """How many other backends this test process's database has (the admin's own excluded)."""
    async with engine.connect() as admin:
        count = await admin.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                " AND pid NOT IN (pg_backend_pid(), :pid) AND backend_type = 'client backend'"
            ),
            {"pid": session_pid},
        )
    return int(count)
