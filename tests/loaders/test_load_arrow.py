"""``load_arrow`` against the driver: the fidelity matrix and the session-state matrix, every
route forced and by default, each table compared cell by cell with ``session.execute`` on the
same session (``oracle.assert_same_table``, under the README's Arrow type table); and the one
code path it shares with ``load_frame``.
"""

from __future__ import annotations

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

import blogdata
from blogdata.loaders import Route, load_arrow, load_frame
from tests.loaders import test_loader_fidelity as fidelity
from tests.loaders import test_loader_session_state as state
from tests.loaders.oracle import ARROW_WAYS, assert_same_table, check_arrow


@pytest.mark.parametrize("way", ARROW_WAYS)
@pytest.mark.parametrize("case", fidelity.CASES, ids=lambda c: c.id)
async def test_load_arrow_gives_what_the_driver_gives_on_every_route(
    fdb: AsyncSession, case: fidelity.Case, way: str
) -> None:
    await fidelity.apply(fdb, case)
    outcome = await check_arrow(
        fdb, case.make(), case.types, way, setup=lambda db: fidelity.apply(db, case)
    )
    if way in ("arrow-auto", "arrow-rows"):
        assert outcome in ("equal", "raised")


@pytest.mark.parametrize("case", state.CASES, ids=[c.id for c in state.CASES])
@pytest.mark.parametrize("way", ARROW_WAYS)
async def test_load_arrow_sees_the_sessions_state(
    db: AsyncSession, case: state.Case, way: str
) -> None:
    await state._start(db)
    for sql in case.before:
        await db.execute(text(sql))
    result = await db.execute(text(case.sql))
    labels, rows = list(result.keys()), [tuple(r) for r in result.all()]
    assert len(rows) == 1
    for sql in case.before:  # setseed again: the load must draw the same number
        await db.execute(text(sql))
    route = way.removeprefix("arrow-")
    got = await load_arrow(db, text(case.sql), route=route)  # type: ignore[arg-type]
    assert_same_table(got, rows, labels, case.types, f"{case.id}/{way}")


async def test_load_arrow_reads_the_sessions_uncommitted_rows_through_binary_copy(
    db: AsyncSession,
) -> None:
    await db.execute(text("CREATE TEMP TABLE mine (v int, t text)"))
    await db.execute(text("INSERT INTO mine SELECT g, 'row ' || g FROM generate_series(1, 3) g"))
    table = await load_arrow(db, text("SELECT v, t FROM mine ORDER BY v"))
    assert table.schema.metadata[b"blogdata.route"] == b"binary"
    assert table.to_pydict() == {"v": [1, 2, 3], "t": ["row 1", "row 2", "row 3"]}
    assert table.schema.types == [pa.int64(), pa.string()]


async def test_load_frame_with_pyarrow_dtypes_is_load_arrow_where_both_are_arrow(
    db: AsyncSession,
) -> None:
    # One fetch path: the pyarrow backend's Arrow columns are load_arrow's columns, cell for cell.
    stmt = text(
        "SELECT g AS i, g * 0.5::float8 AS f, 't' || g AS s, g % 2 = 0 AS b, date '2026-01-01' + g"
        " AS d, timestamptz '2026-01-01 00:00+00' + g * interval '1 hour' AS ts,"
        " CASE WHEN g % 3 = 0 THEN NULL ELSE g END AS n FROM generate_series(1, 50) g ORDER BY g"
    )
    routes: tuple[Route, ...] = ("binary", "copy", "rows")
    for route in routes:
        table = await load_arrow(db, stmt, route=route)
        frame = await load_frame(db, stmt, dtype_backend="pyarrow", route=route)
        as_frame = table.to_pandas(types_mapper=pd.ArrowDtype)
        pd.testing.assert_frame_equal(frame, as_frame, check_exact=True, obj=route)


def test_load_arrow_is_public_and_loaded_with_the_package() -> None:
    assert blogdata.load_arrow is load_arrow and "load_arrow" in blogdata.__all__
