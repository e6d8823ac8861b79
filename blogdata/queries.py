r"""The guide's query patterns as statement builders, with its gaps closed.

Every builder returns a ``Select`` you can execute, print with ``show_sql`` or load into a frame.
Fixes over the guide:

- user-supplied sort keys are checked against the model's columns (``order_by_clause``): an
  unknown key raises ``InvalidInputError`` with a did-you-mean, and is never formatted into SQL;
- offset pagination validates ``skip``/``limit`` and caps ``limit`` at ``MAX_LIMIT``, and always
  orders by a unique key, so pages are stable; keyset pagination (``posts_page``) stays correct
  when rows are inserted between pages, where offsets would repeat or skip rows;
- "created since" needs an aware datetime (the guide compares ``timestamptz`` with a naive one);
- title search escapes ``%``, ``_`` and ``\\`` in the user's text;
- eager-loading builders say which strategy they use and whether the result needs ``unique()``.

``count_statements`` counts the SQL statements a block runs, to show N+1 loading in numbers.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, Literal, TypeVar

from sqlalchemy import ColumnElement, Select, and_, inspect, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload, lazyload, selectinload

from blogdata._checks import (
    check_aware_datetime,
    check_count,
    check_id,
    check_int,
    check_list,
    check_text,
)
from blogdata.errors import InvalidInputError
from blogdata.models import ROLES, Base, Post, Tag, User
from blogdata.schemas import check_tag_name

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_LIMIT",
    "Keyset",
    "Page",
    "active_users",
    "check_page",
    "escape_like",
    "fetch_posts_page",
    "fetch_users_page",
    "order_by_clause",
    "paginate",
    "posts_by_tag",
    "posts_page",
    "posts_with_author",
    "posts_with_tags",
    "search_posts",
    "sortable_columns",
    "users_created_since",
    "users_matching",
    "users_page",
    "users_with_posts",
    "users_with_posts_and_tags",
]

#: Largest page ``paginate`` accepts; ask for more pages (or stream) instead of one huge page.
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
#: Columns that are never sortable, even though they exist.
_HIDDEN_COLUMNS = frozenset({"hashed_password"})
_MAX_SEARCH_LENGTH = 255

ModelT = TypeVar("ModelT", bound=Base)
RowT = TypeVar("RowT")


# --- filters -----------------------------------------------------------------------------------


def _require_aware(value: datetime, name: str) -> None:
    # check_aware_datetime, with the hint notebook 04 shows for a naive one.
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise InvalidInputError(
            f"{name} is a naive datetime; give it a time zone, "
            "e.g. datetime(2024, 1, 1, tzinfo=timezone.utc)"
        )
    check_aware_datetime(value, name)


def active_users() -> Select[User]:
    """Select the active users, oldest account first."""
    return select(User).where(User.is_active.is_(True)).order_by(User.created_at, User.id)


def users_created_since(since: datetime) -> Select[User]:
    """Select users whose account was created at or after ``since`` (an aware datetime).

    Raises:
        InvalidInputError: ``since`` is naive (which instant it means depends on the server).
    """
    _require_aware(since, "since")
    return select(User).where(User.created_at >= since).order_by(User.created_at, User.id)


def users_matching(
    *,
    active: bool | None = None,
    roles: Iterable[str] | None = None,
    created_since: datetime | None = None,
    text: str | None = None,
) -> Select[User]:
    """Select users meeting every given condition (``and_``); ``text`` matches any name (``or_``).

    Args:
        active: only active (True) or inactive (False) users; None for both.
        roles: any of these roles.
        created_since: accounts created at or after this aware datetime.
        text: a case-insensitive substring of the username, email or full name.
    """
    conditions: list[ColumnElement[bool]] = []
    if active is not None and not isinstance(active, bool):
        raise InvalidInputError(f"active must be True, False or None, not {active!r}")
    if active is not None:
        conditions.append(User.is_active.is_(active))
    if roles is not None:
        wanted = check_list(roles, "roles")
        if not all(isinstance(role, str) for role in wanted):
            raise InvalidInputError(f"roles must all be str; roles are {', '.join(ROLES)}")
        unknown = sorted(set(wanted) - set(ROLES))
        if unknown:
            raise InvalidInputError(f"unknown role(s) {unknown}; roles are {', '.join(ROLES)}")
        conditions.append(User.role.in_(wanted))
    if created_since is not None:
        _require_aware(created_since, "created_since")
        conditions.append(User.created_at >= created_since)
    if text is not None:
        pattern = _contains_pattern(text)
        conditions.append(
            or_(
                User.username.ilike(pattern, escape="\\"),
                User.email.ilike(pattern, escape="\\"),
                User.full_name.ilike(pattern, escape="\\"),
            )
        )
    return select(User).where(and_(True, *conditions)).order_by(User.id)


def escape_like(text: str) -> str:
    r"""Escape ``\\``, ``%`` and ``_`` so ``text`` matches literally inside a LIKE pattern."""
    if not isinstance(text, str):
        raise InvalidInputError(f"text must be a str, not {type(text).__name__}")
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _contains_pattern(text: str) -> str:
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("search text is empty; give at least one non-space character")
    check_text(text, "search text", max_length=_MAX_SEARCH_LENGTH)
    return f"%{escape_like(text.strip())}%"


def search_posts(text: str) -> Select[Post]:
    """Select posts whose title contains ``text``, ignoring case; newest first.

    ``%`` and ``_`` in ``text`` match themselves, not "anything". A leading-wildcard ILIKE cannot
    use a btree index; for large tables add a ``pg_trgm`` GIN index.
    """
    pattern = _contains_pattern(text)
    return (
        select(Post)
        .where(Post.title.ilike(pattern, escape="\\"))
        .order_by(Post.created_at.desc(), Post.id.desc())
    )


def posts_by_tag(name: str) -> Select[Post]:
    """Select the posts carrying the tag ``name`` (as ``check_tag_name`` gives it); newest first."""
    return (
        select(Post)
        .where(Post.tags.any(Tag.name == check_tag_name(name)))
        .order_by(Post.created_at.desc(), Post.id.desc())
    )


# --- ordering and offset pagination --------------------------------------------------------------


def sortable_columns(model: type[Base]) -> tuple[str, ...]:
    """Return the column names of ``model`` that ``order_by_clause`` accepts."""
    return tuple(
        attr.key for attr in inspect(model).column_attrs if attr.key not in _HIDDEN_COLUMNS
    )


def order_by_clause(model: type[Base], keys: str | Sequence[str]) -> list[ColumnElement[Any]]:
    """Turn sort keys like ``"created_at"`` or ``"-views"`` (descending) into ORDER BY terms.

    Each key is looked up among the model's columns, never formatted into SQL. The primary key is
    appended as a tie-breaker so every page boundary is deterministic.

    Raises:
        InvalidInputError: a key is not a sortable column; the message suggests the closest one.
    """
    keys = [keys] if isinstance(keys, str) else check_list(keys, "sort keys")
    allowed = sortable_columns(model)
    mapper = inspect(model)
    terms: list[ColumnElement[Any]] = []
    used: set[str] = set()
    for raw in keys:
        check_text(raw, "sort key", max_length=100)
        descending = raw.startswith("-")
        name = raw[1:] if descending else raw
        if name not in allowed:
            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f' Did you mean "{close[0]}"?' if close else ""
            raise InvalidInputError(
                f"unknown sort key {raw!r} for {model.__tablename__}.{hint} "
                f"Sortable keys: {', '.join(allowed)} (prefix '-' for descending)."
            )
        column = mapper.columns[name]
        terms.append(column.desc() if descending else column.asc())
        used.add(name)
    for pk in mapper.primary_key:
        if pk.key not in used:
            terms.append(pk.asc())
    return terms


def check_page(*, skip: int, limit: int) -> None:
    """Check offset-pagination arguments: ``skip >= 0`` and ``1 <= limit <= MAX_LIMIT``.

    Raises:
        InvalidInputError: either value is out of range or not an integer.
    """
    check_int(skip, "skip")
    check_int(limit, "limit")
    check_count(skip, "skip")  # OFFSET is a bigint: 0 to INT8_MAX
    if limit < 1:
        raise InvalidInputError(f"limit must be at least 1, got {limit}")
    if limit > MAX_LIMIT:
        raise InvalidInputError(
            f"limit {limit} is above the maximum of {MAX_LIMIT}; "
            "fetch more pages, or use keyset pagination or stream_frames for big reads"
        )


def paginate(
    stmt: Select[Any],
    *,
    skip: int = 0,
    limit: int = DEFAULT_LIMIT,
) -> Select[Any]:
    """Add OFFSET/LIMIT to ``stmt`` after checking them (see ``check_page``).

    The statement should already have a unique ORDER BY (``order_by_clause`` adds one); without it
    PostgreSQL may return rows in a different order on every page.
    """
    check_page(skip=skip, limit=limit)
    return stmt.offset(skip).limit(limit)


# --- keyset (seek) pagination ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Keyset:
    """Where a page ended: the last row's ``created_at`` and ``id``."""

    created_at: datetime
    id: int

    def __post_init__(self) -> None:
        _require_aware(self.created_at, "Keyset.created_at")
        check_id(self.id, "Keyset.id")


@dataclass(frozen=True, slots=True)
class Page(Generic[RowT]):
    """One page of a keyset listing; pass ``next`` as ``after`` to get the following page."""

    items: list[RowT] = field(default_factory=list)
    next: Keyset | None = None


def _seek(model: type[Post] | type[User], after: Keyset | None, limit: int) -> Select[Any]:
    if after is not None and not isinstance(after, Keyset):
        raise InvalidInputError(
            f"after must be a Keyset (a page's .next), not {type(after).__name__}"
        )
    # Newest first; the row comparison matches the (created_at, id) index and is exact.
    stmt = select(model).order_by(model.created_at.desc(), model.id.desc()).limit(limit)
    if after is not None:
        stmt = stmt.where(tuple_(model.created_at, model.id) < tuple_(after.created_at, after.id))
    return stmt


def posts_page(*, after: Keyset | None = None, limit: int = 20) -> Select[Post]:
    """Select one page of posts, newest first, starting strictly after ``after``."""
    check_page(skip=0, limit=limit)
    return _seek(Post, after, limit)


def users_page(*, after: Keyset | None = None, limit: int = 20) -> Select[User]:
    """Select one page of users, newest account first, starting strictly after ``after``."""
    check_page(skip=0, limit=limit)
    return _seek(User, after, limit)


async def _fetch_page(
    db: AsyncSession, model: type[Post] | type[User], after: Keyset | None, limit: int
) -> Page[Any]:
    check_page(skip=0, limit=limit)
    # One row more than asked for tells whether another page exists.
    rows = list((await db.scalars(_seek(model, after, limit + 1))).all())
    if len(rows) <= limit:
        return Page(rows, None)
    last = rows[limit - 1]
    return Page(rows[:limit], Keyset(last.created_at, last.id))


async def fetch_posts_page(
    db: AsyncSession, *, after: Keyset | None = None, limit: int = 20
) -> Page[Post]:
    """Fetch one keyset page of posts; ``page.next`` is None on the last page."""
    return await _fetch_page(db, Post, after, limit)


async def fetch_users_page(
    db: AsyncSession, *, after: Keyset | None = None, limit: int = 20
) -> Page[User]:
    """Fetch one keyset page of users; ``page.next`` is None on the last page."""
    return await _fetch_page(db, User, after, limit)


# --- relationship loading ----------------------------------------------------------------------

Loading = Literal["lazy", "selectin", "joined"]


def users_with_posts(*, loading: Loading = "selectin") -> Select[User]:
    """Select users with their posts loaded by ``loading``.

    ``"joined"`` adds a LEFT OUTER JOIN that repeats each user once per post, so the result
    must go through ``.unique()`` (SQLAlchemy raises otherwise); ``"selectin"`` runs one extra
    ``SELECT ... WHERE author_id IN (...)`` and needs no ``unique()``. ``"lazy"`` loads nothing
    up front: each ``await user.awaitable_attrs.posts`` is then one more query (N+1).
    """
    options = {
        "lazy": lazyload(User.posts),
        "selectin": selectinload(User.posts),
        "joined": joinedload(User.posts),
    }
    return select(User).options(options[_check_loading(loading)]).order_by(User.id)


def posts_with_tags(*, loading: Loading = "selectin") -> Select[Post]:
    """Select posts with their tags loaded by ``loading`` (``"joined"`` needs ``.unique()``).

    ``Post.tags`` is ``lazy="raise"`` in the model; ``"lazy"`` switches it back to lazy loading
    for this query so ``await post.awaitable_attrs.tags`` works (one query per post: N+1).
    """
    options = {
        "lazy": lazyload(Post.tags),
        "selectin": selectinload(Post.tags),
        "joined": joinedload(Post.tags),
    }
    return select(Post).options(options[_check_loading(loading)]).order_by(Post.id)


def posts_with_author() -> Select[Post]:
    """Select posts with their author joined in (many-to-one: no ``unique()`` needed)."""
    return select(Post).options(joinedload(Post.author)).order_by(Post.id)


def users_with_posts_and_tags() -> Select[User]:
    """Select users, their posts and those posts' tags: three queries, whatever the row count."""
    return select(User).options(selectinload(User.posts).selectinload(Post.tags)).order_by(User.id)


def _check_loading(loading: str) -> str:
    if loading not in ("lazy", "selectin", "joined"):
        raise InvalidInputError(f"unknown loading {loading!r}; use 'lazy', 'selectin' or 'joined'")
    return loading


# --- statement counting ------------------------------------------------------------------------
