"""Errors raised by blogdata: one base class, a short tree under it.

Every message names what failed and what to do about it::

    BlogdataError
    ├── ConfigurationError          settings or environment are wrong
    ├── DatabaseUnavailableError    the server cannot be reached or started
    │   ├── ConnectionLostError     the connection died mid-operation (SQLSTATE 08*, 57P01-57P03)
    │   └── PoolExhaustedError      every pooled connection stayed busy for pool_timeout
    ├── InvalidInputError           an argument is rejected before any SQL runs (also a ValueError)
    │   └── RouteUnavailableError   a forced load_frame route cannot answer this statement here
    ├── NotFoundError               the row asked for does not exist (also a LookupError)
    ├── AlreadyExistsError          a unique constraint was violated (SQLSTATE 23505)
    ├── RelatedRowMissingError      a foreign key points nowhere (SQLSTATE 23503)
    ├── InsufficientFundsError      a transfer would make a balance negative
    ├── ReplicationLagError         the read server did not replay the primary's writes in time
    ├── NotOursError                refusal to drop, empty or overwrite what blogdata did not make
    ├── ExerciseError               a tutorial exercise's answer is wrong (an AssertionError)
    └── QueryError                  the database rejected a statement; carries its message
        ├── StatementTimeoutError   a statement ran past statement_timeout (SQLSTATE 57014)
        ├── ResultTooLargeError     a load's result grew past its max_bytes; the server stopped
        ├── RetryableConflictError  a serialization failure or deadlock (SQLSTATE 40001, 40P01)
        ├── ReadOnlySessionError    a write was attempted on a read session (SQLSTATE 25006)
        └── SnapshotError           dask_frame's shared snapshot cannot be exported or has ended

This module imports nothing from blogdata: every other module may import it. Database errors
are translated into these classes at one boundary, :mod:`blogdata.translate`.
"""

from __future__ import annotations

__all__ = [
    "RETRYABLE_SQLSTATES",
    "AlreadyExistsError",
    "BlogdataError",
    "ConfigurationError",
    "ConnectionLostError",
    "DatabaseUnavailableError",
    "InsufficientFundsError",
    "InvalidInputError",
    "NotFoundError",
    "NotOursError",
    "PoolExhaustedError",
    "QueryError",
    "ExerciseError",
    "ReadOnlySessionError",
    "ResultTooLargeError",
    "RouteUnavailableError",
    "RelatedRowMissingError",
    "RetryableConflictError",
    "ReplicationLagError",
    "SnapshotError",
    "StatementTimeoutError",
]

#: Serialization failure and deadlock: the whole unit of work may be run again.
RETRYABLE_SQLSTATES: frozenset[str] = frozenset({"40001", "40P01"})


class BlogdataError(Exception):
    """Base class of every error blogdata raises on purpose."""


class ConfigurationError(BlogdataError):
    """A setting or the environment is wrong; the message says which and how to fix it."""


class DatabaseUnavailableError(BlogdataError):
    """The database server cannot be reached or started."""


class ConnectionLostError(DatabaseUnavailableError):
    """The connection to the server died during an operation; the unit of work did not finish.

    ``where`` names the server (host and port, or the socket folder; never a password) when
    the boundary knew the connection; ``doing`` is the operation that was cut off.
    """

    def __init__(
        self, message: str, *, doing: str = "the statement", where: str | None = None
    ) -> None:
        super().__init__(message)
        self.doing = doing
        self.where = where


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


class ResultTooLargeError(QueryError):
    """A load's result grew past its ``max_bytes``: the server's work was stopped, nothing kept.

    ``received`` is the bytes that had arrived when it was stopped, ``max_bytes`` the budget.
    The session and its transaction stay usable.
    """

    def __init__(self, message: str, *, received: int, max_bytes: int) -> None:
        super().__init__(message)
        self.received = received
        self.max_bytes = max_bytes


class RetryableConflictError(QueryError):
    """A serialization failure or deadlock: roll back and run the whole unit of work again."""


class ReadOnlySessionError(QueryError):
    """A write was attempted on a read session (or on a hot standby): writes go to the primary."""


class SnapshotError(QueryError):
    """The snapshot cannot be exported from this session, or is no longer open."""


class ReplicationLagError(BlogdataError):
    """The read server had not replayed the primary's writes when the wait timed out."""


class NotOursError(BlogdataError):
    """blogdata refused to drop, empty or overwrite something it did not make.

    A database without blogdata's marker, a table of the user's that references the blog's
    tables, a file in the demo's folder that the demo did not write. Nothing was changed.
    """


class RouteUnavailableError(InvalidInputError):
    """A forced route cannot give the driver's answer for this statement on this session."""


class ExerciseError(BlogdataError, AssertionError):
    """An exercise's answer is not right yet; the message says what to look at."""
