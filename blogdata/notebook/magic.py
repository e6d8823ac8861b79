"""``%sql`` and ``%%sql``: SQL cells that return DataFrames (``%load_ext blogdata``).

A line or a cell of SQL runs through :func:`blogdata.loaders.load_frame` on the notebook's
database: the engine given to :func:`use_engine`, else the one the latest
``blogdata.notebook.open_database`` or ``tutorial_database`` opened, else the configured one
(``BLOGDATA_DATABASE_URL``, else the embedded server)::

    df = %sql SELECT title, views FROM posts WHERE views > :least
    %sql --describe posts

    %%sql -o top
    SELECT title FROM posts ORDER BY views DESC NULLS LAST

The SQL reaches the server as written:

- IPython does not expand ``{name}`` or ``$name`` in the line (``@no_var_expand``), and the line
  is not re-split: options are read from its front only (``-o NAME``/``--out NAME``,
  ``--display N``, ``--explain``, ``--describe [TABLE]``, jupysql's ``NAME <<``); the rest of the
  line (then the cell) is the SQL, character for character.
- ``:name`` binds the notebook variable ``name`` as a parameter (never written into the SQL),
  wherever PostgreSQL would read it as a token: not inside a string (``'...'``, ``E'...'``,
  ``$tag$...$tag$``), a quoted identifier, a ``--`` or ``/* */`` comment, not in a ``::type``
  cast, and not right after a letter, digit or ``_`` (so ``a[i:j]`` is an array slice). The
  server receives the text with each bind replaced by its placeholder, nothing else changed.
- ``%sql stmt`` runs a SQLAlchemy statement held in the variable ``stmt``.

Each run is one unit of work (:func:`blogdata.db.engine.session_scope`): committed when it
succeeds (so ``%sql UPDATE ...`` sticks) and rolled back when it fails; on a read-only notebook
database (``open_database(read=True)``) every run is READ ONLY and a write raises one clear error.
A statement PostgreSQL refuses to run in a transaction block (``VACUUM``, ``CREATE DATABASE``,
``CREATE INDEX CONCURRENTLY`` ...: SQLSTATE 25001, raised before it does anything) runs once more
on an autocommit connection, which is then closed. After every run the pooled connection is put
back as a fresh one would be (role, session authorization, settings, cursors, advisory locks,
``LISTEN``, temporary objects, sequences' ``currval``, prepared statements made with
``PREPARE``), so nothing a cell does leaks into later cells or other users of the pool.

The frame is whole, but its display shows the first ``--display N`` rows (10 by default) and
says how many there were. A failure is one line (the server's message and SQLSTATE); Jupyter's
interrupt cancels the query on the server.

``--arrow`` and ``--polars`` return a ``pyarrow.Table`` or a polars DataFrame
(``polars.from_arrow(..., rechunk=False)``: no copy) from the same route
(``blogdata.loaders.load_arrow``), with the same capped display; ``--pandas`` is the default,
which ``%config SqlMagics.output = "arrow"`` changes. polars is optional (``pip install polars``).

A result may not take the kernel down: a run stops once its result has received more than
``--max-bytes SIZE`` (``500MB``, ``2GB``; ``0`` for no limit), else ``SqlMagics.max_bytes``,
else ``SqlMagics.memory_share`` (25%) of the memory available when the run starts
(``MemAvailable``), with one error naming the size reached and the ways out; the server's work
is stopped, the run rolled back, and the next cell works. A run longer than a second shows a
progress bar of the rows and bytes received. Tab completes tables, columns and keywords in the SQL
(:mod:`blogdata.notebook.completion`), and ``%sqlplot histogram|boxplot|bar table.column``
draws :mod:`blogdata.charts`' charts from numbers PostgreSQL computed.
"""

from __future__ import annotations

import importlib
import keyword
import os
import re
import shlex
import weakref
from dataclasses import dataclass
from typing import Any

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
from IPython.core.error import UsageError
from IPython.core.magic import (
    Magics,
    line_cell_magic,
    line_magic,
    magics_class,
    needs_local_scope,
    no_var_expand,
)
from sqlalchemy import NullPool, bindparam, event
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import ConnectionPoolEntry, PoolResetState
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import BindParameter, ClauseElement, TextClause
from sqlalchemy.sql.selectable import SelectBase
from traitlets import Enum, Float, Integer

from blogdata import charts
from blogdata.db.sessions import session_scope
from blogdata.describe import describe
from blogdata.diagnostics import explain, plan_text
from blogdata.errors import BlogdataError, QueryError, ResultTooLargeError
from blogdata.loaders import load_arrow, load_frame
from blogdata.notebook import completion, current_engine, run
from blogdata.translate import invalidate_connection

__all__ = ["DISPLAY_ROWS", "MEMORY_SHARE", "OUTPUTS", "SqlFrame", "SqlMagics", "available_memory"]

#: What ``%sql`` may return: ``--pandas`` (the default), ``--arrow``, ``--polars``.
OUTPUTS = ("pandas", "arrow", "polars")


#: The share of the memory available when a run starts that its result may take by default.
MEMORY_SHARE = 0.25

#: Rows a result shows unless ``--display N`` says otherwise.
DISPLAY_ROWS = 10


class SqlFrame(pd.DataFrame):
    """A DataFrame whose display is capped at a few rows, with a line saying how many."""

    _metadata = ["display_rows"]
    display_rows: int = DISPLAY_ROWS

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame  # anything derived from it is a plain frame again

    def _shown(self) -> tuple[pd.DataFrame, str]:
        total = len(self)
        head = pd.DataFrame(self.head(self.display_rows))
        if total <= self.display_rows:
            return head, ""
        return head, f"{self.display_rows} of {total:,} rows shown (the frame holds all of them)"

    def _repr_html_(self) -> str | None:
        head, note = self._shown()
        html = head.to_html()
        return html + (f"<p><em>{note}</em></p>" if note else "")

    def __repr__(self) -> str:
        head, note = self._shown()
        return repr(head) + (f"\n{note}" if note else "")


def _read_only(engine: AsyncEngine) -> bool:
    """Whether every transaction on ``engine`` is READ ONLY (``open_database(read=True)``)."""
    return bool(engine.get_execution_options().get("postgresql_readonly", False))


# --- the line: options at its front, then the SQL as written --------------------------------

_OPTIONS = (
    "-o/--out NAME, --display N, --explain, --describe [TABLE], --pandas, --arrow, --polars, "
    "--max-bytes SIZE, NAME <<"
)
_TOKEN = re.compile(r"\s*(\S+)")


@dataclass
class _Options:
    """What the front of the line asked for."""

    out: str | None = None
    display: int = DISPLAY_ROWS
    explain: bool = False
    describe: str | None = None  # "" lists the tables
    output: str | None = None  # None: SqlMagics.output
    max_bytes: int | None = None  # None: SqlMagics.max_bytes; 0: no limit


def _display_rows(value: str) -> int:
    try:
        rows = int(value)
    except ValueError:
        rows = -1
    if rows < 0:
        raise UsageError(f"--display takes a number of rows, 0 or more, not {value!r}")
    return rows


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}


def _size(value: str) -> int:
    """Read ``--max-bytes``: bytes, or with a unit (``500MB``, ``2G``); 0 or none: no limit."""
    match = _SIZE.fullmatch(value.strip())
    if value.strip().lower() == "none":
        return 0
    if match is None:
        raise UsageError(
            f"--max-bytes takes a size such as 500000000, 500MB or 2GB (0 or none: no limit), "
            f"not {value!r}"
        )
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def available_memory() -> int | None:
    """Return the memory available to new work now (MemAvailable), in bytes; None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:  # other Unixes: the free pages
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def _parse_line(line: str) -> tuple[_Options, str]:
    """Read the options at the front of ``line``; return them and the rest of it, untouched."""
    options = _Options()
    pos = 0
    while (match := _TOKEN.match(line, pos)) is not None:
        word, end = match.group(1), match.end()
        after = _TOKEN.match(line, end)
        following = after.group(1) if after else None
        if word in ("-o", "--out", "--display", "--max-bytes"):
            if following is None:
                raise UsageError(f"{word} needs a value ({_OPTIONS})")
            if word == "--display":
                options.display = _display_rows(following)
            elif word == "--max-bytes":
                options.max_bytes = _size(following)
            else:
                options.out = following
            assert after is not None
            end = after.end()
        elif word.startswith(("--out=", "--display=", "--max-bytes=")):
            name, _, value = word.partition("=")
            if name == "--out":
                options.out = value
            elif name == "--max-bytes":
                options.max_bytes = _size(value)
            else:
                options.display = _display_rows(value)
        elif word == "--explain":
            options.explain = True
        elif word in ("--pandas", "--arrow", "--polars"):
            if options.output not in (None, word[2:]):
                raise UsageError(f"--{options.output} and {word}: choose one output")
            options.output = word[2:]
        elif word == "--describe":
            options.describe = ""
            if following is not None and not following.startswith("-"):
                assert after is not None
                options.describe, end = following, after.end()
        elif following == "<<" and word.isidentifier():
            assert after is not None
            options.out, end = word, after.end()
        elif re.match(r"--?[A-Za-z]", word):
            raise UsageError(
                f"unknown option {word!r}: options go before the SQL ({_OPTIONS}); a SQL "
                "comment at the start of the line is written '-- text', with a space"
            )
        else:
            return options, line[match.start(1) :]
        pos = end
    return options, ""


# --- the SQL: where PostgreSQL would read :name, and the statement that binds it -------------

# PostgreSQL's lexer (src/backend/parser/scan.l): identifier characters include every non-ASCII
# character and, after the first, "$"; a dollar-quote tag is an identifier without "$".
_IDENT = re.compile(r"[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_$\x80-\U0010ffff]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")
_WORD_CHAR = re.compile(r"[A-Za-z0-9_\x80-\U0010ffff]")
_DOLLAR_QUOTE = re.compile(r"\$(?:[A-Za-z_\x80-\U0010ffff][A-Za-z0-9_\x80-\U0010ffff]*)?\$")


def _string_end(sql: str, i: int, *, backslashes: bool) -> int:
    """Return the index after the string literal whose body starts at ``i``."""
    while i < len(sql):
        c = sql[i]
        if c == "\\" and backslashes:
            i += 2
        elif c == "'":
            if sql.startswith("'", i + 1):  # '' is a quote inside the string
                i += 2
            else:
                return i + 1
        else:
            i += 1
    return len(sql)  # unterminated: the server reports it


def _identifier_end(sql: str, i: int) -> int:
    """Return the index after the quoted identifier whose body starts at ``i``."""
    while (close := sql.find('"', i)) >= 0:
        if not sql.startswith('"', close + 1):
            return close + 1
        i = close + 2
    return len(sql)


def _comment_end(sql: str, i: int) -> int:
    """Return the index after the (nesting) ``/* */`` comment that opens at ``i``."""
    depth, i = 1, i + 2
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


@dataclass(frozen=True)
class _Bind:
    """A ``:name`` where PostgreSQL would read it as a token."""

    name: str


def _split(sql: str, *, standard_strings: bool = True) -> list[str | _Bind]:
    """Split ``sql`` into the user's text and its binds, as PostgreSQL's lexer reads it.

    ``standard_strings`` is the server's ``standard_conforming_strings``: off, a backslash
    escapes a quote in ``'...'`` too (it always does in ``E'...'``).
    """
    parts: list[str | _Bind] = []
    start = i = 0
    n = len(sql)
    while i < n:
        c = sql[i]
        if c == "-" and sql.startswith("--", i):
            newline = re.compile(r"[\r\n]").search(sql, i)
            i = newline.start() if newline else n
        elif c == "/" and sql.startswith("/*", i):
            i = _comment_end(sql, i)
        elif c == "'":
            i = _string_end(sql, i + 1, backslashes=not standard_strings)
        elif c == '"':
            i = _identifier_end(sql, i + 1)
        elif c == "$":
            quote = _DOLLAR_QUOTE.match(sql, i)
            if quote is None:
                i += 1  # a parameter ($1) or an operator character
            else:
                close = sql.find(quote.group(), quote.end())
                i = n if close < 0 else close + len(quote.group())
        elif (word := _IDENT.match(sql, i)) is not None:
            i = word.end()
            prefix = word.group().lower()
            if prefix == "e" and sql.startswith("'", i):
                i = _string_end(sql, i + 1, backslashes=True)
            elif prefix == "u" and sql.startswith("&'", i):
                i = _string_end(sql, i + 2, backslashes=False)
            elif prefix == "u" and sql.startswith('&"', i):
                i = _identifier_end(sql, i + 2)
        elif (number := _NUMBER.match(sql, i)) is not None:
            i = number.end()
        elif c == ":" and sql.startswith("::", i):
            i += 2  # a cast
        elif c == ":":
            name = _IDENT.match(sql, i + 1)
            after_word = i > 0 and _WORD_CHAR.match(sql[i - 1]) is not None
            if name is not None and name.group().isidentifier() and not after_word:
                parts.append(sql[start:i])
                parts.append(_Bind(name.group()))
                start = i = name.end()
            else:
                i += 1
        else:
            i += 1
    parts.append(sql[start:])
    return [p for p in parts if p != ""]


class _UserSQL(TextClause):
    """The user's SQL text with its binds: compiled to exactly that text and placeholders."""

    __visit_name__ = "blogdata_user_sql"
    inherit_cache = False  # one per run: not worth a cache key

    def __init__(self, parts: list[str | BindParameter[Any]]) -> None:
        super().__init__("")
        self.parts = parts


def _placeholder(compiler: SQLCompiler, bind: BindParameter[Any], **kw: Any) -> str:
    """Render ``bind`` as its placeholder (or, with ``literal_binds``, its literal)."""
    rendered = str(compiler.process(bind, **kw))
    if not getattr(compiler, "_numeric_binds", False):
        return rendered
    # asyncpg's $n: SQLAlchemy first writes %(name)s and numbers them with a regex over the whole
    # text, which a user's '%(' could capture; write the number here, as SQLAlchemy will count it.
    template = compiler.compilation_bindtemplate % {"name": bind.key}
    if template not in rendered:
        return rendered
    skipped = compiler.post_compile_params | compiler.literal_execute_params
    order = list(dict.fromkeys(k for b, k in compiler.bind_names.items() if b not in skipped))
    number = f"{compiler._numeric_binds_identifier_char}{order.index(bind.key) + 1}"
    return rendered.replace(template, number)


@compiles(_UserSQL)
def _compile_user_sql(element: _UserSQL, compiler: SQLCompiler, **kw: Any) -> str:
    return "".join(
        compiler.post_process_text(part)
        if isinstance(part, str)
        else _placeholder(compiler, part, **kw)
        for part in element.parts
    )


def _statement(sql: str, namespace: dict[str, Any], *, standard_strings: bool) -> Any:
    """Build the statement for ``sql``: a held SQLAlchemy statement, or the text with its binds."""
    if not sql:
        raise UsageError("%sql needs a query, e.g. %sql SELECT count(*) FROM posts")
    held = namespace.get(sql) if sql.isidentifier() else None
    if isinstance(held, ClauseElement) and isinstance(held, Executable):
        return held
    binds: dict[str, BindParameter[Any]] = {}
    parts: list[str | BindParameter[Any]] = []
    for part in _split(sql, standard_strings=standard_strings):
        if isinstance(part, str):
            parts.append(part)
            continue
        if part.name not in namespace:
            raise UsageError(
                f"the query binds :{part.name}, but there is no variable {part.name!r}"
            )
        if part.name not in binds:
            key = part.name
            while f"%({key})s" in sql:  # never a name SQLAlchemy's numbering could find in the text
                key += "_"
            binds[part.name] = bindparam(key, namespace[part.name])
        parts.append(binds[part.name])
    return _UserSQL(parts)


# --- leaving the pooled connection as a fresh one -------------------------------------------

_DIRTY = "blogdata.notebook.magic.reset"
_INSPECT = (
    "SELECT ARRAY(SELECT name FROM pg_catalog.pg_prepared_statements WHERE from_sql), "
    "EXISTS (SELECT FROM pg_catalog.pg_listening_channels()), pg_catalog.pg_my_temp_schema() <> 0"
)
# RESET ALL leaves the role and the session authorization alone; each is put back first so the
# rest runs with the login role's rights.
_RESET = (
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ROLE",
    "RESET ALL",
    "CLOSE ALL",
    "SELECT pg_catalog.pg_advisory_unlock_all()",
    "DISCARD SEQUENCES",
)


async def _reset_driver(driver: Any) -> None:
    """Undo what a run left on the session: settings, role, locks, LISTEN, temp objects ..."""
    if driver.is_in_transaction():
        await driver.execute("ROLLBACK")
    prepared, listening, temporary = await driver.fetchrow(_INSPECT)
    script = list(_RESET)
    if listening:  # UNLISTEN is refused on a hot standby, where nobody can LISTEN either
        script.append("UNLISTEN *")
    if temporary:
        script.append("DISCARD TEMP")
    # Only PREPAREd ones: the driver's own cached statements (protocol-level) stay.
    script += ['DEALLOCATE "' + name.replace('"', '""') + '"' for name in prepared]
    await driver.execute(";\n".join(script))


def _reset_on_return(
    dbapi_connection: DBAPIConnection,
    record: ConnectionPoolEntry | None,
    state: PoolResetState,
) -> None:
    """Pool ``reset`` hook: reset a connection a run used before the pool takes it back.

    An exception here makes SQLAlchemy discard the connection instead of pooling it.
    """
    if record is None or not record.info.pop(_DIRTY, False):
        return
    if state.terminate_only or not state.asyncio_safe:
        return  # the connection is being closed anyway
    dbapi_connection.run_async(_reset_driver)


def _watch(engine: AsyncEngine) -> None:
    """Install the reset hook on ``engine``'s pool (once; a NullPool closes its connections)."""
    sync = engine.sync_engine
    if not isinstance(sync.pool, NullPool) and not event.contains(sync, "reset", _reset_on_return):
        event.listen(sync, "reset", _reset_on_return)


# --- Arrow and polars results, and their capped display -------------------------------------

_POLARS_MISSING = (
    "--polars needs polars, which blogdata does not install: pip install polars "
    "(or use --arrow for a pyarrow.Table, or --pandas)"
)

# id(result) -> (a weak reference to it, the rows its display shows): results the magic made.
_shown_rows: dict[int, tuple[weakref.ref[Any], int]] = {}


def _polars() -> Any:
    """Return the polars module, or raise a UsageError saying how to install it."""
    try:
        return importlib.import_module("polars")
    except ImportError:
        raise UsageError(_POLARS_MISSING) from None


def _remember_rows(result: Any, rows: int) -> None:
    """Note that ``result``'s display shows ``rows`` rows, for as long as it lives."""
    key = id(result)

    def forget(ref: weakref.ref[Any]) -> None:
        if _shown_rows.get(key, (None,))[0] is ref:
            del _shown_rows[key]

    _shown_rows[key] = (weakref.ref(result, forget), rows)


def _rows_for(result: Any) -> int | None:
    """Return the rows ``result``'s display shows, if the magic made it."""
    entry = _shown_rows.get(id(result))
    return entry[1] if entry is not None and entry[0]() is result else None


def _note(shown: int, total: int, what: str) -> str:
    if total <= shown:
        return ""
    return f"{shown} of {total:,} rows shown (the {what} holds all of them)"


def _head(result: Any, rows: int) -> tuple[Any, str]:
    """Return the first ``rows`` rows of ``result`` (for display) and the note under them."""
    if isinstance(result, pa.Table):
        head = result.slice(0, rows).to_pandas(types_mapper=pd.ArrowDtype)
        return head, _note(rows, result.num_rows, "table")
    return result.head(rows), _note(rows, result.height, "frame")  # polars


def _html(result: Any) -> str | None:
    rows = _rows_for(result)
    if rows is None:
        return None  # not the magic's: displayed as it would be without blogdata
    head, note = _head(result, rows)
    if isinstance(result, pa.Table):
        html = str(head.to_html())
    else:
        with _polars().Config(tbl_rows=max(rows, 1)):
            html = str(head._repr_html_())
    return html + (f"<p><em>{note}</em></p>" if note else "")


def _plain(result: Any, printer: Any, cycle: bool) -> None:
    rows = _rows_for(result)
    if rows is None:
        printer.text(repr(result))
        return
    head, note = _head(result, rows)
    if isinstance(result, pa.Table):
        shown = repr(head)
    else:
        with _polars().Config(tbl_rows=max(rows, 1)):
            shown = repr(head)
    printer.text(shown + (f"\n{note}" if note else ""))


def _register_display(shell: Any) -> None:
    """Cap the display of the Arrow tables and polars frames ``%sql`` returns."""
    formatters = shell.display_formatter.formatters
    for mime, function in (("text/html", _html), ("text/plain", _plain)):
        formatters[mime].for_type(pa.Table, function)
        formatters[mime].for_type_by_name("polars.dataframe.frame", "DataFrame", function)


# --- which runs may change the catalog --------------------------------------------------------

_LEADING_NOISE = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?\*/)*", re.DOTALL)
_QUERIES = {"select", "values", "table", "show", "explain"}


def _may_change_catalog(options: _Options, sql: str, namespace: dict[str, Any]) -> bool:
    """Whether the run may have changed the tables (anything but a plain query may)."""
    if options.describe is not None or options.explain:
        return False
    held = namespace.get(sql) if sql.isidentifier() else None
    if isinstance(held, ClauseElement):
        return not isinstance(held, SelectBase)
    rest = sql[_LEADING_NOISE.match(sql).end() :]  # type: ignore[union-attr]
    first = re.match(r"[A-Za-z]+", rest)
    return first is None or first.group().lower() not in _QUERIES


# --- %sqlplot ---------------------------------------------------------------------------------

_PLOT_USAGE = (
    "%sqlplot histogram|boxplot|bar TABLE.COLUMN [--by TABLE.COLUMN] [--bins N] [--unit U] "
    "[--n N] [--whis W] [--title T]"
)
_KINDS = {"histogram": "histogram", "hist": "histogram", "boxplot": "boxplot", "box": "boxplot"}
_KINDS["bar"] = "bar"
_PLOT_OPTIONS = {
    "--by": ("boxplot",),
    "--bins": ("histogram",),
    "--n": ("bar",),
    "--whis": ("boxplot",),
    "--unit": ("histogram", "boxplot", "bar"),
    "--title": ("histogram", "boxplot", "bar"),
}


@dataclass
class _Plot:
    """What a ``%sqlplot`` line asked for."""

    kind: str
    column: str
    options: dict[str, str]


def _number(option: str, value: str, kind: type[int] | type[float]) -> Any:
    try:
        return kind(value)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise UsageError(f"{option} takes {what}, not {value!r} ({_PLOT_USAGE})") from None


def _parse_plot(line: str) -> _Plot:
    """Read a ``%sqlplot`` line: the chart, the column, then (or before them) the options."""
    try:
        words = shlex.split(line)
    except ValueError as err:
        raise UsageError(f"%sqlplot: {err} ({_PLOT_USAGE})") from None
    positional: list[str] = []
    options: dict[str, str] = {}
    i = 0
    while i < len(words):
        word = words[i]
        if word.startswith("-"):
            name, eq, value = word.partition("=")
            if name not in _PLOT_OPTIONS:
                raise UsageError(f"unknown option {name!r} ({_PLOT_USAGE})")
            if not eq:
                if i + 1 >= len(words):
                    raise UsageError(f"{name} needs a value ({_PLOT_USAGE})")
                i, value = i + 1, words[i + 1]
            options[name] = value
        else:
            positional.append(word)
        i += 1
    if not positional:
        raise UsageError(f"%sqlplot needs a chart and a column: {_PLOT_USAGE}")
    kind = _KINDS.get(positional[0].lower())
    if kind is None:
        raise UsageError(
            f"unknown chart {positional[0]!r}: histogram, boxplot or bar ({_PLOT_USAGE})"
        )
    if len(positional) != 2:
        raise UsageError(
            f"%sqlplot {kind} takes one column, TABLE.COLUMN such as posts.views ({_PLOT_USAGE})"
        )
    for name in options:
        if kind not in _PLOT_OPTIONS[name]:
            raise UsageError(f"{name} does not apply to a {kind} ({_PLOT_USAGE})")
    return _Plot(kind, positional[1], options)


async def _draw(plot: _Plot) -> Any:
    """Draw ``plot`` in one unit of work on the notebook's database; return the Axes."""
    options = plot.options
    unit, title = options.get("--unit"), options.get("--title")
    engine = current_engine()
    async with session_scope(engine, read_only=_read_only(engine)) as db:
        if plot.kind == "histogram":
            bins = _number("--bins", options.get("--bins", "10"), int)
            return await charts.histogram(db, plot.column, bins=bins, unit=unit, title=title)
        if plot.kind == "boxplot":
            whis = _number("--whis", options.get("--whis", "1.5"), float)
            by = options.get("--by")
            return await charts.boxplot(db, plot.column, by=by, whis=whis, unit=unit, title=title)
        n = _number("--n", options.get("--n", "10"), int)
        return await charts.bar_counts(db, plot.column, n=n, unit=unit, title=title)


# --- the magic ----------------------------------------------------------------------------


_ACTIVE_SQL_TRANSACTION = "25001"  # raised before a statement that needs no transaction runs
_NO_ACTIVE_SQL_TRANSACTION = "25P01"  # the SQL ended the run's transaction (COMMIT, ROLLBACK)


def _one_line(err: BlogdataError) -> UsageError:
    """Return ``err`` as one line (a driver's hint can span several)."""
    return UsageError(re.sub(r"\s*\n\s*", " ", str(err)).strip())


@magics_class
class SqlMagics(Magics):
    """The ``%sql`` line magic, the ``%%sql`` cell magic and ``%sqlplot``."""

    output = Enum(
        OUTPUTS,
        default_value="pandas",
        help="What %sql returns without --pandas, --arrow or --polars: "
        "a pandas DataFrame, a pyarrow.Table or a polars DataFrame.",
    ).tag(config=True)

    max_bytes = Integer(
        None,
        allow_none=True,
        help="The most bytes of result a %sql run may receive (without --max-bytes): None "
        "(default) is memory_share of the memory available when the run starts; 0 is no limit.",
    ).tag(config=True)

    memory_share = Float(
        MEMORY_SHARE,
        help="The share of the available memory (MemAvailable) a result may take by default.",
    ).tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        # Magics adds itself to shell.configurables: %config SqlMagics.output = "arrow" works.
        super().__init__(shell=shell, **kwargs)
        if shell is not None:
            completion.register(shell)
            _register_display(shell)

    @line_cell_magic
    @needs_local_scope
    @no_var_expand
    def sql(
        self, line: str, cell: str | None = None, local_ns: dict[str, Any] | None = None
    ) -> Any:
        """Run SQL (or a SQLAlchemy statement) on the notebook's database; return a DataFrame.

        Options come first: ``-o NAME``/``--out NAME`` (also store the result in ``NAME``),
        ``--display N`` (rows to show), ``--explain`` (PostgreSQL's plan instead of rows),
        ``--describe [TABLE]`` (the tables, or one table), ``--arrow`` (a ``pyarrow.Table``),
        ``--polars`` (a polars DataFrame), ``--pandas`` (the default, unless
        ``%config SqlMagics.output`` says otherwise), ``--max-bytes SIZE`` (the most bytes of
        result to receive; ``0``: no limit; default ``SqlMagics.max_bytes``, else a share of
        the available memory), ``NAME <<`` (like ``-o NAME``).
        The rest of the line, then the cell, is the SQL exactly as written.
        """
        options, rest = _parse_line(line)
        user = self.shell.user_ns if self.shell is not None else {}
        namespace = {**user, **(local_ns or {})}
        source = rest if cell is None else (rest + "\n" + cell if rest.strip() else cell)
        target = options.out
        if target is not None and (not target.isidentifier() or keyword.iskeyword(target)):
            raise UsageError(f"{target!r} is not a variable name")
        if options.describe is not None and source.strip():
            raise UsageError("--describe takes one table name and no SQL")
        options.output = options.output or str(self.output)
        polars = _polars() if options.output == "polars" else None
        options.max_bytes = self._budget(options.max_bytes)
        sql = source.strip()
        try:
            result = run(self._execute(options, sql, namespace))
        except ResultTooLargeError as err:
            raise _one_line(
                ResultTooLargeError(
                    f"{err} (for %sql: --max-bytes SIZE, e.g. --max-bytes 2GB, 0 for no limit, or "
                    f"%config SqlMagics.max_bytes; by default a run may take "
                    f"{self.memory_share:.0%} of the memory available when it starts)",
                    received=err.received,
                    max_bytes=err.max_bytes,
                )
            ) from None
        except BlogdataError as err:
            raise _one_line(err) from None
        finally:
            if _may_change_catalog(options, sql, namespace):
                completion.invalidate(current_engine())
        if isinstance(result, pa.Table) and polars is not None:
            result = polars.from_arrow(result, rechunk=False)  # no copy of the buffers
        if isinstance(result, pd.DataFrame):
            framed = SqlFrame(result)
            framed.attrs.update(result.attrs)
            framed.display_rows = options.display
            result = framed
        elif isinstance(result, pa.Table) or polars is not None:
            _remember_rows(result, options.display)
        if target is not None and self.shell is not None:
            self.shell.user_ns[target] = result
        return result

    def _budget(self, asked: int | None) -> int | None:
        """Return the run's ``max_bytes``: the option, else the config, else a share of memory."""
        if asked is None:
            asked = self.max_bytes
        if asked is None:
            available = available_memory()
            return None if available is None else max(1, int(available * self.memory_share))
        return asked or None  # 0: no limit

    @line_magic
    def sqlplot(self, line: str) -> Any:
        """Chart a column, its numbers computed in PostgreSQL; return the matplotlib Axes.

        ``%sqlplot histogram|boxplot|bar TABLE.COLUMN`` with ``--bins N`` (histogram),
        ``--by TABLE.COLUMN`` and ``--whis W`` (boxplot), ``--n N`` (bar: the N largest
        groups), ``--unit U`` and ``--title T`` (any). See :mod:`blogdata.charts`.
        """
        plot = _parse_plot(line)
        try:
            return run(_draw(plot))
        except BlogdataError as err:
            raise _one_line(err) from None

    async def _execute(self, options: _Options, sql: str, namespace: dict[str, Any]) -> Any:
        engine = current_engine()
        _watch(engine)
        read_only = _read_only(engine)
        try:
            async with session_scope(engine, read_only=read_only) as db:
                return await self._answer(db, options, sql, namespace)
        except QueryError as err:
            if err.sqlstate == _NO_ACTIVE_SQL_TRANSACTION:
                raise UsageError(
                    "each %sql run is one transaction, which blogdata commits when it succeeds "
                    "and rolls back when it fails: leave COMMIT, ROLLBACK and other transaction "
                    "control out of the SQL"
                ) from None
            if err.sqlstate != _ACTIVE_SQL_TRANSACTION or options.explain:
                raise
            if read_only:
                raise UsageError(
                    "PostgreSQL runs this statement only outside a transaction block (SQLSTATE "
                    "25001), but this notebook's database is read-only (open_database(read=True))"
                    ": every %sql run is a READ ONLY transaction. Run it on a database opened "
                    "for writing"
                ) from None
        return await self._outside_transaction(engine, options, sql, namespace)

    async def _outside_transaction(
        self, engine: AsyncEngine, options: _Options, sql: str, namespace: dict[str, Any]
    ) -> Any:
        """Run ``sql`` once on an autocommit connection, then close that connection."""
        async with engine.connect() as conn:
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            try:
                stmt = _statement(sql, namespace, standard_strings=await _standard(auto))
                return await _load(auto, stmt, options)
            finally:
                # Whatever it changed on the session cannot be told: never pool it again.
                await invalidate_connection(auto)

    async def _answer(
        self, db: AsyncSession, options: _Options, sql: str, namespace: dict[str, Any]
    ) -> Any:
        conn = await db.connection()
        conn.info[_DIRTY] = True  # the pool's reset hook puts the session back after the run
        if options.describe is not None:
            return await describe(db, options.describe or None)
        stmt = _statement(sql, namespace, standard_strings=await _standard(conn))
        if options.explain:
            return plan_text(await explain(db, stmt))
        return await _load(db, stmt, options)


async def _load(db: Any, stmt: Any, options: _Options) -> Any:
    """Load ``stmt``'s rows as the options ask: a DataFrame, or a ``pyarrow.Table``."""
    if options.output in ("arrow", "polars"):
        return await load_arrow(db, stmt, max_bytes=options.max_bytes)
    return await load_frame(db, stmt, max_bytes=options.max_bytes)


async def _standard(conn: Any) -> bool:
    """Return the connection's ``standard_conforming_strings`` (as the server reported it)."""
    raw = await conn.get_raw_connection()
    settings = raw.driver_connection.get_settings()
    return str(getattr(settings, "standard_conforming_strings", "on")).lower() == "on"
