"""Statements compiled twice: bound for the driver, and literal for the routes that need it.

``session.execute`` sends SQL with ``$n`` placeholders and the values beside it (the extended
protocol). COPY takes no parameters, so the COPY route needs the same statement with its
values written into it. That text is never made by searching the bound SQL for ``$n`` (a
``$1`` inside a string literal, a dollar-quoted body, a quoted identifier or a comment is not a
placeholder). Instead SQLAlchemy's compiler runs a second time with ``literal_binds`` and renders
each value where it would have rendered that value's placeholder, through
:class:`_LiteralCompiler`:

- only values whose PostgreSQL text form is unambiguous are rendered (None, bool, int, float,
  Decimal, str without NUL, uuid, aware datetimes, dates, times), always as a quoted literal
  (``'` doubled; the caller checks ``standard_conforming_strings``) followed by exactly the
  cast SQLAlchemy's asyncpg dialect puts after the placeholder (``'5'::INTEGER`` for
  ``$1::INTEGER``), so each value reaches the server with the type the bound statement gives it;
- anything else (lists, JSON documents the driver encodes, naive datetimes for a timestamptz,
  a parameter with no cast, whose type the server would infer) raises :class:`NotLiteral`, and
  the routes that need a literal statement are not used for it.

The loader then proves the two agree: the literal text is prepared on its own (one statement,
or the server refuses it) and must describe the same column types as the bound one.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column as TableColumn
from sqlalchemy import Numeric, Select, TableClause, inspect, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import PGCompiler_asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import TextClause
from sqlalchemy.sql.expression import CompoundSelect, TextualSelect

from blogdata.errors import InvalidInputError

__all__ = ["CompiledQuery", "NotLiteral", "Selectable", "Statement", "compile_statement"]

AnySelect = Select[*tuple[Any, ...]]
AnyCompound = CompoundSelect[*tuple[Any, ...]]
Selectable = AnySelect | AnyCompound | TextClause | TextualSelect
#: What the loaders accept: a Core/ORM select, a ``text()`` query, a table, or a mapped class.
Statement = Selectable | TableClause | type


class NotLiteral(Exception):  # noqa: N818 - a signal inside this package, never raised to users
    """A bound value has no literal form that is provably what the driver would send."""


@dataclass(frozen=True)
class CompiledQuery:
    """One statement: its bound SQL and arguments, and (if it has one) its literal SQL."""

    sql: str
    args: tuple[Any, ...]
    literal_sql: str | None
    labels: tuple[str, ...] | None
    numeric_scales: tuple[int | None, ...] | None


def as_selectable(stmt: object) -> Selectable:
    """Turn what the caller passed into something that compiles to one SELECT."""
    if isinstance(stmt, Select | CompoundSelect | TextClause | TextualSelect):
        return stmt
    if isinstance(stmt, TableClause):
        return select(stmt)
    if isinstance(stmt, type) and inspect(stmt, raiseerr=False) is not None:
        return select(stmt)
    raise InvalidInputError(
        f"cannot load a frame from {type(stmt).__name__}; pass a SQLAlchemy select(...), "
        "text(...), a Table or a mapped class"
    )


def _text_of(value: Any, impl: Any) -> str | None:
    """Return the PostgreSQL input text of ``value``, None for NULL, or raise NotLiteral."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        return repr(value)  # the shortest text that reads back as exactly this double
    if isinstance(value, decimal.Decimal):
        if value.is_snan():
            raise NotLiteral
        if value.is_nan():
            return "NaN"
        if value.is_infinite():
            return "Infinity" if value > 0 else "-Infinity"
        return str(value)
    if isinstance(value, str):
        if "\x00" in value:
            raise NotLiteral  # PostgreSQL text cannot hold NUL; let the driver refuse it
        return value
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is None and getattr(impl, "timezone", False):
            raise NotLiteral  # naive for timestamptz: the driver, not the session, decides
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    raise NotLiteral


class _LiteralCompiler(PGCompiler_asyncpg):
    """asyncpg's compiler, rendering each bound value as a literal with its placeholder's cast."""

    def render_literal_bindparam(
        self,
        bindparam: Any,
        render_literal_value: Any = None,
        bind_expression_template: Any = None,
        **kw: Any,
    ) -> str:
        if bindparam.expanding:  # IN lists: one literal per element, via render_literal_value
            return str(
                super().render_literal_bindparam(  # type: ignore[no-untyped-call]
                    bindparam, bind_expression_template=bind_expression_template, **kw
                )
            )
        collected = getattr(self, "_collected_params", None) or {}
        value = collected.get(bindparam.key, bindparam.effective_value)
        return self.render_literal_value(value, bindparam.type)

    def render_literal_value(self, value: Any, type_: Any) -> str:
        impl = type_.dialect_impl(self.dialect)
        processor: Callable[[Any], Any] | None = type_._cached_bind_processor(self.dialect)
        if processor is not None and value is not None:
            value = processor(value)
        text = _text_of(value, impl)
        sql = "NULL" if text is None else "'" + text.replace("'", "''") + "'"
        unwrapped = type_._unwrapped_dialect_impl(self.dialect)
        if self.dialect._bind_typing_render_casts and unwrapped.render_bind_cast:
            return str(self.render_bind_cast(type_, unwrapped, sql))  # type: ignore[no-untyped-call]
        if text is None:
            return sql
        raise NotLiteral  # an uncast placeholder: the server infers its type from the context


def _numeric_scale(column: object) -> int | None:
    """Return the declared scale of a table column typed ``Numeric(p, s)``, else None."""
    if isinstance(column, TableColumn) and isinstance(column.type, Numeric):
        scale = column.type.scale
        if scale is not None and column.type.precision is not None and scale >= 0:
            return int(scale)
    return None


def _literal(selectable: Selectable, dialect: Dialect) -> str | None:
    compiler = _LiteralCompiler(
        dialect, selectable, compile_kwargs={"literal_binds": True, "render_postcompile": True}
    )
    return str(compiler.string)


def _refuse_unencodable(sql: str, args: tuple[Any, ...] | list[Any]) -> None:
    """Refuse text UTF-8 cannot encode (a lone surrogate): the driver would drop the connection."""
    for where, value in (("the statement", sql), *(("a bound value", a) for a in args)):
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidInputError(
                    f"{where} holds a lone surrogate character (not valid UTF-8); PostgreSQL "
                    "text cannot hold it: fix the string, e.g. s.encode('utf-8', 'replace')"
                ) from None


def compile_statement(stmt: object, dialect: Dialect) -> CompiledQuery:
    """Compile ``stmt`` for asyncpg (values stay parameters), and literally where that is safe."""
    selectable = as_selectable(stmt)
    compiled = selectable.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    processors = compiled._bind_processors
    args = []
    for name in compiled.positiontup or []:
        processor: Callable[[Any], Any] | None = processors.get(name)  # type: ignore[assignment]
        args.append(processor(params[name]) if processor is not None else params[name])
    _refuse_unencodable(compiled.string, args)
    literal: str | None = compiled.string
    if args:
        try:
            literal = _literal(selectable, dialect)
        except (NotLiteral, sa_exc.CompileError):
            literal = None
    labels: tuple[str, ...] | None = None
    scales: tuple[int | None, ...] | None = None
    if not isinstance(selectable, TextClause):
        columns = selectable.selected_columns
        scales = tuple(_numeric_scale(c) for c in columns)
        if not isinstance(selectable, TextualSelect):  # text keeps the names its SQL gives
            labels = tuple(columns.keys())
    return CompiledQuery(compiled.string, tuple(args), literal, labels, scales)
