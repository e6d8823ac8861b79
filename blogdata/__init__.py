"""blogdata: explore a PostgreSQL blog database from Jupyter with async SQLAlchemy and pandas."""

from __future__ import annotations

from blogdata.config import Settings, get_settings
from blogdata.database import (
    create_engine,
    create_sessionmaker,
    dispose_default_engine,
    get_db,
    get_engine,
    resolve_url,
    session_scope,
)
from blogdata.errors import (
    AlreadyExistsError,
    BlogdataError,
    ConfigurationError,
    DatabaseUnavailableError,
    InsufficientFundsError,
    InvalidInputError,
    NotFoundError,
    QueryError,
    RelatedRowMissingError,
)
from blogdata.models import Account, Base, Post, Tag, User, post_tags

__all__ = [
    "Account",
    "AlreadyExistsError",
    "Base",
    "BlogdataError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InsufficientFundsError",
    "InvalidInputError",
    "NotFoundError",
    "Post",
    "QueryError",
    "RelatedRowMissingError",
    "Settings",
    "Tag",
    "User",
    "create_engine",
    "create_sessionmaker",
    "dispose_default_engine",
    "get_db",
    "get_engine",
    "get_settings",
    "post_tags",
    "resolve_url",
    "session_scope",
]
