"""Tab completion in ``%sql`` lines and ``%%sql`` cells, from the live catalog.

A matcher registered with IPython's own completer (``IPCompleter.custom_matchers``, matcher API
v2), so it works wherever IPython completes: JupyterLab, the notebook, the terminal, with no
frontend extension. In a ``%sql`` line or a ``%%sql`` cell, Tab offers

- table names after ``FROM``, ``JOIN``, ``UPDATE``, ``INTO``, ``TABLE`` and ``--describe``;
- column names after ``table.`` or ``alias.``, where the alias is declared anywhere in the same
  statement (``SELECT p.<Tab> FROM posts p``);
- elsewhere, SQL keywords (in the case being typed) and the columns of the statement's tables.

The catalog (the tables and views visible on the search path, and their columns) of the
notebook's database (:func:`blogdata.notebook.current_engine`) is read once per engine, in the
background, on a connection of its own: a short READ ONLY transaction on a thread with its own
event loop, never the notebook's connection or transaction (which may be busy, or the kernel's
loop blocked by a running cell). A completion waits for that read at most
:data:`WAIT_SECONDS` (50 ms) and otherwise completes from what it has: the previous catalog,
or keywords only. ``%sql`` calls :func:`invalidate` after any statement that is not a plain
query (DDL among them), which starts a fresh read; the old catalog serves until it arrives.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import weakref
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from IPython.core.completer import (
    CompletionContext,
    SimpleCompletion,
    SimpleMatcherResult,
    context_matcher,
)
from sqlalchemy import NullPool, text
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.db.engine import create_engine
from blogdata.notebook import current_engine

__all__ = ["WAIT_SECONDS", "KEYWORDS", "Catalog", "catalog", "invalidate", "sql_matcher"]

#: The longest a completion waits for the catalog: the kernel is never blocked longer.
WAIT_SECONDS = 0.05
#: How long a failed catalog read is kept before the next completion tries again.
_RETRY_SECONDS = 5.0

KEYWORDS = (  # noqa: SIM905 (a list of 80 one-word strings reads worse)
    "SELECT DISTINCT FROM WHERE GROUP BY HAVING ORDER ASC DESC NULLS FIRST LAST LIMIT OFFSET "
    "FETCH JOIN INNER LEFT RIGHT FULL OUTER CROSS LATERAL NATURAL ON USING AS AND OR NOT IN IS "
    "NULL LIKE ILIKE BETWEEN EXISTS ANY ALL CASE WHEN THEN ELSE END WITH RECURSIVE UNION "
    "INTERSECT EXCEPT INSERT INTO VALUES UPDATE SET DELETE RETURNING CREATE ALTER DROP TABLE VIEW "
    "INDEX TEMPORARY IF CAST COUNT SUM AVG MIN MAX COALESCE FILTER OVER PARTITION WINDOW TRUE "
    "FALSE EXPLAIN ANALYZE TRUNCATE"
).split()

# The catalog: visible tables, views, materialized views, foreign and partitioned tables, with
# their columns in order (a table without columns comes once, with a NULL column).
_CATALOG_SQL = text(
    """
    SELECT c.relname, a.attname
    FROM pg_catalog.pg_class AS c
    LEFT JOIN pg_catalog.pg_attribute AS a
      ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p')
      AND pg_catalog.pg_table_is_visible(c.oid)
      AND c.relnamespace <> 'pg_catalog'::regnamespace
    ORDER BY c.relname, a.attnum
    """
)


@dataclass
class Catalog:
    """The tables of a database and their columns, as the last background read saw them."""

    tables: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class _Entry:
    """One engine's catalog: the latest complete read and the read under way, if any."""

    done: Catalog | None = None
    pending: Future[Catalog] | None = None
    failed_at: float | None = None


_entries: weakref.WeakKeyDictionary[Any, _Entry] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


async def _read(engine: AsyncEngine) -> Catalog:
    """Read the catalog on a connection of its own (a NullPool engine on the same URL)."""
    reader = create_engine(engine.url, poolclass=NullPool)
    try:
        async with reader.connect() as conn:
            await conn.execute(text("BEGIN READ ONLY"))
            # Never left waiting behind someone's lock for ever: the read just fails.
            await conn.execute(text("SET LOCAL statement_timeout = '30s'"))
            rows = (await conn.execute(_CATALOG_SQL)).all()
            await conn.execute(text("ROLLBACK"))
    finally:
        await reader.dispose()
    tables: dict[str, list[str]] = {}
    for table, column in rows:
        columns = tables.setdefault(str(table), [])
        if column is not None:
            columns.append(str(column))
    return Catalog(tables)


def _start(engine: AsyncEngine) -> Future[Catalog]:
    """Read ``engine``'s catalog on a daemon thread with its own event loop."""
    future: Future[Catalog] = Future()

    def work() -> None:
        try:
            result = asyncio.run(_read(engine))
        except BaseException as err:  # reported through the future, never raised in the kernel
            future.set_exception(err)
        else:
            future.set_result(result)

    threading.Thread(target=work, name="blogdata-catalog", daemon=True).start()
    return future


def invalidate(engine: AsyncEngine) -> None:
    """Start reading ``engine``'s catalog afresh (after DDL); the old one serves meanwhile.

    Nothing happens for an engine whose catalog was never asked for.
    """
    with _lock:
        entry = _entries.get(engine.sync_engine)
        if entry is not None:
            entry.pending = _start(engine)
            entry.failed_at = None


def catalog(engine: AsyncEngine, *, wait: float = WAIT_SECONDS) -> Catalog | None:
    """Return ``engine``'s catalog, waiting at most ``wait`` seconds for a read under way.

    The first call starts the read. None while no read has finished (or the last one failed).
    """
    with _lock:
        entry = _entries.setdefault(engine.sync_engine, _Entry())
        failed = entry.failed_at
        retry = failed is None or time.monotonic() - failed > _RETRY_SECONDS
        if entry.pending is None and (entry.done is None or failed is not None) and retry:
            entry.pending = _start(engine)
            entry.failed_at = None
        pending = entry.pending
    if pending is not None:
        try:
            fresh = pending.result(timeout=wait)
        except FutureTimeout:
            return entry.done
        except Exception:
            with _lock:
                if entry.pending is pending:
                    entry.pending, entry.failed_at = None, time.monotonic()
            return entry.done
        with _lock:
            if entry.pending is pending:
                entry.done, entry.pending = fresh, None
    return entry.done


# --- reading the text around the cursor ------------------------------------------------------

_CELL = re.compile(r"\s*%%sql\b")
_LINE = re.compile(r"%sql\b")
# Options the magic reads at the front of the line (see magic._parse_line).
_OPTION = re.compile(
    r"\s*(?:(?:-o|--out|--display|--max-bytes)\s+\S+|--\w[\w-]*(?:=\S*)?|[A-Za-z_]\w*\s+<<)(?=\s|$)"
)
_PARTIAL = re.compile(r"(?:([A-Za-z_][\w$]*)\.)?([A-Za-z_][\w$]*)?$")
_WORD = re.compile(r"[A-Za-z_][\w$]*")
_TABLE_BEFORE = {"from", "join", "update", "into", "table", "--describe"}
# After FROM: name [AS] alias, name [AS] alias ...; an alias is any word that is not a keyword.
_FROM_ITEM = re.compile(
    r"\b(?:from|join|update|into)\s+((?:[A-Za-z_][\w$]*\.)?[A-Za-z_][\w$]*)"
    r"(?:\s+(?:as\s+)?([A-Za-z_][\w$]*))?",
    re.IGNORECASE,
)
_COMMA_ITEM = re.compile(
    r"\s*,\s*((?:[A-Za-z_][\w$]*\.)?[A-Za-z_][\w$]*)(?:\s+(?:as\s+)?([A-Za-z_][\w$]*))?",
    re.IGNORECASE,
)
_NOT_ALIAS = {k.lower() for k in KEYWORDS} | {"set", "where", "on", "using"}


def _sql_around_cursor(context: CompletionContext) -> tuple[str, str] | None:
    """Return the SQL before and after the cursor, or None when the cursor is not in SQL."""
    lines = context.full_text.split("\n")
    line = context.line_with_cursor
    before_line = line[: context.cursor_position]
    if _CELL.match(lines[0]):
        if context.cursor_line == 0:
            head = _CELL.match(line)
            assert head is not None
            start = head.end()
            before, after = line[start : context.cursor_position], line[context.cursor_position :]
            after += "\n" + "\n".join(lines[1:])
        else:
            first = lines[0][_CELL.match(lines[0]).end() :]  # type: ignore[union-attr]
            middle = lines[1 : context.cursor_line]
            before = "\n".join([first, *middle, before_line])
            after = "\n".join([line[context.cursor_position :], *lines[context.cursor_line + 1 :]])
    else:
        magics = list(_LINE.finditer(before_line))
        if not magics:
            return None
        before, after = before_line[magics[-1].end() :], line[context.cursor_position :]
    # The options at the front are not SQL, except --describe's table name.
    pos = 0
    while (option := _OPTION.match(before, pos)) is not None and option.end() < len(before):
        if option.group().strip() == "--describe":
            break
        pos = option.end()
    return before[pos:], after


def _statement_bounds(before: str, after: str) -> str:
    """Return the statement the cursor is in (from the ``;`` before it to the one after)."""
    start = before.rfind(";") + 1
    end = after.find(";")
    return before[start:] + (after if end < 0 else after[:end])


def _aliases(statement: str) -> dict[str, str]:
    """Map each table and alias of ``statement`` (lowercased) to its table name."""
    found: dict[str, str] = {}

    def add(table: str, alias: str | None) -> None:
        name = table.rsplit(".", 1)[-1]
        found.setdefault(name.lower(), name)
        if alias and alias.lower() not in _NOT_ALIAS:
            found[alias.lower()] = name

    for item in _FROM_ITEM.finditer(statement):
        add(item.group(1), item.group(2))
        pos = item.end()
        while (more := _COMMA_ITEM.match(statement, pos)) is not None:
            add(more.group(1), more.group(2))
            pos = more.end()
    return found


def _case(word: str, partial: str) -> str:
    return word.lower() if partial and partial[0].islower() else word


def _complete(before: str, after: str, cat: Catalog | None) -> tuple[str, list[SimpleCompletion]]:
    """Return the fragment being completed and what may replace it."""
    partial_match = _PARTIAL.search(before)
    assert partial_match is not None  # the pattern matches the empty string
    qualifier, partial = partial_match.group(1), partial_match.group(2) or ""
    tables = cat.tables if cat is not None else {}
    lowered = {name.lower(): name for name in tables}
    statement = _statement_bounds(before, after)
    names = _aliases(statement)

    def starting(words: list[str], kind: str) -> list[SimpleCompletion]:
        low = partial.lower()
        return [SimpleCompletion(w, type=kind) for w in words if w.lower().startswith(low)]

    if qualifier is not None:
        table = names.get(qualifier.lower()) or qualifier
        columns = tables.get(table) or tables.get(lowered.get(table.lower(), ""), [])
        return partial, starting(list(columns), "column")
    head = before[: len(before) - len(partial)]
    previous = _WORD_BEFORE.search(head)
    if previous is not None and previous.group(1).lower() in _TABLE_BEFORE:
        return partial, starting(sorted(tables), "table")
    if head.rstrip().endswith(",") and _in_from_list(head):
        return partial, starting(sorted(tables), "table")
    in_statement = [
        c for t in dict.fromkeys(names.values()) for c in tables.get(lowered.get(t.lower(), t), [])
    ]
    keywords = [_case(k, partial) for k in KEYWORDS]
    return partial, starting(list(dict.fromkeys(in_statement)), "column") + starting(
        keywords, "keyword"
    )


_WORD_BEFORE = re.compile(r"(--describe|[A-Za-z_][\w$]*)\s+$")


def _in_from_list(head: str) -> bool:
    """Whether ``head`` (ending in a comma) is inside a FROM list."""
    words = [w.lower() for w in _WORD.findall(head)]
    for word in reversed(words):
        if word == "from":
            return True
        if word in {"select", "where", "group", "order", "having", "on", "by", "set", "values"}:
            return False
    return False


@context_matcher(identifier="blogdata.sql")  # type: ignore[untyped-decorator]
def sql_matcher(context: CompletionContext) -> SimpleMatcherResult:
    """IPython matcher: tables, columns and keywords in ``%sql`` lines and ``%%sql`` cells."""
    around = _sql_around_cursor(context)
    if around is None:
        return SimpleMatcherResult(completions=[], suppress=False)
    before, after = around
    cat = catalog(current_engine())
    fragment, completions = _complete(before, after, cat)
    # In SQL, Python's completions (Jedi, file names ...) are noise: ours only, when we have any.
    return SimpleMatcherResult(
        completions=completions, matched_fragment=fragment, suppress=True, ordered=True
    )


def register(shell: Any) -> None:
    """Add :func:`sql_matcher` to ``shell``'s completer (once)."""
    completer = getattr(shell, "Completer", None)
    if completer is not None and sql_matcher not in completer.custom_matchers:
        completer.custom_matchers.append(sql_matcher)
