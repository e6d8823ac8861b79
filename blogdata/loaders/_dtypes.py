"""The dtype contract: result columns described from PostgreSQL's types, and frames built.

``describe`` turns a prepared statement's attributes into ``ResultColumn`` specs; the builders
turn what a route produced (Arrow columns from COPY, or asyncpg records) into frames
column by column, letting go of each source column as they go. Every route ends in
:func:`finish` and :func:`assemble`, so every route has the same dtypes and the same values.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]

from blogdata.errors import QueryError

__all__ = [
    "COPY_KINDS",
    "FLOAT_KINDS",
    "TEMPORAL_KINDS",
    "ResultColumn",
    "assemble",
    "describe",
    "arrow_column",
    "arrow_type",
    "finish",
    "frame_from_table",
    "records_to_columns",
]

# PostgreSQL type OID -> our column kind. Domains arrive as their base type.
_KIND_BY_OID: dict[int, str] = {
    20: "int",  # int8
    21: "int",  # int2
    23: "int",  # int4
    26: "oid",
    700: "float32",
    701: "float64",
    16: "bool",
    25: "text",
    1043: "text",  # varchar
    1042: "text",  # bpchar
    19: "text",  # name
    1184: "timestamptz",
    1114: "timestamp",
    1082: "date",
    1700: "numeric",
    114: "json",
    3802: "json",  # jsonb
}

FLOAT_KINDS = frozenset({"float32", "float64"})
TEMPORAL_KINDS = frozenset({"timestamptz", "timestamp", "date"})
#: Kinds whose CSV text the COPY route turns into exactly the driver's values.
COPY_KINDS = frozenset(_KIND_BY_OID.values())

_ARROW_TYPE: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "oid": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}

#: The type each kind is read as from CSV: temporal and numeric values travel as text.
_WIRE_TYPE: dict[str, pa.DataType] = {
    **_ARROW_TYPE,
    "text": pa.large_string(),
    "timestamptz": pa.string(),
    "timestamp": pa.string(),
    "date": pa.string(),
    "numeric": pa.string(),
    "json": pa.large_string(),
}


@dataclass(frozen=True)
class ResultColumn:
    """One result column: its label, its kind, and the Arrow type it ends as (None: objects)."""

    name: str
    kind: str
    arrow: pa.DataType | None
    loads: Callable[[str], Any] | None = None  # json/jsonb: the connection's own decoder
    oid: int = 0  # PostgreSQL's type OID (domains arrive as their base type)

    @property
    def wire(self) -> pa.DataType:
        """The Arrow type its CSV text is parsed into."""
        return _WIRE_TYPE.get(self.kind, pa.large_string())


#: A finished column: Arrow (converted by pyarrow), a pandas array, or a list of Python objects.
#: (pyarrow has no type stubs, so this is Any to mypy.)
_Built: TypeAlias = Any


def describe(
    labels: Sequence[str] | None,
    numeric_scales: Sequence[int | None] | None,
    attributes: Sequence[Any],
    backend: str,
    json_loads: Callable[[str], Any],
) -> list[ResultColumn]:
    """Describe the result columns from PostgreSQL's types (and the statement's labels).

    ``json_loads`` is how the session's connection decodes json and jsonb (SQLAlchemy's asyncpg
    dialect installs its deserializer as the driver's codec), so text routes decode the same way.
    """
    labels = labels or ()
    if len(labels) != len(attributes):  # a text() query: PostgreSQL names its columns
        labels = tuple(a.name for a in attributes)
    out = []
    for i, (label, attribute) in enumerate(zip(labels, attributes, strict=True)):
        kind = _KIND_BY_OID.get(attribute.type.oid, "object")
        arrow = _ARROW_TYPE.get(kind)
        if kind == "text" and backend == "numpy_nullable":
            arrow = pa.large_string()  # what pandas' string dtype holds: no copy on conversion
        if kind == "date" and backend == "numpy_nullable":
            arrow = None  # datetime.date objects
        if kind == "numeric" and backend == "pyarrow" and numeric_scales is not None:
            scale = numeric_scales[i]
            if scale is not None:
                arrow = pa.decimal128(38, scale)
        loads = json_loads if kind == "json" else None
        out.append(ResultColumn(label, kind, arrow, loads, attribute.type.oid))
    return out


_INFINITE: dict[str, tuple[Any, Any]] = {
    # What asyncpg returns for 'infinity' and '-infinity'; every route gives the same.
    "timestamptz": (dt.datetime.max.replace(tzinfo=dt.UTC), dt.datetime.min.replace(tzinfo=dt.UTC)),
    "timestamp": (dt.datetime.max, dt.datetime.min),
    "date": (dt.date.max, dt.date.min),
}


def _parse_time(text: str, column: ResultColumn) -> Any:
    """Parse one ISO-DateStyle value the vectorized cast refused (infinity, BC, odd offsets)."""
    if text in ("infinity", "-infinity"):
        return _INFINITE[column.kind][text == "-infinity"]
    try:
        value = _outside_python_years(text) if column.kind == "timestamptz" else None
    except (ValueError, OverflowError):
        value = None  # the instant itself is outside Python's years
    if value is None and text.endswith(" BC"):
        raise QueryError(
            f"column {column.name!r} holds {text!r}, a date before year 1 that Python cannot "
            "represent; filter it out or cast it to text in the query"
        )
    try:
        if column.kind == "date":
            return dt.date.fromisoformat(text)
        value = value or dt.datetime.fromisoformat(text)
    except (ValueError, OverflowError):
        raise QueryError(
            f"column {column.name!r} holds {text!r}, which does not read as a {column.kind}; "
            "cast it to text in the query"
        ) from None
    return value.astimezone(dt.UTC) if value.tzinfo is not None else value


_YEAR = re.compile(r"(\d{4,})(-.*?)( BC)?")
_GREGORIAN_CYCLE = dt.timedelta(days=146097)  # 400 years, to the day


def _outside_python_years(text: str) -> dt.datetime | None:
    """Read a timestamptz whose local year is outside 1..9999 but whose instant is inside.

    ``datetime.max`` seen from an eastern zone is written as year 10000, and year 1 seen from
    a western one as 1 BC: shift by whole 400-year cycles (exactly 146097 days), read, shift back.
    """
    match = _YEAR.fullmatch(text)
    if match is None:
        return None
    year = int(match.group(1)) if match.group(3) is None else 1 - int(match.group(1))
    if 1 <= year <= 9999:
        return None
    cycles = (5000 - year) // 400
    local = dt.datetime.fromisoformat(f"{year + 400 * cycles:04d}{match.group(2)}")
    if local.tzinfo is None:
        raise ValueError(text)
    return local.astimezone(dt.UTC) - cycles * _GREGORIAN_CYCLE


def _times_from_text(chunk: pa.Array, column: ResultColumn) -> pa.Array:
    """Read ISO-DateStyle text as timestamps or dates: vectorized, value by value if need be."""
    target = _ARROW_TYPE[column.kind]
    try:
        return pc.cast(chunk, target)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        values = [None if v is None else _parse_time(v, column) for v in chunk.to_pylist()]
        return pa.array(values, type=target)


def _decimal(text: str) -> Decimal:
    """Read numeric text as the Decimal asyncpg decodes from the binary form, digit for digit.

    PostgreSQL stores base-10000 digits and drops trailing zero ones; asyncpg turns each dropped
    group of an integer into an exponent (``10e200`` is ``Decimal('1.0E+201')``, not 201 zeros).
    """
    if "." not in text and text[-1:] == "0" and text.lstrip("-").isdigit():
        groups = (len(text) - len(text.rstrip("0"))) // 4
        if groups:
            return Decimal(f"{text[: -4 * groups]}E{4 * groups}")
    return Decimal(text)


def _decimals(chunks: Sequence[pa.Array], column: ResultColumn) -> _Built:
    texts = [v for c in chunks for v in c.to_pylist()]
    if column.arrow is None:
        return [None if v is None else _decimal(v) for v in texts]
    try:
        return pa.array([None if v is None else _decimal(v) for v in texts], type=column.arrow)
    except (pa.ArrowInvalid, ArithmeticError):
        raise QueryError(
            f"numeric column {column.name!r} holds a value {column.arrow} cannot hold (NaN, "
            "Infinity or too many digits); use dtype_backend='numpy_nullable' (Decimal objects) "
            "or filter it out in the query"
        ) from None


def _nullable_numbers(
    chunks: list[pa.Array], dtype: Any, make: Callable[[Any, Any], Any]
) -> pd.api.extensions.ExtensionArray:
    """Build an Int64/Float64 array from Arrow chunks, one by one; NaN stays a value, not NA."""
    values = np.empty(sum(len(c) for c in chunks), dtype=dtype)
    mask = np.zeros(len(values), dtype=bool)
    start = 0
    chunks.reverse()
    while chunks:
        chunk = chunks.pop()
        end = start + len(chunk)
        if chunk.null_count:
            mask[start:end] = chunk.is_null().to_numpy(zero_copy_only=False)
            chunk = chunk.fill_null(0)
        values[start:end] = chunk.to_numpy(zero_copy_only=False)
        start = end
        del chunk
    built: pd.api.extensions.ExtensionArray = make(values, mask)
    return built


def finish(column: ResultColumn, values: pa.ChunkedArray | list[Any], backend: str) -> _Built:
    """Bring one column (CSV-parsed, or driver objects) to the contract's type."""
    if isinstance(values, list):
        chunks = [_from_objects(column, values)]
    else:
        chunks = values.chunks or [pa.array([], type=values.type)]
    del values
    if chunks and isinstance(chunks[0], pa.Array) and isinstance(chunks[0].type, pa.ExtensionType):
        chunks = [c.storage for c in chunks]
    if not chunks or not isinstance(chunks[0], pa.Array):
        return [v for c in chunks for v in c]  # driver objects (kind "object")
    if column.kind in TEMPORAL_KINDS and pa.types.is_string(chunks[0].type):
        chunks = [_times_from_text(c, column) for c in chunks]
    if column.kind == "numeric":
        return _decimals(chunks, column)
    if column.kind == "json" and column.loads is not None:
        loads = column.loads
        return [None if v is None else loads(v) for c in chunks for v in c.to_pylist()]
    if column.kind == "date" and column.arrow is None:
        return [v for c in chunks for v in c.to_pylist()]
    if backend == "numpy_nullable" and column.kind in ("int", "oid"):
        return _nullable_numbers(chunks, np.int64, pd.arrays.IntegerArray)
    if backend == "numpy_nullable" and column.kind in FLOAT_KINDS:
        width = np.float32 if column.kind == "float32" else np.float64
        return _nullable_numbers(chunks, width, pd.arrays.FloatingArray)
    if column.arrow is None:
        return [v for c in chunks for v in c.to_pylist()]
    out = []
    chunks.reverse()
    while chunks:  # cast one chunk at a time and let the old one go: peak is one chunk more
        chunk = chunks.pop()
        out.append(chunk if chunk.type == column.arrow else chunk.cast(column.arrow))
        del chunk
    return pa.chunked_array(out, type=column.arrow)


def _from_objects(column: ResultColumn, values: list[Any]) -> Any:
    """Wrap driver values: an Arrow array where the kind has one, else the list itself."""
    if column.kind in ("numeric", "json", "object"):
        if column.kind == "numeric":
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
        return values
    if column.kind == "date" and column.arrow is None:
        return values
    target = _ARROW_TYPE[column.kind]
    if column.kind == "timestamptz":  # asyncpg gives a naive datetime.max for 'infinity'
        values = [v if v is None or v.tzinfo else v.replace(tzinfo=dt.UTC) for v in values]
    return pa.array(values, type=target)


def records_to_columns(records: Sequence[Any], columns: Sequence[ResultColumn]) -> list[list[Any]]:
    """Turn asyncpg records into one list of driver values per column."""
    if not records:
        return [[] for _ in columns]
    return [list(v) for v in zip(*records, strict=True)]


_NULLABLE_DTYPE: dict[pa.DataType, Any] = {
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
}


def assemble(arrays: list[_Built], columns: Sequence[ResultColumn], backend: str) -> pd.DataFrame:
    """Convert finished columns into a frame; empties ``arrays``."""
    mapper: Callable[[pa.DataType], Any] = (
        pd.ArrowDtype if backend == "pyarrow" else _NULLABLE_DTYPE.get
    )
    arrow = [isinstance(a, pa.Array | pa.ChunkedArray) for a in arrays]
    built = {i: a for i, a in enumerate(arrays) if not arrow[i]}
    rows = len(arrays[0]) if arrays else 0
    names = [f"c{i}" for i, a in enumerate(arrays) if arrow[i]]
    table = pa.table([a for i, a in enumerate(arrays) if arrow[i]], names=names)
    arrays.clear()
    if names:
        frame: pd.DataFrame = table.to_pandas(
            types_mapper=mapper, self_destruct=True, split_blocks=True
        )
    else:
        frame = pd.DataFrame(index=pd.RangeIndex(rows))
    del table
    for i, values in built.items():
        dtype = object if isinstance(values, list) else None
        frame.insert(i, f"c{i}", pd.Series(values, dtype=dtype, index=frame.index))
    frame.columns = pd.Index([c.name for c in columns])
    return frame


def frame_from_table(table: pa.Table, columns: Sequence[ResultColumn], backend: str) -> Any:
    """Build the contract's frame from a COPY route's Arrow table, letting go column by column."""
    arrays = []
    for column in columns:
        values = table.column(0)
        table = table.remove_column(0)
        arrays.append(finish(column, values, backend))
        del values
    del table
    return assemble(arrays, columns, backend)


# --- load_arrow: the Arrow types (the pyarrow backend's, and Arrow types for its objects) ------

#: Arrow types for the columns the pyarrow backend leaves as Python objects, by type OID.
_ARROW_BY_OID: dict[int, pa.DataType] = {
    2950: pa.uuid(),  # uuid: Arrow's canonical UUID type (16 bytes, network order)
    17: pa.binary(),  # bytea
    1083: pa.time64("us"),  # time
    1186: pa.duration("us"),  # interval, as asyncpg's timedelta (a month is 30 days)
}


def arrow_type(column: ResultColumn) -> pa.DataType:
    """Return the Arrow type of ``column`` in ``load_arrow`` (described for the pyarrow backend).

    The pyarrow backend's type where it has one; numeric without a declared scale and json/jsonb
    as text (PostgreSQL's); uuid, bytea, time, interval as above; anything else as text.
    """
    if column.arrow is not None:
        return column.arrow
    return _ARROW_BY_OID.get(column.oid, pa.string())


def _numeric_text(value: Decimal) -> str:
    """Write a driver Decimal as PostgreSQL's ``numeric_out`` does (no exponent)."""
    return format(value, "f")


def _arrow_from_objects(column: ResultColumn, values: list[Any], target: pa.DataType) -> Any:
    """Build the Arrow array of driver values for a column the pyarrow backend keeps as objects."""
    if column.kind == "numeric":
        return pa.array([None if v is None else _numeric_text(v) for v in values], pa.string())
    if column.kind == "json":
        # The driver gives decoded JSON (a JSON null as None, like SQL NULL): its JSON text.
        texts = [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]
        return pa.array(texts, pa.string())
    if target == pa.uuid():
        storage = pa.array([None if v is None else v.bytes for v in values], pa.binary(16))
        return pa.ExtensionArray.from_storage(target, storage)
    if target != pa.string():
        return pa.array(values, type=target)
    return pa.array([None if v is None else str(v) for v in values], pa.string())


def _arrow_from_wire(chunk: pa.Array, target: pa.DataType) -> pa.Array:
    """Bring a COPY route's wire chunk (text, uuid bytes, bytea) to its Arrow type."""
    if target == pa.uuid():
        return pa.ExtensionArray.from_storage(target, chunk)
    return chunk if chunk.type == target else chunk.cast(target)


def arrow_column(column: ResultColumn, values: pa.ChunkedArray | list[Any]) -> pa.ChunkedArray:
    """Bring one column (a COPY route's wire chunks, or driver objects) to its Arrow type."""
    target = arrow_type(column)
    try:
        if column.arrow is not None:
            built = finish(column, values, "pyarrow")
            if isinstance(built, pa.ChunkedArray):
                return built
            return pa.chunked_array([built], type=target)
        if isinstance(values, list):
            return pa.chunked_array([_arrow_from_objects(column, values, target)], type=target)
        chunks = values.chunks or [pa.array([], type=values.type)]
        del values
        return pa.chunked_array([_arrow_from_wire(c, target) for c in chunks], type=target)
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise QueryError(
            f"column {column.name!r} holds a value {target} cannot hold ({exc}); use load_frame "
            "(Python objects) or cast it to text in the query"
        ) from None
