"""The loaders' fixed differential matrix: every route, forced one by one and by default, and
``stream_frames``, in both dtype backends, must give exactly what ``session.execute`` gives on
the same session (the oracle and its normalisation are in ``loader_oracle``).

What it caught on the loaders before the rewrite (9604a52, through a scratch adapter: copy =
the old load_frame, adbc = load_frame_new_connection), 226 of 862 cases on PostgreSQL 15:

- defect 1, rows lost: one-column NULL rows (20 of 40 posts' views, 0 of 10 all-NULL rows);
- defect 2, spliced values: the issue's statement dropped table ``victim`` on copy and auto,
  ``$1`` inside dollar quotes and E'' strings took the bound value, ``'over $100'`` raised a raw
  IndexError, quoted identifiers and comments gave syntax errors;
- defect 3, identity: a role without SELECT got rows on adbc, RLS gave 5 rows for 3;
- defect 4, ADBC types: oid 4294967295 as -1, infinity timestamps as year -290278, inet/timetz
  as bytes, json as text where the other routes gave objects;
- defect 5, CSV values: a leading U+FEFF stripped, float NaN as NA, floats rounded under
  extra_float_digits 0 (the largest double became inf);
- defect 7: NaN in numeric(10,2) a raw ArrowInvalid with pyarrow dtypes; a BC date a raw
  ValueError.

On the rewrite it then caught 10e200's digits, datetime.max written as year 10000 in an eastern
zone, year 1 written as 1 BC in a western one, and the raw ValueError of a BC date on rows.
The adbc route is gone since issue 17: every way now reads on the session's own connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Numeric, Table, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import QueryError, RouteUnavailableError
from blogdata.models import Post
from tests.loaders.oracle import (
    BACKENDS,
    WAYS,
    assert_same_frame,
    check_way,
    load,
    oracle,
)

_meta = MetaData()
FID_NUM = Table("fid_num", _meta, Column("id", Integer, primary_key=True), Column("amount", Numeric(10, 2)))  # fmt: skip  # noqa: E501
FID_NUM_NAN = Table("fid_num_nan", _meta, Column("id", Integer, primary_key=True), Column("amount", Numeric(10, 2)))  # fmt: skip  # noqa: E501


@dataclass(frozen=True)
class Case:
    """A statement, the declared type of each result column, and session settings to apply."""

    id: str
    make: Callable[[], Any]
    types: tuple[str, ...]
    settings: tuple[tuple[str, str], ...] = ()
    sql_before: tuple[str, ...] = ()


def sql(query: str) -> Callable[[], Any]:
    return lambda: text(query)


FLOATS = r"""
select i, d, r from (values
 (1, '1.7976931348623157e308'::float8, '3.4028235e38'::float4),
 (2, '-1.7976931348623157e308'::float8, '-3.4028235e38'::float4),
 (3, '5e-324'::float8, '1.4e-45'::float4),
 (4, '2.2250738585072014e-308'::float8, '1.17549435e-38'::float4),
 (5, '2.225073858507201e-308'::float8, '1.1754942e-38'::float4),
 (6, '0.1'::float8, '0.1'::float4),
 (7, '0.3333333333333333'::float8, '0.33333334'::float4),
 (8, '-0'::float8, '-0'::float4),
 (9, 'NaN'::float8, 'NaN'::float4),
 (10, 'Infinity'::float8, 'Infinity'::float4),
 (11, '-Infinity'::float8, '-Infinity'::float4),
 (12, NULL, NULL),
 (13, '123456789.12345679'::float8, '16777216'::float4),
 (14, '1e22'::float8, '1e-7'::float4)
) t(i, d, r) order by i"""

TEMPORAL = r"""
select i, ts, tstz, d from (values
 (1, 'infinity'::timestamp, 'infinity'::timestamptz, 'infinity'::date),
 (2, '-infinity'::timestamp, '-infinity'::timestamptz, '-infinity'::date),
 (3, '0001-01-01 00:00:00'::timestamp, '0001-01-01 00:00:00+00'::timestamptz, '0001-01-01'::date),
 (4, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '9999-12-31'),
 (5, '2026-03-29 02:30:00', '2026-03-29 01:30:00+00', '2026-03-29'),
 (6, NULL, NULL, NULL),
 (7, '1970-01-01 00:00:00.000001', '1969-12-31 23:59:59.999999+00', '1970-01-01'),
 (8, '1900-01-01 00:00:00', '1900-01-01 00:00:00+00', '1900-02-28'),
 (9, '2000-02-29 12:34:56.789', '2000-02-29 12:34:56.789-03:30', '2000-02-29')
) t(i, ts, tstz, d) order by i"""

CLOCKS = r"""
select i, t, tz, iv from (values
 (1, '00:00:00'::time, '00:00:00+00'::timetz, '1 year 2 mons 3 days 04:05:06.789'::interval),
 (2, '23:59:59.999999', '23:59:59.999999-12', '-1 day +02:00'),
 (3, '12:34:56.5', '12:34:56+05:30', '1 mon'),
 (4, '01:02:03', '12:00:00+00:19:32', '00:00:00.000001'),
 (5, NULL, NULL, NULL),
 (6, '13:00', '13:00-03:30', '-178000 years'),
 (7, '04:05', '04:05+14', '3 days -04:00:00.5')
) t(i, t, tz, iv) order by i"""

CSV_META = r"""
select v, i from (values
 (E'\\.', 1), ('a,b', 2), ('say "hi"', 3), (E'line1\nline2', 4), (E'cr\rhere', 5),
 (E'crlf\r\n', 6), (E'back\\slash', 7), (E'\\N', 8), ('NULL', 9), (E'tab\there', 10),
 (' lead', 11), ('trail ', 12), ('"', 13), ('""', 14), ('', 15), (NULL, 16), (E'\n', 17),
 ('é✓😀', 18), ('t', 19), (E'\\.\n', 20), (E'\n\\.\n', 21), (E'\r', 22), (',', 23),
 (E'\\', 24), ('N', 25), (E'"\n"', 26), (E'\\x00', 27), ('#comment', 28)
) t(v, i) order by i"""

TZS = ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"]
STYLES = ["ISO, MDY", "SQL, DMY", "German", "Postgres"]
SETTINGS = [(("TimeZone", tz), ("DateStyle", "ISO, MDY")) for tz in TZS] + [
    (("TimeZone", tz), ("DateStyle", style))
    for tz, style in [("Europe/Amsterdam", "SQL, DMY"), ("Asia/Kolkata", "German"),
                      ("America/St_Johns", "Postgres"), ("Europe/Amsterdam", "Postgres, DMY")]
]  # fmt: skip

CASES = [
    Case("one-column-null-views", lambda: select(Post.views).order_by(Post.id), ("int4",)),
    Case("all-null-one-column", sql("select null::int x from generate_series(1,10)"), ("int4",)),
    Case(
        "all-null-two-columns",
        sql("select null::text a, null::float8 b from generate_series(1,5)"),
        ("text", "float8"),
    ),
    Case(
        "one-text-column-null-and-empty",
        sql(
            "select v from (values ('a', 1), (null, 2), ('', 3), (null, 4), ('', 5)) t(v, i) "
            "order by i"
        ),
        ("text",),
    ),
    Case(
        "empty-string-vs-null",
        sql(
            """select * from (values (1, '', null::text), (2, null, ''), (3, '""', 'x'))"""
            " t(i, a, b) order by i"
        ),
        ("int4", "text", "text"),
    ),
    Case(
        "leading-bom-first-value",
        sql(
            r"select a, i from (values (E'\uFEFFfirst', 1), (E'\uFEFF', 2), ('x', 3)) t(a, i) "
            "order by i"
        ),
        ("text", "int4"),
    ),
    Case("lone-bom", sql(r"select E'\uFEFF' as a"), ("text",)),
    Case(
        "bom-in-int-table-first-column-text",
        sql(r"select E'\uFEFF1' as a, 1 as b"),
        ("text", "int4"),
    ),
    Case("csv-metacharacters", sql(CSV_META), ("text", "int4")),
    Case("end-of-data-marker-alone", sql(r"select E'\\.' as v"), ("text",)),
    Case(
        "end-of-data-marker-rows", sql(r"select E'\\.' as v from generate_series(1, 4)"), ("text",)
    ),
    *[
        Case(
            f"floats-extra_float_digits={efd}",
            sql(FLOATS),
            ("int4", "float8", "float4"),
            (("extra_float_digits", efd),),
        )
        for efd in ("-15", "0", "1", "3")
    ],
    Case("floats-default-settings", sql(FLOATS), ("int4", "float8", "float4")),
    Case(
        "numeric-nan-infinity",
        sql(
            "select i, v from (values (1, 'NaN'::numeric), (2, 'Infinity'), (3, '-Infinity'),"
            " (4, 0.000000000000000000001), (5, 123456789012345678901234567890.123456789),"
            " (6, '-0.0'), (7, 1.10), (8, null), (9, 1e-300), (10, 10e200)) t(i, v) order by i"
        ),
        ("int4", "numeric"),
    ),
    Case(
        "numeric-table-column",
        lambda: select(FID_NUM.c.id, FID_NUM.c.amount).order_by(FID_NUM.c.id),
        ("int4", "numeric(10,2)"),
    ),
    Case(
        "numeric-table-column-nan",
        lambda: select(FID_NUM_NAN.c.id, FID_NUM_NAN.c.amount).order_by(FID_NUM_NAN.c.id),
        ("int4", "numeric(10,2)"),
    ),
    *[
        Case(
            f"temporal-{tz}-{style}".replace(" ", "").replace(",", "_").replace("/", "_"),
            sql(TEMPORAL),
            ("int4", "timestamp", "timestamptz", "date"),
            (("TimeZone", tz), ("DateStyle", style)),
        )
        for (_, tz), (_, style) in SETTINGS
    ],
    Case("bc-date", sql("select '0044-03-15 BC'::date as d"), ("date",)),
    *[
        Case(
            f"time-timetz-interval-{style}-{istyle}".replace(" ", "").replace(",", "_"),
            sql(CLOCKS),
            ("int4", "time", "timetz", "interval"),
            (("DateStyle", style), ("IntervalStyle", istyle), ("TimeZone", "Asia/Kolkata")),
        )
        for style, istyle in [
            ("ISO, MDY", "postgres"),
            ("SQL, DMY", "postgres_verbose"),
            ("German", "sql_standard"),
            ("Postgres", "iso_8601"),
        ]
    ],
    Case(
        "integer-limits",
        sql(
            "select i2, i4, i8, o from (values ('-32768'::int2, '-2147483648'::int4,"
            " '-9223372036854775808'::int8, '0'::oid, 1), ('32767', '2147483647',"
            " '9223372036854775807', '4294967295', 2), ('0', '0', '0', '1', 3),"
            " (null, null, null, null, 4)) t(i2, i4, i8, o, k) order by k"
        ),
        ("int2", "int4", "int8", "oid"),
    ),
    Case(
        "arrays",
        sql(r"""select '{{1,2},{3,4}}'::int[] a, '{{{1},{2}},{{3},{4}}}'::int[] b,
                '{"a,b","c\"d",NULL,"NULL","",x}'::text[] c, '{NaN,Infinity,-0,1.5}'::float8[] d,
                '{}'::int[] e, '[0:1]={7,8}'::int[] f, null::int[] g,
                '{{a,b},{c,d}}'::text[] h, '{1.10,NaN}'::numeric[] k,
                '{2026-01-01,infinity}'::date[] m"""),
        ("int4[]",) * 10,
    ),
    Case(
        "network",
        sql(
            "select * from (values (1, '192.168.0.1/24'::inet, '10.0.0.0/8'::cidr,"
            " '08:00:2b:01:02:03'::macaddr, '08:00:2b:01:02:03:04:05'::macaddr8),"
            " (2, '10.0.0.1', '2001:db8::/32', 'ff:ff:ff:ff:ff:ff', '00:00:00:00:00:00:00:00'),"
            " (3, '::1', '192.168.1.0/24', null, null), (4, '2001:db8::1/64', null, null, null),"
            " (5, null, '0.0.0.0/0', '00:00:00:00:00:00', null)) t(i, ip, net, mac, mac8)"
            " order by i"
        ),
        ("int4", "inet", "cidr", "macaddr", "macaddr8"),
    ),
    Case(
        "json-and-jsonb",
        sql(r"""select i, j, b from (values
              (1, '{"a": 1,  "b":[1,2]}'::json, '{"a": 1,  "b":[1,2]}'::jsonb),
              (2, 'null', 'null'), (3, null, null),
              (4, '"str \"q\" , x"', '"str \"q\" , x"'), (5, '[]', '[]'),
              (6, '  {"x":"\u00e9", "y": "\\N"}  ', '{"x":"\u00e9", "y": "\\N"}'),
              (7, '1.50', '1.50'), (8, '{"a": 1,"a": 2}', '{"a": 1,"a": 2}'),
              (9, E'[\n1,\r\n2]', E'[\n1,\r\n2]')) t(i, j, b) order by i"""),
        ("int4", "json", "jsonb"),
    ),
    Case(
        "uuid-and-bytea",
        sql(r"""select * from (values
              (1, '00000000-0000-0000-0000-000000000000'::uuid, '\x00ff5c2c220a0d'::bytea),
              (2, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ''), (3, null, null),
              (4, 'ffffffff-ffff-ffff-ffff-ffffffffffff', '\x5c4e')) t(i, u, b) order by i"""),
        ("int4", "uuid", "bytea"),
    ),
    Case(
        "enum-and-domain",
        sql("select mood, n, label from fid_enum order by id"),
        ("enum", "int4", "text"),
    ),
    Case(
        "enum-array",
        sql("select '{sad,\"with,comma\"}'::fid_mood[] a, 'ok'::fid_mood b"),
        ("fid_mood[]", "enum"),
    ),
    Case(
        "bool",
        sql("select b from (values (true, 1), (false, 2), (null, 3)) t(b, i) order by i"),
        ("bool",),
    ),
    Case(
        "char-types",
        sql(
            "select 'x'::varchar(5) v, 'ab'::char(4) c, 'nm'::name n, ''::char(2) e,"
            " 'a'::\"char\" q"
        ),
        ("varchar", "bpchar", "name", "bpchar", "char"),
    ),
    Case("duplicate-labels", sql("select 1 as a, 2 as a, 'x' as a"), ("int4", "int4", "text")),
    Case(
        "empty-result",
        sql(
            "select 1::int a, 'x'::text b, 1.0::float8 c, now() d, '{}'::json e,"
            " 1.5::numeric f, current_date g where false"
        ),
        ("int4", "text", "float8", "timestamptz", "json", "numeric", "date"),
    ),
    Case(
        "posts-all-columns",
        lambda: select(*Post.__table__.c).order_by(Post.id),
        (
            "int4",
            "varchar",
            "text",
            "int4",
            "timestamptz",
            "timestamptz",
            "timestamptz",
            "int4",
            "int4",  # content_length, the stored generated column
        ),
    ),
    Case(
        "composite-and-range",
        sql(
            "select row(1, 'a,b', null)::record r, int4range(1, 5) g, '[2026-01-01,)'::daterange d"
        ),
        ("record", "int4range", "daterange"),
    ),
    Case(
        "temp-view",
        sql("select * from fid_temp_view"),
        ("int4", "text"),
        sql_before=("CREATE TEMP VIEW fid_temp_view AS SELECT 1 AS a, 'temp'::text AS b",),
    ),
    Case(
        "uncommitted-write-is-seen",
        sql("select v from fid_sp order by v"),
        ("text",),
        sql_before=("INSERT INTO fid_sp VALUES ('mine, uncommitted')",),
    ),
    Case(
        "search-path",
        sql("select v from fid_sp order by v"),
        ("text",),
        (("search_path", "fid_alt, public"),),
    ),
]


async def apply(db: AsyncSession, case: Case) -> None:
    """Apply the case's session settings (bound through set_config) and statements."""
    for name, value in case.settings:
        await db.execute(text("select set_config(:n, :v, false)"), {"n": name, "v": value})
    for statement in case.sql_before:
        await db.execute(text(statement))


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
async def test_every_way_of_loading_gives_what_the_driver_gives(
    fdb: AsyncSession, case: Case, backend: str, way: str
) -> None:
    await apply(fdb, case)
    await check_way(fdb, case.make(), case.types, backend, way, setup=lambda db: apply(db, case))


async def test_the_posts_case_really_has_null_views_and_the_search_path_case_the_alt_rows(
    fdb: AsyncSession,
) -> None:
    """Guard the matrix's premises, so a case cannot pass by testing nothing."""
    views = (await fdb.execute(select(Post.views))).scalars().all()
    assert len(views) == 40 and views.count(None) == 20
    await fdb.execute(text("select set_config('search_path', 'fid_alt, public', false)"))
    assert (await fdb.execute(text("select v from fid_sp order by v"))).scalars().all() == [
        "alt",
        "alt 2",
    ]


# ---- defect 2: bound values never spliced into SQL text; exactly one statement runs ---------

HOSTILE = [
    "|| 1 AS b) TO STDOUT (FORMAT csv); DROP TABLE victim; COPY (SELECT 1 AS a, 1 ||",
    "'; DROP TABLE victim; --",
    "\\'); DROP TABLE victim; --",
    "*/ DROP TABLE victim; /*",
    "$$; DROP TABLE victim; $$",
    "$1 $2 '$1' \"$1\"",
    "E'\\\\' -- \\",
    '"; DROP TABLE victim; --',
    '\x01\t\n\r,"\\N\\.',
    "') ; SELECT nextval('fid_seq'); --",
    "",
]

INJECTION_STATEMENTS = {
    "dollar-one-in-literal": "select :p as a, '$1' as b",
    "dollar-one-in-dollar-quotes": "select :p as a, $$ $1 ' $$ as b",
    "dollar-one-in-tagged-dollar-quotes": "select :p as a, $q$ $1 $$ $q$ as b",
    "dollar-one-in-e-string": r"select :p as a, E'\' $1 \\' as b",
    "dollar-one-in-quoted-identifier": 'select :p as a, 1 as "$1"',
    "dollar-one-in-line-comment": "select :p as a -- $1 and ' quote\n, 2 as b",
    "dollar-one-in-block-comment": "select :p as a /* $1 ' */, 2 as b",
    "over-100-dollars-with-a-parameter": "select :p as a, 'over $100' as b",
    "two-parameters": "select :p as a, :q as b, '$2 $1' as c",
    "badge-from-posts": "select title, 'badge $1' as b from posts where title <> :p order by id",
}
INJECTION_TYPES = {
    "two-parameters": ("text", "text", "text"),
    "badge-from-posts": ("varchar", "text"),
    "dollar-one-in-quoted-identifier": ("text", "int4"),
    "dollar-one-in-line-comment": ("text", "int4"),
    "dollar-one-in-block-comment": ("text", "int4"),
}


async def _victim_exists(db: AsyncSession) -> bool:
    return bool(
        (await db.execute(text("select to_regclass('public.victim') is not null"))).scalar()
    )


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(INJECTION_STATEMENTS))
async def test_bound_values_full_of_sql_are_data_and_the_victim_table_survives(
    fdb: AsyncSession, name: str, backend: str, way: str
) -> None:
    types = INJECTION_TYPES.get(name, ("text", "text"))
    for value in HOSTILE:
        stmt = text(INJECTION_STATEMENTS[name]).bindparams(p=value)
        if ":q" in INJECTION_STATEMENTS[name]:
            stmt = stmt.bindparams(q=value[::-1])
        failure: BaseException | None = None
        try:
            await check_way(fdb, stmt, types, backend, way)
        except Exception as exc:
            failure = exc
        try:
            survived: object = await _victim_exists(fdb)
        except Exception as exc:
            survived = f"unknown: the session no longer answers ({exc!r:.120})"
        assert survived is True, f"table victim after p={value!r}: {survived}; load: {failure!r}"
        if failure is not None:
            raise failure


@pytest.mark.parametrize("way", WAYS)
async def test_a_literal_with_dollar_digits_and_no_parameters_loads(
    fdb: AsyncSession, way: str
) -> None:
    outcome = await check_way(fdb, text("select 'over $100' as a"), ("text",), "pyarrow", way)
    assert outcome in ("equal", "unavailable")


async def _sequence_value(db: AsyncSession) -> int:
    return int((await db.execute(text("select last_value from fid_seq"))).scalar_one())


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_statement_runs_exactly_once_as_the_sequence_it_advances_shows(
    fdb: AsyncSession, backend: str, way: str
) -> None:
    """setval to 100, run the oracle: it advances the sequence by 3; the loader, from 100 again,
    must give the same frame and advance it by 3 too (twice-run would give 106, a stacked
    nextval from a spliced value more), or by 0 when the route says it is unavailable."""
    for value in HOSTILE:
        stmt = text(
            "select nextval('fid_seq') as n, :p as p, '$1' as d from generate_series(1, 3)"
        ).bindparams(p=value)
        await fdb.execute(text("select setval('fid_seq', 100)"))
        expected = await oracle(fdb, stmt, ("int8", "text", "text"), backend)
        assert expected.frame is not None and await _sequence_value(fdb) == 103
        await fdb.execute(text("select setval('fid_seq', 100)"))
        try:
            got = await load(fdb, stmt, backend, way, chunk_size=2)
        except RouteUnavailableError:
            assert way in ("binary", "copy", "stream-binary", "stream-copy"), (
                f"{way} must never be unavailable"
            )
            assert await _sequence_value(fdb) == 100, "an unavailable route ran the statement"
            continue
        ran = await _sequence_value(fdb) - 100
        assert ran == 3, f"{way} ran nextval {ran} times for 3 rows with p={value!r}"
        assert_same_frame(got, expected.frame, f"{way}/{backend} p={value!r}")
        assert await _victim_exists(fdb)


# ---- identity: SET ROLE, row-level security, search_path --------------------------------------


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_a_role_without_select_gets_an_error_on_every_route_never_rows(
    fdb: AsyncSession, fidelity: Any, backend: str, way: str
) -> None:
    await fdb.execute(text("select set_config('role', :r, false)"), {"r": fidelity.no_select_role})
    for stmt in (text("select id, s from fid_secret"), select(*Post.__table__.c)):
        try:
            frame = await load(fdb, stmt, backend, way, chunk_size=2)
        except RouteUnavailableError:
            assert way in ("binary", "copy", "stream-binary", "stream-copy"), (
                f"{way} must never be unavailable"
            )
        except QueryError as exc:
            assert "permission denied" in str(exc)
        else:
            raise AssertionError(f"{way} returned {len(frame)} rows to a role without SELECT")
        await fdb.rollback()
        await fdb.execute(
            text("select set_config('role', :r, false)"), {"r": fidelity.no_select_role}
        )


@pytest.mark.parametrize("way", WAYS)
@pytest.mark.parametrize("backend", BACKENDS)
async def test_row_level_security_gives_the_oracles_rows(
    fdb: AsyncSession, fidelity: Any, backend: str, way: str
) -> None:
    await fdb.execute(text("select set_config('role', :r, false)"), {"r": fidelity.rls_role})
    stmt = text("select id, owner, v from fid_rls order by id")
    expected = await oracle(fdb, stmt, ("int4", "text", "text"), backend)
    assert expected.frame is not None and len(expected.frame) == fidelity.rls_rows == 3
    await check_way(fdb, stmt, ("int4", "text", "text"), backend, way)
