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

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque()
        self._size = 0
        self._eof = False
        self._abandoned = False
        self._cond = threading.Condition()
        self._loop = loop
        self._room = asyncio.Event()  # set, from the parser's thread, when the writer may go on
        self._writer_waits = False
        self.received = 0

    # pyarrow's side (the parser's thread) ----------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def writable(self) -> bool:
        return False

    def close(self) -> None:
        self.abandon()

    def read(self, n: int = -1) -> bytes:
        """Block until ``n`` bytes are there (or the end, or a full buffer), then return them."""
        with self._cond:
            while not (self._eof or self._writer_waits or 0 <= n <= self._size):
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
            if self._writer_waits and self._size <= self._limit // 2:
                self._wake_writer()
        return b"".join(parts)

    def abandon(self) -> None:
        """Stop accepting bytes (the parser gave up); the writer no longer waits."""
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
            self._size = 0
            if self._writer_waits:
                self._wake_writer()

    def _wake_writer(self) -> None:
        self._writer_waits = False
        self._loop.call_soon_threadsafe(self._room.set)

    # the event loop's side -------------------------------------------------------------------
    async def put(self, chunk: bytes) -> None:
        """Queue ``chunk``; when the buffer is full, wait (without blocking) for the parser."""
        with self._cond:
            self.received += len(chunk)
            if self._abandoned:
                return
            self._chunks.append(chunk)
            self._size += len(chunk)
            self._cond.notify_all()
            if self._size <= self._limit:
                return
            self._room.clear()
            self._writer_waits = True
        await self._room.wait()

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
        # The system allocator: mimalloc keeps ~200 MB more resident after parsing 1M posts.
        return pacsv.read_csv(pipe, **_options(types), memory_pool=pa.system_memory_pool())
    except BaseException:
        pipe.abandon()
        raise


def _empty(types: Sequence[pa.DataType]) -> pa.Table:
    return pa.table({f"c{i}": pa.array([], type=t) for i, t in enumerate(types)})


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


async def copy_to_arrow(
    driver: Any,
    sql: str,
    args: Sequence[Any],
    types: Sequence[pa.DataType],
    *,
    limit: int = _LIMIT,
) -> pa.Table:
    """Run ``COPY (sql) TO STDOUT (FORMAT csv)`` on ``driver`` and parse it into ``types`` columns.

    Arguments are inlined by asyncpg's ``copy_from_query``, which quotes them with the server's
    own ``quote_literal``. At most about ``limit`` bytes wait between the network and the
    parser. Raises asyncpg's error if the query fails, and pyarrow's ``ArrowInvalid`` if a value
    does not parse as its column's type.
    """
    loop = asyncio.get_running_loop()
    pipe = _Pipe(limit, loop)
    parsed: asyncio.Future[pa.Table] = loop.create_future()

    def parse() -> None:
        # A thread of its own, not the shared executor: many loads at once cannot starve it.
        try:
            table = _parse(pipe, types)
        except BaseException as exc:  # handed over to the event loop, raised there
            loop.call_soon_threadsafe(_settle, parsed, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, parsed, table, None)

    threading.Thread(target=parse, name="blogdata-copy-parser", daemon=True).start()
    try:
        await driver.copy_from_query(sql, *args, output=pipe.put, format="csv")
    except BaseException:
        pipe.abandon()
        pipe.finish()
        await asyncio.gather(parsed, return_exceptions=True)
        raise
    pipe.finish()
    if pipe.received == 0:
        await asyncio.gather(parsed, return_exceptions=True)
        return _empty(types)
    return await parsed
