"""``%sql`` and ``%%sql``: SQL cells that return DataFrames (``%load_ext blogdata``).

A line or a cell of SQL runs through :func:`blogdata.loaders.load_frame` on the notebook's
database: the engine given to :func:`use_engine`, else the one the latest
``blogdata.notebook.connect`` opened, else the configured one (``BLOGDATA_DATABASE_URL``, else
the embedded server). Each run is one unit of work, committed
when it succeeds (so ``%sql UPDATE ...`` sticks) and rolled back when it fails::

    df = %sql SELECT title, views FROM posts WHERE views > :least
    %sql --describe posts

    %%sql -o top
    SELECT title FROM posts ORDER BY views DESC NULLS LAST

``:name`` binds the notebook variable ``name`` as a parameter (never written into the SQL);
``%sql stmt`` runs a SQLAlchemy statement held in the variable ``stmt``. The frame is whole, but
its display shows the first ``--display N`` rows (10 by default) and says how many there were.
A failure prints one line (the server's message and SQLSTATE); Jupyter's interrupt cancels the
query on the server. Options follow jupysql's where they overlap (``-o``, ``var <<``).
"""

from __future__ import annotations

import asyncio
import keyword
from typing import Any

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, needs_local_scope
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.elements import ClauseElement

from blogdata.errors import BlogdataError
from blogdata.loaders import load_frame

__all__ = ["DISPLAY_ROWS", "SqlFrame", "SqlMagics", "use_engine"]

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


_chosen: dict[str, AsyncEngine] = {}


def use_engine(engine: AsyncEngine | None) -> None:
    """Make ``%sql`` run on ``engine`` (None: back to the notebook's or the configured one)."""
    if engine is None:
        _chosen.clear()
    else:
        _chosen["engine"] = engine


def _notebook_engine() -> AsyncEngine:
    from blogdata import notebook
    from blogdata.database import get_engine

    if "engine" in _chosen:
        return _chosen["engine"]
    opened = list(notebook._open.values())
    return opened[-1].engine if opened else get_engine()


def _run(work: Any) -> Any:
    """Run a coroutine from the magic (sync code), cancelling it on the server on interrupt."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:  # plain IPython: the loop its top-level await uses
        from IPython.core.async_helpers import get_asyncio_loop

        loop = get_asyncio_loop()
    else:
        import nest_asyncio2

        nest_asyncio2.apply(loop)  # idempotent
    task = loop.create_task(work)
    try:
        return loop.run_until_complete(task)
    except KeyboardInterrupt:
        task.cancel()  # the loaders cancel the query and roll back their savepoint
        loop.run_until_complete(asyncio.gather(task, return_exceptions=True))
        raise


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


class _Plan(str):
    """A plan shown as plain text."""

    def __repr__(self) -> str:
        return str(self)


@magics_class
class SqlMagics(Magics):
    """The ``%sql`` line magic and ``%%sql`` cell magic."""

    @needs_local_scope
    @magic_arguments()
    @argument("-o", "--out", metavar="NAME", help="also store the frame in the variable NAME")
    @argument("--display", type=int, default=DISPLAY_ROWS, metavar="N", help="rows to show")
    @argument("--explain", action="store_true", help="show PostgreSQL's plan instead of rows")
    @argument("--describe", nargs="?", const="", default=None, metavar="TABLE",
              help="list the tables, or describe one")  # fmt: skip
    @argument("words", nargs="*", help="SQL, or the name of a variable holding a statement")
    @line_cell_magic
    def sql(
        self, line: str, cell: str | None = None, local_ns: dict[str, Any] | None = None
    ) -> Any:
        """Run SQL (or a SQLAlchemy statement) on the notebook's database; return a DataFrame."""
        args = parse_argstring(self.sql, line)
        user = self.shell.user_ns if self.shell is not None else {}
        namespace = {**user, **(local_ns or {})}
        words: list[str] = list(args.words)
        target = args.out
        if len(words) >= 2 and words[1] == "<<" and words[0].isidentifier():
            target, words = words[0], words[2:]
        source = " ".join(words) + ("\n" + cell if cell else "")
        if target is not None and (not target.isidentifier() or keyword.iskeyword(target)):
            raise UsageError(f"{target!r} is not a variable name")
        if args.display < 0:
            raise UsageError("--display takes a number of rows, 0 or more")
        try:
            result = _run(self._execute(args, source.strip(), namespace))
        except BlogdataError as err:
            raise UsageError(str(err)) from None
        if isinstance(result, pd.DataFrame):
            framed = SqlFrame(result)
            framed.attrs.update(result.attrs)
            framed.display_rows = args.display
            result = framed
        if target is not None and self.shell is not None:
            self.shell.user_ns[target] = result
        return result

    async def _execute(self, args: Any, source: str, namespace: dict[str, Any]) -> Any:
        from blogdata.database import create_sessionmaker

        engine = _notebook_engine()
        async with create_sessionmaker(engine)() as db:
            try:
                result = await self._answer(db, args, source, namespace)
                await db.commit()
            except BaseException:
                await db.rollback()
                raise
        return result

    async def _answer(
        self, db: AsyncSession, args: Any, source: str, namespace: dict[str, Any]
    ) -> Any:
        if args.describe is not None:
            from blogdata.describe import describe

            return await describe(db, args.describe or None)
        stmt = self._statement(source, namespace)
        if args.explain:
            from blogdata.explain import explain

            return _Plan("\n".join(_plan_lines((await explain(db, stmt))["Plan"])))
        return await load_frame(db, stmt)

    @staticmethod
    def _statement(source: str, namespace: dict[str, Any]) -> Any:
        if not source:
            raise UsageError("%sql needs a query, e.g. %sql SELECT count(*) FROM posts")
        held = namespace.get(source) if source.isidentifier() else None
        if isinstance(held, ClauseElement) and isinstance(held, Executable):
            return held
        stmt = text(source)
        values = {}
        for name in stmt._bindparams:
            if name not in namespace:
                raise UsageError(f"the query binds :{name}, but there is no variable {name!r}")
            values[name] = namespace[name]
        return stmt.bindparams(**values) if values else stmt
