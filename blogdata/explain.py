"""Ask PostgreSQL how it runs a statement: ``EXPLAIN (FORMAT JSON)`` and the indexes a plan uses.

``explain`` returns the plan as a dict (the ``"Plan"`` tree plus timings when analysed);
``plan_indexes`` and ``plan_nodes`` pull out what is stable enough to show or assert on (index
names, node types), never costs or timings, which vary from run to run and server to server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from blogdata.errors import InvalidInputError, translating

__all__ = ["explain", "plan_indexes", "plan_nodes"]


class _Explain(Executable, ClauseElement):
    """``EXPLAIN (FORMAT JSON[, ANALYZE]) <statement>``, with the statement's parameters."""

    inherit_cache = False  # tiny and rare: not worth a cache key

    def __init__(self, statement: ClauseElement, analyze: bool) -> None:
        self.statement = statement
        self.analyze = analyze


@compiles(_Explain, "postgresql")
def _compile_explain(element: _Explain, compiler: SQLCompiler, **kw: Any) -> str:
    options = "FORMAT JSON, ANALYZE, BUFFERS" if element.analyze else "FORMAT JSON"
    sql = compiler.process(element.statement, **kw)
    # An explained INSERT/UPDATE/DELETE is a query returning a plan, not DML (SQLAlchemy recipe).
    compiler.isinsert = compiler.isupdate = compiler.isdelete = False
    return f"EXPLAIN ({options}) {sql}"


async def explain(
    db: AsyncSession | AsyncConnection, stmt: ClauseElement, *, analyze: bool = False
) -> dict[str, Any]:
    """Return PostgreSQL's plan for ``stmt`` as a dict (``EXPLAIN (FORMAT JSON)``).

    With ``analyze=True`` the statement really runs (so the plan carries actual rows and
    times) inside a savepoint that is rolled back, so an analysed UPDATE or DELETE changes
    nothing.
    """
    if not isinstance(stmt, ClauseElement) or not isinstance(stmt, Executable):
        raise InvalidInputError(f"explain needs a SQLAlchemy statement, not {type(stmt).__name__}")
    query = _Explain(stmt, analyze)
    async with translating("the statement"):
        if analyze:
            nested = await db.begin_nested()
            try:
                raw = (await db.execute(query)).scalar_one()
            finally:
                await nested.rollback()
        else:
            raw = (await db.execute(query)).scalar_one()
    plans = json.loads(raw) if isinstance(raw, str) else raw
    plan: dict[str, Any] = plans[0]
    return plan


def _walk(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", ()):
        yield from _walk(child)


def _root(plan: dict[str, Any]) -> dict[str, Any]:
    root: dict[str, Any] = plan.get("Plan", plan)
    return root


def plan_nodes(plan: dict[str, Any]) -> list[str]:
    """Return the plan's node types, depth first (e.g. ``["Limit", "Index Scan"]``)."""
    return [str(node["Node Type"]) for node in _walk(_root(plan))]


def plan_indexes(plan: dict[str, Any]) -> list[str]:
    """Return the names of the indexes the plan reads, in plan order, each once."""
    names = [str(node["Index Name"]) for node in _walk(_root(plan)) if "Index Name" in node]
    return list(dict.fromkeys(names))
