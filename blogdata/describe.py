"""Look around a database: its tables, and one table's columns, indexes and foreign keys.

``await describe(db)`` lists the tables (schema, name, estimated rows, total size);
``await describe(db, "posts")`` describes one table. The catalogue is read through
``load_frame``, and a table name is passed to PostgreSQL as a bound value (``to_regclass``),
never written into SQL text, so any name is safe to ask about.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any, overload

import pandas as pd
from sqlalchemy import text

from blogdata._types import Db
from blogdata.errors import InvalidInputError, NotFoundError, QueryError
from blogdata.loaders import load_frame

__all__ = ["TableDescription", "describe"]

_TABLES = text(
    """
    SELECT n.nspname AS schema, c.relname AS name,
           CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
           pg_total_relation_size(c.oid) AS total_bytes,
           pg_size_pretty(pg_total_relation_size(c.oid)) AS total_size
    FROM pg_catalog.pg_class AS c
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
    ORDER BY n.nspname, c.relname
    """
)

_FIND = text(
    "SELECT c.oid::bigint FROM pg_catalog.pg_class AS c"
    " WHERE c.oid = to_regclass(:name) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
)

_COLUMNS = text(
    """
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type,
           NOT a.attnotnull AS nullable,
           CASE WHEN a.attgenerated = 's'
                THEN 'GENERATED ALWAYS AS (' || pg_get_expr(d.adbin, d.adrelid) || ') STORED'
                ELSE pg_get_expr(d.adbin, d.adrelid) END AS "default"
    FROM pg_catalog.pg_attribute AS a
    LEFT JOIN pg_catalog.pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
    WHERE a.attrelid = CAST(:oid AS oid) AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
    """
)

_INDEXES = text(
    """
    SELECT i.relname AS name, x.indisprimary AS "primary", x.indisunique AS "unique",
           pg_get_indexdef(x.indexrelid) AS definition
    FROM pg_catalog.pg_index AS x JOIN pg_catalog.pg_class AS i ON i.oid = x.indexrelid
    WHERE x.indrelid = CAST(:oid AS oid)
    ORDER BY i.relname
    """
)

_FOREIGN_KEYS = text(
    """
    SELECT conname AS name, pg_get_constraintdef(oid) AS definition
    FROM pg_catalog.pg_constraint
    WHERE conrelid = CAST(:oid AS oid) AND contype = 'f'
    ORDER BY conname
    """
)


@dataclass(frozen=True)
class TableDescription:
    """One table: its columns (name, type, nullable, default), indexes and foreign keys."""

    table: str
    columns: pd.DataFrame
    indexes: pd.DataFrame
    foreign_keys: pd.DataFrame

    def _repr_html_(self) -> str:
        parts = [f"<h4>{self.table}</h4>", self.columns.to_html(index=False)]
        for title, frame in (("indexes", self.indexes), ("foreign keys", self.foreign_keys)):
            parts += [f"<h5>{title}</h5>", frame.to_html(index=False)]
        return "\n".join(parts)

    def __repr__(self) -> str:
        blocks = [
            f"table {self.table}",
            self.columns.to_string(index=False),
            "indexes:",
            self.indexes.to_string(index=False) if len(self.indexes) else "  (none)",
            "foreign keys:",
            self.foreign_keys.to_string(index=False) if len(self.foreign_keys) else "  (none)",
        ]
        return "\n".join(blocks)


@overload
async def describe(db: Db, table: None = None) -> pd.DataFrame: ...
@overload
async def describe(db: Db, table: str) -> TableDescription: ...
async def describe(db: Db, table: str | None = None) -> pd.DataFrame | TableDescription:
    """Describe the database's tables, or (given a name like ``"posts"``) one table.

    Raises:
        InvalidInputError: ``table`` is not a non-empty string without NUL characters.
        NotFoundError: there is no such table (the message suggests a close name).
    """
    if table is None:
        return await load_frame(db, _TABLES)
    if not isinstance(table, str) or not table.strip() or "\x00" in table or len(table) > 500:
        raise InvalidInputError(f"table must be a table name such as 'posts', not {table!r:.60}")
    try:
        found = await load_frame(db, _FIND.bindparams(name=table))
    except QueryError as exc:
        if exc.sqlstate not in ("42602", "42601", "3F000"):  # not a name a table could have
            raise
        found = pd.DataFrame()
    if found.empty:
        names = (await load_frame(db, _TABLES))["name"].tolist()
        close = difflib.get_close_matches(table.split(".")[-1], names, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else "; `await describe(db)` lists them"
        raise NotFoundError(f"there is no table {table!r}{hint}")
    oid: Any = found.iloc[0, 0]
    return TableDescription(
        table=table,
        columns=await load_frame(db, _COLUMNS.bindparams(oid=int(oid))),
        indexes=await load_frame(db, _INDEXES.bindparams(oid=int(oid))),
        foreign_keys=await load_frame(db, _FOREIGN_KEYS.bindparams(oid=int(oid))),
    )
