"""blogdata: explore a PostgreSQL blog database from Jupyter with async SQLAlchemy and pandas.

**Operations never commit; entry points own transactions.** A function that takes a session or
a connection (CRUD, queries, aggregations, loaders, ``transfer_funds``, bulk) flushes but never
commits or rolls back the caller's work. The entry points own the transaction: ``session_scope``,
``get_db``, the command line, the notebook helpers, and functions that take an engine (``seed``).

The names below are what analysts and learners use, each importable from ``blogdata``. The rest
stays in its module, one import away: ``blogdata.crud`` (the guide's ``crud.user``, ...),
``blogdata.queries``, ``blogdata.bulk``, ``blogdata.seed``, ``blogdata.db.migrate``,
``blogdata.diagnostics``, ``blogdata.notebook`` (``open_database``, ``tutorial_database``,
``show_sql``), ``blogdata.errors`` (the whole error tree, ``translating``), ``blogdata.config``,
``blogdata.security``, ``blogdata.servers.embedded``. Importing blogdata opens no connection and
loads what a first analysis cell needs (``load_frame``, ``load_arrow``, ``stream_frames``,
``describe``, the errors; so pandas, pyarrow, SQLAlchemy and asyncpg) and nothing else: every
other name loads its module on first use (``blogdata.Post``, ``from blogdata import
session_scope``), so no
Alembic, email validation, password hashing, settings, Faker, matplotlib, numba, typer,
FastAPI, IPython or Jupyter until used. ``%load_ext blogdata`` registers the ``%sql`` magics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# Loaded with the package: what an analyst's first cell needs (the loaders bring pandas,
# pyarrow, SQLAlchemy and asyncpg) and the error tree (a leaf). ``describe`` is imported here
# rather than on first use because the submodule ``blogdata.describe`` shares its name: once
# any import loaded that submodule, the package attribute would be the module, not the function.
from blogdata.describe import describe
from blogdata.errors import (
    AlreadyExistsError,
    BlogdataError,
    DatabaseUnavailableError,
    InsufficientFundsError,
    InvalidInputError,
    NotFoundError,
    QueryError,
    ReadOnlySessionError,
    RetryableConflictError,
)
from blogdata.loaders import load_arrow, load_frame, stream_frames

if TYPE_CHECKING:  # the rest loads on first use (``__getattr__`` below); type checkers see it all
    from blogdata import crud, notebook, queries
    from blogdata.aggregations import (
        active_authors,
        author_activity,
        count_users,
        posts_per_author,
        posts_per_month,
        posts_per_tag,
        tag_cooccurrence,
        top_tags,
        users_by_role,
    )
    from blogdata.db import migrate
    from blogdata.db.engine import create_engine
    from blogdata.db.sessions import get_db, run_transaction, session_scope
    from blogdata.frames import posts_frame, tags_frame, users_frame
    from blogdata.models import Account, Post, Tag, User, post_tags
    from blogdata.schemas import PostCreate, PostUpdate, UserCreate, UserUpdate
    from blogdata.transactions import savepoint, transfer_funds

__all__ = [
    "Account",
    "AlreadyExistsError",
    "BlogdataError",
    "DatabaseUnavailableError",
    "InsufficientFundsError",
    "InvalidInputError",
    "NotFoundError",
    "Post",
    "PostCreate",
    "PostUpdate",
    "QueryError",
    "ReadOnlySessionError",
    "RetryableConflictError",
    "Tag",
    "User",
    "UserCreate",
    "UserUpdate",
    "active_authors",
    "author_activity",
    "count_users",
    "create_engine",
    "crud",
    "describe",
    "get_db",
    "load_arrow",
    "load_frame",
    "migrate",
    "notebook",
    "post_tags",
    "posts_frame",
    "posts_per_author",
    "posts_per_month",
    "posts_per_tag",
    "queries",
    "run_transaction",
    "savepoint",
    "session_scope",
    "stream_frames",
    "tag_cooccurrence",
    "tags_frame",
    "top_tags",
    "transfer_funds",
    "users_by_role",
    "users_frame",
]


#: Where each name not loaded with the package lives, imported on first access (PEP 562): the
#: ORM models, pydantic schemas (email validation), engines and sessions (settings, the embedded
#: server), Alembic and the notebook helpers cost about a second that ``import blogdata`` and
#: ``load_frame`` do not need.
_LAZY: dict[str, str] = {
    **dict.fromkeys(
        [
            "active_authors",
            "author_activity",
            "count_users",
            "posts_per_author",
            "posts_per_month",
            "posts_per_tag",
            "tag_cooccurrence",
            "top_tags",
            "users_by_role",
        ],
        "blogdata.aggregations",
    ),
    "create_engine": "blogdata.db.engine",
    **dict.fromkeys(["get_db", "run_transaction", "session_scope"], "blogdata.db.sessions"),
    **dict.fromkeys(["posts_frame", "tags_frame", "users_frame"], "blogdata.frames"),
    **dict.fromkeys(["Account", "Post", "Tag", "User", "post_tags"], "blogdata.models"),
    **dict.fromkeys(["PostCreate", "PostUpdate", "UserCreate", "UserUpdate"], "blogdata.schemas"),
    **dict.fromkeys(["savepoint", "transfer_funds"], "blogdata.transactions"),
}
#: Public names that are modules themselves.
_LAZY_MODULES: dict[str, str] = {
    "crud": "blogdata.crud",
    "migrate": "blogdata.db.migrate",
    "notebook": "blogdata.notebook",
    "queries": "blogdata.queries",
}

if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name stays a type error

    def __getattr__(name: str) -> Any:
        """Import a public name's module on first access and keep the name (PEP 562)."""
        if name in _LAZY_MODULES:
            value = importlib.import_module(_LAZY_MODULES[name])
        elif name in _LAZY:
            value = getattr(importlib.import_module(_LAZY[name]), name)
        else:
            raise AttributeError(f"module 'blogdata' has no attribute {name!r}")
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """List the module's names, including the public ones not loaded yet."""
    return sorted({*globals(), *__all__})


def load_ipython_extension(ipython: object) -> None:
    """Register the ``%sql`` and ``%%sql`` magics: ``%load_ext blogdata``."""
    # Not a top-level import: the magic module needs IPython (the notebooks extra), which plain
    # ``import blogdata`` (a script, the CLI, a FastAPI app) must not load. The root package is
    # the front door, so this edge points the allowed way (see ARCHITECTURE.md).
    magic = importlib.import_module("blogdata.notebook.magic")
    ipython.register_magics(magic.SqlMagics)  # type: ignore[attr-defined]
