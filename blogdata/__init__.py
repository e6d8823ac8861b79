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
loads
no Faker, matplotlib, typer, IPython or Jupyter; ``%load_ext blogdata`` registers the ``%sql``
magics.
"""

from __future__ import annotations

import importlib

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
from blogdata.frames import posts_frame, tags_frame, users_frame
from blogdata.loaders import load_frame, stream_frames
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


def load_ipython_extension(ipython: object) -> None:
    """Register the ``%sql`` and ``%%sql`` magics: ``%load_ext blogdata``."""
    # Not a top-level import: the magic module needs IPython (the notebooks extra), which plain
    # ``import blogdata`` (a script, the CLI, a FastAPI app) must not load. The root package is
    # the front door, so this edge points the allowed way (see ARCHITECTURE.md).
    magic = importlib.import_module("blogdata.notebook.magic")
    ipython.register_magics(magic.SqlMagics)  # type: ignore[attr-defined]
