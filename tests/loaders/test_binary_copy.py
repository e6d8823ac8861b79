"""The binary COPY decoder (blogdata/loaders/_binary.py), differentially, on the session's own
connection.

The bytes of ``COPY (q) TO STDOUT (FORMAT binary)`` are taken on the test session's own asyncpg
connection, fed to the decoder in chunks of 1 byte, 7 bytes and all at once (and decoded at every
chunk, or in blocks), by numba's kernels and by the same kernels as plain Python. After
``_dtypes.finish`` (both backends) every cell must equal, digit for digit and type for type, what
the CSV COPY route gives (where it reads the type) and what ``session.execute`` gives.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]  # no stubs
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import QueryError
from blogdata.loaders import _binary
from blogdata.loaders._binary import BinaryCopyDecoder, finish_input, unsupported
from blogdata.loaders._copy import copy_to_table
from blogdata.loaders._dtypes import COPY_KINDS, describe, finish

BACKENDS = ("numpy_nullable", "pyarrow")


@pytest.fixture(params=["numba", "python"])
def kernels(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the decoder with numba's kernels, or with the same kernels as plain Python."""
    chosen = _binary._compiled() if request.param == "numba" else _binary._PYTHON
    monkeypatch.setattr(_binary, "_kernels_for", lambda size: chosen)
    yield request.param


async def _driver(db: AsyncSession) -> Any:
    conn = await db.connection()
    raw = await conn.get_raw_connection()
    return raw.driver_connection


async def _copy_bytes(driver: Any, sql: str) -> bytes:
    parts: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        parts.append(bytes(chunk))

    await driver.copy_from_query(f"\n{sql}\n", output=sink, format="binary")
    return b"".join(parts)


def _decode(data: bytes, oids: list[int], step: int, block: int) -> pa.Table:
    decoder = BinaryCopyDecoder(oids, block=block)
    batches: list[pa.RecordBatch] = []
    for start in range(0, len(data), step):
        batches += decoder.feed(data[start : start + step])
    batches += decoder.finish()
    assert decoder.rows == sum(b.num_rows for b in batches)
    return pa.Table.from_batches(batches, schema=decoder.schema)


def _canon(value: Any) -> Any:
    """A comparable form that keeps what matters: float bits, Decimal digits, types, offsets."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()  # pandas arrays give numpy scalars; their dtype is checked apart
    if isinstance(value, float):
        return ("float", repr(value))
    if isinstance(value, Decimal):
        return ("Decimal", str(value))
    if isinstance(value, dt.datetime):
        return ("datetime", value.isoformat())
    if isinstance(value, uuid.UUID):
        return (type(value).__name__, str(value))
    return (type(value).__name__, value)


def _cells(built: Any) -> list[Any]:
    if isinstance(built, pa.ChunkedArray | pa.Array):
        values = built.to_pylist()
    elif isinstance(built, list):
        values = built
    else:  # a pandas extension array
        values = list(built)
    return [_canon(v) for v in values]


def _same_type(a: Any, b: Any) -> bool:
    if isinstance(a, pa.ChunkedArray | pa.Array):
        return isinstance(b, pa.ChunkedArray | pa.Array) and a.type == b.type
    return type(a) is type(b) and getattr(a, "dtype", None) == getattr(b, "dtype", None)


async def _check(db: AsyncSession, sql: str, steps: tuple[int, ...] = (1, 7, 0)) -> int:
    """Decode ``sql``'s binary COPY every way; compare with CSV COPY and the driver. Rows back."""
    driver = await _driver(db)
    attributes = (await driver.prepare(sql)).get_attributes()
    oids = [a.type.oid for a in attributes]
    assert unsupported(oids) == []
    data = await _copy_bytes(driver, sql)
    loads = (await db.connection()).dialect._json_deserializer or json.loads
    rows = (await db.execute(text(sql))).all()
    driver_values = [[r[i] for r in rows] for i in range(len(oids))]
    tables = [
        _decode(data, oids, step or len(data) or 1, block)
        for step in steps
        for block in (1, 1 << 20)
    ]
    for backend in BACKENDS:
        columns = describe(None, None, attributes, backend, loads)
        csv = None
        if all(c.kind in COPY_KINDS for c in columns):
            csv = await copy_to_table(driver, sql, [c.wire for c in columns])
        for i, (column, oid) in enumerate(zip(columns, oids, strict=True)):
            expected = finish(column, list(driver_values[i]), backend)
            want = _cells(expected)
            if csv is not None:
                by_csv = finish(column, csv.column(i), backend)
                assert _cells(by_csv) == want, (column.name, backend, "csv vs driver")
            for table in tables:
                got = finish(column, finish_input(oid, table.column(i)), backend)
                assert _cells(got) == want, (column.name, backend, oid)
                assert _same_type(got, expected), (column.name, backend, type(got))
                if csv is not None:
                    assert _same_type(got, by_csv), (column.name, backend)
    return len(rows)


def _values(typ: str, *literals: str) -> str:
    rows = ", ".join(f"({n}, {lit}::{typ})" for n, lit in enumerate(literals))
    return f"select v from (values {rows}) as t(n, v) order by n"


_MATRIX: dict[str, tuple[str, ...]] = {
    "int2": ("0", "'-32768'", "32767", "null", "-1"),
    "int4": ("0", "'-2147483648'", "2147483647", "null"),
    "int8": ("0", "'-9223372036854775808'", "9223372036854775807", "null", "1"),
    "oid": ("0", "4294967295", "null", "12345"),
    "float4": (
        "'NaN'",
        "'Infinity'",
        "'-Infinity'",
        "'-0'",
        "'1.17549435e-38'",
        "'3.4028235e38'",
        "'1.4e-45'",
        "0.1",
        "null",
        "1",
    ),  # fmt: skip
    "float8": (
        "'NaN'",
        "'Infinity'",
        "'-Infinity'",
        "'-0'",
        "'5e-324'",
        "'1.7976931348623157e308'",
        "0.1",
        "1/3::float8",
        "null",
    ),  # fmt: skip
    "bool": ("true", "false", "null", "false", "true", "true", "false", "true", "true", "false"),
    "text": (
        "''",
        "null",
        "U&'\\FEFF'",
        "U&'\\FEFFx'",
        "'😀𝄞 astral'",
        "'é✓'",
        "'a,b'",
        "'say \"hi\"'",
        "E'\\r\\n'",
        "E'back\\\\slash'",
        "'\\N'",
        "'NULL'",
        "' '",
        "repeat('x', 100000)",
    ),  # fmt: skip
    "varchar(5)": ("''", "'ab'", "null", "'ü😀'"),
    "bpchar(5)": ("''", "'ab'", "null", "'abcde'"),
    "name": ("'pg_class'", "''", "null"),
    "timestamp": (
        "'infinity'",
        "'-infinity'",
        "'0001-01-01 00:00:00'",
        "'9999-12-31 23:59:59.999999'",
        "'2000-01-01'",
        "'1999-12-31 23:59:59.999999'",
        "'1970-01-01 00:00:00.000001'",
        "'1969-12-31 23:59:59.999999'",
        "null",
    ),  # fmt: skip
    "timestamptz": (
        "'infinity'",
        "'-infinity'",
        "'0001-01-01 00:00:00+00'",
        "'9999-12-31 23:59:59.999999+00'",
        "'2000-01-01 00:00+14'",
        "'1999-12-31 23:59:59.999999-12'",
        "'1970-01-01 00:00:00.000001+00'",
        "null",
    ),  # fmt: skip
    "date": (
        "'infinity'",
        "'-infinity'",
        "'0001-01-01'",
        "'9999-12-31'",
        "'2000-01-01'",
        "'1999-12-31'",
        "'1970-01-01'",
        "'1969-12-31'",
        "null",
    ),  # fmt: skip
    "numeric": (
        "'NaN'",
        "'Infinity'",
        "'-Infinity'",
        "'0.000'",
        "'0'",
        "'-0.000120'",
        "'100000'",
        "'10000'",
        "'10e200'",
        "'1e-200'",
        "'-1.5'",
        "0.1",
        "'1.0000'",
        "'9999.9999'",
        "'123456789012345678901234567890.12345678901234567890'",
        "'-99999999999999999999'",
        "'0.00000000000000000001'",
        "null",
    ),  # fmt: skip
    "numeric(10,2)": ("'1.5'", "'-12345678.99'", "'0'", "null"),
    "json": (
        '\'{"a": [1, "x"]}\'',
        "'\"\\u00e9\"'",
        "'null'",
        "'[]'",
        "'\"\\ufeff😀\"'",
        "'1.50'",
        "null",
    ),  # fmt: skip
    "jsonb": (
        '\'{"a": [1, "x"]}\'',
        "'\"\\u00e9\"'",
        "'null'",
        "'[]'",
        "'\"\\ufeff😀\"'",
        "'1.50'",
        "null",
    ),  # fmt: skip
    "uuid": (
        "'00000000-0000-0000-0000-000000000000'",
        "'ffffffff-ffff-ffff-ffff-ffffffffffff'",
        "'0123e456-89ab-cdef-0123-456789abcdef'",
        "null",
    ),  # fmt: skip
    "bytea": ("'\\x'", "'\\x00ff'", "'\\xdeadbeef00'", "null", "decode(repeat('ab', 5000), 'hex')"),
}


@pytest.mark.parametrize("typ", list(_MATRIX))
async def test_each_type_decodes_as_the_driver_and_csv_give_it(
    db: AsyncSession, kernels: str, typ: str
) -> None:
    assert await _check(db, _values(typ, *_MATRIX[typ])) == len(_MATRIX[typ])


@pytest.mark.parametrize("zone", ["UTC", "Pacific/Kiritimati", "America/Los_Angeles"])
async def test_times_in_any_session_time_zone(db: AsyncSession, kernels: str, zone: str) -> None:
    await db.execute(text(f"set local timezone = '{zone}'"))
    sql = "select a::timestamptz, a::timestamp, a::date from (values " + ", ".join(
        f"({v})" for v in _MATRIX["timestamptz"]
    ) + ") as t(a)"  # fmt: skip
    assert await _check(db, sql) == len(_MATRIX["timestamptz"])


async def test_all_types_in_one_wide_row_set(db: AsyncSession, kernels: str) -> None:
    picks = {typ: values for typ, values in _MATRIX.items() if "(" not in typ}
    width = max(len(v) for v in picks.values())
    rows = []
    for n in range(width):
        cells = [f"{vals[n % len(vals)]}::{typ}" for typ, vals in picks.items()]
        rows.append(f"select {n} as n, " + ", ".join(f"{c} as c{j}" for j, c in enumerate(cells)))
    sql = " union all ".join(rows)
    sql = f"select * from ({sql}) as t order by n"
    assert await _check(db, sql, steps=(1, 3, 0)) == width


async def test_empty_result_and_one_column(db: AsyncSession, kernels: str) -> None:
    assert await _check(db, "select 1::int4 as a, 'x'::text as b where false") == 0
    assert await _check(db, "select null::int4 as a from generate_series(1, 3)") == 3
    assert await _check(db, "select ''::text as a from generate_series(1, 3)") == 3


async def test_many_rows_cross_every_block_boundary(db: AsyncSession, kernels: str) -> None:
    sql = (
        "select i::int8, case when i % 3 = 0 then null else repeat('é', i % 17) end, "
        "case when i % 5 = 0 then null else i / 7.0 end, i % 2 = 0 "
        "from generate_series(1, 3000) as i"
    )
    driver = await _driver(db)
    oids = [a.type.oid for a in (await driver.prepare(sql)).get_attributes()]
    data = await _copy_bytes(driver, sql)
    whole = _decode(data, oids, len(data), 1 << 30)
    for step, block in ((1, 4096), (7, 1), (4096, 10_000), (65_536, 1)):
        assert _decode(data, oids, step, block).equals(whole)
    assert await _check(db, sql, steps=(997,)) == 3000


_OUTSIDE = [
    ("timestamp", "'4713-01-01 00:00 BC'"),
    ("timestamp", "'0001-12-31 23:59:59.999999 BC'"),
    ("timestamp", "'10000-01-01 00:00'"),
    ("timestamptz", "'294276-01-01 00:00+00'"),
    ("timestamptz", "'0001-12-31 23:00:00+00 BC'"),
    ("date", "'0001-12-31 BC'"),
    ("date", "'10000-01-01'"),
    ("date", "'5874897-12-31'"),
]


@pytest.mark.parametrize(("typ", "literal"), _OUTSIDE)
async def test_what_the_driver_cannot_represent_is_an_error(
    db: AsyncSession, kernels: str, typ: str, literal: str
) -> None:
    sql = f"select {literal}::{typ} as v union all select null"
    driver = await _driver(db)
    oids = [a.type.oid for a in (await driver.prepare(sql)).get_attributes()]
    with pytest.raises((ValueError, OverflowError)):
        await driver.fetch(sql)  # the driver's refusal: the oracle
    data = await _copy_bytes(driver, sql)
    for step in (1, len(data)):
        with pytest.raises(QueryError, match="outside years 1..9999"):
            _decode(data, oids, step, 1)
    assert (await db.execute(text("select 1"))).scalar() == 1  # the session is still usable


async def test_malformed_streams_are_refused(db: AsyncSession) -> None:
    driver = await _driver(db)
    sql = "select 1::int4, 'x'::text"
    oids = [a.type.oid for a in (await driver.prepare(sql)).get_attributes()]
    data = await _copy_bytes(driver, sql)
    with pytest.raises(QueryError, match="before its trailer"):
        _decode(data[:-2], oids, 1, 1)
    with pytest.raises(QueryError, match="after its trailer"):
        _decode(data + b"\x00", oids, len(data) + 1, 1)
    with pytest.raises(QueryError, match="signature"):
        _decode(b"PGCOPY\n\xff\r\n\x01" + data[11:], oids, 5, 1)
    with pytest.raises(QueryError, match="a row does not fit"):
        _decode(data, oids[:1], 3, 1)
    with pytest.raises(QueryError, match="has 4 bytes"):
        _decode(data, [20, 25], len(data), 1)  # int4 bytes read as int8
    bad_utf8 = data.replace(b"\x00\x00\x00\x01x", b"\x00\x00\x00\x01\xff")
    with pytest.raises(QueryError, match="UTF-8"):
        _decode(bad_utf8, oids, len(data), 1)


def test_unsupported_types_are_named() -> None:
    # int4[] (1007), interval (1186), time (1083), money (790), an enum's OID, "char" (18)
    assert unsupported([23, 1007, 25, 1186, 1083, 790, 99999, 18]) == [1, 3, 4, 5, 6, 7]
    with pytest.raises(ValueError, match="1007"):
        BinaryCopyDecoder([23, 1007])


# --- the property test: random tables, random NULLs ----------------------------------------

_TEXT = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\x00"), max_size=8)
_TYPES: dict[str, st.SearchStrategy[Any]] = {
    "int2": st.integers(-(2**15), 2**15 - 1),
    "int4": st.integers(-(2**31), 2**31 - 1),
    "int8": st.integers(-(2**63), 2**63 - 1),
    "float4": st.floats(width=32),
    "float8": st.floats() | st.sampled_from([math.nan, math.inf, -math.inf, -0.0]),
    "bool": st.booleans(),
    "text": _TEXT,
    "varchar": _TEXT,
    "timestamp": st.datetimes(min_value=dt.datetime(1, 1, 1), max_value=dt.datetime(9999, 12, 31)),
    "timestamptz": st.datetimes(
        min_value=dt.datetime(1, 1, 2),
        max_value=dt.datetime(9999, 12, 30),
        timezones=st.just(dt.UTC),
    ),
    "date": st.dates(),
    "numeric": st.decimals(allow_nan=True, allow_infinity=True, places=None).filter(
        lambda d: not d.is_snan() and (not d.is_finite() or abs(d.adjusted()) < 1000)
    ),
    "jsonb": st.dictionaries(_TEXT, st.integers() | _TEXT, max_size=3).map(json.dumps),
    "json": st.lists(st.integers(-5, 5) | _TEXT, max_size=3).map(json.dumps),
    "uuid": st.uuids(),
    "bytea": st.binary(max_size=20),
}


@st.composite
def _tables(draw: st.DrawFn) -> tuple[list[str], list[list[Any]]]:
    types = draw(st.lists(st.sampled_from(sorted(_TYPES)), min_size=1, max_size=6))
    nrows = draw(st.integers(0, 12))
    rows = [
        [draw(st.none() | _TYPES[t]) if draw(st.booleans()) else draw(_TYPES[t]) for t in types]
        for _ in range(nrows)
    ]
    return types, rows


_count = iter(range(10**9))


@settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(example=_tables())
async def test_random_tables_decode_as_the_driver_gives_them(
    db: AsyncSession, example: tuple[list[str], list[list[Any]]]
) -> None:
    types, rows = example
    name = f"binary_prop_{next(_count)}"
    driver = await _driver(db)
    ddl = ", ".join(["k int"] + [f"c{i} {t}" for i, t in enumerate(types)])
    await driver.execute(f"create temp table {name} ({ddl})")
    marks = ", ".join(f"${i + 1}" for i in range(len(types) + 1))
    with decimal.localcontext() as ctx:
        ctx.prec = 2000
        await driver.executemany(
            f"insert into {name} values ({marks})", [[k, *r] for k, r in enumerate(rows)]
        )
    cols = ", ".join(f"c{i}" for i in range(len(types)))
    await _check(db, f"select {cols} from {name} order by k", steps=(1, 0))
    await driver.execute(f"drop table {name}")
