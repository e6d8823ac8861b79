"""Errors raised by blogdata: one base class, a short tree under it.

Every message names what failed and what to do about it::

    BlogdataError
    ├── ConfigurationError          settings or environment are wrong
    ├── DatabaseUnavailableError    the server cannot be reached or started
    │   └── PoolExhaustedError      every pooled connection stayed busy for pool_timeout
    ├── InvalidInputError           an argument is rejected before any SQL runs (also a ValueError)
    ├── NotFoundError               the row asked for does not exist (also a LookupError)
    ├── AlreadyExistsError          a unique constraint was violated (SQLSTATE 23505)
    ├── RelatedRowMissingError      a foreign key points nowhere (SQLSTATE 23503)
    ├── InsufficientFundsError      a transfer would make a balance negative
    └── QueryError                  the database rejected a statement; carries its message
        └── StatementTimeoutError   a statement ran past statement_timeout (SQLSTATE 57014)
"""

from __future__ import annotations

__all__ = [
    "AlreadyExistsError",
    "BlogdataError",
    "ConfigurationError",
    "DatabaseUnavailableError",
    "InsufficientFundsError",
    "InvalidInputError",
    "NotFoundError",
    "PoolExhaustedError",
    "QueryError",
    "RelatedRowMissingError",
    "StatementTimeoutError",
]


class BlogdataError(Exception):
    """Base class of every error blogdata raises on purpose."""


class ConfigurationError(BlogdataError):
    """A setting or the environment is wrong; the message says which and how to fix it."""


class DatabaseUnavailableError(BlogdataError):
    """The database server cannot be reached or started."""


class InvalidInputError(BlogdataError, ValueError):
    """An argument was rejected before any SQL ran."""


class NotFoundError(BlogdataError, LookupError):
    """The row asked for does not exist."""


class AlreadyExistsError(BlogdataError):
    """A row with the same unique value already exists."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class RelatedRowMissingError(BlogdataError):
    """A foreign key refers to a row that does not exist."""


class InsufficientFundsError(BlogdataError):
    """A transfer would take an account's balance below zero."""


class QueryError(BlogdataError):
    """The database rejected a statement; ``str(err)`` carries the server's own message."""

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate


class PoolExhaustedError(DatabaseUnavailableError):
    """Every pooled connection stayed checked out for ``pool_timeout`` seconds."""


class StatementTimeoutError(QueryError):
    """A statement ran longer than ``statement_timeout``; the transaction must be rolled back."""
