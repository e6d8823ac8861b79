"""Bulk operations: create, insert, upsert, update and delete many rows in few statements.

Fixes over the guide: ``create_users`` hashes passwords (the guide inserts
``model_dump()``, whose ``password`` names no column: SQLAlchemy drops it and the INSERT fails on
the missing ``hashed_password``), checks duplicates first and reports them by row, and never
commits; ``deactivate_old_users`` uses the real ``last_login`` column with an aware
clock (the guide's model has no such column and uses the naive ``utcnow()``).

Insert paths for rows whose passwords are already hashed (``insert_hashed_users``):

* fewer than ``COPY_THRESHOLD`` rows: one single-row ``INSERT ... VALUES`` with every row as a
  parameter set, through the session's connection. With no ``RETURNING``, SQLAlchemy's asyncpg
  dialect does not batch it into multi-row VALUES (insertmanyvalues); asyncpg's ``executemany``
  prepares it once and pipelines the parameter sets;
* from ``COPY_THRESHOLD`` rows up: binary ``COPY`` through asyncpg's ``copy_records_to_table``
  on the session's own driver connection, so it joins the session's transaction. COPY is ~2.5x
  faster than that INSERT on 100,000 rows (benchmarks/RESULTS.md) and its fixed cost is a few
  round trips, which only pays back above about a thousand rows.

Every path runs inside a savepoint: if the database refuses a row, nothing of the batch stays.
"""

from __future__ import annotations

import asyncio
import os
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any, cast

import asyncpg
from sqlalchemy import (
    BigInteger,
    CursorResult,
    any_,
    bindparam,
    delete,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata import crud, models
from blogdata._checks import (
    MAX_DAYS,
    check_aware_datetime,
    check_count,
    check_days_before,
    check_id,
    check_list,
    check_text,
)
from blogdata.errors import AlreadyExistsError, BlogdataError, InvalidInputError
from blogdata.models import User
from blogdata.schemas import UserCreate
from blogdata.security import get_password_hash
from blogdata.translate import sqlstate_of, translating

__all__ = [
    "COPY_THRESHOLD",
    "USER_COLUMNS",
    "create_users",
    "delete_users",
    "upsert_tags",
    "deactivate_old_users",
    "hash_passwords",
    "insert_hashed_users",
]

#: Batches of at least this many rows go through COPY, smaller ones through INSERT ... VALUES.
COPY_THRESHOLD = 1000

#: The ``users`` columns a row may set: every one but ``id`` (``_REQUIRED`` must be given).
USER_COLUMNS: tuple[str, ...] = tuple(c for c in models.USER_COLUMNS if c != "id")
_REQUIRED = ("email", "username", "hashed_password")
_TIMESTAMPS = frozenset({"created_at", "updated_at", "last_login"})
_UNIQUE = ("email", "username")
_SHOWN = 5  # offending rows named in an error message
_MAX_WORKERS = 1024  # hashing threads; far more than any machine has cores


def hash_passwords(passwords: Sequence[str], *, workers: int | None = None) -> list[str]:
    """Hash ``passwords`` with the project's hasher on a pool of threads (argon2 drops the GIL).

    ``workers`` defaults to the number of CPU cores; ``1`` hashes in the calling thread. Each
    argon2id hash already computes its 4 lanes on 4 threads (``parallelism=4``), so the pool only
    pays on machines with more than a few cores: on 2 shared cores it measured 0.8x-1.4x of one
    thread (benchmarks/RESULTS.md). Threads suffice; processes would add pickling only.
    """
    for password in passwords:
        check_text(password, "password", secret=True)
    count = workers if workers is not None else (os.cpu_count() or 1)
    check_count(count, "workers", minimum=1, maximum=_MAX_WORKERS)
    if count <= 1 or len(passwords) <= 1:
        return [get_password_hash(p) for p in passwords]
    with ThreadPoolExecutor(max_workers=min(count, len(passwords))) as pool:
        return list(pool.map(get_password_hash, passwords))


def _check_rows(rows: Sequence[Mapping[str, Any]]) -> tuple[str, ...]:
    """Validate the keys and timestamps of ``rows``; return their common columns in table order."""
    if not rows:
        return ()
    keys = set(rows[0])
    unknown = sorted(keys - set(USER_COLUMNS))
    if unknown:
        raise InvalidInputError(
            f"unknown users column(s) {unknown}; a row may set only {list(USER_COLUMNS)}"
        )
    missing = [c for c in _REQUIRED if c not in keys]
    if missing:
        raise InvalidInputError(f"every row needs {list(_REQUIRED)}; row 0 lacks {missing}")
    stamps = keys & _TIMESTAMPS
    for index, row in enumerate(rows):
        if row.keys() != keys:
            raise InvalidInputError(
                f"row {index} has columns {sorted(row)}, row 0 has {sorted(keys)}; "
                "give every row the same columns"
            )
        for name in stamps:
            value = row[name]
            if isinstance(value, datetime) and value.utcoffset() is None:
                raise InvalidInputError(
                    f"row {index}: {name} is a naive datetime; pass an aware one "
                    "(e.g. datetime.now(UTC))"
                )
    return tuple(c for c in USER_COLUMNS if c in keys)


def _duplicates_within(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    for column in _UNIQUE:
        values = [row[column] for row in rows]
        if len(set(values)) == len(values):
            continue  # the common case, checked at C speed
        seen: dict[Any, list[int]] = defaultdict(list)
        for index, value in enumerate(values):
            seen[value].append(index)
        for value, indexes in seen.items():
            if len(indexes) > 1:
                problems.append(f"rows {indexes} share {column} {value!r}")
    return problems


async def _duplicates_existing(db: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    emails = [row["email"] for row in rows]
    usernames = [row["username"] for row in rows]
    stmt = select(User.email, User.username).where(
        or_(
            User.email == any_(bindparam("emails", emails, type_=ARRAY(User.email.type))),
            User.username
            == any_(bindparam("usernames", usernames, type_=ARRAY(User.username.type))),
        )
    )
    taken: dict[str, set[Any]] = {"email": set(), "username": set()}
    for email, username in await db.execute(stmt):
        taken["email"].add(email)
        taken["username"].add(username)
    problems: list[str] = []
    for index, row in enumerate(rows):
        for column in _UNIQUE:
            if row[column] in taken[column]:
                problems.append(f"row {index} has {column} {row[column]!r}, already taken")
    return problems


def _duplicate_error(problems: list[str]) -> AlreadyExistsError:
    fields = sorted({c for c in _UNIQUE if any(f" {c} " in p for p in problems)})
    more = f" (and {len(problems) - _SHOWN} more)" if len(problems) > _SHOWN else ""
    return AlreadyExistsError(
        f"{len(problems)} duplicate(s), nothing was inserted: "
        f"{'; '.join(problems[:_SHOWN])}{more}. Remove or rename those rows and retry",
        field=", ".join(fields),
    )


async def _refuse_duplicates(db: AsyncSession, rows: Sequence[Mapping[str, Any]]) -> None:
    problems = _duplicates_within(rows) or await _duplicates_existing(db, rows)
    if problems:
        raise _duplicate_error(problems)


def _copy_error(exc: Exception) -> BlogdataError | None:
    """Return the error COPY's ``exc`` means, or None to leave it to the translating boundary."""
    state = sqlstate_of(exc)
    if state == "23505":
        detail = getattr(exc, "detail", None) or str(exc)
        return AlreadyExistsError(
            f"a row is already taken ({detail}); nothing was inserted: remove it and retry",
            field=getattr(exc, "column_name", None),
        )
    if isinstance(exc, asyncpg.PostgresError):
        return None
    return InvalidInputError(f"a value does not fit its users column: {exc}")


async def _copy(
    db: AsyncSession, columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]
) -> None:
    connection = await db.connection()
    raw = await connection.get_raw_connection()
    driver: asyncpg.Connection = raw.driver_connection
    row_values = itemgetter(*columns)  # columns has at least 3 names, so this gives tuples
    records = [row_values(row) for row in rows]
    async with translating("COPY into users", connection=connection):  # names a lost server
        try:
            await driver.copy_records_to_table(
                User.__tablename__, records=records, columns=list(columns)
            )
        except (asyncpg.PostgresError, asyncpg.DataError, TypeError, ValueError) as exc:
            error = _copy_error(exc)
            if error is None:
                raise
            raise error from exc


async def insert_hashed_users(
    db: AsyncSession,
    rows: Sequence[Mapping[str, Any]],
    *,
    copy_threshold: int = COPY_THRESHOLD,
    check_duplicates: bool = True,
) -> int:
    """Insert user rows whose passwords are already hashed; return how many went in.

    Each row is a mapping over ``USER_COLUMNS`` (``email``, ``username``, ``hashed_password``
    required; omitted columns take their defaults), every row with the same keys, timestamps
    aware. Duplicates raise ``AlreadyExistsError`` naming the rows, with nothing inserted: those
    inside the batch are found before any SQL; those against existing users are named after the
    database refuses the batch (checking first would cost a query on every happy path).
    ``check_duplicates=False`` skips the naming (the database still refuses the batch).
    ``copy_threshold`` picks the path (see the module docstring). Flushes pending work first;
    never commits.
    """
    check_count(copy_threshold, "copy_threshold")
    columns = _check_rows(rows)
    if not columns:
        return 0
    await db.flush()
    if check_duplicates and (problems := _duplicates_within(rows)):
        raise _duplicate_error(problems)
    try:
        async with translating("the statement", table=User.__table__), db.begin_nested():
            if len(rows) >= copy_threshold:
                await _copy(db, columns, rows)
            else:
                connection = await db.connection()
                await connection.execute(insert(User), [dict(row) for row in rows])
    except AlreadyExistsError as error:
        if check_duplicates:
            await _name_existing(db, rows, error)
        raise
    return len(rows)


async def _name_existing(
    db: AsyncSession, rows: Sequence[Mapping[str, Any]], error: AlreadyExistsError
) -> None:
    """Raise an error naming the rows that clash with existing users, if any are found."""
    problems = await _duplicates_existing(db, rows)
    if problems:
        raise _duplicate_error(problems) from error


async def create_users(
    db: AsyncSession, users: Sequence[UserCreate], *, workers: int | None = None
) -> int:
    """Create many users: check duplicates, hash the passwords in parallel, insert in bulk.

    Returns the number of users created. Duplicates are reported (by row) before any password
    is hashed; ``workers`` is the number of hashing threads (default: CPU cores).
    """
    for index, user in enumerate(users):
        if not isinstance(user, UserCreate):
            raise InvalidInputError(
                f"users[{index}] must be a UserCreate, not {type(user).__name__}"
            )
    rows: list[dict[str, Any]] = [
        {**user.model_dump(exclude={"password"}), "hashed_password": ""} for user in users
    ]
    if not rows:
        return 0
    await db.flush()
    await _refuse_duplicates(db, rows)
    passwords = [user.password.get_secret_value() for user in users]
    hashes = await asyncio.to_thread(hash_passwords, passwords, workers=workers)
    for row, hashed in zip(rows, hashes, strict=True):
        row["hashed_password"] = hashed
    return await insert_hashed_users(db, rows, check_duplicates=False)


async def upsert_tags(db: AsyncSession, names: Iterable[str]) -> dict[str, int]:
    """Make sure every tag in ``names`` exists; return ``{normalised name: id}`` for all of them.

    ``crud.tag.get_or_create_many`` does the work: names are trimmed and lower-cased, existing
    tags are left as they are (``ON CONFLICT DO NOTHING``), and new names are inserted in sorted
    order so concurrent upserts cannot deadlock.
    """
    tags = await crud.tag.get_or_create_many(db, names=check_list(names, "names"))
    return {tag.name: tag.id for tag in tags}


async def deactivate_old_users(db: AsyncSession, *, days: int, now: datetime | None = None) -> int:
    """Deactivate active users whose last login is more than ``days`` days before ``now``.

    ``now`` defaults to the current UTC time and must be timezone-aware. Users who never logged
    in (``last_login`` is NULL) are left alone, as in the guide. Returns how many were changed.
    """
    check_count(days, "days", maximum=MAX_DAYS)
    now = datetime.now(UTC) if now is None else check_aware_datetime(now, "now")
    cutoff = check_days_before(now, days)
    stmt = (
        update(User)
        .where(User.is_active.is_(True), User.last_login < cutoff)
        .values(is_active=False)
        .execution_options(synchronize_session="fetch")
    )
    result = cast(CursorResult[Any], await db.execute(stmt))
    return result.rowcount


async def delete_users(db: AsyncSession, ids: Sequence[int]) -> int:
    """Delete the users with these ids (their posts and accounts go with them); return the count.

    Unknown ids are ignored. The ids travel as one array parameter, so any number fits.
    """
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise InvalidInputError(f"ids must be a list of ints, not {type(ids).__name__}")
    for index, value in enumerate(ids):
        check_id(value, f"ids[{index}]")
    if not ids:
        return 0
    stmt = (
        delete(User)
        .where(User.id == any_(bindparam("ids", list(ids), type_=ARRAY(BigInteger))))
        .execution_options(synchronize_session="fetch")
    )
    result = cast(CursorResult[Any], await db.execute(stmt))
    return result.rowcount
