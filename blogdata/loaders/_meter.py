"""What a load has received so far: the ``max_bytes`` budget and the progress bar.

Every route reports to one :class:`Meter` as the result arrives: COPY routes the bytes of each
chunk the driver hands over (before it is decoded) and the rows decoded so far; the rows route
the approximate size of each batch of records. Past ``max_bytes`` the meter raises
:class:`~blogdata.errors.ResultTooLargeError` from inside the route, which stops the server's
work as an interrupt does (the COPY is cancelled, the cursor closed, the load's savepoint rolled
back) and leaves the session usable.

The bar (:mod:`blogdata._progress`) appears once the load has run ``DELAY`` seconds, and only in
a notebook or on a terminal; it counts rows and bytes received and their rate. A total (the
planner's row estimate) is shown only when the caller asked for it with ``progress=True``,
because it costs an ``EXPLAIN``, one more round trip, which a small load should not pay.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import Any

from blogdata import _progress
from blogdata.errors import InvalidInputError, ResultTooLargeError

__all__ = ["Meter", "approx_bytes", "check_max_bytes", "size_text"]

_TICK = 0.25  # seconds between refreshes of a bar whose load receives nothing meanwhile


def check_max_bytes(max_bytes: object) -> int | None:
    """Return ``max_bytes`` (None: no limit) or raise InvalidInputError naming what is wrong."""
    if max_bytes is None:
        return None
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 1:
        raise InvalidInputError(
            f"max_bytes must be a positive number of bytes or None (no limit), not {max_bytes!r}"
        )
    return max_bytes


def size_text(n: float) -> str:
    """Write a byte count for people: ``12.3 MB`` (powers of 1000, as ``max_bytes`` reads)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")  # pragma: no cover


def approx_bytes(records: Sequence[Any]) -> int:
    """Approximate the wire size of driver records: text and bytes by length, others 8 bytes."""
    total = 0
    for record in records:
        total += 2
        for value in record:
            total += 4 + (len(value) if isinstance(value, str | bytes) else 8)
    return total


class Meter:
    """Count what a load receives; enforce ``max_bytes``; show a bar if the load is long."""

    def __init__(self, what: str, *, max_bytes: int | None, progress: bool | None,
                 streaming: bool = False) -> None:  # fmt: skip
        self.what = what
        self.max_bytes = max_bytes
        self.wanted = progress is not False
        self.total: int | None = None  # the planner's row estimate (progress=True)
        self.received = 0
        self.rows = 0
        self.streaming = streaming
        self._bar: Any = None
        self._start = time.monotonic()
        self._last = 0.0
        self._ticker: asyncio.Task[None] | None = None

    # --- what the routes report ---------------------------------------------------------------
    def add_bytes(self, n: int) -> None:
        """Count ``n`` more bytes; raise ResultTooLargeError once past ``max_bytes``."""
        self.received += n
        if self.max_bytes is not None and self.received > self.max_bytes:
            raise self._too_large()
        self._maybe_refresh()

    def set_rows(self, rows: int) -> None:
        """Record that ``rows`` rows have been decoded so far."""
        self.rows = rows
        self._maybe_refresh()

    def add_records(self, records: Sequence[Any]) -> None:
        """Count a batch of the driver's records (the rows route): rows, and with a budget bytes.

        Their size is approximated only under a budget: it costs a look at every value.
        """
        self.rows += len(records)
        self.add_bytes(approx_bytes(records) if self.max_bytes is not None else 0)

    def _too_large(self) -> ResultTooLargeError:
        assert self.max_bytes is not None
        stream = (
            "filter or aggregate in SQL"
            if self.streaming
            else "read it in chunks with stream_frames"
        )
        return ResultTooLargeError(
            f"the result of {self.what} reached {size_text(self.received)} "
            f"({self.received:,} bytes received{f', {self.rows:,} rows' if self.rows else ''}), "
            f"past max_bytes={self.max_bytes:,} ({size_text(self.max_bytes)}): PostgreSQL's work "
            f"was stopped and nothing was kept; the session is still usable. Add a LIMIT, "
            f"{stream}, or allow more with a larger max_bytes",
            received=self.received,
            max_bytes=self.max_bytes,
        )

    # --- the bar ------------------------------------------------------------------------------
    async def __aenter__(self) -> Meter:
        """Start the ticker that shows the bar once the load has run ``DELAY`` seconds."""
        if self.wanted and _progress.where_shown() is not None:
            self._ticker = asyncio.ensure_future(self._tick())
        return self

    async def __aexit__(self, *exc: object) -> None:
        """Stop the ticker and close the bar (its last frame shows the totals)."""
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the ticker and close the bar (its last frame shows the totals)."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        if self._bar is not None:
            self._refresh()
            self._bar.close()
            self._bar = None

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(_TICK)
            self._maybe_refresh(force=True)

    def _maybe_refresh(self, *, force: bool = False) -> None:
        if self._ticker is None:
            return
        now = time.monotonic()
        if now - self._start < _progress.DELAY or (not force and now - self._last < _TICK):
            return
        self._last = now
        if self._bar is None:
            self._bar = _progress.make_bar(
                total=self.total, unit="rows", desc=self.what, delay=0, leave=True,
                dynamic_ncols=True,
            )  # fmt: skip
            # The elapsed time and the rate count from the load's start, not the bar's.
            self._bar.start_t = self._bar._time() - (now - self._start)
        self._refresh()

    def _refresh(self) -> None:
        bar = self._bar
        bar.n = self.rows
        if self.received:  # the rows route counts bytes only under a budget
            bar.set_postfix_str(f"{size_text(self.received)} received", refresh=False)
        bar.refresh()
