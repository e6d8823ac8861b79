"""The loaders' differential property test: hypothesis builds random tables (random column types
from the fidelity matrix, 0-3 columns of each chosen type, random NULL patterns, random edge
values, random session settings), inserts the rows with bound parameters and commits them; then
every route, forced one by one and by default, and ``stream_frames``, in both dtype backends,
and ``load_arrow`` on every route, must equal the oracle cell by cell (see ``loader_oracle`` for
the oracle and its normalisation).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    Column,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    literal,
    literal_column,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import NullType

from tests.loaders.oracle import ARROW_WAYS, BACKENDS, WAYS, FidelityDb, check_arrow, check_way

UTC = dt.UTC


def _floats(width: Literal[32, 64]) -> st.SearchStrategy[float]:
    big = 3.4028234663852886e38 if width == 32 else 1.7976931348623157e308
    tiny = 1.401298464324817e-45 if width == 32 else 5e-324
    edges = [big, -big, tiny, -tiny, 0.0, -0.0, math.nan, math.inf, -math.inf, 0.1, 1 / 3]
    return st.sampled_from(edges) | st.floats(width=width)


_TEXT_EDGES = ["", "\ufeff", "\ufeffx", "\\N", "\\.", ",", '"', '""', "\r\n", "\n", "\r",
               "NULL", "a,b", 'say "hi"', "back\\slash", " ", "t", "é✓😀", "$1", "'", "--",
               "*/"]  # fmt: skip
_TEXT = st.sampled_from(_TEXT_EDGES) | st.text(
    st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=12
)
_TS = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))
# jsonb refuses \u0000 ("cannot be converted to text"): JSON text without NUL.
_JSON_STRING = st.characters(exclude_characters="\x00")
_JSON_VALUE = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(_JSON_STRING, max_size=5),
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.text(_JSON_STRING, max_size=3), inner, max_size=3),
    max_leaves=5,
)  # fmt: skip
_JSON_TEXT = st.builds(
    lambda v, sep: json.dumps(v, separators=sep),
    _JSON_VALUE,
    st.sampled_from([(",", ":"), (", ", ": "), (" ,", " :  ")]),
) | st.sampled_from(["null", " null ", "{}", "[]", '"\\u00e9"', "1.50", '{"a": 1, "a": 2}'])
_HOSTILE = [
    "|| 1 AS b) TO STDOUT (FORMAT csv); DROP TABLE victim; COPY (SELECT 1 AS a, 1 ||",
    "'; DROP TABLE victim; --",
    "*/ $1 $$ '$1' \"$1\" -- \\",
]
_MOODS = ["sad", "ok", "happy", "with,comma", 'quo"te', "back\\slash"]


@dataclass(frozen=True)
class PgType:
    """A column type: its DDL, the oracle's declared type, its SQLAlchemy type, its values."""

    ddl: str
    declared: str
    values: st.SearchStrategy[Any]
    sa_type: Any = None


def _ints(low: int, high: int) -> st.SearchStrategy[int]:
    return st.sampled_from([low, high, 0]) | st.integers(low, high)


TYPES = {
    "int2": PgType("int2", "int2", _ints(-32768, 32767)),
    "int4": PgType("int4", "int4", _ints(-(2**31), 2**31 - 1)),
    "int8": PgType("int8", "int8", _ints(-(2**63), 2**63 - 1)),
    "oid": PgType("oid", "oid", _ints(0, 2**32 - 1)),
    "float4": PgType("float4", "float4", _floats(32)),
    "float8": PgType("float8", "float8", _floats(64)),
    "bool": PgType("bool", "bool", st.booleans()),
    "text": PgType("text", "text", _TEXT),
    "varchar": PgType("varchar(20)", "varchar", _TEXT.filter(lambda s: len(s) <= 20)),
    "numeric": PgType("numeric", "numeric", st.sampled_from(
        [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity"), Decimal("1.10"),
         Decimal("-0.000001"), Decimal("123456789012345678901234567890.5")])
        | st.decimals(allow_nan=False, allow_infinity=False, places=4, min_value=-10**12,
                      max_value=10**12)),
    "numeric(10,2)": PgType("numeric(10,2)", "numeric(10,2)", st.sampled_from(
        [Decimal("NaN"), Decimal("99999999.99"), Decimal("-99999999.99"), Decimal("0.00")])
        | st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-99999999,
                      max_value=99999999), Numeric(10, 2)),
    "timestamp": PgType("timestamp", "timestamp",
                        st.sampled_from([dt.datetime.max, dt.datetime.min, dt.datetime(1, 1, 1),
                                         dt.datetime(9999, 12, 31, 23, 59, 59, 999999)]) | _TS),
    "timestamptz": PgType("timestamptz", "timestamptz",
                          st.sampled_from([dt.datetime.max.replace(tzinfo=UTC),
                                           dt.datetime.min.replace(tzinfo=UTC),
                                           dt.datetime(1, 1, 1, tzinfo=UTC),
                                           dt.datetime(9999, 12, 31, 23, 59, 59, 999999,
                                                       tzinfo=UTC)])
                          | _TS.map(lambda d: d.replace(tzinfo=UTC))),
    "date": PgType("date", "date", st.sampled_from([dt.date.max, dt.date.min]) | st.dates()),
    "json": PgType("json", "json", _JSON_TEXT),
    "jsonb": PgType("jsonb", "jsonb", _JSON_TEXT),
    "uuid": PgType("uuid", "uuid", st.uuids() | st.just(uuid.UUID(int=0))),
    "bytea": PgType("bytea", "bytea", st.binary(max_size=16)),
    "inet": PgType("inet", "inet", st.ip_addresses()),
    "interval": PgType("interval", "interval",
                       st.timedeltas(min_value=dt.timedelta(days=-10**6),
                                     max_value=dt.timedelta(days=10**6))),
    "time": PgType("time", "time", st.times()),
    "int4[]": PgType("int4[]", "int4[]", st.lists(st.none() | st.integers(-5, 5), max_size=4)
                     | st.integers(1, 3).flatmap(lambda n: st.lists(
                         st.lists(st.integers(-9, 9), min_size=n, max_size=n), min_size=1,
                         max_size=3))),
    "text[]": PgType("text[]", "text[]", st.lists(st.none() | _TEXT, max_size=4)),
    "enum": PgType("fid_mood", "enum", st.sampled_from(_MOODS)),
}  # fmt: skip

SETTINGS = st.fixed_dictionaries(
    {
        "TimeZone": st.sampled_from(
            ["UTC", "Asia/Kolkata", "America/St_Johns", "Europe/Amsterdam"]
        ),
        "DateStyle": st.sampled_from(["ISO, MDY", "SQL, DMY", "German", "Postgres"]),
        "extra_float_digits": st.sampled_from(["-15", "0", "1", "3"]),
        "IntervalStyle": st.sampled_from(["postgres", "sql_standard", "iso_8601"]),
    }
)  # fmt: skip


def _identifier(type_name: str) -> str:
    return type_name.replace("(", "_").replace(",", "_").replace(")", "").replace("[]", "_arr")


@st.composite
def tables(draw: st.DrawFn) -> tuple[Any, ...]:
    """Random columns (0-3 of each chosen type), rows with random NULL patterns, settings, and
    a text bound into the loaded statement beside a literal holding ``$1 $2``."""
    if draw(st.booleans()):  # one column alone: where a NULL row is an empty CSV line
        chosen, counts = [draw(st.sampled_from(sorted(TYPES)))], [1]
    else:
        chosen = draw(st.lists(st.sampled_from(sorted(TYPES)), min_size=1, max_size=5, unique=True))
        counts = [draw(st.integers(0, 3)) for _ in chosen]
    columns = [
        (f"c_{_identifier(name)}_{i}", TYPES[name])
        for name, count in zip(chosen, counts, strict=True)
        for i in range(count)
    ]
    nulls = {col: draw(st.sampled_from(["never", "always", "sometimes"])) for col, _ in columns}
    rows = []
    for k in range(draw(st.integers(0, 9))):
        row: dict[str, Any] = {"k": k}
        for col, pg in columns:
            none = nulls[col] == "always" or (nulls[col] == "sometimes" and draw(st.booleans()))
            row[col] = None if none else draw(pg.values)
        rows.append(row)
    return columns, rows, draw(SETTINGS), draw(_TEXT | st.sampled_from(_HOSTILE))


_count = iter(range(10**9))


@settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    # No shrinking: each example is a table round trip; the failure report names the table.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(example=tables())
async def test_random_tables_load_cell_by_cell_as_the_driver_gives_them_on_every_route(
    fidelity: FidelityDb, example: tuple[Any, ...]
) -> None:
    columns, rows, session_settings, bound = example
    name = f"fid_prop_{next(_count)}"
    ddl = ", ".join(["k int PRIMARY KEY"] + [f"{col} {pg.ddl}" for col, pg in columns])
    table = Table(
        name,
        MetaData(),
        Column("k", Integer, primary_key=True),
        *[Column(col, pg.sa_type if pg.sa_type is not None else NullType()) for col, pg in columns],
    )
    async with AsyncSession(fidelity.engine) as setup:
        await setup.execute(text(f"CREATE TABLE {name} ({ddl})"))
        if rows:
            names = ["k"] + [col for col, _ in columns]
            values = ", ".join(":" + n for n in names)
            insert = text(f"INSERT INTO {name} ({', '.join(names)}) VALUES ({values})")
            await setup.execute(insert, rows)
        await setup.commit()
    try:
        if len(columns) == 1:  # the column alone, a bound value only in the WHERE clause
            stmt = select(table.c[columns[0][0]]).where(table.c.k >= literal(-1))
            types = [columns[0][1].declared]
        else:  # every column, and a bound text beside a literal holding $1 $2
            stmt = select(
                table,
                literal(bound, String).label("bound"),
                literal_column("'$1 $2'").label("dollars"),
            ).where(table.c.k >= literal(-1))
            types = ["int4"] + [pg.declared for _, pg in columns] + ["varchar", "text"]
        stmt = stmt.order_by(table.c.k)

        async def apply(db: AsyncSession) -> None:
            for key, value in session_settings.items():
                await db.execute(text("select set_config(:n, :v, false)"), {"n": key, "v": value})

        failures = []
        for backend in BACKENDS:
            for way in WAYS:
                try:
                    async with AsyncSession(fidelity.engine) as db:
                        await apply(db)
                        await check_way(db, stmt, types, backend, way, chunk_size=2, setup=apply)
                        await db.rollback()
                except Exception as exc:  # every way's failure, not just the first
                    failures.append(f"{way}/{backend}: {type(exc).__name__}: {str(exc)[:600]}")
        for way in ARROW_WAYS:  # load_arrow, under the README's Arrow type table
            try:
                async with AsyncSession(fidelity.engine) as db:
                    await apply(db)
                    await check_arrow(db, stmt, types, way, setup=apply)
                    await db.rollback()
            except Exception as exc:
                failures.append(f"{way}: {type(exc).__name__}: {str(exc)[:600]}")
        assert not failures, (
            f"table {ddl} with rows {rows!r:.2000} under {session_settings}, bound={bound!r}:\n"
            + "\n".join(failures)
        )
    finally:
        async with AsyncSession(fidelity.engine) as cleanup:
            await cleanup.execute(text(f"DROP TABLE {name}"))
            await cleanup.commit()
