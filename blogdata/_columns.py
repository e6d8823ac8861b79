"""Private half of the loaders: result columns described from PostgreSQL types, and frames built.

``describe`` turns a prepared statement's attributes into ``ResultColumn`` specs (the dtype contract
of ``blogdata.loaders``); the builders turn Arrow tables (from COPY or ADBC) or asyncpg records
into DataFrames column by column, letting go of each source column as they go.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TypeAlias

import numpy as np
import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

__all__ = [
    "COPYABLE",
    "ResultColumn",
    "assemble",
    "concat",
    "describe",
    "records_to_arrays",
    "records_to_frame",
    "table_to_frame",
]

# PostgreSQL type OID -> our column kind.
_KIND_BY_OID: dict[int, str] = {
    20: "int",  # int8
    21: "int",  # int2
    23: "int",  # int4
    26: "int",  # oid
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
}

_ARROW_TYPE: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "text": pa.string(),
    "timestamptz": pa.timestamp("us", tz="UTC"),
    "timestamp": pa.timestamp("us"),
    "date": pa.date32(),
}

_NULLABLE_DTYPE: dict[pa.DataType, Any] = {
    pa.int64(): pd.Int64Dtype(),
    pa.float32(): pd.Float32Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
    pa.string(): pd.StringDtype(),
    pa.large_string(): pd.StringDtype(),
}


@dataclass(frozen=True)
class ResultColumn:
    """One result column: its label, its kind, and its Arrow type (None means Python objects)."""

    name: str
    kind: str
    arrow: pa.DataType | None

    @property
    def wire(self) -> pa.DataType:
        """The Arrow type its text form parses into (numerics travel as text)."""
        return pa.string() if self.kind == "numeric" or self.arrow is None else self.arrow


#: A finished column: Arrow (converted by pyarrow), a pandas array, or a list of Python objects.
#: (pyarrow has no type stubs, so this is Any to mypy.)
_Built: TypeAlias = Any


def describe(
    labels: Sequence[str] | None,
    numeric_scales: Sequence[int | None] | None,
    attributes: Sequence[Any],
    backend: str,
) -> list[ResultColumn]:
    """Describe the result columns from PostgreSQL's types (and the statement's labels)."""
    labels = labels or ()
    if len(labels) != len(attributes):  # a text() query: PostgreSQL names its columns
        labels = tuple(a.name for a in attributes)
    out = []
    for i, (label, attribute) in enumerate(zip(labels, attributes, strict=True)):
        kind = _KIND_BY_OID.get(attribute.type.oid, "object")
        arrow = _ARROW_TYPE.get(kind)
        if kind == "text" and backend == "numpy_nullable":
            arrow = pa.large_string()  # what pandas' string dtype holds: no copy on conversion
        if kind == "numeric" and backend == "pyarrow" and numeric_scales is not None:
            scale = numeric_scales[i]
            if scale is not None:
                arrow = pa.decimal128(38, scale)
        out.append(ResultColumn(label, kind, arrow))
    return out


def _nullable_ints(chunks: list[pa.Array]) -> pd.api.extensions.ExtensionArray:
    """Build an ``Int64`` array straight from Arrow chunks (of any integer width), one by one."""
    values = np.empty(sum(len(c) for c in chunks), dtype=np.int64)
    mask = np.zeros(len(values), dtype=bool)
    start = 0
    chunks.reverse()
    while chunks:
        chunk = chunks.pop()
        end = start + len(chunk)
        if chunk.null_count:
            mask[start:end] = chunk.is_null().to_numpy(zero_copy_only=False)
            chunk = chunk.fill_null(0)
        values[start:end] = chunk.to_numpy()
        start = end
        del chunk
    return pd.arrays.IntegerArray(values, mask)


def _finish(column: ResultColumn, values: pa.ChunkedArray, backend: str) -> _Built:
    """Bring one parsed (or ADBC-read) column to the contract's type, chunk by chunk."""
    chunks = values.chunks
    del values
    if chunks and isinstance(chunks[0].type, pa.ExtensionType):
        chunks = [c.storage for c in chunks]
    if column.kind == "int" and backend == "numpy_nullable":
        return _nullable_ints(chunks)
    if column.kind == "numeric" and column.arrow is None:
        return [None if v is None else Decimal(v) for c in chunks for v in c.to_pylist()]
    if column.arrow is None:
        return [v for c in chunks for v in c.to_pylist()]
    out = []
    chunks.reverse()
    while chunks:  # cast one chunk at a time and let the old one go: peak is one chunk more
        chunk = chunks.pop()
        out.append(chunk if chunk.type == column.arrow else chunk.cast(column.arrow))
        del chunk
    return pa.chunked_array(out, type=column.arrow)


def table_to_frame(
    box: list[pa.Table], columns: Sequence[ResultColumn], backend: str
) -> pd.DataFrame:
    """Convert the table in ``box`` (one column per result column) into the frame.

    The table is taken out of ``box`` and dismantled column by column, so memory is freed as
    the frame is built.
    """
    table = box.pop()
    arrays = []
    for column in columns:
        values = table.column(0)
        table = table.remove_column(0)
        arrays.append(_finish(column, values, backend))
        del values
    del table
    return assemble(arrays, columns, backend)


def records_to_arrays(
    records: Sequence[Any], columns: Sequence[ResultColumn]
) -> list[pa.Array | list[Any]]:
    """Turn asyncpg records into one Arrow array (or list of Python objects) per column."""
    values: list[Sequence[Any]] = (
        list(zip(*records, strict=True)) if records else [() for _ in columns]
    )
    return [
        list(v) if c.arrow is None else pa.array(v, type=c.arrow)
        for c, v in zip(columns, values, strict=True)
    ]


def records_to_frame(
    records: Sequence[Any], columns: Sequence[ResultColumn], backend: str
) -> pd.DataFrame:
    """Build a frame from asyncpg records, column by column, with the contract's dtypes."""
    return assemble(records_to_arrays(records, columns), columns, backend)


def concat(
    parts: Sequence[Sequence[pa.Array | list[Any]]], columns: Sequence[ResultColumn]
) -> list[pa.ChunkedArray | list[Any]]:
    """Join per-batch columns into whole columns (Arrow chunks are not copied)."""
    out: list[pa.ChunkedArray | list[Any]] = []
    for i, column in enumerate(columns):
        if column.arrow is None:
            out.append([v for part in parts for v in part[i]])
        else:
            out.append(pa.chunked_array([part[i] for part in parts], type=column.arrow))
    return out


def assemble(
    arrays: list[_Built],
    columns: Sequence[ResultColumn],
    backend: str,
) -> pd.DataFrame:
    """Convert Arrow arrays (and lists of Python objects) into a frame; empties ``arrays``."""
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


COPYABLE = frozenset(_KIND_BY_OID.values())
