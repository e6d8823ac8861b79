"""Charts whose numbers PostgreSQL computes: histogram, box plot, bar chart of a grouped count.

Each chart is a statement first (``histogram_query``, ``boxplot_query``, ``count_by_query``),
then a frame (``histogram_counts``, ``boxplot_stats``, ``count_by``), then a drawing
(``histogram``, ``boxplot``, ``bar_counts``). Only the chart's numbers travel: one row per bin,
per group or per bar, so a column of millions of rows plots without being loaded. Every read is
a :func:`blogdata.loaders.load_frame` on the caller's own connection, inside its transaction.

What to chart is a SQLAlchemy column (``Post.views``), a ``"table.column"`` name checked against
the models (``"posts.views"``), or a one-column statement (``select(Post.views).where(...)``,
a subquery, ``text(...).columns(column("x", Float))``). The values must be numbers
(integer, numeric, real, double precision); they are binned and summarised as ``double
precision``, so a ``real`` or ``numeric`` column is compared with numpy on the values as
``float64``. SQL text is never taken from a caller: names are looked up in the models.

How the numbers relate to numpy and matplotlib on the loaded column (the tests hold them to it):

- Histogram: the edges and counts of ``numpy.histogram(values, bins=n)``, NULLs left out and
  counted apart. Equal-width bins over ``[min, max]`` (widened by 0.5 on each side when all
  values are equal; ``[0, 1]`` when there are none), the last bin closed, as numpy does. The
  edges are computed with numpy's own float operations (``i * step + min``, the last edge
  ``max``), so they are equal to numpy's bit for bit; the bins are found with ``width_bucket``
  and then checked against those edges as numpy checks its own estimate, so counts are exact.
- Box plot: ``q1``, ``med``, ``q3`` are ``percentile_cont`` (numpy's default "linear"
  percentile); PostgreSQL interpolates as ``a + (b - a) * t`` where numpy, for ``t >= 0.5``,
  computes ``b - (b - a) * (1 - t)``, so they may differ by rounding: at most 2 ulps of the
  largest magnitude in the data (the tests' tolerance; for integer data with small values they
  are equal). ``mean`` is ``sum / n`` (summed in another order than numpy's pairwise sum:
  relative error below 1e-12; ``sum(v / n)`` where the sum could overflow). Whiskers are as
  ``matplotlib.cbook.boxplot_stats(whis=1.5)`` computes them: the most extreme data points
  within ``whis`` IQRs of the quartiles (a second aggregate), or the quartile itself when no
  point lies there; they are data values, so equal to matplotlib's unless a value lies within
  an ulp of a fence.
- NaN and ±Infinity: ``numpy.histogram`` refuses them (its range is not finite) and quartiles
  through them are not numbers, so both charts raise one :class:`InvalidInputError` naming the
  value and the fix (filter with ``.where(col < float("inf"), col > float("-inf"))``; NaN is
  above every number in PostgreSQL, so the first comparison removes it too). The same error
  comes when numpy would refuse the bins (bins narrower than the floats can tell apart) or the
  range overflows double precision; the check is made in the statement, which never fails on
  such data, so the session's transaction stays usable.
"""

from __future__ import annotations

import difflib
import textwrap
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import (
    Double,
    Float,
    Integer,
    Numeric,
    Select,
    String,
    case,
    cast,
    func,
    literal,
    null,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.selectable import FromClause, SelectBase

from blogdata._checks import check_count, check_finite_number
from blogdata._types import Db
from blogdata.errors import InvalidInputError
from blogdata.loaders import load_frame
from blogdata.models import Base

if TYPE_CHECKING:  # matplotlib is imported by the drawing functions only
    from matplotlib.axes import Axes

__all__ = [
    "MAX_BARS",
    "MAX_BINS",
    "bar_counts",
    "boxplot",
    "boxplot_query",
    "boxplot_stats",
    "count_by",
    "count_by_query",
    "histogram",
    "histogram_counts",
    "histogram_query",
]


#: Most bins a histogram may have (a chart, not a table: more would not be seen).
MAX_BINS = 10_000
#: Most bars a bar chart may have.
MAX_BARS = 1_000
_DBL_MAX = 1.7976931348623157e308
#: Box-plot fences are exact float arithmetic up to here; beyond, q3 + 1.5 IQR could overflow.
_BOX_LIMIT = _DBL_MAX / 8


@dataclass(frozen=True)
class _Source:
    """A chart's input as a subquery with columns ``value`` (and ``grp``), and what to call it."""

    sub: Any
    integer: bool
    name: str
    where: str
    group_name: str | None = None


def _numeric_type(col: ColumnElement[Any], what: str) -> bool:
    """Return True for an integer column, False for another numeric one; refuse the rest."""
    kind = col.type
    if isinstance(kind, Integer):
        return True
    if isinstance(kind, Numeric | Float):
        return False
    raise InvalidInputError(
        f"{what} must hold numbers (integer, numeric, real, double precision), but its type is "
        f"{kind!r}; chart a numeric column, or give a text() query typed columns with "
        '.columns(column("x", Float))'
    )


def _by_name(name: str) -> ColumnElement[Any]:
    """Return the model column called ``"table.column"``, with a suggestion when it is unknown."""
    tables = Base.metadata.tables
    table_name, dot, column_name = name.partition(".")
    if not dot or table_name not in tables:
        known = [f"{t}.{c.name}" for t, table in tables.items() for c in table.columns]
        close = difflib.get_close_matches(name, known, n=1)
        hint = (
            f'; did you mean "{close[0]}"?' if close else '; use "table.column", e.g. "posts.views"'
        )
        raise InvalidInputError(f'unknown column "{name}"{hint}')
    table = tables[table_name]
    if column_name not in table.columns:
        close = difflib.get_close_matches(column_name, list(table.columns.keys()), n=1)
        hint = f'; did you mean "{table_name}.{close[0]}"?' if close else ""
        raise InvalidInputError(f'unknown column "{name}"{hint}')
    return table.columns[column_name]


def _column(value: object, what: str) -> ColumnElement[Any] | None:
    """Return ``value`` as a column expression, or None if it is not one."""
    if isinstance(value, str):
        return _by_name(value)
    clause = getattr(value, "__clause_element__", None)
    if clause is not None:  # an ORM attribute such as Post.views
        value = clause()
    return value if isinstance(value, ColumnElement) else None


def _column_name(col: ColumnElement[Any]) -> str:
    table = getattr(col, "table", None)
    name = getattr(col, "name", None) or getattr(col, "key", None) or "value"
    table_name = getattr(table, "name", None)
    return f"{table_name}.{name}" if table_name else str(name)


def _source(value: object, by: object = None) -> _Source:
    """Check a chart's input and turn it into a subquery ``src(value[, grp])``."""
    col = _column(value, "the column")
    if col is not None:
        integer = _numeric_type(col, f"column {_column_name(col)}")
        columns = [col.label("value")]
        group_name = None
        if by is not None:
            group = _column(by, "by")
            if group is None:
                raise InvalidInputError(
                    f"by must be a column (e.g. Post.author_id) or a table.column name, not "
                    f"{type(by).__name__}"
                )
            columns.append(group.label("grp"))
            group_name = _column_name(group)
        stmt = select(*columns)
        froms = stmt.get_final_froms()
        if not froms:
            raise InvalidInputError(
                f"column {_column_name(col)} belongs to no table; chart a model column such as "
                "Post.views, or a statement such as select(Post.views)"
            )
        where = ", ".join(sorted({getattr(f, "name", "a query") for f in froms}))
        return _Source(
            stmt.subquery("src"), integer, _column_name(col), f"table {where}", group_name
        )
    if by is not None:
        raise InvalidInputError(
            "by is only for a column; to group a statement, select the group as its second "
            "column: select(Post.views, Post.author_id)"
        )
    if isinstance(value, SelectBase):
        sub: FromClause = value.subquery("src_input")
    elif isinstance(value, FromClause) and not hasattr(value, "__tablename__"):
        sub = value
    else:
        raise InvalidInputError(
            f"chart a column (Post.views), a 'table.column' name or a one-column select(...), "
            f"not {type(value).__name__}; SQL text is taken only as text(...).columns(...)"
        )
    cols = list(sub.c)
    if not 1 <= len(cols) <= 2:
        raise InvalidInputError(
            f"the statement must select one column (the values) or two (values, group), not "
            f"{len(cols)}"
        )
    integer = _numeric_type(cols[0], f"the statement's column {cols[0].key!r}")
    labelled = [cols[0].label("value")] + ([cols[1].label("grp")] if len(cols) == 2 else [])
    inner = select(*value.selected_columns) if isinstance(value, SelectBase) else select(*cols)
    names = sorted({str(getattr(f, "name", "")) for f in inner.get_final_froms()} - {""})
    where = "a query on " + ", ".join(names) if names else "a query"
    group_name = str(cols[1].key) if len(cols) == 2 else None
    return _Source(select(*labelled).subquery("src"), integer, str(cols[0].key), where, group_name)


def _f8(expr: Any) -> Any:
    return cast(expr, Double())


def _check_bins(bins: object) -> int:
    return check_count(bins, "bins", minimum=1, maximum=MAX_BINS)


def histogram_query(column_or_stmt: object, *, bins: int = 10) -> Select[Any]:
    """Return the statement behind :func:`histogram_counts`: one row per bin, in order.

    Columns ``bin`` (1 to ``bins``), ``left``, ``right`` (the bin's edges), ``count``,
    ``nulls`` (NULL values left out, the same on every row) and ``problem`` (NULL, or why numpy
    would refuse these data: ``'nan'``, ``'infinite'``, ``'overflow'``, ``'too many bins'``).
    """
    n = _check_bins(bins)
    src = _source(column_or_stmt)
    v = _f8(src.sub.c.value)
    lo, hi = func.min(v), func.max(v)
    raw_lo, raw_hi = func.min(src.sub.c.value), func.max(src.sub.c.value)
    # numpy divides by the exact integer range (an unsigned subtraction) but spaces its edges
    # from the float64 min and max: keep both, as it does.
    exact_span = _f8(cast(raw_hi, Numeric()) - cast(raw_lo, Numeric())) if src.integer else None
    stats = select(
        lo.label("lo"),
        hi.label("hi"),
        (raw_lo == raw_hi).label("same"),
        (exact_span if exact_span is not None else null()).label("exact_span"),
        func.count(src.sub.c.value).label("n_values"),
        (func.count() - func.count(src.sub.c.value)).label("nulls"),
    ).cte("stats")
    s = stats.c
    half_max: Any = literal(_DBL_MAX / 2, Double())
    problem = case(
        (s.n_values == 0, null()),
        (s.hi == literal(float("nan"), Double()), literal("nan")),
        (
            (s.lo == literal(float("-inf"), Double())) | (s.hi == literal(float("inf"), Double())),
            literal("infinite"),
        ),
        # hi - lo would overflow (PostgreSQL raises there; numpy's edges turn NaN).
        (s.hi / 2 - s.lo / 2 > half_max, literal("overflow")),
        else_=null(),
    )
    fine = problem.is_(None)
    half: Any = literal(0.5, Double())
    first = case(
        (s.n_values == 0, literal(0.0, Double())),
        (fine & s.same, s.lo - half),
        (fine, s.lo),
        else_=null(),
    )
    last = case(
        (s.n_values == 0, literal(1.0, Double())),
        (fine & s.same, s.hi + half),
        (fine, s.hi),
        else_=null(),
    )
    bounds = select(
        s.nulls,
        problem.label("problem"),
        first.label("first"),
        last.label("last"),
    ).cte("bounds")
    b = bounds.c
    delta = b.last - b.first
    denom_expr = case(
        (s.n_values == 0, literal(1.0, Double())),
        (s.same, delta),
        else_=s.exact_span if src.integer else delta,
    )
    span = (
        select(
            b.nulls,
            b.problem,
            b.first,
            b.last,
            delta.label("delta"),
            (delta / literal(float(n), Double())).label("step"),
            denom_expr.label("denom"),
        )
        .select_from(bounds)
        .join(stats, true())
        .cte("span")
    )
    p = span.c

    def edge(i: Any) -> Any:
        """Edge ``i`` as numpy.linspace computes it: ``i * step + first``, the last ``last``."""
        fi = _f8(i)
        return case(
            (i == n, p.last),
            (p.step == 0, fi / literal(float(n), Double()) * p.delta + p.first),
            else_=fi * p.step + p.first,
        )

    index = func.generate_series(0, n).table_valued("i").render_derived(name="edges")
    edges = (
        select(index.c.i, edge(index.c.i).label("edge")).select_from(span).join(index, true())
    ).cte("edges")
    following = func.lead(edges.c.edge).over(order_by=edges.c.i)
    steps = select((edges.c.edge >= following).label("flat")).subquery("steps")
    # numpy refuses edges that do not strictly increase ("Too many bins for data range").
    flat = select(func.coalesce(func.bool_or(steps.c.flat), False)).scalar_subquery()
    ok = select(p.problem.is_(None) & ~flat).scalar_subquery()

    value = v.label("v")
    estimate = (
        func.least(func.width_bucket(v - p.first, literal(0.0, Double()), p.denom, n), literal(n))
        - 1
    ).label("b0")
    guess = (
        select(value, estimate)
        .select_from(src.sub)
        .join(span, true())
        .where(src.sub.c.value.is_not(None), ok)
        .subquery("guess")
    )
    # numpy's check of its estimate: one step down if below its left edge, one up if at or past
    # its right edge (the last bin is closed).
    down = (guess.c.b0 - case((guess.c.v < edge(guess.c.b0), 1), else_=0)).label("b1")
    lowered = select(guess.c.v, down).select_from(guess).join(span, true()).subquery("lowered")
    up = case(((lowered.c.v >= edge(lowered.c.b1 + 1)) & (lowered.c.b1 != n - 1), 1), else_=0)
    binned = (
        select((lowered.c.b1 + up).label("i"))
        .select_from(lowered)
        .join(span, true())
        .subquery("binned")
    )
    counts = select(binned.c.i, func.count().label("count")).group_by(binned.c.i).subquery("counts")
    right = select(edges.c.i, edges.c.edge).subquery("right_edges")
    problem_now = case((flat & p.problem.is_(None), literal("too many bins")), else_=p.problem)
    return (
        select(
            (edges.c.i + 1).label("bin"),
            edges.c.edge.label("left"),
            right.c.edge.label("right"),
            case((ok, func.coalesce(counts.c.count, 0)), else_=null()).label("count"),
            p.nulls.label("nulls"),
            problem_now.label("problem"),
        )
        .select_from(edges)
        .join(right, right.c.i == edges.c.i + 1)
        .outerjoin(counts, counts.c.i == edges.c.i)
        .join(span, true())
        .order_by(edges.c.i)
    )


_PROBLEMS = {
    "nan": "holds NaN",
    "infinite": "holds Infinity or -Infinity",
    "overflow": "spans more than double precision can hold (max - min overflows)",
    "too many bins": "is too narrow for that many bins (their edges would not increase)",
}


def _refuse(problem: object, what: str, fix: str) -> None:
    if isinstance(problem, str):
        raise InvalidInputError(f"{what} {_PROBLEMS.get(problem, problem)}; {fix}")


_FINITE_FIX = (
    "keep finite values with .where(col < float('inf'), col > float('-inf')) (NaN sorts above "
    "every number in PostgreSQL, so the first comparison drops it too)"
)


async def histogram_counts(db: Db, column_or_stmt: object, *, bins: int = 10) -> pd.DataFrame:
    """Count values in equal-width bins in SQL: ``bin``, ``left``, ``right``, ``count``, ``nulls``.

    One row per bin; the edges and counts are ``numpy.histogram(values, bins=bins)``'s (see the
    module docstring). ``nulls`` (the same on every row) counts the NULLs left out.

    Raises:
        InvalidInputError: a bad argument (before any SQL runs), or values numpy would refuse
            (NaN, ±Infinity, a range too narrow for ``bins`` or overflowing).
    """
    frame = await load_frame(db, histogram_query(column_or_stmt, bins=bins))
    problem = frame["problem"].iloc[0]
    if isinstance(problem, str):
        fix = f"use fewer bins than {bins}" if problem == "too many bins" else _FINITE_FIX
        _refuse(problem, "the column", fix)
    return frame.drop(columns="problem")


def _check_whis(whis: object) -> float:
    number = float(check_finite_number(whis, "whis"))
    if not 0 <= number <= 1_000:
        raise InvalidInputError(f"whis must be from 0 to 1000 (IQRs), got {whis!r}")
    return number


def boxplot_query(column_or_stmt: object, *, by: object = None, whis: float = 1.5) -> Select[Any]:
    """Return the statement behind :func:`boxplot_stats`: one row per group (one without ``by``).

    Columns ``group`` (without ``by``: NULL), ``n``, ``nulls``, ``mean``, ``min``, ``q1``, ``med``,
    ``q3``, ``max``, ``iqr``, ``whislo``, ``whishi``, ``fliers_low``, ``fliers_high`` (values
    beyond the whiskers), ``cilo``, ``cihi`` (matplotlib's notch) and ``problem``; groups in
    order, rows whose group is NULL left out (as pandas' ``groupby`` does).
    """
    w = _check_whis(whis)
    src = _source(column_or_stmt, by)
    grouped = src.group_name is not None
    v = _f8(src.sub.c.value)
    keys = [src.sub.c.grp] if grouped else []
    # One sort for the three quartiles: percentile_cont over an array of fractions.
    fractions: Any = pg_array(
        [literal(0.25, Double()), literal(0.5, Double()), literal(0.75, Double())]
    )
    quartiles: Any = type_coerce(func.percentile_cont(fractions).within_group(v), ARRAY(Double()))
    first = (
        select(
            *[k.label("grp") for k in keys],
            func.count(src.sub.c.value).label("n"),
            (func.count() - func.count(src.sub.c.value)).label("nulls"),
            func.min(v).label("min"),
            func.max(v).label("max"),
            quartiles.label("qs"),
        )
        .where(src.sub.c.grp.is_not(None) if grouped else true())
        .group_by(*keys)
        .cte("quartiles")
    )
    f = first.c
    limit: Any = literal(_BOX_LIMIT, Double())
    problem = case(
        (f.max == literal(float("nan"), Double()), literal("nan")),
        (
            (f.min == literal(float("-inf"), Double()))
            | (f.max == literal(float("inf"), Double())),
            literal("infinite"),
        ),
        ((f.max > limit) | (f.min < -limit), literal("overflow")),
        else_=null(),
    )
    q1, med, q3 = f.qs[1], f.qs[2], f.qs[3]
    fine = problem.is_(None)
    iqr = case((fine, q3 - q1), else_=null())
    whis_: Any = literal(w, Double())
    fences = select(
        *([f.grp] if grouped else []),
        f.n,
        f.nulls,
        f.min,
        f.max,
        q1.label("q1"),
        med.label("med"),
        q3.label("q3"),
        iqr.label("iqr"),
        (q1 - whis_ * iqr).label("loval"),
        (q3 + whis_ * iqr).label("hival"),
        problem.label("problem"),
    ).cte("fences")
    c = fences.c
    # The second aggregate: whisker ends are data points within the fences (matplotlib's rule).
    on = (src.sub.c.grp == c.grp) if grouped else true()
    # avg(float8) also sums squares, which overflow from 1e154 on: sum(v) / n where that sum
    # cannot overflow, else sum(v / n) (never beyond the largest value; a little less exact).
    n8 = _f8(c.n)
    safe = func.greatest(func.abs(c.min), func.abs(c.max)) <= literal(_DBL_MAX / 2, Double()) / n8
    mean = func.coalesce(func.sum(v).filter(safe) / n8, func.sum(v / n8).filter(~safe))
    second = (
        select(
            *([c.grp] if grouped else []),
            mean.label("mean"),
            func.max(v).filter(v <= c.hival).label("hi_in"),
            func.min(v).filter(v >= c.loval).label("lo_in"),
            func.count().filter(v < c.loval).label("fliers_low"),
            func.count().filter(v > c.hival).label("fliers_high"),
        )
        .select_from(src.sub)
        .join(fences, on)
        .where(src.sub.c.value.is_not(None), c.problem.is_(None))
        .group_by(*([c.grp] if grouped else []), c.n, c.min, c.max)
        .subquery("whiskers")
    )
    whishi = case(
        ((second.c.hi_in.is_(None)) | (second.c.hi_in < c.q3), c.q3), else_=second.c.hi_in
    )
    whislo = case(
        ((second.c.lo_in.is_(None)) | (second.c.lo_in > c.q1), c.q1), else_=second.c.lo_in
    )
    notch = literal(1.57, Double()) * c.iqr / func.sqrt(_f8(c.n))
    joined = (c.grp == second.c.grp) if grouped else true()
    return (
        select(
            (c.grp if grouped else null()).label("group"),
            c.n,
            c.nulls,
            second.c.mean,
            c.min,
            c.q1,
            c.med,
            c.q3,
            c.max,
            c.iqr,
            whislo.label("whislo"),
            whishi.label("whishi"),
            func.coalesce(second.c.fliers_low, 0).label("fliers_low"),
            func.coalesce(second.c.fliers_high, 0).label("fliers_high"),
            case((c.n > 0, c.med - notch), else_=null()).label("cilo"),
            case((c.n > 0, c.med + notch), else_=null()).label("cihi"),
            c.problem,
        )
        .select_from(fences)
        .outerjoin(second, joined)
        .order_by(*([c.grp] if grouped else []))
    )


async def boxplot_stats(
    db: Db, column_or_stmt: object, *, by: object = None, whis: float = 1.5
) -> pd.DataFrame:
    """Compute box-plot statistics in SQL, one row per group (see :func:`boxplot_query`).

    The numbers are ``matplotlib.cbook.boxplot_stats(values, whis=whis)``'s within the
    tolerances in the module docstring; NULL values are left out and counted in ``nulls``.

    Raises:
        InvalidInputError: a bad argument (before any SQL runs), or NaN, ±Infinity or values
            beyond ±2.2e307 (where the fences would overflow) in the data.
    """
    frame = await load_frame(db, boxplot_query(column_or_stmt, by=by, whis=whis))
    bad = frame["problem"].dropna()
    if len(bad):
        where = (
            f"group {frame.loc[bad.index[0], 'group']!r} of the column"
            if by is not None or frame["group"].notna().any()
            else "the column"
        )
        fix = _FINITE_FIX if bad.iloc[0] != "overflow" else "scale the values down (e.g. / 1e300)"
        _refuse(bad.iloc[0], where, fix)
    return frame.drop(columns="problem")


def count_by_query(column: object, *, n: int = 10) -> Select[Any]:
    """Return the statement behind :func:`count_by`: ``value``, ``count``; the ``n`` largest.

    Most rows first, ties by value (text by code point); NULL is a group of its own.
    """
    top = check_count(n, "n", minimum=1, maximum=MAX_BARS)
    col = _column(column, "column")
    if col is None:
        raise InvalidInputError(
            f"count_by needs a column (Post.author_id) or a 'table.column' name, not "
            f"{type(column).__name__}"
        )
    if not select(col).get_final_froms():
        raise InvalidInputError(f"column {_column_name(col)} belongs to no table")
    rows = func.count().label("count")
    tie = col.collate("C") if isinstance(col.type, String) else col
    return (
        select(col.label("value"), rows)
        .group_by(col)
        .order_by(rows.desc(), tie.asc().nulls_last())
        .limit(top)
    )


async def count_by(db: Db, column: object, *, n: int = 10) -> pd.DataFrame:
    """Count rows per value of ``column`` in SQL: ``value``, ``count``; the ``n`` largest groups."""
    return await load_frame(db, count_by_query(column, n=n))


# Drawing ------------------------------------------------------------------------------------


def _axes(ax: Axes | None) -> Axes:
    # matplotlib is imported here, not at module level: `import blogdata` must stay light.
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    # Constrained layout makes room for every decoration, the source line included.
    _fig, new = plt.subplots(figsize=(6, 3.2), layout="constrained")
    return new


def _label(name: str, unit: str | None) -> str:
    return f"{name} ({unit})" if unit else name


_SOURCE_PT = 7


def _source_line(ax: Axes, text: str) -> None:
    """Write the source line under the axes' x label, small and grey, as notebook 11 does."""
    # Wrapped to the axes' width and kept in the layout: constrained layout makes room for it
    # and a "tight" save (Jupyter's inline backend) keeps it, so no line is cut off.
    width_in = ax.get_position().width * ax.get_figure().get_figwidth()  # type: ignore[union-attr]
    ax.annotate(
        textwrap.fill(text, width=max(30, int(width_in * 72 / (_SOURCE_PT * 0.5)))),
        xy=(0, 0),
        xycoords=("axes fraction", ax.xaxis.label),
        xytext=(0, -4),
        textcoords="offset points",
        ha="left",
        va="top",
        fontsize=_SOURCE_PT,
        color="0.35",
        gid="blogdata-source",
        annotation_clip=False,
    )


def _nulls(count: int) -> str:
    return f", {count:,} NULL left out" if count else ""


async def histogram(
    db: Db,
    column_or_stmt: object,
    *,
    bins: int = 10,
    unit: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw a histogram from bins PostgreSQL counted (:func:`histogram_counts`); return the Axes."""
    src = _source(column_or_stmt)
    frame = await histogram_counts(db, column_or_stmt, bins=bins)
    axes = _axes(ax)
    edges = [*frame["left"].astype(float), float(frame["right"].iloc[-1])]
    counts = frame["count"].astype("int64").to_numpy()
    axes.stairs(counts, edges, fill=True, color="tab:blue")
    axes.set(
        title=title or f"Distribution of {src.name}",
        xlabel=_label(src.name, unit),
        ylabel="rows per bin",
    )
    nulls = int(frame["nulls"].iloc[0])
    _source_line(
        axes,
        f"Source: {src.where}; {int(counts.sum()):,} values in {bins} equal-width bins"
        f"{_nulls(nulls)}; counted in PostgreSQL",
    )
    return axes


async def boxplot(
    db: Db,
    column_or_stmt: object,
    *,
    by: object = None,
    whis: float = 1.5,
    unit: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw box plots from statistics PostgreSQL computed (:func:`boxplot_stats`).

    Whiskers reach the most extreme values within ``whis`` IQRs; beyond them only the minimum
    and maximum are drawn as points (the others are not loaded), and their number is in the
    source line. Returns the Axes.
    """
    src = _source(column_or_stmt, by)
    frame = await boxplot_stats(db, column_or_stmt, by=by, whis=whis)
    frame = frame[frame["n"] > 0]
    if frame.empty:
        raise InvalidInputError(f"{src.name} has no values to draw a box plot of")
    axes = _axes(ax)
    stats: list[dict[str, Any]] = []
    records: list[dict[str, Any]] = frame.to_dict("records")  # type: ignore[assignment]
    for row in records:
        extremes = (float(row["min"]), float(row["max"]))
        fliers = {x for x in extremes if x < float(row["whislo"]) or x > float(row["whishi"])}
        stats.append(
            {
                "label": "all" if src.group_name is None else str(row["group"]),
                **{key: float(row[key]) for key in ("q1", "med", "q3", "whislo", "whishi")},
                "mean": float(row["mean"]),
                "fliers": sorted(fliers),
            }
        )
    axes.bxp(stats)
    axes.set(
        title=title or f"{src.name}" + (f" by {src.group_name}" if src.group_name else ""),
        ylabel=_label(src.name, unit),
        xlabel=src.group_name or "",
    )
    outliers = int(frame["fliers_low"].sum() + frame["fliers_high"].sum())
    _source_line(
        axes,
        f"Source: {src.where}; {int(frame['n'].sum()):,} values{_nulls(int(frame['nulls'].sum()))}"
        f"; whiskers at {whis:g} IQR, {outliers:,} beyond (min and max shown); "
        "computed in PostgreSQL",
    )
    return axes


async def bar_counts(
    db: Db,
    column: object,
    *,
    n: int = 10,
    unit: str | None = None,
    title: str | None = None,
    ax: Axes | None = None,
) -> Axes:
    """Draw the ``n`` largest groups of ``column`` as bars, counted in SQL (:func:`count_by`)."""
    frame = await count_by(db, column, n=n)
    col = _column(column, "column")
    assert col is not None  # count_by checked it
    name = _column_name(col)
    axes = _axes(ax)
    labels = ["NULL" if pd.isna(x) else str(x) for x in frame["value"]]
    axes.bar(labels, frame["count"].astype("int64").to_numpy(), color="tab:green")
    axes.set(
        title=title or f"Rows per {name}" + (f" (top {n})" if len(frame) == n else ""),
        xlabel=name,
        ylabel=_label("rows", unit),
    )
    _source_line(axes, f"Source: {name}; the {len(frame)} largest groups, counted in PostgreSQL")
    return axes
