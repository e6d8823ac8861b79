"""The COPY route's plumbing: a CSV COPY stream parsed by pyarrow in a thread while it arrives.

asyncpg hands the bytes of ``COPY (query) TO STDOUT (FORMAT csv)`` to a coroutine sink on the
event loop; ``_Pipe`` passes them to pyarrow's CSV reader running in a worker thread, buffering
at most a few blocks, so receiving and parsing overlap and memory stays bounded.

How PostgreSQL's CSV is read so that nothing changes on the way:

- a NULL is an unquoted empty field and an empty string is always quoted (``""``); a one-column
  NULL is an empty line, so empty lines are rows (``ignore_empty_lines=False``);
- the pipe starts with a header line of its own (``c0,c1,...``): pyarrow drops a UTF-8 byte-order
  mark only at the very start of its input, so a U+FEFF leading the first value is kept;
- the COPY never carries arguments: the caller passes a statement whose values are already
  literals (see ``_statement``), and the query sits on lines of its own, so a trailing ``--``
  comment cannot swallow the closing parenthesis.

COPY wraps only a query (``SELECT``, ``VALUES``, ``TABLE``, ``WITH``, or a data-modifying
statement with ``RETURNING``); PostgreSQL's parser refuses the wrapper around anything else
(``SHOW``, ``EXPLAIN``, ``EXECUTE``, a trailing ``;``) with SQLSTATE 42601 and the position of
the error in the COPY text, before any of it runs. That, and only that, is raised as
:class:`CopyRefused`, so the caller may read the statement another way: a syntax error raised
while the query runs (dynamic SQL in a function, a bad ``to_tsquery`` input) has no such
position, or comes after rows, and stays the query's own error.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from typing import Any

import asyncpg
import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.csv as pacsv  # type: ignore[import-untyped]

from blogdata.loaders._meter import Meter

__all__ = ["CopyRefused", "copy_batches", "copy_to_table", "run_copy"]


class CopyRefused(Exception):  # noqa: N818 - a signal inside this package, never raised to users
    """PostgreSQL's parser refused ``COPY (sql) TO STDOUT`` itself: nothing of ``sql`` ran."""


_BLOCK = 4 << 20  # bytes pyarrow parses per block
_LIMIT = 4 * _BLOCK  # bytes buffered between the network and the parser


class _Pipe:
    """A read-only, non-seekable file whose bytes are written from the event loop."""

    closed = False

    def __init__(self, limit: int, loop: asyncio.AbstractEventLoop, header: bytes) -> None:
        self._limit = limit
        self._chunks: deque[bytes] = deque([header])
        self._size = len(header)
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
            self._eof = True
            self._chunks.clear()
            self._size = 0
            self._cond.notify_all()
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
            self._chunks.append(bytes(chunk))
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


def _options(types: Sequence[pa.DataType], block: int) -> dict[str, Any]:
    names = [f"c{i}" for i in range(len(types))]
    return {
        "read_options": pacsv.ReadOptions(block_size=block),
        "parse_options": pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=False),
        "convert_options": pacsv.ConvertOptions(
            column_types=dict(zip(names, types, strict=True)),
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
        ),
    }


def _header(types: Sequence[pa.DataType]) -> bytes:
    return (",".join(f"c{i}" for i in range(len(types))) + "\n").encode()


def _empty(types: Sequence[pa.DataType]) -> pa.Table:
    return pa.table({f"c{i}": pa.array([], type=t) for i, t in enumerate(types)})


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _copy_sql(sql: str) -> str:
    # asyncpg wraps this as COPY (...) TO STDOUT: the newlines end any trailing comment.
    return f"\n{sql}\n"


async def run_copy(
    driver: Any, sql: str, output: Callable[[bytes], Awaitable[None]], fmt: str,
    received: Callable[[], int],
) -> None:  # fmt: skip
    """Run ``COPY (sql) TO STDOUT (FORMAT fmt)``, handing its bytes to ``output``.

    Raises :class:`CopyRefused` when PostgreSQL's parser refused the wrapper itself (SQLSTATE
    42601 located in the COPY text, before any byte arrived: ``received()`` is 0).
    """
    try:
        await driver.copy_from_query(_copy_sql(sql), output=output, format=fmt)
    except asyncpg.PostgresError as exc:
        # The parser's own refusal: a syntax error located in the COPY text, before any row.
        parsed = exc.sqlstate == "42601" and getattr(exc, "position", None)
        if parsed and not getattr(exc, "internal_query", None) and received() == 0:
            raise CopyRefused(str(exc)) from exc
        raise


async def _run_copy(driver: Any, sql: str, pipe: _Pipe, meter: Meter | None) -> None:
    output = pipe.put
    if meter is not None:
        counted = meter

        async def output(chunk: bytes) -> None:  # past max_bytes, asyncpg cancels the COPY
            counted.add_bytes(len(chunk))
            await pipe.put(chunk)

    try:
        await run_copy(driver, sql, output, "csv", lambda: pipe.received)
    finally:
        pipe.finish()


async def copy_to_table(
    driver: Any, sql: str, types: Sequence[pa.DataType], *, limit: int = _LIMIT,
    meter: Meter | None = None,
) -> pa.Table:  # fmt: skip
    """Run ``COPY (sql) TO STDOUT (FORMAT csv)`` on ``driver``; parse it into ``types`` columns.

    ``sql`` must hold no parameters. At most about ``limit`` bytes wait between the network and
    the parser. Raises asyncpg's error if the query fails.
    """
    loop = asyncio.get_running_loop()
    pipe = _Pipe(limit, loop, _header(types))
    parsed: asyncio.Future[pa.Table] = loop.create_future()

    def parse() -> None:
        # A thread of its own, not the shared executor: many loads at once cannot starve it.
        try:
            table = pacsv.read_csv(
                pipe, **_options(types, _BLOCK), memory_pool=pa.system_memory_pool()
            )
        except BaseException as exc:  # handed over to the event loop, raised there
            pipe.abandon()
            loop.call_soon_threadsafe(_settle, parsed, None, exc)
        else:
            loop.call_soon_threadsafe(_settle, parsed, table, None)

    threading.Thread(target=parse, name="blogdata-copy-parser", daemon=True).start()
    try:
        await _run_copy(driver, sql, pipe, meter)
    except BaseException:
        pipe.abandon()
        await asyncio.shield(asyncio.gather(parsed, return_exceptions=True))
        raise
    if pipe.received == 0:
        await asyncio.gather(parsed, return_exceptions=True)
        return _empty(types)
    return await parsed


_DONE = object()


async def copy_batches(
    driver: Any, sql: str, types: Sequence[pa.DataType], *, limit: int = _LIMIT,
    meter: Meter | None = None,
) -> AsyncGenerator[pa.RecordBatch, None]:  # fmt: skip
    """Yield the COPY's rows as record batches while it streams (pyarrow's incremental reader).

    The COPY runs in a task of its own; batches wait in a queue of a few blocks, so memory stays
    bounded when the consumer is slow. Closing the iterator early cancels the COPY.
    """
    loop = asyncio.get_running_loop()
    pipe = _Pipe(limit, loop, _header(types))
    queue: asyncio.Queue[Any] = asyncio.Queue()
    room = threading.Semaphore(2)  # batches parsed ahead of the consumer
    stop = threading.Event()

    def parse() -> None:
        try:
            reader = pacsv.open_csv(pipe, **_options(types, _BLOCK // 4))
            for batch in reader:
                while not room.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                loop.call_soon_threadsafe(queue.put_nowait, batch)
        except BaseException as exc:
            pipe.abandon()
            if not stop.is_set():
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            return
        loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    copying = asyncio.ensure_future(_run_copy(driver, sql, pipe, meter))
    parser = threading.Thread(target=parse, name="blogdata-copy-stream", daemon=True)
    parser.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                if copying.done() and copying.exception() is not None:
                    raise copying.exception()  # type: ignore[misc]
                if pipe.received == 0 and not copying.done():
                    await copying
                if pipe.received == 0:
                    return  # no rows: pyarrow found only our header
                raise item
            room.release()
            yield item
        await copying
    finally:
        stop.set()
        pipe.abandon()
        if not copying.done():
            copying.cancel()
        await asyncio.shield(asyncio.gather(copying, return_exceptions=True))
