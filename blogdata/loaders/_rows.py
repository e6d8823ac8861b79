"""The rows route: the driver's own records from the prepared statement, column by column.

Always available: whatever PostgreSQL can return and asyncpg can decode, this route reads, with
the statement's values bound as parameters. Streaming reads through a server-side cursor (which
lives in a transaction) in batches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]

from blogdata.errors import QueryError
from blogdata.loaders._dtypes import ResultColumn, assemble, finish, records_to_columns

__all__ = ["frame_from_records", "stream_records"]

_BATCH = 10_000


def frame_from_records(
    records: Sequence[Any], columns: Sequence[ResultColumn], backend: str
) -> pd.DataFrame:
    """Build the contract's frame from asyncpg records."""
    values = records_to_columns(records, columns)
    try:
        arrays = [finish(c, v, backend) for c, v in zip(columns, values, strict=True)]
    except (pa.ArrowInvalid, OverflowError) as exc:
        raise QueryError(f"a value does not fit its column's dtype: {exc}") from None
    frame = assemble(arrays, columns, backend)
    if not columns:
        frame = pd.DataFrame(index=pd.RangeIndex(len(records)))
    return frame


async def stream_records(
    prepared: Any, args: Sequence[Any], chunk_size: int
) -> AsyncIterator[list[Any]]:
    """Yield lists of ``chunk_size`` records (the last may be short) from a server-side cursor."""
    cursor = await prepared.cursor(*args)
    done = False
    while not done:
        records: list[Any] = []
        while len(records) < chunk_size:
            want = min(_BATCH, chunk_size - len(records))
            got = await cursor.fetch(want)
            records.extend(got)
            if len(got) < want:
                done = True
                break
        if records:
            yield records
