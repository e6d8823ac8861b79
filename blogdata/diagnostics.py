"""SQL diagnostics, in one place: the SQL a statement sends, how PostgreSQL runs it, how many run.

- ``render_sql``/``show_sql``: the SQL asyncpg sends for a statement, with its parameters;
- ``echo_sql``: SQLAlchemy's echo for a block, without times (so outputs repeat exactly);
- ``count_statements``: the statements a block runs through an engine, to show N+1 in numbers;
- ``explain``, ``plan_nodes``, ``plan_indexes``, ``plan_text``: PostgreSQL's plan
  (``%sql --explain``
  shows ``plan_text``).

``explain`` returns the plan as a dict (the ``"Plan"`` tree plus timings when analysed);
``plan_indexes`` and ``plan_nodes`` pull out what is stable enough to show or assert on (index
names, node types), never costs or timings, which vary from run to run and server to server.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.postgresql import asyncpg as _asyncpg_dialect
from sqlalchemy.engine import Engine
from sqlalchemy.exc import CompileError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from blogdata.errors import InvalidInputError
from blogdata.translate import translating

__all__ = [
    "PlanText",
    "StatementCounter",
    "count_statements",
    "echo_sql",
    "explain",
    "plan_indexes",
    "plan_nodes",
    "plan_text",
    "render_sql",
    "show_sql",
]


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
    """Return the plan's top node, after checking every node is one EXPLAIN (FORMAT JSON) gives."""
    root = plan.get("Plan", plan) if isinstance(plan, dict) else None
    pending = [root]
    while pending:
        node = pending.pop()
        children = node.get("Plans", []) if isinstance(node, dict) else None
        if not isinstance(node, dict) or not isinstance(node.get("Node Type"), str):
            raise InvalidInputError(
                "expected a plan as explain() returns it (nodes with a 'Node Type'), "
                f"got {type(plan).__name__}; pass the result of `await explain(db, stmt)`"
            )
        if not isinstance(children, list):
            raise InvalidInputError("a plan node's 'Plans' must be a list of plan nodes")
        pending.extend(children)
    assert isinstance(root, dict)
    return root


def plan_nodes(plan: dict[str, Any]) -> list[str]:
    """Return the plan's node types, depth first (e.g. ``["Limit", "Index Scan"]``)."""
    return [str(node["Node Type"]) for node in _walk(_root(plan))]


def plan_indexes(plan: dict[str, Any]) -> list[str]:
    """Return the names of the indexes the plan reads, in plan order, each once."""
    names = [str(node["Index Name"]) for node in _walk(_root(plan)) if "Index Name" in node]
    return list(dict.fromkeys(names))


def _plan_lines(node: dict[str, Any], depth: int = 0) -> list[str]:
    """Render a plan tree as indented lines: node types and relations, never costs or times."""
    label = str(node.get("Node Type", "?"))
    if "Relation Name" in node:
        label += f" on {node['Relation Name']}"
    if "Index Name" in node:
        label += f" using {node['Index Name']}"
    lines = ["  " * depth + label]
    for child in node.get("Plans", []):
        lines += _plan_lines(child, depth + 1)
    return lines


class PlanText(str):
    """A plan as indented text, shown without quotes."""

    def __repr__(self) -> str:
        return str(self)


def plan_text(plan: dict[str, Any]) -> PlanText:
    """Render ``explain``'s plan as indented node lines (types, relations, indexes; no costs)."""
    return PlanText("\n".join(_plan_lines(_root(plan))))


# --- the SQL a statement sends ---------------------------------------------------------------


def _compiled(stmt: ClauseElement, literal: bool) -> Any:
    if not isinstance(stmt, ClauseElement):
        raise InvalidInputError(
            f"expected a SQLAlchemy statement (select(...), text(...)), not {type(stmt).__name__}"
        )
    dialect = _asyncpg_dialect.dialect()  # type: ignore[no-untyped-call]
    if literal:
        return stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True})
    # render_postcompile expands IN lists into one placeholder per value, as asyncpg sees them.
    return stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})


def _tidy(sql: str) -> str:
    return "\n".join(line.rstrip() for line in sql.strip().splitlines())


def render_sql(stmt: ClauseElement, *, literal: bool = False) -> str:
    """Return the SQL asyncpg sends to PostgreSQL for ``stmt``, with its parameters.

    By default the SQL keeps its ``$1, $2 …`` placeholders and each parameter follows on a
    ``-- $n = value`` line; ``literal=True`` writes the values inline instead (for reading only,
    and only for types that can be rendered; otherwise the placeholder form is returned).
    """
    if literal:
        try:
            return _tidy(str(_compiled(stmt, True)))
        except (CompileError, NotImplementedError):
            pass
    compiled = _compiled(stmt, False)
    lines = [_tidy(str(compiled))]
    params = compiled.params
    for position, key in enumerate(compiled.positiontup or (), start=1):
        lines.append(f"-- ${position} = {params[key]!r}")
    return "\n".join(lines)


def show_sql(stmt: ClauseElement, *, literal: bool = False) -> None:
    """Print the SQL PostgreSQL will run for ``stmt``, with its parameters (see ``render_sql``)."""
    print(render_sql(stmt, literal=literal))  # noqa: T201 - printing is the point in a notebook


class _EchoFormatter(logging.Formatter):
    """SQLAlchemy's echo line without the timings, so that outputs repeat exactly."""

    _TIMING = re.compile(r"\[(generated in|cached since) [0-9.e-]+s( ago)?\]")

    def format(self, record: logging.LogRecord) -> str:
        return self._TIMING.sub(lambda m: f"[{m[1]} …]", super().format(record))


@contextmanager
def echo_sql(engine: AsyncEngine | AsyncConnection | AsyncSession) -> Iterator[None]:
    """Print what ``echo=True`` logs for ``engine``'s statements inside the block, without times.

    SQLAlchemy's own echo handler prefixes each line with a timestamp and reports statement
    timings; this one prints the message only, to the current ``sys.stdout``.
    """
    sync = _sync_engine(engine, "echo_sql")
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(_EchoFormatter("%(message)s"))
    others = logger.handlers[:]
    for other in others:  # e.g. the timestamped handler of an earlier echo=True engine
        logger.removeHandler(other)
    logger.addHandler(handler)  # before echo is switched on, so no default handler is added
    previous = sync.echo
    sync.echo = True
    try:
        yield
    finally:
        sync.echo = previous
        logger.removeHandler(handler)
        for other in others:
            logger.addHandler(other)


# --- counting statements ---------------------------------------------------------------------


@dataclass
class StatementCounter:
    """The SQL statements seen while a ``count_statements`` block ran."""

    statements: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        """How many statements ran."""
        return len(self.statements)


def _sync_engine(target: AsyncEngine | AsyncConnection | AsyncSession, caller: str) -> Engine:
    """Return the engine behind ``target``; refuse what is not an engine, connection or session."""
    if isinstance(target, AsyncEngine | AsyncConnection):
        return target.sync_engine
    if isinstance(target, AsyncSession):
        bind = target.sync_session.get_bind()
        return bind if isinstance(bind, Engine) else bind.engine
    raise InvalidInputError(
        f"{caller} needs an AsyncEngine, AsyncConnection or AsyncSession, "
        f"not {type(target).__name__}"
    )


@contextmanager
def count_statements(
    target: AsyncEngine | AsyncConnection | AsyncSession,
) -> Iterator[StatementCounter]:
    """Count the SQL statements run through ``target``'s engine while the block runs.

    Usage::

        with count_statements(db) as counter:
            await db.scalars(select(User))
        counter.count  # 2 here: the users, then their posts (User.posts is selectin)

    Every statement on that engine counts, from any session, including SAVEPOINTs.
    """
    engine = _sync_engine(target, "count_statements")
    counter = StatementCounter()

    def _record(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        counter.statements.append(statement)

    event.listen(engine, "before_cursor_execute", _record)
    try:
        yield counter
    finally:
        event.remove(engine, "before_cursor_execute", _record)
