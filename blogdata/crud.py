"""The guide's CRUD layer: ``CRUDBase`` and the ``crud.user``, ``crud.post``, ``crud.tag`` objects.

Usage: ``from blogdata import crud; user = await crud.user.create(db, obj_in=UserCreate(...))``.

Deliberately unlike the guide:

- methods ``flush()`` but never ``commit()``: the caller's unit of work (``get_db``,
  ``session_scope``, ``async with db.begin()``) commits once, so several calls form one
  transaction and roll back together;
- each write runs inside a SAVEPOINT, and a failed write is translated once, by SQLSTATE, into
  ``AlreadyExistsError`` (23505, naming the field) or ``RelatedRowMissingError`` (23503); only the
  savepoint is rolled back, so the session stays usable;
- ``remove``/``update`` of a missing id raise ``NotFoundError`` (the guide hands ``None`` to
  ``delete``); ``get_multi`` orders by a checked key, so pages are stable;
- ``crud.user.authenticate`` does the same hashing work for unknown emails, and only returns
  active users; hashing runs in a worker thread so the event loop keeps serving other tasks;
- ``crud.post.create`` gets-or-creates its tags with ``INSERT ... ON CONFLICT DO NOTHING``, so two
  sessions adding the same new tag at once both succeed (under READ COMMITTED, the default).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, SecretStr, ValidationError
from sqlalchemy import Table, exists, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from blogdata._checks import check_id, check_list, check_text
from blogdata.errors import (
    BlogdataError,
    DatabaseUnavailableError,
    InvalidInputError,
    NotFoundError,
    QueryError,
)
from blogdata.models import Base, Post, Tag, User
from blogdata.queries import DEFAULT_LIMIT, check_page, order_by_clause, posts_by_tag
from blogdata.schemas import (
    PASSWORD_MAX_LENGTH,
    PostCreate,
    PostUpdate,
    TagCreate,
    UserCreate,
    UserUpdate,
    check_tag_name,
)
from blogdata.security import DUMMY_HASH, get_password_hash, verify_password
from blogdata.translate import translating

__all__ = [
    "CRUDBase",
    "CRUDPost",
    "CRUDTag",
    "CRUDUser",
    "post",
    "tag",
    "user",
]

ModelType = TypeVar("ModelType", bound=Base)
CreateSchemaType = TypeVar("CreateSchemaType", bound=BaseModel)
UpdateSchemaType = TypeVar("UpdateSchemaType", bound=BaseModel)


#: Longest email or username a look-up accepts (the columns hold 255 and 50 characters).
_MAX_LOOKUP = 1000


def _set_fields(obj_in: BaseModel | dict[str, Any], schema: type[BaseModel]) -> dict[str, Any]:
    """Return the fields the caller set, validating a plain dict through ``schema`` first."""
    if isinstance(obj_in, BaseModel):
        return obj_in.model_dump(exclude_unset=True)
    if not isinstance(obj_in, dict):
        raise InvalidInputError(
            f"obj_in must be a {schema.__name__} or a dict, not {type(obj_in).__name__}"
        )
    try:
        model = schema.model_validate(obj_in)
    except ValidationError as exc:  # hide_input_in_errors: the message quotes no value
        raise InvalidInputError(f"obj_in is not a valid {schema.__name__}: {exc}") from None
    return model.model_dump(exclude_unset=True)


def _require_schema(obj_in: object) -> BaseModel:
    """Refuse anything but a validated pydantic schema (e.g. a plain dict) before any SQL."""
    if not isinstance(obj_in, BaseModel):
        raise InvalidInputError(
            f"obj_in must be a validated schema (e.g. UserCreate(...)), not {type(obj_in).__name__}"
        )
    return obj_in


@asynccontextmanager
async def _write(db: AsyncSession, table: Table) -> AsyncIterator[None]:
    """Run the block in a savepoint, flush it, and translate a database error (one boundary)."""
    async with translating("the statement", table=table, connection=db), db.begin_nested():
        yield
        await db.flush()


async def _refresh_expired(db: AsyncSession, obj: Base) -> None:
    # Server-side values (created_at, updated_at) are expired after a flush; load them now,
    # while we can await, so plain attribute access never needs hidden IO later.
    expired = inspect(obj).expired_attributes
    if expired:
        await db.refresh(obj, attribute_names=sorted(expired))


class CRUDBase(Generic[ModelType, CreateSchemaType, UpdateSchemaType]):
    """Create, read, update and delete rows of one model; flushes, never commits."""

    def __init__(self, model: type[ModelType]) -> None:
        self.model = model
        self.table: Table = model.__table__  # type: ignore[assignment]

    async def get(self, db: AsyncSession, id: int) -> ModelType | None:
        """Return the row with primary key ``id``, or None."""
        return await db.get(self.model, check_id(id))

    async def get_or_raise(self, db: AsyncSession, id: int) -> ModelType:
        """Return the row with primary key ``id``; raise NotFoundError if there is none."""
        obj = await self.get(db, id)
        if obj is None:
            raise NotFoundError(
                f"no {self.table.name} row with id {id}; check the id, or list rows with get_multi"
            )
        return obj

    async def get_multi(
        self,
        db: AsyncSession,
        *,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
        order_by: str | Sequence[str] = "id",
    ) -> list[ModelType]:
        """Return one page of rows ordered by ``order_by`` (e.g. ``"-created_at"``).

        Raises:
            InvalidInputError: a negative ``skip``, a ``limit`` outside 1..MAX_LIMIT, or an
                unknown sort key.
        """
        check_page(skip=skip, limit=limit)
        stmt = (
            select(self.model)
            .order_by(*order_by_clause(self.model, order_by))
            .offset(skip)
            .limit(limit)
        )
        return list((await db.scalars(stmt)).all())

    async def count(self, db: AsyncSession) -> int:
        """Return how many rows the table has."""
        return int(await db.scalar(select(func.count()).select_from(self.model)) or 0)

    async def exists(self, db: AsyncSession, id: int) -> bool:
        """Return whether a row with primary key ``id`` exists."""
        pk = inspect(self.model).primary_key[0]
        return bool(await db.scalar(select(exists().where(pk == check_id(id)))))

    async def create(self, db: AsyncSession, *, obj_in: CreateSchemaType) -> ModelType:
        """Insert a row from ``obj_in`` and flush it (the caller commits)."""
        return await self._insert(db, self.model(**_require_schema(obj_in).model_dump()))

    async def _insert(
        self,
        db: AsyncSession,
        db_obj: ModelType,
        *,
        first: Callable[[], Awaitable[None]] | None = None,
    ) -> ModelType:
        """Add ``db_obj`` in one write (after ``first``, e.g. getting its tags) and flush."""
        async with _write(db, self.table):
            if first is not None:
                await first()
            db.add(db_obj)
        await _refresh_expired(db, db_obj)
        return db_obj

    async def update(
        self,
        db: AsyncSession,
        *,
        obj_in: UpdateSchemaType | dict[str, Any],
        db_obj: ModelType | None = None,
        id: int | None = None,
    ) -> ModelType:
        """Write the fields set in ``obj_in`` to ``db_obj`` (or the row ``id``) and flush.

        Fields left out of ``obj_in`` are untouched (``exclude_unset``). If the write fails, the
        object is reloaded from the database, so it never holds values that were not stored.

        Raises:
            NotFoundError: ``id`` names no row.
        """
        if isinstance(obj_in, BaseModel):
            data = obj_in.model_dump(exclude_unset=True)
        elif isinstance(obj_in, dict):
            data = obj_in
        else:
            raise InvalidInputError(
                f"obj_in must be a schema or a dict, not {type(obj_in).__name__}"
            )
        target = await self._target(db, db_obj, id)
        return await self._apply(db, target, data)

    async def _target(
        self, db: AsyncSession, db_obj: ModelType | None, id: int | None
    ) -> ModelType:
        if (db_obj is None) == (id is None):
            raise InvalidInputError("pass exactly one of db_obj= or id=")
        if db_obj is None:
            return await self.get_or_raise(db, check_id(id))
        if not isinstance(db_obj, self.model):
            raise InvalidInputError(
                f"db_obj must be a {self.model.__name__}, not {type(db_obj).__name__}"
            )
        return db_obj

    async def _apply(
        self,
        db: AsyncSession,
        db_obj: ModelType,
        data: dict[str, Any],
        *,
        first: Callable[[], Awaitable[None]] | None = None,
    ) -> ModelType:
        """Set ``data`` on ``db_obj`` in one write (after ``first``, e.g. replacing its tags).

        If the write fails, the object is reloaded, so it never holds values that were not stored.
        """
        columns = {attr.key for attr in inspect(self.model).column_attrs}
        unknown = sorted(map(str, set(data) - columns))
        if unknown:
            raise InvalidInputError(f"{self.table.name} has no column(s) {unknown}")
        try:
            async with _write(db, self.table):
                if first is not None:
                    await first()
                for name, value in data.items():
                    setattr(db_obj, name, value)
        except BlogdataError as error:
            if not isinstance(error, DatabaseUnavailableError):  # a lost connection cannot refresh
                await db.refresh(db_obj)
            raise
        await _refresh_expired(db, db_obj)
        return db_obj

    async def remove(self, db: AsyncSession, *, id: int) -> ModelType:
        """Delete the row with primary key ``id``, flush, and return it.

        Raises:
            NotFoundError: no row has that id.
        """
        obj = await self.get_or_raise(db, id)
        async with _write(db, self.table):
            await db.delete(obj)
        return obj


class CRUDUser(CRUDBase[User, UserCreate, UserUpdate]):
    """Users: look-ups by email or username, hashed passwords, ``authenticate``."""

    async def get_by_email(self, db: AsyncSession, *, email: str) -> User | None:
        """Return the user with this email (compared lower-case), or None."""
        wanted = check_text(email, "email", max_length=_MAX_LOOKUP).strip().lower()
        return await db.scalar(select(User).where(User.email == wanted))

    async def get_by_username(self, db: AsyncSession, *, username: str) -> User | None:
        """Return the user with this username, or None."""
        wanted = check_text(username, "username", max_length=_MAX_LOOKUP).strip()
        return await db.scalar(select(User).where(User.username == wanted))

    async def create(self, db: AsyncSession, *, obj_in: UserCreate) -> User:
        """Insert a user with a hashed password and flush; the plain password is not kept.

        Raises:
            AlreadyExistsError: the email or username is taken (``err.field`` says which).
        """
        data = _require_schema(obj_in).model_dump(exclude={"password"})
        hashed = await asyncio.to_thread(get_password_hash, obj_in.password)
        return await self._insert(db, User(**data, hashed_password=hashed))

    async def update(
        self,
        db: AsyncSession,
        *,
        obj_in: UserUpdate | dict[str, Any],
        db_obj: User | None = None,
        id: int | None = None,
    ) -> User:
        """Write the set fields to the user and flush; a given password is hashed first."""
        data = _set_fields(obj_in, UserUpdate)
        target = await self._target(db, db_obj, id)
        password = data.pop("password", None)
        if password is not None:
            data["hashed_password"] = await asyncio.to_thread(get_password_hash, password)
        return await self._apply(db, target, data)

    async def authenticate(
        self, db: AsyncSession, *, email: str, password: str | SecretStr
    ) -> User | None:
        """Return the active user with this email and password, or None.

        An unknown email still costs one password verification (against ``DUMMY_HASH``), so
        the time taken does not tell an attacker whether the email is registered.

        Raises:
            InvalidInputError: the email or password holds a character no stored one can (a
                NUL, a lone surrogate) or is too long; the message never quotes the password.
        """
        plain = password.get_secret_value() if isinstance(password, SecretStr) else password
        check_text(plain, "password", max_length=PASSWORD_MAX_LENGTH, secret=True)
        found = await self.get_by_email(db, email=email)
        stored = found.hashed_password if found is not None else DUMMY_HASH
        ok = await asyncio.to_thread(verify_password, password, stored)
        if found is None or not ok or not found.is_active:
            return None
        return found


class CRUDTag(CRUDBase[Tag, TagCreate, TagCreate]):
    """Tags: look-up by name and a concurrency-safe get-or-create."""

    async def get_by_name(self, db: AsyncSession, *, name: str) -> Tag | None:
        """Return the tag called ``name`` (trimmed, any case), or None."""
        return await db.scalar(select(Tag).where(Tag.name == check_tag_name(name)))

    async def get_or_create_many(self, db: AsyncSession, *, names: Sequence[str]) -> list[Tag]:
        """Return the tags called ``names``, creating the missing ones; order follows ``names``.

        ``INSERT ... ON CONFLICT DO NOTHING`` then ``SELECT``: if another transaction inserts the
        same name first, our insert waits for it and skips the row, and the SELECT (a new snapshot
        under READ COMMITTED) sees it. Names are inserted sorted so two writers lock them in the
        same order and cannot deadlock. Call it inside a savepoint or transaction you control.
        Names are checked and normalised by ``blogdata.schemas.check_tag_name``.
        """
        wanted = list(dict.fromkeys(check_tag_name(n) for n in check_list(names, "names")))
        if not wanted:
            return []
        insert = pg_insert(Tag).values([{"name": n} for n in sorted(wanted)])
        async with translating("the statement", table=Tag.__table__):
            await db.execute(insert.on_conflict_do_nothing(index_elements=[Tag.name]))
        found = {t.name: t for t in (await db.scalars(select(Tag).where(Tag.name.in_(wanted))))}
        missing = [n for n in wanted if n not in found]
        if missing:
            raise QueryError(
                f"tags {missing} were neither inserted nor found (deleted concurrently, or the "
                "transaction is REPEATABLE READ/SERIALIZABLE); retry the transaction"
            )
        return [found[n] for n in wanted]


class CRUDPost(CRUDBase[Post, PostCreate, PostUpdate]):
    """Posts: create with tag names, list by author or by tag."""

    async def get_with_tags(self, db: AsyncSession, id: int) -> Post | None:
        """Return the post ``id`` with its tags loaded, or None."""
        stmt = select(Post).where(Post.id == check_id(id)).options(selectinload(Post.tags))
        return await db.scalar(stmt)

    async def create(self, db: AsyncSession, *, obj_in: PostCreate) -> Post:
        """Insert a post and its tags (get-or-create) in one savepoint, and flush.

        Raises:
            RelatedRowMissingError: ``author_id`` names no user.
        """
        db_obj = Post(**_require_schema(obj_in).model_dump(exclude={"tags"}))

        async def get_tags() -> None:
            db_obj.tags = await tag.get_or_create_many(db, names=obj_in.tags)

        return await self._insert(db, db_obj, first=get_tags)

    async def update(
        self,
        db: AsyncSession,
        *,
        obj_in: PostUpdate | dict[str, Any],
        db_obj: Post | None = None,
        id: int | None = None,
    ) -> Post:
        """Write the set fields to the post and flush; ``tags`` replaces the whole tag set."""
        data = _set_fields(obj_in, PostUpdate)
        target = await self._target(db, db_obj, id)
        names = data.pop("tags", None)
        if names is None:
            return await self._apply(db, target, data)
        await db.refresh(target, attribute_names=["tags"])

        async def replace_tags() -> None:
            target.tags = await tag.get_or_create_many(db, names=names)

        return await self._apply(db, target, data, first=replace_tags)

    async def get_multi_by_author(
        self,
        db: AsyncSession,
        *,
        author_id: int,
        skip: int = 0,
        limit: int = DEFAULT_LIMIT,
        order_by: str | Sequence[str] = "-created_at",
    ) -> list[Post]:
        """Return one page of the posts written by ``author_id`` (newest first by default)."""
        check_page(skip=skip, limit=limit)
        stmt = (
            select(Post)
            .where(Post.author_id == check_id(author_id, "author_id"))
            .order_by(*order_by_clause(Post, order_by))
            .offset(skip)
            .limit(limit)
        )
        return list((await db.scalars(stmt)).all())

    async def get_multi_by_tag(
        self, db: AsyncSession, *, name: str, skip: int = 0, limit: int = DEFAULT_LIMIT
    ) -> list[Post]:
        """Return one page of the posts carrying the tag ``name``, newest first."""
        check_page(skip=skip, limit=limit)
        return list((await db.scalars(posts_by_tag(name).offset(skip).limit(limit))).all())


user = CRUDUser(User)
post = CRUDPost(Post)
tag = CRUDTag(Tag)
