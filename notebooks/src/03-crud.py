# %% [markdown]
# # 03 · CRUD: create, read, update, delete
#
# The guide builds a generic `CRUDBase` and a specialised `CRUDUser`. blogdata keeps the guide's
# names, so `crud.user.create(db, obj_in=...)` reads the same, but changes what happens inside:
# validation before SQL, hashed passwords, clear errors, and **no [commit](glossary.ipynb#commit)
# inside a CRUD call**: CRUD calls only [flush](glossary.ipynb#flush).
# CRUD is where user input meets the database, so these details decide whether bad input is
# refused politely, whether passwords leak, and whether a failed step leaves half-saved data.
#
# **What you will learn**
#
# - the generic methods: `get`, `get_multi`, `create`, `update`, `remove`, `count`, `exists`;
# - how schemas validate input and keep passwords out of sight;
# - `authenticate`, and why it hashes even for an unknown email;
# - what database errors become (`AlreadyExistsError`, `RelatedRowMissingError`, `NotFoundError`);
# - why the guide's commit-per-call breaks a [unit of work](glossary.ipynb#unit-of-work), and how
#   blogdata's flush-only CRUD fixes it.

# %%
from pydantic import ValidationError
from sqlalchemy import func, select

from blogdata import Post, PostCreate, User, UserCreate, UserUpdate, crud
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_03
from blogdata.schemas import UserRead
from blogdata.security import get_password_hash
from blogdata.seed import DEMO_PASSWORD

nb = await tutorial_database("03-crud")
nb

# %% [markdown]
# ## Reading with the generic base
#
# `crud.user`, `crud.post` and `crud.tag` are ready-made objects. Every method takes the
# [session](glossary.ipynb#session) first. We open one session and reuse it in the cells below.

# %%
db = nb.sessions()
await crud.user.count(db), await crud.post.count(db), await crud.tag.count(db)

# %% [markdown]
# `get` looks a row up by primary key and gives `None` when there is none.

# %%
await crud.user.get(db, 1), await crud.user.get(db, 10_000)

# %% [markdown]
# `get_multi` pages through rows. Unlike the guide's version it always sorts, by `id` unless you
# pass `order_by` (a column name, `-` in front for descending), so page 2 never overlaps page 1.

# %%
newest = await crud.user.get_multi(db, skip=0, limit=3, order_by="-created_at")
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
UserRead.model_validate(ada).model_dump(exclude={"created_at", "updated_at", "last_login"})

# %% [markdown]
# ## Updating only what was set
#
# `update` writes the fields you set in `UserUpdate` and leaves the rest alone
# (`exclude_unset`). A new password is hashed again.

# %%
old_hash = ada.hashed_password
await crud.user.update(db, db_obj=ada, obj_in=UserUpdate(full_name="Ada Lovelace", role="author"))
ada.full_name, ada.role, ada.email, ada.hashed_password == old_hash

# %% [markdown]
# ## Translated errors
#
# A second account with the same email violates a unique index. blogdata turns the database's
# error (SQLSTATE 23505) into `AlreadyExistsError`, whose `field` says which value is taken.

# %% tags=["raises-exception"]
await crud.user.create(
    db, obj_in=UserCreate(email="ada@example.org", username="ada2", password="another-secret")
)

# %% [markdown]
# Each write runs in a [SAVEPOINT](glossary.ipynb#savepoint)
# ([notebook 07](07-transactions-and-savepoints.ipynb) takes them apart), so only the failed
# insert was undone: the session is still usable and Ada is still there. (With the guide's code
# the whole session is now in a failed state and every query raises until you call
# `rollback()`.)

# %%
(await crud.user.get_by_email(db, email="ADA@example.org")).username

# %% [markdown]
# A foreign key pointing nowhere (SQLSTATE 23503) becomes `RelatedRowMissingError`.

# %% tags=["raises-exception"]
await crud.post.create(db, obj_in=PostCreate(title="Lost", author_id=99_999))

# %% [markdown]
# The guide's `remove` passes whatever `get` returned to `delete`, so a missing id fails with a
# confusing message about `NoneType`:

# %% tags=["raises-exception"]
async def guide_remove(db, *, id):
    obj = await db.get(User, id)
    await db.delete(obj)
    await db.commit()
    return obj


await guide_remove(db, id=99_999)

# %% [markdown]
# blogdata's `remove` says what is missing instead.

# %% tags=["raises-exception"]
await crud.user.remove(db, id=99_999)

# %% [markdown]
# Nothing above was committed yet: CRUD calls only flush. We commit Ada now, once.

# %%
await db.commit()

# %% [markdown]
# ## Authenticate
#
# `authenticate` returns the user when the email and password match an **active** user, and
# `None` otherwise. Every seeded user has the password `DEMO_PASSWORD`.

# %%
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
# The guide returns early when the email is unknown, skipping the slow hash check. That makes
# "unknown email" answer measurably faster than "wrong password", which tells an attacker which
# emails are registered. blogdata verifies against a dummy hash of the same cost in that case, so
# both paths do one argon2 verification (about 0.1 s, run in a worker thread so the event loop
# keeps serving other tasks).
#
# ## Posts and tags
#
# `PostCreate` takes tag *names*. They are trimmed, lower-cased and de-duplicated, and
# `crud.post.create` reuses existing tags and creates the missing ones.

# %%
tags_before = await crud.tag.count(db)
post = await crud.post.create(
    db,
    obj_in=PostCreate(
        title="Notes on the Analytical Engine",
        author_id=ada.id,
        tags=["Mathematics", " engines ", "mathematics", "any"],
    ),
)
[t.name for t in post.tags], await crud.tag.count(db) - tags_before

# %% [markdown]
# Three distinct names, and only two new tags: `any` already existed. Tags are created with
# `INSERT … ON CONFLICT DO NOTHING` followed by a `SELECT`, so two sessions adding the same new
# tag at the same moment both succeed with one shared row, where a check-then-insert would make
# one of them fail.
#
# Listing by author or by tag works the same way as `get_multi`:

# %%
[p.title for p in await crud.post.get_multi_by_tag(db, name="ENGINES")]

# %%
await db.commit()

# %% [markdown]
# ## The guide's pitfall: a commit inside every CRUD call
#
# The guide's `create` ends with `await db.commit()`. That looks harmless until one operation
# needs several calls. Here is a signup that creates a user and then a welcome post, written
# with the guide's CRUD, where the second step fails:

# %%
async def guide_create(db, model, **values):
    obj = model(**values)
    db.add(obj)
    await db.commit()
    await db.refresh(obj)
    return obj


async def guide_signup(db, email, username):
    user = await guide_create(
        db, User, email=email, username=username, hashed_password=get_password_hash("pw-123456")
    )
    await guide_create(db, Post, title="Welcome! " * 40, author_id=user.id)  # too long: fails

# %% [markdown]
# The welcome post's title is 360 characters, too long for its column:

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
            user = await crud.user.create(session, obj_in=alan)
            await crud.post.create(session, obj_in=PostCreate(title="Welcome!", author_id=user.id))
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
# ## Summary
#
# - blogdata's CRUD keeps the guide's names but checks input first (schemas, `SecretStr`,
#   argon2 hashes, whitelisted sort keys) and turns database errors into `AlreadyExistsError`,
#   `RelatedRowMissingError` and `NotFoundError`.
# - `authenticate` does the same work for an unknown email as for a wrong password, and refuses
#   inactive users, so neither its answer nor its timing gives accounts away.
# - CRUD calls flush and never commit: the caller's unit of work (`async with db.begin()`,
#   `session_scope`, `get_db`) commits every step together or none of them.

# %%
await db.close()
await nb.close()
