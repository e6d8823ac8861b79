# %% [markdown]
# # 02 · Models and relationships
#
# Models describe the blog's tables as typed Python classes: users, their posts, tags on posts,
# and money accounts. Every query, [migration](glossary.ipynb#migration) and DataFrame in the
# later notebooks starts from them, so a wrong type or a forgotten constraint here shows up
# everywhere. This notebook declares the guide's models in plain SQLAlchemy 2.x, compares them
# with blogdata's, and then walks into the most common async surprise: touching a relationship
# or a column that was never loaded.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (engine, session, the Result
# API) · **Time to learn:** 35 minutes
#
# **What you will learn**
#
# - how `Mapped[...]`, `mapped_column` and `relationship(back_populates=..., secondary=...,
#   lazy=...)` declare tables and links, and which columns the guide's models forget;
# - server defaults, and [`onupdate=func.now()`](glossary.ipynb#onupdate) firing on an UPDATE;
# - why every timestamp is `timestamptz`: asyncpg reads a
#   [naive `datetime`](glossary.ipynb#naive-datetime) as the client's local time;
# - the many-to-many table `post_tags`: its primary key, `ON DELETE CASCADE`,
#   `passive_deletes=True`, and what `append` / `remove` / deleting a post do to its rows;
# - how each relationship loads (`selectin` or `raise`), what
#   [`MissingGreenlet`](glossary.ipynb#missinggreenlet) means, and three fixes: `selectinload`,
#   `awaitable_attrs`, [`expire_on_commit=False`](glossary.ipynb#expire-on-commit).

# %%
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_02

nb = await tutorial_database("02-models-and-relationships")
nb

# %% [markdown]
# ## The guide's models, in plain SQLAlchemy 2.x
#
# A declarative model is a class on a `DeclarativeBase`. Each attribute annotated
# `Mapped[...]` is a column: the Python type gives the SQL type, and `Optional[...]` makes it
# nullable; `mapped_column(...)` adds the rest (primary key, length, `unique`, `index`,
# defaults, foreign key). `relationship(...)` is not a column but a link to other objects:
# `back_populates` names the attribute on the other side, so `post.author` and `user.posts`
# stay in step; `secondary` names the table that holds a many-to-many link; `lazy` says when the
# related objects load. Here are the guide's models, verbatim (its `Base` included):

# %%
from datetime import datetime
from typing import Optional

from sqlalchemy import Column, ForeignKey, Integer, String, Table, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.sql import func


class Base(DeclarativeBase):
    pass


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True, index=True)
    email: Mapped[str] = mapped_column(String(255), unique=True, index=True)
    username: Mapped[str] = mapped_column(String(50), unique=True, index=True)
    hashed_password: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    updated_at: Mapped[Optional[datetime]] = mapped_column(onupdate=func.now())

    # Relationships
    posts: Mapped[list["Post"]] = relationship(back_populates="author", lazy="selectin")


class Post(Base):
    __tablename__ = "posts"

    id: Mapped[int] = mapped_column(primary_key=True, index=True)
    title: Mapped[str] = mapped_column(String(255))
    content: Mapped[Optional[str]] = mapped_column(Text)
    author_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())

    # Relationship
    author: Mapped["User"] = relationship(back_populates="posts")
    tags: Mapped[list["Tag"]] = relationship(secondary="post_tags", back_populates="posts")

# Many-to-many junction table
post_tags = Table(
    "post_tags",
    Base.metadata,
    Column("post_id", Integer, ForeignKey("posts.id"), primary_key=True),
    Column("tag_id", Integer, ForeignKey("tags.id"), primary_key=True)
)

class Tag(Base):
    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True, index=True)
    name: Mapped[str] = mapped_column(String(50), unique=True)

    posts: Mapped[list["Post"]] = relationship(secondary="post_tags", back_populates="tags")

# %% [markdown]
# The `CREATE TABLE` these declarations produce for PostgreSQL shows what the annotations
# became:

# %%
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateTable

print(CreateTable(User.__table__).compile(dialect=postgresql.dialect()))

# %% [markdown]
# Notice:
#
# - `Mapped[datetime]` became `TIMESTAMP WITHOUT TIME ZONE`: the guide's timestamps are
#   *naive*, a wall-clock reading with no zone (the section on time zones below shows the cost);
# - `Optional[datetime]` made `updated_at` nullable; everything else is `NOT NULL`;
# - `server_default=func.now()` is in the DDL (`DEFAULT now()`), but `onupdate=func.now()` is not:
#   it is applied by SQLAlchemy when *it* writes an UPDATE;
# - there is no `role` and no `last_login`. The guide's "group by role" query and its "deactivate
#   users whose last login is old" cannot run against this model:

# %% tags=["raises-exception"]
from sqlalchemy import select

select(User.role, func.count(User.id)).group_by(User.role)

# %% [markdown]
# ## blogdata's models
#
# blogdata's models (`blogdata.models`) are declared the same way, with the guide's gaps
# filled. We keep the guide's classes under `guide_*` names and import blogdata's under the
# usual ones:

# %%
guide_base, guide_user, guide_post, guide_tag = Base, User, Post, Tag
guide_post_tags = post_tags

from blogdata.models import Account, Base, Post, Tag, User, post_tags

# %% [markdown]
# Their `Base` maps every `datetime` annotation to `DateTime(timezone=True)` (`timestamptz`)
# through `type_annotation_map`, and mixes in SQLAlchemy's `AsyncAttrs` (used below). The
# relationships of `Post`, as the source declares them:

# %%
import inspect as python_inspect

source = python_inspect.getsource(Post)
print(source[source.index("    author:"):])

# %% [markdown]
# Compared with the guide's:
#
# - `lazy="raise"`: reading `post.author` or `post.tags` without loading them first is an error,
#   not a hidden query (the guide's default, `lazy="select"`, cannot work in async code: see
#   below);
# - `secondary=post_tags` passes the table object itself rather than its name;
# - `passive_deletes=True` leaves the link rows to the database's `ON DELETE CASCADE` (shown
#   with the many-to-many table below);
# - `order_by="Tag.name"`: a post's tags always come back in the same order.
#
# The columns of `users`, with their SQL types and the defaults the *server* fills in:

# %%
import pandas as pd


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


columns(User.__table__)

# %% [markdown]
# Every timestamp is `TIMESTAMP WITH TIME ZONE`; `role` (with a CHECK constraint listing the
# allowed roles) and `last_login` exist; `is_active`, `role` and `created_at` have server
# defaults, so rows inserted by any tool (psql, [COPY](glossary.ipynb#copy), another app) get
# them too, not only rows made through the ORM.
#
# The migrations built the live database from these models. Asking PostgreSQL for its tables
# (through the inspector, which is synchronous, hence `run_sync`) gives the models' tables plus
# Alembic's bookkeeping table:

# %%
from sqlalchemy import inspect

async with nb.engine.connect() as conn:
    live_tables = await conn.run_sync(lambda sync_conn: inspect(sync_conn).get_table_names())
sorted(live_tables), sorted(Base.metadata.tables)

# %% [markdown]
# ## Defaults: Python side, server side, and `onupdate`
#
# A new `User` object has no values yet for the defaulted columns: defaults apply when the row
# is written.

# %%
db = nb.sessions()
ada = User(email="ada@example.com", username="ada", hashed_password="-")
print(ada.is_active, ada.role, ada.created_at)

# %% [markdown]
# After [`flush()`](glossary.ipynb#flush) the INSERT has run. SQLAlchemy fetched the
# server-generated `created_at` in the same statement ([`RETURNING`](glossary.ipynb#returning)), so
# reading it needs no
# extra query:

# %%
from blogdata.diagnostics import count_statements

db.add(ada)
with count_statements(nb.engine) as counter:
    await db.flush()
print(counter.statements)
print(ada.is_active, ada.role, type(ada.created_at).__name__, ada.created_at.tzinfo)

# %% [markdown]
# `updated_at` is declared `onupdate=func.now()`: SQLAlchemy adds `updated_at=now()` to every
# UPDATE it writes for the row. Changing Ada's name and flushing shows it firing:

# %%
ada.full_name = "Ada Lovelace"
with count_statements(nb.engine) as counter:
    await db.flush()
counter.statements

# %% [markdown]
# The new value was computed by the server, and SQLAlchemy did not fetch it back (it does so
# for an INSERT, not for an UPDATE): it marked the attribute as expired.

# %%
inspect(ada).expired_attributes

# %% [markdown]
# Reading an expired attribute needs a query, and a plain attribute read cannot `await` one:
# `ada.updated_at` would raise [`MissingGreenlet`](glossary.ipynb#missinggreenlet), the error
# the pitfall below takes apart. Because blogdata's `Base` includes `AsyncAttrs`, the attribute
# can be awaited instead; it equals the transaction's `now()`:

# %%
updated = await ada.awaitable_attrs.updated_at
updated == await db.scalar(select(func.now()))

# %% [markdown]
# (`await db.refresh(ada, ["updated_at"])` does the same. blogdata's CRUD `update` reloads
# expired columns for you: [notebook 03](03-crud.ipynb).)
#
# ## Time zones: never send a naive `datetime`
#
# The guide filters with `User.created_at >= datetime(2024, 1, 1)` and computes cut-offs with
# `datetime.utcnow()`. Both are *naive*: no `tzinfo`. A `timestamptz` column stores an instant,
# so asyncpg must decide which instant a naive value means, and it picks the **local time zone
# of the Python process** (`datetime.astimezone()` on a naive value does the same). The same
# code then stores different instants on differently configured machines.
#
# To show it, a small script sets a user's `last_login` to a naive and to an aware
# `datetime(2024, 1, 1)` and prints what the database stored, in a transaction it never
# commits. We run it in a separate Python process with `TZ=Asia/Tokyo` (nine hours ahead of
# UTC), as if on a laptop in Tokyo:

# %%
import os
import subprocess
import sys
import tempfile
from pathlib import Path

tz_script = '''
import asyncio, os
from datetime import UTC, datetime
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

SET_LOGIN = text(
    "UPDATE users SET last_login = :sent WHERE id = (SELECT min(id) FROM users) "
    "RETURNING last_login"
)

async def main():
    engine = create_async_engine(os.environ["DEMO_URL"])
    async with engine.connect() as conn:  # never committed: rolled back on close
        for sent in (datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC)):
            stored = await conn.scalar(SET_LOGIN, {"sent": sent})
            print(f"TZ={os.environ['TZ']}  sent {sent.isoformat():<25}  stored {stored}")
    await engine.dispose()

asyncio.run(main())
'''
env = {
    **os.environ,
    "DEMO_URL": nb.engine.url.render_as_string(hide_password=False),
    "TZ": "Asia/Tokyo",
}
with tempfile.TemporaryDirectory() as folder:
    Path(folder, "naive.py").write_text(tz_script)
    done = subprocess.run(
        [sys.executable, "naive.py"], cwd=folder, env=env, capture_output=True, text=True
    )
print(done.stdout, end="")

# %% [markdown]
# The aware `datetime(2024, 1, 1, tzinfo=UTC)` is stored as midnight UTC. The naive
# `datetime(2024, 1, 1)` is stored as **2023-12-31 15:00 UTC**, nine hours early: asyncpg took
# it as midnight in Tokyo. The shift is the process's offset from UTC, so on a machine set to
# UTC (as servers and CI machines often are) it is zero and the bug hides. Every naive parameter shifts the same way: the
# guide's `utcnow()` cut-off (a UTC reading, then taken as Tokyo time) is nine hours off, and
# [notebook 04](04-query-patterns.ipynb) shows the guide's "created since 2024" filter moving.
# The fix is to make every datetime aware: `datetime(2024, 1, 1, tzinfo=UTC)`,
# `datetime.now(UTC)`. Because the columns are `timestamptz`, values *come back* aware (in UTC)
# whatever the client's zone.

# %% [markdown]
# ## Money is `Numeric`, never `float`
#
# The guide's `transfer_funds` takes `amount: float`. Binary floats cannot represent most
# decimal fractions, and the errors add up:

# %%
from decimal import Decimal

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
from blogdata import describe

async with nb.sessions() as db:
    description = await describe(db, "post_tags")
description

# %% [markdown]
# The guide's junction table (declared at the top, now `guide_post_tags`) has the same
# primary key but no `ondelete`:

# %%
{column.name: next(iter(column.foreign_keys)).ondelete for column in guide_post_tags.columns}

# %% [markdown]
# `None` leaves PostgreSQL's default, `NO ACTION`: a post that still has tags cannot be deleted
# until something removes its links. To see it, we give the live table the guide's foreign key
# inside a transaction and roll it back afterwards (PostgreSQL's DDL is transactional):

# %%
from sqlalchemy import delete, text
from sqlalchemy.exc import IntegrityError

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
# [SQLSTATE](glossary.ipynb#sqlstate) 23503 is a foreign-key violation: with the guide's table, a
# `DELETE` from psql, a
# bulk `delete(Post)` or another app fails until the links are gone.
#
# ### Tagging a post: `append` and `remove`
#
# Through the ORM, `Post.tags` is a list. It is a `raise` relationship (more below), so we load
# it with the post. A small helper shows the post's rows in `post_tags`, with each tag's name:

# %%
from sqlalchemy.orm import selectinload

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
post.tags.append(Tag(name="my-new-tag"))
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
# the first access runs a query ([lazy loading](glossary.ipynb#lazy-loading)). In synchronous
# code that is a hidden query; in async code it cannot happen at all, because the attribute access cannot `await`. `lazyload()` switches our
# model back to the guide's behaviour for one query:

# %% tags=["raises-exception"]
from sqlalchemy.orm import lazyload

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
# `AsyncAttrs`). This works for lazy relationships (and expired columns, as above):

# %%
db.expunge_all()
post = await db.scalar(
    select(Post).options(lazyload(Post.tags)).where(Post.tags.any()).order_by(Post.id).limit(1)
)
sorted(tag.name for tag in await post.awaitable_attrs.tags)

# %% [markdown]
# It does not get around `lazy="raise"`: awaiting `Post.author`, which is `raise`, still
# refuses, because `raise` forbids the load itself, not only the hidden one:

# %% tags=["raises-exception"]
await post.awaitable_attrs.author

# %%
await db.close()

# %% [markdown]
# **Fix 3: don't let a commit expire your objects.** A session made with the default
# `expire_on_commit=True` marks every loaded attribute as stale after `commit()`; the next read
# wants to reload it, which is the same hidden IO:

# %% tags=["raises-exception"]
from sqlalchemy.ext.asyncio import AsyncSession

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
# ## Further reading
#
# - SQLAlchemy: [Declarative Mapping Styles](https://docs.sqlalchemy.org/en/20/orm/declarative_styles.html)
#   and [Table Configuration with Declarative](https://docs.sqlalchemy.org/en/20/orm/declarative_tables.html)
#   (`Mapped`, `mapped_column`, `type_annotation_map`)
# - SQLAlchemy: [Basic Relationship Patterns](https://docs.sqlalchemy.org/en/20/orm/basic_relationships.html)
#   (`back_populates`, `secondary`, many-to-many) and
#   [Relationship Loading Techniques](https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html)
#   (`lazy=`, `selectinload`, `raise`)
# - SQLAlchemy: [Using foreign key ON DELETE cascade with ORM relationships](https://docs.sqlalchemy.org/en/20/orm/cascades.html#using-foreign-key-on-delete-cascade-with-orm-relationships)
#   (`passive_deletes`)
# - SQLAlchemy: [Column INSERT/UPDATE Defaults](https://docs.sqlalchemy.org/en/20/core/defaults.html)
#   (`server_default`, `onupdate`)
# - SQLAlchemy: [Preventing Implicit IO when Using AsyncSession](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession)
#   (`AsyncAttrs`, `awaitable_attrs`, `expire_on_commit`)
# - PostgreSQL: [Date/Time Types](https://www.postgresql.org/docs/current/datatype-datetime.html)
#   (`timestamp` vs `timestamptz`) and [Numeric Types](https://www.postgresql.org/docs/current/datatype-numeric.html)
# - asyncpg: [Type Conversion](https://magicstack.github.io/asyncpg/current/usage.html#type-conversion)
#
# ## Summary
#
# - The models are the schema: `Mapped[...]` and `mapped_column` give typed columns, server
#   defaults and `onupdate`; `timestamptz` plus aware datetimes keep instants right whatever the
#   client's `TZ`, and `Numeric` keeps money exact.
# - A many-to-many link is a table of pairs: `post_tags` has the pair as primary key and
#   `ON DELETE CASCADE` on both sides, so `append`/`remove` write and delete link rows and
#   deleting a post takes its links with it, never its tags.
# - In async code a relationship is loaded before it is read (`selectinload`, or `await` on
#   `awaitable_attrs`); `raise` and `MissingGreenlet` say it was not, and
#   `expire_on_commit=False` keeps loaded values readable after a commit.

# %%
await db.close()
await nb.close()
