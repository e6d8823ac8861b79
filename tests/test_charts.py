"""Charts computed in PostgreSQL, held to numpy and matplotlib on the loaded column.

Tolerances (see blogdata.charts): histogram edges and counts are compared exactly (edges bit
for bit); quartiles within 2 ulps of the largest magnitude in the data; means within 1e-12
relative; whisker ends exactly (they are data values).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib import cbook
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch
from sqlalchemy import BigInteger, Double, Integer, column, func, insert, select, table, text
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import charts
from blogdata.errors import InvalidInputError
from blogdata.models import Post, User

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the Agg backend

T = table("chart_values", column("x", Double), column("i", BigInteger), column("g", Integer))


async def _fill(db: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Give this session a fresh temporary table ``chart_values`` holding ``rows``."""
    await db.execute(text("DROP TABLE IF EXISTS pg_temp.chart_values"))
    await db.execute(text("CREATE TEMP TABLE chart_values (x float8, i bigint, g int)"))
    if rows:
        full = [{"x": None, "i": None, "g": None} | row for row in rows]
        await db.execute(insert(T), full)


def _numpy_histogram(values: list[Any], bins: int) -> tuple[Any, Any] | type[Exception]:
    """numpy's answer on the non-NULL values, or the type of error it raises."""
    kept = [v for v in values if v is not None]
    array = np.array(kept, dtype=np.int64 if kept and isinstance(kept[0], int) else np.float64)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return np.histogram(array, bins=bins)
    except Exception as exc:
        return type(exc)


async def _assert_histogram_like_numpy(
    db: AsyncSession, col: Any, values: list[Any], bins: int
) -> None:
    expected = _numpy_histogram(values, bins)
    if not isinstance(expected, tuple):  # numpy refuses: so do we, with one clear error
        with pytest.raises(InvalidInputError):
            await charts.histogram_counts(db, col, bins=bins)
        assert (await db.scalar(text("SELECT 1"))) == 1
        return
    counts, edges = expected
    frame = await charts.histogram_counts(db, col, bins=bins)
    assert list(frame.columns) == ["bin", "left", "right", "count", "nulls"]
    assert frame["count"].tolist() == counts.tolist()  # exact
    got = np.array([*frame["left"].astype(float), float(frame["right"].iloc[-1])])
    assert np.array_equal(got, edges), (got, edges)  # bit for bit (0.0 == -0.0)
    assert frame["nulls"].iloc[0] == sum(v is None for v in values)


FLOAT_CASES = {
    "nulls": [None, 1.5, None, -2.25, 3.0],
    "all_equal": [7.25] * 5,
    "single_row": [3.0],
    "empty": [],
    "only_nulls": [None, None],
    "negatives": [-5.5, -1e-3, -100.0, -42.0],
    "zero_signs": [-0.0, 0.0, 0.0],
    "on_the_edges": [float(x) for x in np.linspace(0, 1, 11)],
    "tenths": [i / 10 for i in range(31)],
    "tiny_spread": [1.0, 1.0 + 2**-52, 1.0 + 2**-51],
    "huge": [-1e300, 1e300, 0.0],
    "overflowing_range": [-1.7e308, 1.7e308],
    "subnormals": [0.0, 5e-324, 1e-320],
}
INT_CASES = {
    "ints": [1, 2, 2, 3, 3, 3, 10],
    "negative_ints": [-7, -3, -3, 0],
    "one_int": [42],
    "huge_ints": [2**62, -(2**62), 2**53 + 1, 3],
    "int_extremes": [-(2**63), 2**63 - 1],
    "huge_close_ints": [2**60, 2**60 + 129],
}


@pytest.mark.parametrize("bins", [1, 3, 10])
@pytest.mark.parametrize("values", FLOAT_CASES.values(), ids=FLOAT_CASES.keys())
async def test_histogram_of_hostile_floats_equals_numpy(
    db: AsyncSession, values: list[float], bins: int
) -> None:
    await _fill(db, [{"x": v} for v in values])
    await _assert_histogram_like_numpy(db, T.c.x, values, bins)


@pytest.mark.parametrize("bins", [1, 4, 7])
@pytest.mark.parametrize("values", INT_CASES.values(), ids=INT_CASES.keys())
async def test_histogram_of_hostile_integers_equals_numpy(
    db: AsyncSession, values: list[int], bins: int
) -> None:
    await _fill(db, [{"i": v} for v in values])
    await _assert_histogram_like_numpy(db, T.c.i, values, bins)


async def test_histogram_of_seeded_views_equals_numpy(seeded_db: AsyncSession) -> None:
    views = (await seeded_db.execute(select(Post.views))).scalars().all()
    assert any(v is None for v in views)
    for col in (Post.views, "posts.views", select(Post.views)):
        await _assert_histogram_like_numpy(seeded_db, col, list(views), 25)


@pytest.mark.parametrize(
    "values",
    [[1.0, float("nan")], [float("inf"), 2.0], [float("-inf")], [float("nan")]],
    ids=["nan", "infinity", "minus_infinity", "only_nan"],
)
async def test_nan_and_infinity_give_one_clear_error_and_the_session_answers(
    db: AsyncSession, values: list[float]
) -> None:
    await _fill(db, [{"x": v} for v in values])
    with pytest.raises(InvalidInputError, match="NaN|Infinity"):
        await charts.histogram_counts(db, T.c.x)
    with pytest.raises(InvalidInputError, match="NaN|Infinity"):
        await charts.boxplot_stats(db, T.c.x)
    assert (await db.scalar(text("SELECT 1"))) == 1
    finite = select(T.c.x).where(T.c.x < float("inf"), T.c.x > float("-inf"))
    frame = await charts.histogram_counts(db, finite, bins=2)  # the fix the message gives
    assert int(frame["count"].sum()) == sum(math.isfinite(v) for v in values)


async def test_a_million_rows_are_binned_in_the_database_and_only_the_bins_travel(
    db: AsyncSession,
) -> None:
    n = 1_000_000
    series = select(func.generate_series(1, n, type_=Integer).label("g"))
    frame = await charts.histogram_counts(db, series, bins=20)
    assert len(frame) == 20  # 20 rows transferred, not a million
    counts, edges = np.histogram(np.arange(1, n + 1), bins=20)
    assert frame["count"].tolist() == counts.tolist()
    assert np.array_equal([*frame["left"].astype(float), frame["right"].iloc[-1]], edges)
    stats = await charts.boxplot_stats(db, series)
    assert len(stats) == 1
    q1, med, q3 = np.percentile(np.arange(1, n + 1), [25, 50, 75])
    assert (stats["q1"][0], stats["med"][0], stats["q3"][0]) == (q1, med, q3)


def _close(got: Any, want: float, scale: float) -> bool:
    if pd.isna(got) or math.isnan(want):
        return bool(pd.isna(got)) and math.isnan(want)
    return bool(abs(float(got) - want) <= 2 * np.spacing(scale))


def _assert_box_like_matplotlib(row: Any, values: list[float]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        (want,) = cbook.boxplot_stats(np.array(values, dtype=float), whis=1.5)
    scale = max((abs(v) for v in values), default=0.0)
    for key in ("q1", "med", "q3", "iqr"):
        assert _close(row[key], float(want[key]), scale), (key, row[key], want[key])
    for key in ("whislo", "whishi"):  # data values: exact
        assert (pd.isna(row[key]) and math.isnan(want[key])) or row[key] == want[key], key
    if values:
        assert math.isclose(row["mean"], want["mean"], rel_tol=1e-12, abs_tol=1e-300)
        assert row["fliers_low"] + row["fliers_high"] == len(want["fliers"])
        assert row["min"] == min(values) and row["max"] == max(values)
    else:
        assert row["n"] == 0 and pd.isna(row["mean"])


BOX_CASES = {
    "spread_with_outliers": [1.0, 2.0, 2.5, 3.0, 3.5, 4.0, 50.0, -40.0],
    "all_equal": [3.0] * 4,
    "single_row": [9.0],
    "empty": [],
    "negatives": [-1.0, -2.0, -3.5, -10.0, -100.0],
    "ints_as_floats": [float(v) for v in range(1, 12)],
    "huge": [1e300, -1e300, 5e299, 0.0],
}


@pytest.mark.parametrize("values", BOX_CASES.values(), ids=BOX_CASES.keys())
async def test_boxplot_stats_equal_matplotlib(db: AsyncSession, values: list[float]) -> None:
    await _fill(db, [{"x": v} for v in values] + [{"x": None}])
    frame = await charts.boxplot_stats(db, T.c.x)
    assert len(frame) == 1 and frame["nulls"][0] == 1
    _assert_box_like_matplotlib(frame.iloc[0], values)


async def test_grouped_boxplot_stats_equal_matplotlib_per_group(seeded_db: AsyncSession) -> None:
    loaded = (await seeded_db.execute(select(Post.views, Post.author_id))).all()
    frame = await charts.boxplot_stats(seeded_db, Post.views, by=Post.author_id)
    groups = sorted({a for _, a in loaded})
    assert frame["group"].tolist() == groups
    for _, row in frame.iterrows():
        values = [float(v) for v, a in loaded if a == row["group"] and v is not None]
        _assert_box_like_matplotlib(row, values)


async def test_boxplot_fences_overflow_gives_a_clear_error(db: AsyncSession) -> None:
    await _fill(db, [{"x": 1.7e308}, {"x": -1.7e308}])
    with pytest.raises(InvalidInputError, match="scale"):
        await charts.boxplot_stats(db, T.c.x)
    assert (await db.scalar(text("SELECT 1"))) == 1


async def test_count_by_equals_pandas_value_counts(seeded_db: AsyncSession) -> None:
    loaded = (await seeded_db.execute(select(Post.author_id))).scalars().all()
    frame = await charts.count_by(seeded_db, Post.author_id, n=5)
    counts = pd.Series(loaded).value_counts()
    want = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:5]
    assert list(zip(frame["value"], frame["count"], strict=True)) == want
    roles = await charts.count_by(seeded_db, "users.role")
    assert roles["count"].sum() == len((await seeded_db.execute(select(User.id))).all())


BAD = {
    "bins_zero": (charts.histogram_counts, (Post.views,), {"bins": 0}, "bins must be a positive"),
    "bins_negative": (charts.histogram_counts, (Post.views,), {"bins": -3}, "bins"),
    "bins_float": (charts.histogram_counts, (Post.views,), {"bins": 2.5}, "integer"),
    "bins_bool": (charts.histogram_counts, (Post.views,), {"bins": True}, "integer"),
    "bins_huge": (charts.histogram_counts, (Post.views,), {"bins": 10**7}, "at most"),
    "typo": (charts.histogram_counts, ("posts.veiws",), {}, 'did you mean "posts.views"'),
    "unknown_table": (charts.histogram_counts, ("psots.views",), {}, "did you mean"),
    "raw_sql": (charts.histogram_counts, ("SELECT views FROM posts",), {}, "unknown column"),
    "text": (charts.histogram_counts, (text("SELECT 1"),), {}, "not TextClause"),
    "text_untyped": (
        charts.histogram_counts,
        (text("SELECT 1 AS x").columns(column("x")),),
        {},
        "must hold numbers",
    ),
    "three_columns": (
        charts.histogram_counts,
        (select(Post.views, Post.id, Post.author_id),),
        {},
        "one column",
    ),
    "text_column": (charts.histogram_counts, (Post.title,), {}, "must hold numbers"),
    "no_table": (charts.histogram_counts, (column("x", Integer),), {}, "belongs to no table"),
    "a_number": (charts.histogram_counts, (42,), {}, "not int"),
    "whis_nan": (charts.boxplot_stats, (Post.views,), {"whis": float("nan")}, "finite"),
    "whis_negative": (charts.boxplot_stats, (Post.views,), {"whis": -1}, "whis"),
    "by_on_statement": (
        charts.boxplot_stats,
        (select(Post.views),),
        {"by": Post.author_id},
        "second column",
    ),
    "by_not_column": (charts.boxplot_stats, (Post.views,), {"by": 3}, "by must be a column"),
    "n_zero": (charts.count_by, (Post.author_id,), {"n": 0}, "positive"),
    "count_by_statement": (charts.count_by, (select(Post.id),), {}, "needs a column"),
}


@pytest.mark.parametrize(("function", "args", "kwargs", "message"), BAD.values(), ids=BAD.keys())
async def test_bad_arguments_give_a_clear_error_and_the_session_answers(
    db: AsyncSession,
    function: Callable[..., Awaitable[object]],
    args: tuple[object, ...],
    kwargs: dict[str, object],
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")):
        await function(db, *args, **kwargs)
    assert (await db.scalar(text("SELECT 1"))) == 1


def _texts(ax: Any) -> dict[str, str]:
    source = [t.get_text() for t in ax.texts if t.get_gid() == "blogdata-source"]
    assert len(source) == 1
    return {
        "title": ax.get_title(),
        "xlabel": ax.get_xlabel(),
        "ylabel": ax.get_ylabel(),
        "source": " ".join(source[0].split()),  # wrapped to the axes' width
    }


async def test_histogram_draws_bins_with_title_labels_and_source(seeded_db: AsyncSession) -> None:
    ax = await charts.histogram(seeded_db, Post.views, bins=12, unit="views")
    try:
        texts = _texts(ax)
        assert texts["title"] == "Distribution of posts.views"
        assert texts["xlabel"] == "posts.views (views)" and texts["ylabel"] == "rows per bin"
        assert "table posts" in texts["source"] and "12 equal-width bins" in texts["source"]
        assert "NULL left out" in texts["source"]
        (stairs,) = ax.patches
        assert isinstance(stairs, StepPatch)  # what Axes.stairs draws
        frame = await charts.histogram_counts(seeded_db, Post.views, bins=12)
        assert stairs.get_data().values.tolist() == frame["count"].tolist()  # type: ignore[attr-defined]  # matplotlib types StairData as a plain tuple
        ax.figure.canvas.draw()  # lays out and renders without error
    finally:
        assert isinstance(ax.figure, Figure)  # a top-level figure, not a subfigure
        plt.close(ax.figure)


async def test_boxplot_and_bar_chart_draw_with_title_labels_and_source(
    seeded_db: AsyncSession,
) -> None:
    fig, (left, right) = plt.subplots(1, 2, layout="constrained")
    try:
        ax = await charts.boxplot(seeded_db, Post.views, unit="views", ax=left)
        assert ax is left
        texts = _texts(ax)
        assert texts["title"] == "posts.views" and texts["ylabel"] == "posts.views (views)"
        assert "whiskers at 1.5 IQR" in texts["source"]
        ax = await charts.bar_counts(seeded_db, "users.role", ax=right, title="Roles")
        texts = _texts(ax)
        assert texts["title"] == "Roles" and texts["xlabel"] == "users.role"
        assert texts["ylabel"] == "rows" and "counted in PostgreSQL" in texts["source"]
        assert len(ax.patches) == len(await charts.count_by(seeded_db, "users.role"))
        fig.canvas.draw()
    finally:
        plt.close(fig)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    values=st.one_of(
        st.lists(st.integers(-(2**63), 2**63 - 1) | st.none(), max_size=40),
        st.lists(st.integers(-50, 50), max_size=40),
        st.lists(st.floats(allow_nan=False, allow_infinity=False) | st.none(), max_size=40),
        st.lists(st.floats(-1e3, 1e3, allow_nan=False), max_size=40),
    ),
    bins=st.integers(1, 30),
)
async def test_random_columns_have_numpys_histogram_counts(
    db: AsyncSession, values: list[Any], bins: int
) -> None:
    kept = [v for v in values if v is not None]
    integer = bool(kept) and isinstance(kept[0], int)
    await _fill(db, [{"i" if integer else "x": v} for v in values])
    await _assert_histogram_like_numpy(db, T.c.i if integer else T.c.x, values, bins)


# Data where numpy's first estimate of a bin, (v - min) / (max - min) * bins, is one bin low and
# its check against the edges moves the value: the SQL must make the same check.
EDGE_CASES = [
    (-9.180529521276107, -4.604265724722594, 42, -7.981984241226377),
    (-9.669447289429417, 6.265404784005447, 32, -9.171483162134578),
    (2.132715515343598, 4.589931219679968, 33, 2.9517874167890548),
    # ... and where it is one bin too high:
    (-7.116807745607325, 9.009273926518706, 24, -4.429127466919653),
    (-3.763370959790291, 8.972988942744877, 26, -1.3140709785335283),
]


@pytest.mark.parametrize(("lo", "hi", "bins", "v"), EDGE_CASES)
async def test_values_a_rounding_away_from_an_edge_land_in_numpys_bin(
    db: AsyncSession, lo: float, hi: float, bins: int, v: float
) -> None:
    estimate = int((v - lo) / (hi - lo) * bins)
    edges = np.linspace(lo, hi, bins + 1)
    assert estimate != np.searchsorted(edges, v, side="right") - 1  # the case is a real one
    values = [lo, hi, v, *np.nextafter(v, [np.inf, -np.inf]).tolist()]
    await _fill(db, [{"x": x} for x in values])
    await _assert_histogram_like_numpy(db, T.c.x, values, bins)


async def test_a_tight_save_keeps_the_whole_source_line(seeded_db: AsyncSession) -> None:
    # Jupyter's inline backend saves with bbox_inches="tight": the source line was left out of
    # that box (and of the layout), so notebook 11's histograms showed it cut off at the bottom.
    ax = await charts.histogram(seeded_db, Post.views, bins=30, unit="views", title="Views")
    fig = ax.get_figure()
    assert fig is not None
    try:
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        tight = fig.get_tightbbox(renderer).transformed(fig.dpi_scale_trans)
        (source,) = [t for t in ax.texts if t.get_gid() == "blogdata-source"]
        line = source.get_window_extent(renderer)
        assert tight.x0 <= line.x0 and line.x1 <= tight.x1
        assert tight.y0 <= line.y0 and line.y1 <= tight.y1
        assert line.y0 >= 0 and line.x1 <= fig.bbox.x1  # inside the figure itself
    finally:
        plt.close(fig)  # type: ignore[arg-type]
