"""Argument checks written once: ids, counts, durations, numbers and text, before any SQL runs.

Each ``check_*`` returns the value (normalised where it says so) or raises ``InvalidInputError``
naming the argument, so a bad value never reaches the driver, where it would surface as a raw
``OverflowError``/``DataError`` or abort the caller's transaction. The ranges are PostgreSQL's:
``integer`` ids, ``bigint`` offsets and counts, ``statement_timeout`` in int4 milliseconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.errors import InvalidInputError

__all__ = [
    "INT4_MAX",
    "INT8_MAX",
    "MAX_DAYS",
    "MAX_TEXT_LENGTH",
    "check_aware_datetime",
    "check_count",
    "check_days_before",
    "check_engine",
    "check_finite_number",
    "check_id",
    "check_int",
    "check_list",
    "check_seconds",
    "check_text",
    "text_problem",
]

#: Largest PostgreSQL ``integer``: every blogdata id is a serial ``integer``.
INT4_MAX = 2**31 - 1
#: Largest PostgreSQL ``bigint``: OFFSET, LIMIT and counts.
INT8_MAX = 2**63 - 1
#: Longest look-back window (in days) the date arithmetic accepts: about 1000 years.
MAX_DAYS = 366_000
#: Default cap on a text argument, in characters (far above any column blogdata has).
MAX_TEXT_LENGTH = 10_000
#: ``statement_timeout`` is an int4 number of milliseconds on the server.
_MAX_SECONDS = INT4_MAX / 1000


def _shown(value: object) -> str:
    """Return a short repr of ``value`` for a message (a 1 MB string is not quoted whole)."""
    text = repr(value)
    return text if len(text) <= 60 else f"{text[:40]}… ({len(text)} characters)"


def check_int(value: object, name: str) -> int:
    """Return ``value`` if it is an int (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInputError(f"{name} must be an integer, not {type(value).__name__}")
    return value


def check_id(value: object, name: str = "id") -> int:
    """Return ``value`` if it can be a row id: an int from 1 to 2**31 - 1 (PostgreSQL integer)."""
    number = check_int(value, name)
    if not 1 <= number <= INT4_MAX:
        raise InvalidInputError(
            f"{name} {_shown(number)} cannot be a row id; ids are integers from 1 to {INT4_MAX}"
        )
    return number


def check_count(value: object, name: str, *, minimum: int = 0, maximum: int = INT8_MAX) -> int:
    """Return ``value`` if it is an int from ``minimum`` to ``maximum`` (default: a bigint >= 0)."""
    number = check_int(value, name)
    if number < minimum:
        wanted = "a positive integer" if minimum == 1 else f"{minimum} or more"
        raise InvalidInputError(f"{name} must be {wanted}, got {_shown(number)}")
    if number > maximum:
        raise InvalidInputError(f"{name} must be at most {maximum}, got {_shown(number)}")
    return number


def check_finite_number(value: object, name: str) -> float | int | Decimal:
    """Return ``value`` if it is a finite int, float or Decimal (not a bool, NaN or infinity)."""
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise InvalidInputError(f"{name} must be a number, not {type(value).__name__}")
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
    if isinstance(value, Decimal) and not value.is_finite():
        raise InvalidInputError(f"{name} must be a finite number, got {value!r}")
    return value


def check_seconds(value: object, name: str = "seconds") -> float:
    """Return ``value`` as float seconds if it is a finite duration that PostgreSQL can enforce.

    That is more than 0 and at most 2**31 - 1 milliseconds (about 24.8 days), the range of
    ``statement_timeout``.
    """
    number = check_finite_number(value, name)
    if not 0 < number <= _MAX_SECONDS:
        raise InvalidInputError(
            f"{name} must be more than 0 and at most {_MAX_SECONDS:g} (about 24.8 days), "
            f"got {_shown(number)}"
        )
    return float(number)


def check_aware_datetime(value: object, name: str) -> datetime:
    """Return ``value`` if it is a datetime with a time zone."""
    if not isinstance(value, datetime):
        raise InvalidInputError(f"{name} must be a datetime, not {type(value).__name__}")
    if value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} must be a time-zone-aware datetime, but it is a naive datetime; "
            "pass an aware one such as datetime.now(UTC)"
        )
    return _in_utc_range(value, name)


def _in_utc_range(value: datetime, name: str) -> datetime:
    try:
        value.astimezone(UTC)  # what the driver sends; fails at the calendar's ends
    except OverflowError:
        raise InvalidInputError(
            f"{name} {value.isoformat()} is outside the years 1 to 9999 once converted to UTC"
        ) from None
    return value


def check_days_before(now: datetime, days: int, *, name: str = "days") -> datetime:
    """Return ``now - days`` days, refusing a window so long that the date leaves the calendar."""
    try:
        return _in_utc_range(now - timedelta(days=days), name)
    except (OverflowError, InvalidInputError):
        raise InvalidInputError(
            f"{name}={days} days before {now.isoformat()} is before the year 1; ask for fewer days"
        ) from None


def text_problem(value: str) -> str | None:
    """Return why PostgreSQL cannot store ``value`` (a NUL, a lone surrogate), or None if it can."""
    if "\x00" in value:
        return "contains a NUL character (\\x00), which PostgreSQL text cannot hold"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (
            f"contains a lone surrogate (U+{ord(value[exc.start]):04X}) at position {exc.start}, "
            "which is not valid UTF-8"
        )
    return None


def check_text(
    value: Any, name: str, *, max_length: int = MAX_TEXT_LENGTH, secret: bool = False
) -> str:
    """Return ``value`` if it is a str of at most ``max_length`` characters PostgreSQL can hold.

    ``secret=True`` (passwords) keeps the message free of anything about the value but its type.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"{name} must be a str, not {type(value).__name__}")
    if len(value) > max_length:
        size = "" if secret else f" ({len(value)} characters)"
        raise InvalidInputError(f"{name}{size} is longer than the {max_length} characters allowed")
    problem = text_problem(value)
    if problem is not None:
        if secret:
            raise InvalidInputError(
                f"{name} contains a NUL character or a lone surrogate; use printable characters"
            )
        raise InvalidInputError(f"{name} {problem}; remove that character")
    return value


def check_list(values: object, name: str) -> list[Any]:
    """Return ``values`` as a list if it is an iterable of values, but not one str or bytes."""
    if isinstance(values, str | bytes) or not isinstance(values, Iterable):
        raise InvalidInputError(f"{name} must be a list, not {type(values).__name__}")
    return list(values)


def check_engine(engine: object, name: str = "engine") -> AsyncEngine | None:
    """Return ``engine`` if it is an ``AsyncEngine`` or None (meaning the default one)."""
    if engine is not None and not isinstance(engine, AsyncEngine):
        raise InvalidInputError(
            f"{name} must be an AsyncEngine (from blogdata.create_engine) or None for the "
            f"default one, not {type(engine).__name__}"
        )
    return engine
