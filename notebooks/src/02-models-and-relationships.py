# %% [markdown]
# # 02 · Models and relationships
#
# The models in `blogdata.models` describe the blog's tables as typed Python classes: users,
# their posts, tags on posts, and money accounts. Every query,
# [migration](glossary.ipynb#migration) and DataFrame in the later notebooks starts from them,
# so a wrong type or a forgotten constraint here shows up everywhere. This notebook reads the schema from the models, checks it against the live
# database, takes the many-to-many link between posts and tags apart, and then walks into the
# most common async surprise: touching a relationship that was never loaded.
#
# **What you will learn**
#
# - how the declarative models map to tables, columns and server defaults;
# - which columns the guide's models forget (`role`, `last_login`), and why money is `Numeric`;
# - the many-to-many table `post_tags`: its primary key, its `ON DELETE CASCADE`, and what
#   `post.tags.append` / `.remove` and deleting a post do to its rows;
# - how each relationship loads (`selectin` or `raise`), and what
#   [`MissingGreenlet`](glossary.ipynb#missinggreenlet) means;
# - three fixes: `selectinload`, `awaitable_attrs`, and
#   [`expire_on_commit=False`](glossary.ipynb#expire-on-commit).

# %%
from decimal import Decimal

import pandas as pd
from sqlalchemy import Column, ForeignKey, Integer, Table, delete, func, inspect, select, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, lazyload, mapped_column, selectinload

from blogdata import Account, Post, Tag, User, describe
from blogdata.diagnostics import count_statements
from blogdata.models import Base, post_tags
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_02

nb = await tutorial_database("02-models-and-relationships")
nb

# %% [markdown]
# ## The schema, from the models
#
# Every model registers its table in `Base.metadata`. These are the tables, with the comment
# each one carries into the database:

# %%
for table in Base.metadata.sorted_tables:
    print(f"{table.name:<10} {table.comment}")

# %% [markdown]
# `sorted_tables` lists them in dependency order: a table comes after the tables it points to.
# Here are the columns of `users`, with their SQL types and the defaults the *server* fills in:

# %%
def columns(table):
    """One row per column: type, nullability and server default."""
    return pd.DataFrame(
        [
            {
                "column": col.name,
                "type": col.type.compile(dialect=postgresql.dialect()),
                "nullable": col.nullable,
                "server default": "" if col.server_default is None else str(col.server_default.arg),
            }
            for col in table.columns
        ]
    ).set_index("column")

# %% [markdown]
# The `users` table:

# %%
columns(User.__table__)

# %% [markdown]
# Notice:
#
# - every timestamp is `TIMESTAMP WITH TIME ZONE` (aware datetimes in UTC);
# - `role` and `last_login` exist. The guide groups users by `User.role` and deactivates them by
#   `User.last_login`, but its `User` model defines neither, so that code cannot run;
# - `is_active`, `role` and `created_at` have server defaults, so rows inserted by any tool
#   (psql, [COPY](glossary.ipynb#copy), another app) get them too, not only rows made through the ORM.
#
# Here is the guide's `User`, reduced to its columns, on a base of its own, and the guide's
# "group by role" query:

# %% tags=["raises-exception"]
class GuideBase(DeclarativeBase):
    pass


class GuideUser(GuideBase):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str]
    username: Mapped[str]
    hashed_password: Mapped[str]
    is_active: Mapped[bool] = mapped_column(default=True)


select(GuideUser.role, func.count(GuideUser.id)).group_by(GuideUser.role)

# %% [markdown]
# blogdata's `User` has `role` (with a CHECK constraint listing the allowed roles) and
# `last_login`, so the guide's role counts and inactivity cut-offs work.
#
# The migrations built the live database from the same models. Asking PostgreSQL for its tables
# (through the inspector, which is synchronous, hence `run_sync`) gives the same list, plus
# Alembic's bookkeeping table:

# %%
async with nb.engine.connect() as conn:
    live_tables = await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names())
sorted(live_tables)

# %% [markdown]
# `tutorial_database` also seeded a demo blog. How many rows does each table hold?

# %%
async with nb.sessions() as db:
    counts = {
        model.__tablename__: await db.scalar(select(func.count()).select_from(model))
        for model in (User, Account, Tag, Post)
    }
counts

# %% [markdown]
# ## Defaults: Python side and server side
#
# A new `User` object has no values yet for the defaulted columns: defaults apply when the row
# is written.

# %%
db = nb.sessions()
ada = User(email="ada@example.com", username="ada", hashed_password="-")
print(ada.is_active, ada.role, ada.created_at)

# %% [markdown]
# After [`flush()`](glossary.ipynb#flush) the INSERT has run. SQLAlchemy fetched the server-generated `created_at` in
# the same statement (`RETURNING`), so reading it needs no extra query:

# %%
db.add(ada)
await db.flush()
print(ada.is_active, ada.role, type(ada.created_at).__name__, ada.created_at.tzinfo)

# %% [markdown]
# ## Money is `Numeric`, never `float`
#
# The guide's `transfer_funds` takes `amount: float`. Binary floats cannot represent most
# decimal fractions, and the errors add up:

# %%
print(sum([0.10] * 10), sum([Decimal("0.10")] * 10))

# %% [markdown]
# `Account.balance` is `Numeric(12, 2)`: PostgreSQL stores exact decimals and the driver returns
# `Decimal`. Totals come out exact:

# %%
await db.scalar(select(func.sum(Account.balance)))

# %% [markdown]
# And the guide's float amount does not even mix with a `Decimal` balance:

# %% tags=["raises-exception"]
account = await db.scalar(select(Account).order_by(Account.id).limit(1))
account.balance -= 0.1

# %%
await db.rollback()
await db.close()

# %% [markdown]
# ## Many-to-many: posts and tags
#
# A post carries several tags and a tag labels many posts, so neither table can hold the link.
# A third table does: `post_tags`, one row per (post, tag) pair. It is a plain `Table`, not a
# model class, and it is all foreign keys:

# %%
for column in post_tags.columns:
    (fk,) = column.foreign_keys
    print(f"{column.name:<8} {column.type}  → {fk.target_fullname:<9} ON DELETE {fk.ondelete}")
print("primary key:", [column.name for column in post_tags.primary_key])

# %% [markdown]
# - The primary key is the *pair*: a post carries a tag at most once, and the key's index finds
#   a post's tags. A second index on `tag_id` finds a tag's posts.
# - Both foreign keys say `ON DELETE CASCADE`: when a post (or a tag) is deleted, PostgreSQL
#   deletes its rows here itself.
#
# `describe` shows the same table as the live database has it, with the constraint names the
# migrations gave it:

# %%
async with nb.sessions() as db:
    description = await describe(db, "post_tags")
description

# %% [markdown]
# The guide's junction table, verbatim (on the guide's metadata from above), has the same
# primary key but no `ondelete`:

# %%
guide_post_tags = Table(  # the guide calls it post_tags
    "post_tags",
    GuideBase.metadata,
    Column("post_id", Integer, ForeignKey("posts.id"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tags.id"), primary_key=True)
)
{column.name: next(iter(column.foreign_keys)).ondelete for column in guide_post_tags.columns}

# %% [markdown]
# `None` leaves PostgreSQL's default, `NO ACTION`: a post that still has tags cannot be deleted
# until something removes its links. To see it, we give the live table the guide's foreign key
# inside a transaction and roll it back afterwards (PostgreSQL's DDL is transactional):

# %%
async with nb.engine.connect() as conn:
    tagged_id = await conn.scalar(select(func.min(post_tags.c.post_id)))
    await conn.execute(text("ALTER TABLE post_tags DROP CONSTRAINT fk_post_tags_post_id_posts"))
    await conn.execute(text("ALTER TABLE post_tags ADD FOREIGN KEY (post_id) REFERENCES posts"))
    try:
        await conn.execute(delete(Post).where(Post.id == tagged_id))
    except IntegrityError as exc:
        print("DELETE refused:", exc.orig.sqlstate, type(exc.orig.__cause__).__name__)
    await conn.rollback()  # the original foreign key is back

# %% [markdown]
# SQLSTATE 23503 is a foreign-key violation: with the guide's table, a `DELETE` from psql, a
# bulk `delete(Post)` or another app fails until the links are gone.
#
# ### Tagging a post: `append` and `remove`
#
# Through the ORM, `Post.tags` is a list. It is a `raise` relationship (more below), so we load
# it with the post. A small helper shows the post's rows in `post_tags`, with each tag's name:

# %%
db = nb.sessions()
post = await db.scalar(select(Post).options(selectinload(Post.tags)).where(Post.id == tagged_id))


async def links(post_id):
    """The rows of post_tags for ``post_id``: (post_id, tag_id, tag name), by name."""
    stmt = select(post_tags, Tag.name).join(Tag, Tag.id == post_tags.c.tag_id)
    return (await db.execute(stmt.where(post_tags.c.post_id == post_id).order_by(Tag.name))).all()


await links(post.id)

# %% [markdown]
# Appending a new `Tag` to the list and flushing writes two rows: the tag, then the link.

# %%
post.tags.append(Tag(name="sqlalchemy"))
with count_statements(nb.engine) as counter:
    await db.flush()
counter.statements

# %% [markdown]
# The new link is in `post_tags` (inside our transaction: nothing is committed):

# %%
await links(post.id)

# %% [markdown]
# `remove` deletes the link row, and only the link row: the tag stays, for the other posts
# that carry it.

# %%
removed = post.tags[0]
post.tags.remove(removed)
with count_statements(nb.engine) as counter:
    await db.flush()
print(counter.statements)
print(removed.name, "still a tag:", await db.get(Tag, removed.id) is not None)

# %%
await links(post.id)

# %% [markdown]
# ### Deleting a post
#
# We delete the same post, fetched afresh so that its tags are not loaded, and count what the
# ORM sends. `expunge_all()` empties the [session](glossary.ipynb#session)'s
# [identity map](glossary.ipynb#identity-map), so `db.get` builds a new `Post` object:

# %%
db.expunge_all()
doomed = await db.get(Post, tagged_id)
tag_ids = [row.tag_id for row in await links(tagged_id)]
with count_statements(nb.engine) as counter:
    await db.delete(doomed)
    await db.flush()
counter.statements

# %% [markdown]
# One `DELETE FROM posts`, nothing else: `Post.tags` has `passive_deletes=True`, so SQLAlchemy
# leaves the links to the database. `ON DELETE CASCADE` removed them, and the tags remain:

# %%
links_left = await links(tagged_id)
tags_left = await db.scalar(select(func.count()).select_from(Tag).where(Tag.id.in_(tag_ids)))
print("links left:", links_left, "| tags left:", tags_left, "of", len(tag_ids))

# %% [markdown]
# We roll all of that back, so the rest of the notebook sees the seeded blog:

# %%
await db.rollback()
await db.close()

# %% [markdown]
# ## Relationships and how they load
#
# Each relationship declares its loading strategy. `User.posts` loads with `selectin`, as in
# the guide: whenever users are loaded, one extra `SELECT … WHERE author_id IN (…)` fetches all
# their posts ([eager loading](glossary.ipynb#eager-loading)). Every other relationship is
# `raise`: touching it without an explicit load is an error instead of hidden IO.

# %%
{
    f"{mapper.class_.__name__}.{rel.key}": rel.lazy
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__name__)  # a set
    for rel in mapper.relationships
}

# %% [markdown]
# Loading three users costs two statements: the users, then their posts.

# %%
db = nb.sessions()
with count_statements(nb.engine) as counter:
    users = (await db.scalars(select(User).order_by(User.id).limit(3))).all()
print(counter.count, "statements;", [(user.username, len(user.posts)) for user in users])

# %% [markdown]
# `Post.author` is `raise`. We did not ask for it, so reading it fails at once, with the name of
# the relationship:

# %% tags=["raises-exception"]
post = await db.scalar(select(Post).where(Post.tags.any()).order_by(Post.id).limit(1))
post.author

# %% [markdown]
# ## The pitfall: lazy loading in async code
#
# The guide declares `Post.tags` without a loading strategy, which means the default, `lazy`:
# the first access runs a query ([lazy loading](glossary.ipynb#lazy-loading)). In synchronous code that is a hidden query; in async code it
# cannot happen at all, because the attribute access cannot `await`. `lazyload()` switches our
# model back to the guide's behaviour for one query:

# %% tags=["raises-exception"]
db.expunge_all()  # forget the objects loaded so far, so the next query builds fresh ones
post = await db.scalar(
    select(Post).options(lazyload(Post.tags)).where(Post.tags.any()).order_by(Post.id).limit(1)
)
post.tags

# %% [markdown]
# `MissingGreenlet` is SQLAlchemy's way of saying "this needed IO, and you are in async code
# without an `await`". Three fixes:
#
# **Fix 1: load it eagerly in the query** with `selectinload` (one extra `SELECT … IN`):

# %%
post = await db.scalar(
    select(Post).options(selectinload(Post.tags)).where(Post.tags.any()).order_by(Post.id).limit(1)
)
sorted(tag.name for tag in post.tags)

# %% [markdown]
# **Fix 2: await the attribute** through `awaitable_attrs` (our `Base` includes SQLAlchemy's
# `AsyncAttrs`). This works for lazy relationships; `raise` relationships still refuse.

# %%
db.expunge_all()
post = await db.scalar(
    select(Post).options(lazyload(Post.tags)).where(Post.tags.any()).order_by(Post.id).limit(1)
)
sorted(tag.name for tag in await post.awaitable_attrs.tags)

# %%
await db.close()

# %% [markdown]
# **Fix 3: don't let a commit expire your objects.** A session made with the default
# `expire_on_commit=True` marks every loaded attribute as stale after `commit()`; the next read
# wants to reload it, which is the same hidden IO:

# %% tags=["raises-exception"]
async with AsyncSession(nb.engine) as plain:  # expire_on_commit=True, the library default
    user = await plain.scalar(select(User).order_by(User.id).limit(1))
    await plain.commit()
    user.username

# %% [markdown]
# blogdata's factories (`nb.sessions`, `get_db`, `session_scope`) use `expire_on_commit=False`,
# as the guide does, so the values you loaded stay readable:

# %%
async with nb.sessions() as db:
    user = await db.scalar(select(User).order_by(User.id).limit(1))
    await db.commit()
    print(user.username)

# %% [markdown]
# ## Worked example: a user's latest posts with their tags
#
# Nested loading, declared in one statement: the user's posts come with their tags
# (`selectinload` chained, one `SELECT` per level), so everything below is plain attribute
# access. A post's tags come sorted by name (the relationship's `order_by`).

# %%
nested = selectinload(User.posts).selectinload(Post.tags)
with count_statements(nb.engine) as counter:
    async with nb.sessions() as db:
        author = await db.scalar(
            select(User).options(nested).where(User.username == users[0].username)
        )
latest = sorted(author.posts, key=lambda p: (p.created_at, p.id), reverse=True)[:3]
for p in latest:
    print(f"{p.created_at:%Y-%m-%d}  {p.title[:40]:<40}  {', '.join(t.name for t in p.tags)}")
print(counter.count, "statements: users, their posts, the posts' tags")

# %% [markdown]
# ## Exercise
#
# Write `async def newest_posts(db, n)` that returns the `n` most recent posts (by
# `created_at`, then `id`, newest first) as a list of `(author's username, title)` pairs. Let
# PostgreSQL sort and cut, and remember that `Post.author` is `raise`: which loader option makes
# it available? Try it with `await newest_posts(db, 3)`, then set `answer` to the function
# itself: the check calls it with another `n` and counts the statements it sends.

# %%
answer = ...  # your newest_posts function (no call)

# %%
db = nb.sessions()
await check_exercise_02(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def newest_posts(db, n):
    newest_first = select(Post).order_by(Post.created_at.desc(), Post.id.desc()).limit(n)
    recent = (await db.scalars(newest_first.options(selectinload(Post.author)))).all()
    return [(p.author.username, p.title) for p in recent]


with count_statements(nb.engine) as counter:
    print(await newest_posts(db, 3))
print(counter.count, "statements")
answer = newest_posts
await check_exercise_02(answer, db)

# %% [markdown]
# Two statements: the posts, then their authors (`selectinload(Post.author)`). `User.posts` is
# `selectin`, yet it did not load here: SQLAlchemy does not eagerly load back into a class that
# is already on the loading path (posts → author → posts). `joinedload(Post.author)` would fetch
# the authors in the same statement; [notebook 05](05-relationship-loading.ipynb) compares the
# two.
#
# ## Summary
#
# - The models are the schema: typed columns, server defaults, `Numeric` money and named
#   constraints, which the migrations turn into the live tables.
# - A many-to-many link is a table of pairs: `post_tags` has the pair as primary key and
#   `ON DELETE CASCADE` on both sides, so `append`/`remove` write and delete link rows and
#   deleting a post takes its links with it, never its tags.
# - In async code a relationship is loaded before it is read (`selectinload`, or `await` on
#   `awaitable_attrs`); `raise` and `MissingGreenlet` say it was not, and
#   `expire_on_commit=False` keeps loaded values readable after a commit.

# %%
await db.close()
await nb.close()
