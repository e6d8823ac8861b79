# %% [markdown]
# # 03 · CRUD: create, read, update, delete
#
# The guide builds a generic `CRUDBase` and a specialised `CRUDUser`. CRUD is where user input
# meets the database, so its details decide whether bad input is refused politely, whether
# passwords leak, and whether a failed step leaves half-saved data. This notebook runs the
# guide's `CRUDBase` as written, then blogdata's, which keeps the guide's names
# (`crud.user.create(db, obj_in=...)`) but changes what happens inside: validation before SQL,
# hashed passwords, clear errors, and **no [commit](glossary.ipynb#commit) inside a CRUD
# call**: CRUD calls only [flush](glossary.ipynb#flush).
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (sessions, the Result API),
# [notebook 02](02-models-and-relationships.ipynb) (the models) · **Time to learn:** 35 minutes
#
# **What you will learn**
#
# - the guide's `CRUDBase` as written: what `get`, `get_multi`, `create` send, and the failed
#   session a duplicate leaves behind;
# - reading with `select`: `and_`, `or_`, `desc()`, `offset().limit()`, with their SQL;
# - blogdata's CRUD: validated schemas, argon2 hashes, translated errors
#   (`AlreadyExistsError`, `RelatedRowMissingError`, `NotFoundError`), a session that survives a
#   failed write;
# - `authenticate`, and what the guide's version gives away by its timing;
# - tags created with [`INSERT … ON CONFLICT DO NOTHING`](glossary.ipynb#on-conflict-do-nothing),
#   run by two sessions at once;
# - why the guide's commit-per-call breaks a [unit of work](glossary.ipynb#unit-of-work).

# %%
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_03

nb = await tutorial_database("03-crud")
nb

# %% [markdown]
# ## The guide's `CRUDBase`, as written
#
# The guide's generic base, verbatim. It is generic over the model and two pydantic schemas
# (what `create` and `update` accept); its `Base` is the declarative base of the models
# ([notebook 02](02-models-and-relationships.ipynb)), here blogdata's.

# %%
from typing import TypeVar, Generic, Type, Optional, List
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from pydantic import BaseModel

from blogdata.models import Base

ModelType = TypeVar("ModelType", bound=Base)
CreateSchemaType = TypeVar("CreateSchemaType", bound=BaseModel)
UpdateSchemaType = TypeVar("UpdateSchemaType", bound=BaseModel)

class CRUDBase(Generic[ModelType, CreateSchemaType, UpdateSchemaType]):
    def __init__(self, model: Type[ModelType]):
        self.model = model

    async def get(self, db: AsyncSession, id: int) -> Optional[ModelType]:
        result = await db.execute(
            select(self.model).where(self.model.id == id)
        )
        return result.scalar_one_or_none()

    async def get_multi(
        self, db: AsyncSession, *, skip: int = 0, limit: int = 100
    ) -> List[ModelType]:
        result = await db.execute(
            select(self.model).offset(skip).limit(limit)
        )
        return result.scalars().all()

    async def create(
        self, db: AsyncSession, *, obj_in: CreateSchemaType
    ) -> ModelType:
        db_obj = self.model(**obj_in.model_dump())
        db.add(db_obj)
        await db.commit()
        await db.refresh(db_obj)
        return db_obj

    async def update(
        self, db: AsyncSession, *, db_obj: ModelType, obj_in: UpdateSchemaType
    ) -> ModelType:
        update_data = obj_in.model_dump(exclude_unset=True)
        for field, value in update_data.items():
            setattr(db_obj, field, value)
        db.add(db_obj)
        await db.commit()
        await db.refresh(db_obj)
        return db_obj

    async def remove(self, db: AsyncSession, *, id: int) -> ModelType:
        obj = await self.get(db, id=id)
        await db.delete(obj)
        await db.commit()
        return obj

# %% [markdown]
# We run it on tags, with a one-field schema as its `CreateSchemaType`. `get` is a `select`
# with a `WHERE` on the primary key, read with `scalar_one_or_none()` (one object or `None`):

# %%
from blogdata.diagnostics import count_statements
from blogdata.models import Tag


class TagIn(BaseModel):
    name: str


guide_tags = CRUDBase(Tag)
db = nb.sessions()
with count_statements(nb.engine) as counter:
    found, missing = await guide_tags.get(db, 1), await guide_tags.get(db, 10_000)
print(counter.statements[0])
found.id, missing

# %% [markdown]
# `get_multi` is `select(...).offset(skip).limit(limit)` with **no `ORDER BY`**: PostgreSQL may
# return the rows in any order, so "page 2" is not defined (more below).

# %%
with count_statements(nb.engine) as counter:
    page = await guide_tags.get_multi(db, skip=0, limit=3)
print(counter.statements[0])
len(page)

# %% [markdown]
# `create` adds the object, **commits**, and refreshes it (`refresh` reloads the row: a second
# `SELECT`):

# %%
with count_statements(nb.engine) as counter:
    created = await guide_tags.create(db, obj_in=TagIn(name="guide-demo"))
print(*counter.statements, sep="\n")
created.name

# %% [markdown]
# Creating the same name again violates the tags' unique constraint; the database refuses the
# INSERT during the commit's flush, and SQLAlchemy raises the driver's error:

# %% tags=["raises-exception"]
await guide_tags.create(db, obj_in=TagIn(name="guide-demo"))

# %% [markdown]
# Worse, the session is now unusable: its transaction was rolled back by the failed flush, and
# every further statement raises until someone calls `rollback()`, even a plain read:

# %% tags=["raises-exception"]
await guide_tags.get(db, 1)

# %% [markdown]
# In a web app the guide's `get_db` ([notebook 01](01-engine-and-sessions.ipynb)) rolls back at
# the end of the request, so the request fails as a whole; in a script or a notebook the session
# stays broken until you do it yourself:

# %%
await db.rollback()
(await guide_tags.get(db, 1)).id

# %% [markdown]
# ## Reading with `select`: `and_`, `or_`, `desc()`, `offset().limit()`
#
# CRUD's `get_multi` is one statement; real reads combine conditions. `and_` and `or_` build
# the `WHERE` clause (several arguments to `.where()` are joined with `AND` too), `desc()` sorts
# descending, and `offset().limit()` cuts out a page. The SQL is shown beside:

# %%
from sqlalchemy import and_, desc, or_

from blogdata.diagnostics import show_sql
from blogdata.models import User

active_writers = (
    select(User)
    .where(and_(User.is_active.is_(True), or_(User.role == "author", User.role == "editor")))
    .order_by(desc(User.created_at), desc(User.id))
    .offset(3)
    .limit(3)
)
show_sql(active_writers)

# %% [markdown]
# (The guide writes `User.is_active == True`; `.is_(True)` gives `IS true` and keeps linters
# quiet.) The second page of three, newest first:

# %%
[(u.id, u.role, u.is_active) for u in (await db.scalars(active_writers)).all()]

# %% [markdown]
# A pager also shows how many rows there are in all: `func.count()` with the same `WHERE`
# (`whereclause` is the statement's combined condition):

# %%
from sqlalchemy import func

total = select(func.count()).select_from(User).where(active_writers.whereclause)
show_sql(total)
await db.scalar(total)

# %% [markdown]
# The `ORDER BY` ends with the primary key, so every row has exactly one place in the order and
# the pages of an unchanging table neither overlap nor skip rows. That does not hold while rows
# are being inserted: a new row shifts every later row by one, so the next offset page repeats
# a row. [Notebook 04](04-query-patterns.ipynb) shows it and the cure, keyset pagination.
#
# ## blogdata's CRUD: reading
#
# `crud.user`, `crud.post` and `crud.tag` are ready-made objects; every method takes the
# [session](glossary.ipynb#session) first. Besides the guide's methods they have `count` and
# `exists`:

# %%
from blogdata import crud

await crud.user.count(db) > 0, await crud.user.exists(db, 1), await crud.user.get(db, 10_000)

# %% [markdown]
# `get_multi` always sorts: by `id` unless you pass `order_by` (a column name, `-` in front for
# descending), with the primary key appended as the tie-breaker:

# %%
with count_statements(nb.engine) as counter:
    newest = await crud.user.get_multi(db, skip=0, limit=3, order_by="-created_at")
print(counter.statements[0])
[(u.id, u.username) for u in newest]

# %% [markdown]
# The sort key usually comes from a user (a query string, a widget). It is checked against the
# model's columns, and a typo gets a suggestion instead of an SQL error.

# %% tags=["raises-exception"]
await crud.user.get_multi(db, order_by="-creatd_at")

# %% [markdown]
# ## Creating a user: validation first
#
# `UserCreate` checks the input before any SQL runs: a real email address, a username of 3 to 50
# letters, digits, `_`, `.` or `-`, and a password of 8 to 128 characters.

# %%
from pydantic import ValidationError

from blogdata import UserCreate

try:
    UserCreate(email="ada-at-example.org", username="a", password="short")
except ValidationError as exc:
    for error in exc.errors():
        print(error["loc"][0], "→", error["msg"])

# %% [markdown]
# A valid schema keeps the password as a `SecretStr`: it never shows in a `repr`, a log line or
# an error message. The email is lower-cased, so `Ada@…` and `ada@…` cannot become two accounts.

# %%
signup = UserCreate(email="Ada@Example.org", username="ada.l", password="analytical-engine")
signup

# %% [markdown]
# `crud.user.create` hashes the password with argon2 and stores only the hash.

# %%
ada = await crud.user.create(db, obj_in=signup)
ada.id, ada.hashed_password.startswith("$argon2id$"), "analytical-engine" in ada.hashed_password

# %% [markdown]
# For the outside world, `UserRead` has no password field at all, so a hash cannot leak through
# an API response or a DataFrame built from it.

# %%
from blogdata.schemas import UserRead

UserRead.model_validate(ada).model_dump(exclude={"created_at", "updated_at", "last_login"})

# %% [markdown]
# ## Updating only what was set
#
# `update` writes the fields you set in `UserUpdate` and leaves the rest alone
# (`exclude_unset`, as in the guide). A new password is hashed again.

# %%
from blogdata import UserUpdate

old_hash = ada.hashed_password
await crud.user.update(db, db_obj=ada, obj_in=UserUpdate(full_name="Ada Lovelace", role="author"))
ada.full_name, ada.role, ada.email, ada.hashed_password == old_hash

# %% [markdown]
# ## Translated errors, and a session that survives them
#
# A second account with the same email violates a unique index, as the guide's duplicate tag
# did. blogdata turns the database's error (SQLSTATE 23505) into `AlreadyExistsError`, whose
# `field` says which value is taken:

# %% tags=["raises-exception"]
await crud.user.create(
    db, obj_in=UserCreate(email="ada@example.org", username="ada2", password="another-secret")
)

# %% [markdown]
# Each write runs in a [SAVEPOINT](glossary.ipynb#savepoint)
# ([notebook 07](07-transactions-and-savepoints.ipynb) takes them apart), so only the failed
# insert was undone. Unlike the guide's session above, this one is still usable, and Ada (not
# yet committed) is still there:

# %%
(await crud.user.get_by_email(db, email="ADA@example.org")).username

# %% [markdown]
# A foreign key pointing nowhere (SQLSTATE 23503) becomes `RelatedRowMissingError`.

# %% tags=["raises-exception"]
from blogdata import PostCreate

await crud.post.create(db, obj_in=PostCreate(title="Lost", author_id=99_999))

# %% [markdown]
# The guide's `remove` passes whatever `get` returned to `delete`, so a missing id fails with a
# message about `NoneType`:

# %% tags=["raises-exception"]
await CRUDBase(User).remove(db, id=99_999)

# %% [markdown]
# blogdata's `remove` says what is missing instead.

# %% tags=["raises-exception"]
await crud.user.remove(db, id=99_999)

# %% [markdown]
# Nothing above was committed yet: blogdata's CRUD calls only flush. We commit Ada now, once.

# %%
await db.commit()

# %% [markdown]
# ## Authenticate
#
# The guide's `CRUDUser`, verbatim (its `get_password_hash` and `verify_password` are
# blogdata's argon2 functions here):

# %%
from blogdata import UserCreate, UserUpdate
from blogdata.security import get_password_hash, verify_password

class CRUDUser(CRUDBase[User, UserCreate, UserUpdate]):
    async def get_by_email(
        self, db: AsyncSession, *, email: str
    ) -> Optional[User]:
        result = await db.execute(
            select(User).where(User.email == email)
        )
        return result.scalar_one_or_none()

    async def create(
        self, db: AsyncSession, *, obj_in: UserCreate
    ) -> User:
        db_obj = User(
            email=obj_in.email,
            username=obj_in.username,
            hashed_password=get_password_hash(obj_in.password)
        )
        db.add(db_obj)
        await db.commit()
        await db.refresh(db_obj)
        return db_obj

    async def authenticate(
        self, db: AsyncSession, *, email: str, password: str
    ) -> Optional[User]:
        user = await self.get_by_email(db, email=email)
        if not user:
            return None
        if not verify_password(password, user.hashed_password):
            return None
        return user

user = CRUDUser(User)

# %% [markdown]
# For an unknown email it returns before the password check, and the password check (argon2)
# is deliberately slow. So "unknown email" answers measurably faster than "wrong password",
# which tells an attacker which emails are registered. Timing both, for the guide's version and
# for blogdata's (which verifies against a dummy hash of the same cost when the email is
# unknown):

# %%
# NBVAL_IGNORE_OUTPUT
import time


async def seconds(authenticate, email):
    """Time one failed login: ``email`` with a wrong password."""
    start = time.perf_counter()
    await authenticate(db, email=email, password="not-the-password")
    return time.perf_counter() - start


for name, authenticate in [("guide", user.authenticate), ("blogdata", crud.user.authenticate)]:
    unknown = await seconds(authenticate, "nobody@example.org")
    wrong = await seconds(authenticate, "ada@example.org")
    print(f"{name:<9} unknown email {unknown * 1000:6.1f} ms   wrong password {wrong * 1000:6.1f} ms")

# %% [markdown]
# The guide's two failures differ by the cost of one argon2 verification; blogdata's take about
# the same time. (The output of that cell is not checked, since timings vary from run to run;
# run it again to see the pattern hold.) blogdata's `authenticate` also refuses inactive users,
# which the guide's does not check. Every seeded user has the password `DEMO_PASSWORD`:

# %%
from blogdata.seed import DEMO_PASSWORD

inactive = await db.scalar(select(User).where(User.is_active.is_(False)).order_by(User.id))
checks = {
    "right password": ("ada@example.org", "analytical-engine"),
    "wrong password": ("ada@example.org", "difference-engine"),
    "unknown email": ("nobody@example.org", "analytical-engine"),
    "inactive user": (inactive.email, DEMO_PASSWORD),
}
for case, (email, password) in checks.items():
    print(f"{case:15} →", await crud.user.authenticate(db, email=email, password=password))

# %% [markdown]
# The guide's `authenticate` lets the inactive user in:

# %%
await user.authenticate(db, email=inactive.email, password=DEMO_PASSWORD) is not None

# %% [markdown]
# ## Posts and tags
#
# `PostCreate` takes tag *names*. They are trimmed, lower-cased and de-duplicated, and
# `crud.post.create` reuses existing tags and creates the missing ones. `guide-demo` exists
# (the guide's `create` committed it above):

# %%
tags_before = await crud.tag.count(db)
post = await crud.post.create(
    db,
    obj_in=PostCreate(
        title="Notes on the Analytical Engine",
        author_id=ada.id,
        tags=["Mathematics-Notes", " engines ", "mathematics-notes", "guide-demo"],
    ),
)
[t.name for t in post.tags], await crud.tag.count(db) - tags_before

# %% [markdown]
# Three distinct names, and only two new tags. Listing by tag works like `get_multi`:

# %%
[p.title for p in await crud.post.get_multi_by_tag(db, name="ENGINES")]

# %%
await db.commit()

# %% [markdown]
# ### Two sessions creating the same tag at once (advanced)
#
# *Skip this on first reading.* Tags are created with `INSERT … ON CONFLICT DO NOTHING`
# followed by a `SELECT`. The alternative, check-then-insert, looks the name up and inserts it
# when it is missing. To see the difference, `race` runs one of them in two sessions: the
# first inserts and has not committed yet when the second starts. The second's INSERT then waits
# for the first's transaction (a watcher connection polls `pg_blocking_pids` until it does), the
# first commits, and we see what the second makes of it:

# %%
import asyncio

from sqlalchemy import text


async def race(add_tag, name):
    """Run ``add_tag(session, name)`` in two sessions, the second while the first is uncommitted."""
    first, second = nb.sessions(), nb.sessions()
    try:
        second_pid = await second.scalar(text("SELECT pg_backend_pid()"))
        first_tag = await add_tag(first, name)  # inserted, not committed
        racing = asyncio.create_task(add_tag(second, name))
        waiting = text("SELECT cardinality(pg_blocking_pids(:pid)) > 0")
        async with nb.engine.connect() as watcher:
            while not await watcher.scalar(waiting, {"pid": second_pid}):
                await asyncio.sleep(0.01)
        print("second session waits for the first: True")
        await first.commit()
        try:
            second_tag = await racing
            await second.commit()
            print("both succeeded, with the same row:", second_tag.id == first_tag.id)
        except Exception as exc:
            print("second session failed:", type(exc).__name__, exc.orig.sqlstate)
    finally:
        await first.close()
        await second.close()


async def check_then_insert(db, name):
    """Look the tag up; insert it when missing."""
    tag = await db.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        tag = Tag(name=name)
        db.add(tag)
        await db.flush()
    return tag


await race(check_then_insert, "raced-by-check")

# %% [markdown]
# Both sessions checked before either had committed, so both inserted; the second insert waited
# for the first transaction and then failed on the unique constraint (SQLSTATE 23505). With
# blogdata's `get_or_create_many`, the second insert waits the same way, then skips the row
# (`DO NOTHING`), and its `SELECT`, which under READ COMMITTED sees rows committed since, finds
# the first session's tag:

# %%
async def on_conflict_do_nothing(db, name):
    """blogdata's get-or-create: INSERT … ON CONFLICT DO NOTHING, then SELECT."""
    (tag,) = await crud.tag.get_or_create_many(db, names=[name])
    return tag


await race(on_conflict_do_nothing, "raced-by-upsert")

# %% [markdown]
# ## The guide's pitfall: a commit inside every CRUD call
#
# The guide's `create` ends with `await db.commit()`. That looks harmless until one operation
# needs several calls. Here is a signup that creates a user and then a welcome post with the
# guide's `CRUDBase`, where the second step fails (a title of 360 characters, too long for its
# column):

# %%
from blogdata.models import Post


class GuideUserIn(BaseModel):
    email: str
    username: str
    hashed_password: str


class GuidePostIn(BaseModel):
    title: str
    author_id: int


async def guide_signup(db, email, username):
    new_user = await CRUDBase(User).create(
        db, obj_in=GuideUserIn(email=email, username=username, hashed_password="-")
    )
    await CRUDBase(Post).create(
        db, obj_in=GuidePostIn(title="Welcome! " * 40, author_id=new_user.id)
    )

# %% [markdown]
# Running it:

# %%
async with nb.sessions() as session:
    try:
        await guide_signup(session, "grace@example.org", "grace")
    except Exception as exc:
        print("the welcome post failed:", type(exc.orig.__cause__).__name__)

# %% [markdown]
# The post failed, yet the user was already committed: the signup stopped half-way and left an
# account without its welcome post. Nothing can roll it back any more.

# %%
(await crud.user.get_by_username(db, username="grace")).email

# %% [markdown]
# blogdata's CRUD methods only flush. The caller decides where the transaction starts and ends
# (`async with db.begin()`, or `session_scope()` and `get_db()` from
# [notebook 01](01-engine-and-sessions.ipynb)), so all the steps commit together or not at all:

# %%
async with nb.sessions() as session:
    try:
        async with session.begin():
            alan = UserCreate(email="alan@example.org", username="alan", password="pw-123456")
            new_user = await crud.user.create(session, obj_in=alan)
            await crud.post.create(
                session, obj_in=PostCreate(title="Welcome!", author_id=new_user.id)
            )
            raise RuntimeError("payment service down")  # any later step failing
    except RuntimeError as exc:
        print("signup failed:", exc)

print(await crud.user.get_by_username(db, username="alan"))

# %% [markdown]
# No `alan`: the user and the post were rolled back together.
#
# ## Worked example: one unit of work
#
# A signup that succeeds: create the user, publish a first post with tags, and promote the user
# to author, all committed once at the end of the `begin()` block.

# %%
async with nb.sessions() as session, session.begin():
    joan = await crud.user.create(
        session, obj_in=UserCreate(email="joan@example.org", username="joan", password="pw-123456")
    )
    first = await crud.post.create(
        session, obj_in=PostCreate(title="Hello, blog", author_id=joan.id, tags=["intro"])
    )
    await crud.user.update(session, db_obj=joan, obj_in=UserUpdate(role="author"))

joan = await crud.user.get_by_username(db, username="joan")
joan.role, [p.title for p in await crud.post.get_multi_by_author(db, author_id=joan.id)]

# %% [markdown]
# ## Exercise
#
# Write `async def deactivate(db, email)`: find the user with that email, deactivate them with
# `crud.user.update` (`UserUpdate(is_active=False)`), commit, and return the number of active
# users, counted by PostgreSQL with a `select`. Run it on Ada and check that `authenticate` no
# longer accepts her correct password (`"analytical-engine"`). Then set `answer` to the function
# itself: the check runs it on another user (and makes that user active again afterwards),
# watching for the commit and the count.

# %%
answer = ...  # your deactivate function (no call)

# %%
await check_exercise_03(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def deactivate(db, email):
    user = await crud.user.get_by_email(db, email=email)
    await crud.user.update(db, db_obj=user, obj_in=UserUpdate(is_active=False))
    await db.commit()
    active = select(func.count()).select_from(User).where(User.is_active.is_(True))
    return await db.scalar(active)


print(await deactivate(db, "ada@example.org"), "active users")
print(await crud.user.authenticate(db, email="ada@example.org", password="analytical-engine"))
answer = deactivate
await check_exercise_03(answer, db)

# %% [markdown]
# `authenticate` refuses an inactive user even with the right password, and the commit made the
# change visible to every other session.
#
# ## Further reading
#
# - SQLAlchemy: [Using SELECT Statements](https://docs.sqlalchemy.org/en/20/tutorial/data_select.html)
#   (`where`, `and_`, `or_`, `order_by`, `desc`) and the
#   [ORM Querying Guide](https://docs.sqlalchemy.org/en/20/orm/queryguide/select.html)
# - SQLAlchemy: [Data Manipulation with the ORM](https://docs.sqlalchemy.org/en/20/tutorial/orm_data_manipulation.html)
#   (`add`, `flush`, `commit`, `delete`) and
#   [Session Basics](https://docs.sqlalchemy.org/en/20/orm/session_basics.html)
#   (the failed-flush state: "flushing" and rollback)
# - SQLAlchemy: [INSERT…ON CONFLICT (Upsert)](https://docs.sqlalchemy.org/en/20/dialects/postgresql.html#insert-on-conflict-upsert)
# - PostgreSQL: [INSERT, the ON CONFLICT clause](https://www.postgresql.org/docs/current/sql-insert.html#SQL-ON-CONFLICT)
#   and [LIMIT and OFFSET](https://www.postgresql.org/docs/current/queries-limit.html)
# - PostgreSQL: [Read Committed isolation](https://www.postgresql.org/docs/current/transaction-iso.html#XACT-READ-COMMITTED)
# - pydantic: [Models](https://docs.pydantic.dev/latest/concepts/models/) and
#   [`SecretStr`](https://docs.pydantic.dev/latest/api/types/#pydantic.types.SecretStr)
#
# ## Summary
#
# - The guide's `CRUDBase` sorts nothing and leaves a session that must be rolled back after a
#   failed write; blogdata's CRUD keeps its names but checks input first (schemas, `SecretStr`,
#   argon2 hashes, checked sort keys with an `id` tie-breaker) and turns database errors into
#   `AlreadyExistsError`, `RelatedRowMissingError` and `NotFoundError` while the session
#   survives.
# - `authenticate` does the same work for an unknown email as for a wrong password, and refuses
#   inactive users, so neither its answer nor its timing gives accounts away.
# - CRUD calls flush and never commit: the caller's unit of work (`async with db.begin()`,
#   `session_scope`, `get_db`) commits every step together or none of them.

# %%
await db.close()
await nb.close()
