"""Private plumbing of the loaders: a COPY stream parsed by pyarrow in a thread while it arrives.

asyncpg hands the bytes of ``COPY (query) TO STDOUT (FORMAT csv)`` to a coroutine
sink on the event loop; ``_Pipe`` passes them to pyarrow's CSV reader running in a worker thread,
buffering at most a few blocks, so receiving and parsing overlap and memory stays bounded.
In PostgreSQL's CSV a NULL is an unquoted empty field and an empty string is always written
quoted (``""``), which is how the two stay apart here.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Sequence
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

__all__ = ["copy_to_arrow"]

_BLOCK = 4 << 20  # bytes pyarrow parses per block
_LIMIT = 4 * _BLOCK  # bytes buffered between the network and the parser


class _Pipe:
    """A read-only, non-seekable file whose bytes are written from the event loop."""

    closed = False

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._abandoned = False
        self._cond = threading.Condition()
        self.received = 0

    # pyarrow's side -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.abandon()

    def read(self, n: int = -1) -> bytes:
        """Block until ``n`` bytes (or the end) are there, then return them."""
        with self._cond:
            while not self._eof and (n < 0 or self._size < n):
                self._cond.wait()
            parts = []
            got = 0
            while self._chunks and (n < 0 or got < n):
                chunk = self._chunks.popleft()
                if n >= 0 and got + len(chunk) > n:
                    cut = n - got
                    self._chunks.appendleft(chunk[cut:])
                    chunk = chunk[:cut]
                parts.append(chunk)
                got += len(chunk)
            self._size -= got
            self._cond.notify_all()
        return b"".join(parts)

    def abandon(self) -> None:
        """Stop accepting bytes (the parser gave up); writers no longer wait."""
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()

    # the event loop's side ------------------------------------------------------------------
    def put(self, chunk: bytes) -> bool:
        """Queue ``chunk``; return True when the writer should wait for the parser."""
        with self._cond:
            self.received += len(chunk)
            if self._abandoned:
                return False
            self._chunks.append(chunk)
            self._size += len(chunk)
            self._cond.notify_all()
            return self._size > self._limit

    def wait_for_room(self) -> None:
        """Block (in a worker thread) until the parser has drained half the buffer."""
        with self._cond:
            while self._size > self._limit // 2 and not self._abandoned:
                self._cond.wait()

    def finish(self) -> None:
        """Mark the end of the stream."""
        with self._cond:
            self._eof = True
            self._cond.notify_all()


def _options(types: Sequence[pa.DataType]) -> dict[str, Any]:
    names = [f"c{i}" for i in range(len(types))]
    return {
        "read_options": pacsv.ReadOptions(column_names=names, block_size=_BLOCK),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict(zip(names, types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    }


def _parse(pipe: _Pipe, types: Sequence[pa.DataType]) -> pa.Table:
    try:
        return pacsv.read_csv(pipe, **_options(types))
    except BaseException:
        pipe.abandon()
        raise


def _empty(types: Sequence[pa.DataType]) -> pa.Table:
    return pa.table({f"c{i}": pa.array([], type=t) for i, t in enumerate(types)})


async def copy_to_arrow(
    driver: Any, sql: str, args: Sequence[Any], types: Sequence[pa.DataType]
) -> pa.Table:
    """Run ``COPY (sql) TO STDOUT (FORMAT csv)`` on ``driver`` and parse it into ``types`` columns.

    Arguments are inlined by asyncpg's ``copy_from_query``, which quotes them with the server's
    own ``quote_literal``. Raises asyncpg's error if the query fails, and pyarrow's
    ``ArrowInvalid`` if a value does not parse as its column's type.
    """
    pipe = _Pipe(_LIMIT)
    loop = asyncio.get_running_loop()
    parsing = loop.run_in_executor(None, _parse, pipe, types)

    async def sink(chunk: bytes) -> None:
        if pipe.put(chunk):
            await loop.run_in_executor(None, pipe.wait_for_room)

    try:
        await driver.copy_from_query(sql, *args, output=sink, format="csv")
    except BaseException:
        pipe.abandon()
        pipe.finish()
        await asyncio.gather(parsing, return_exceptions=True)
        raise
    pipe.finish()
    if pipe.received == 0:
        await asyncio.gather(parsing, return_exceptions=True)
        return _empty(types)
    table: pa.Table = await parsing
    return table
