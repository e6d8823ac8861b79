"""The route planner: what the statement and the session allow, and which route reads it.

:func:`plan` checks the arguments, compiles the statement (bound, and literal where that is
provably the same), prepares it on the session's connection (nothing of it runs yet) and
describes its columns; :func:`choose` picks the route; :func:`refused` decides what happens when
PostgreSQL's parser refuses the COPY wrapper (the one case where another route may read it).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from blogdata.errors import InvalidInputError, RouteUnavailableError
from blogdata.loaders._binary import unsupported
from blogdata.loaders._copy import CopyRefused
from blogdata.loaders._dtypes import (
    COPY_KINDS,
    FLOAT_KINDS,
    TEMPORAL_KINDS,
    ResultColumn,
    describe,
)
from blogdata.loaders._guard import Guard, session_driver
from blogdata.loaders._statement import CompiledQuery, Statement, compile_statement

__all__ = ["ROUTES", "DtypeBackend", "Plan", "Route", "choose", "open_guard", "plan", "refused"]

DtypeBackend = Literal["numpy_nullable", "pyarrow"]
#: ``"auto"`` picks binary COPY where it gives the driver's answer, else CSV COPY where that
#: does, else rows; the others force one.
Route = Literal["auto", "binary", "copy", "rows"]
ROUTES = ("auto", "binary", "copy", "rows")
_BACKENDS = ("numpy_nullable", "pyarrow")

logger = logging.getLogger("blogdata.loaders")


def _check(dtype_backend: str, route: str) -> None:
    if dtype_backend not in _BACKENDS:
        raise InvalidInputError(
            f"dtype_backend must be 'numpy_nullable' or 'pyarrow', not {dtype_backend!r}"
        )
    if route not in ROUTES:
        raise InvalidInputError(
            f"route must be one of {', '.join(repr(r) for r in ROUTES)}, not {route!r}"
        )


@dataclass(frozen=True)
class _State:
    """The session settings that decide whether COPY's text is exactly the driver's values."""

    exact_literals: bool
    utf8: bool
    iso_dates: bool
    exact_floats: bool


#: The one setting the CSV route needs that PostgreSQL does not report to the driver.
_FLOATS_SQL = "SELECT current_setting('extra_float_digits')::int >= 1"


@dataclass
class Plan:
    """A described statement, and why each COPY cannot give the driver's answer (None: it can)."""

    query: CompiledQuery
    prepared: Any
    columns: list[ResultColumn]
    oids: list[int]
    literal_sql: str | None
    copy_problem: str | None
    binary_problem: str | None
    #: The prepared statement is PostgreSQL's unnamed one (nothing to close afterwards, one
    #: round trip less per load); another Parse or a simple query replaces it: then ``stale``.
    stale: bool = False

    async def statement(self, driver: Any) -> Any:
        """Return the prepared statement, prepared again if something replaced it."""
        if self.stale:
            self.prepared = await driver.prepare(self.query.sql, name="")
            self.stale = False
        return self.prepared

    def problem(self, route: str) -> str | None:
        """Why ``route`` cannot give the driver's answer here (None: it can)."""
        return {"binary": self.binary_problem, "copy": self.copy_problem}.get(route)


def _literal_problem(
    query: CompiledQuery, columns: Sequence[ResultColumn], literal: str | None, state: _State
) -> str | None:
    """Why a COPY (which takes no parameters) could not carry this statement exactly; or None.

    Both COPY routes need the statement with its values as literals, checked to describe the
    same columns, and text in UTF-8 (asyncpg sends SQL as UTF-8 but reads values in the
    client_encoding, so COPY's bytes would differ).
    """
    if not columns:
        return "the result has no columns"
    if query.literal_sql is None:
        return "a bound value has no literal form that is provably the driver's"
    if not state.exact_literals:
        return "standard_conforming_strings is off"
    if not state.utf8:
        return "client_encoding is not UTF8"
    if literal is None:
        return "the statement with literal values does not describe the same columns"
    return None


def _copy_problem(
    query: CompiledQuery, columns: Sequence[ResultColumn], literal: str | None, state: _State
) -> str | None:
    """Why COPY's CSV would not be exactly the driver's answer here; None if it would be."""
    problem = _literal_problem(query, columns, literal, state)
    if problem:
        return problem
    for column in columns:
        if column.kind not in COPY_KINDS:
            return f"column {column.name!r} has a type COPY's text does not map exactly"
    kinds = {c.kind for c in columns}
    if not state.iso_dates and kinds & TEMPORAL_KINDS:
        return "DateStyle is not ISO, and the result has dates or times"
    if not state.exact_floats and kinds & FLOAT_KINDS:
        return "extra_float_digits < 1 would round the floats"
    return None


def _binary_problem(
    query: CompiledQuery, columns: Sequence[ResultColumn], oids: Sequence[int],
    literal: str | None, state: _State,
) -> str | None:  # fmt: skip
    """Why binary COPY would not be exactly the driver's answer here; None if it would be.

    The binary forms do not depend on DateStyle or extra_float_digits.
    """
    problem = _literal_problem(query, columns, literal, state)
    if problem:
        return problem
    missing = unsupported(oids)
    if missing:
        return f"column {columns[missing[0]].name!r} has a type the binary decoder does not read"
    return None


async def _checked_literal(guard: Guard, literal: str, attributes: Sequence[Any]) -> str | None:
    """Return ``literal`` if it prepares as one statement with the same column types, else None.

    Runs inside the load's savepoint: a refusal is undone (``guard.rewind``), nothing else.
    """
    try:
        twin = await guard.driver.prepare(literal, name="")
    except asyncpg.PostgresError:
        await guard.rewind()
        return None
    same = [a.type.oid for a in twin.get_attributes()] == [a.type.oid for a in attributes]
    return literal if same else None


async def open_guard(db: AsyncSession | AsyncConnection, backend: str, route: str) -> Guard:
    """Check the arguments and return the guard of the session's own connection."""
    _check(backend, route)
    conn, driver = await session_driver(db)
    return Guard(conn, driver)


async def plan(guard: Guard, stmt: Statement, backend: str, route: str) -> Plan:
    """Compile, prepare and describe ``stmt`` (nothing of it runs yet), inside the savepoint.

    The session's state comes from the settings PostgreSQL reports to the driver (ParameterStatus:
    no query); only a forced CSV COPY asks the server for ``extra_float_digits``. One prepare
    gives the column types; the literal twin is prepared only when the statement has bound
    values and a COPY route may read it.
    """
    driver = guard.driver
    query = compile_statement(stmt, guard.conn.dialect)
    settings = driver.get_settings()
    exact_literals = getattr(settings, "standard_conforming_strings", "") == "on"
    # The server reports 'UTF8'; PgBouncer echoes the client's startup value as asyncpg sent it,
    # quotes included ("'utf-8'").
    encoding = str(getattr(settings, "client_encoding", "")).strip("'\"").upper().replace("-", "")
    utf8 = encoding.replace("_", "") in ("UTF8", "UNICODE")
    iso = str(getattr(settings, "DateStyle", "")).startswith("ISO")
    floats = False
    if route == "copy":
        floats = bool(await driver.fetchval(_FLOATS_SQL))
    state = _State(exact_literals, utf8, iso, floats)
    prepared = await driver.prepare(query.sql, name="")
    attributes = prepared.get_attributes()
    dialect: Any = guard.conn.dialect
    loads = dialect._json_deserializer or json.loads
    columns = describe(query.labels, query.numeric_scales, attributes, backend, loads)
    oids = [a.type.oid for a in attributes]
    literal = query.literal_sql if state.exact_literals and state.utf8 else None
    copying = route != "rows" and bool(columns) and not unsupported(oids)
    twin = literal is not None and literal != query.sql
    if literal is not None and twin:
        literal = await _checked_literal(guard, literal, attributes) if copying else None
    problem = _copy_problem(query, columns, literal, state)
    binary = _binary_problem(query, columns, oids, literal, state)
    return Plan(query, prepared, columns, oids, literal, problem, binary, stale=twin and copying)


def choose(requested: str, plan: Plan) -> str:
    """Return the route that reads ``plan``, or refuse a forced route that cannot."""
    if requested == "auto":
        # CSV COPY needs all binary COPY needs and more (DateStyle, extra_float_digits): where
        # binary cannot serve, neither can CSV, so auto is binary or rows.
        return "binary" if plan.binary_problem is None else "rows"
    problem = plan.problem(requested)
    if problem is not None:
        raise RouteUnavailableError(
            f"route {requested!r} cannot give the driver's answer here: {problem}; use route='auto'"
        )
    return requested


def refused(route: str, refusal: CopyRefused) -> str:
    """Return the route after PostgreSQL refused the COPY wrapper (nothing ran), or refuse."""
    if route in ("binary", "copy"):
        raise RouteUnavailableError(
            f"route {route!r} cannot run this statement: PostgreSQL does not accept it inside "
            f"COPY ({refusal}); nothing ran; use route='auto' (it reads such statements "
            "through the driver's rows)"
        ) from None
    logger.debug("COPY cannot wrap the statement (%s): route rows", refusal)
    return "rows"
