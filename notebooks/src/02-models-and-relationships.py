# %% [markdown]
# # 02 · Models and relationships
#
# The models in `blogdata.models` describe the blog's tables as typed Python classes: users,
# their posts, tags on posts, and money accounts. This notebook reads the schema from them,
# checks it against the live database, and then walks into the most common async surprise:
# touching a relationship that was never loaded.
#
# **What you will learn**
#
# - how the declarative models map to tables, columns and server defaults;
# - which columns the guide's models forget (`role`, `last_login`), and why money is `Numeric`;
# - how each relationship loads (`selectin` or `raise`), and what `MissingGreenlet` means;
# - three fixes: `selectinload`, `awaitable_attrs`, and `expire_on_commit=False`.
#

# %%
from decimal import Decimal

import pandas as pd
from sqlalchemy import func, inspect, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, lazyload, mapped_column, selectinload

from blogdata import Account, Post, Tag, User
from blogdata.models import Base
from blogdata.notebook import count_statements, tutorial_database

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


columns(User.__table__)

# %% [markdown]
# Notice:
#
# - every timestamp is `TIMESTAMP WITH TIME ZONE` (aware datetimes in UTC);
# - `role` and `last_login` exist. The guide groups users by `User.role` and deactivates them by
#   `User.last_login`, but its `User` model defines neither, so that code cannot run;
# - `is_active`, `role` and `created_at` have server defaults, so rows inserted by any tool
#   (psql, COPY, another app) get them too, not only rows made through the ORM.
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
# After `flush()` the INSERT has run. SQLAlchemy fetched the server-generated `created_at` in
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
# ## Relationships and how they load
#
# Each relationship declares its loading strategy. `User.posts` loads with `selectin`, as in
# the guide: whenever users are loaded, one extra `SELECT … WHERE author_id IN (…)` fetches all
# their posts. Every other relationship is `raise`: touching it without an explicit load is an
# error instead of hidden IO.

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
# the first access runs a query. In synchronous code that is a hidden query; in async code it
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
# Nested loading in one query: the users' posts come with their tags (`selectinload` chained),
# so everything below is plain attribute access.

# %%
async with nb.sessions() as db:
    author = await db.scalar(
        select(User)
        .options(selectinload(User.posts).selectinload(Post.tags))
        .where(User.username == users[0].username)
    )
    latest = sorted(author.posts, key=lambda p: (p.created_at, p.id), reverse=True)[:3]
    for p in latest:
        print(f"{p.created_at:%Y-%m-%d}  {p.title[:40]:<40}  {', '.join(sorted(t.name for t in p.tags))}")

# %% [markdown]
# ## Exercise
#
# Print the titles of the three most recent posts (by `created_at`, then `id`) with their
# author's username. `Post.author` is `raise`: which option makes it available? How many
# statements does your query take?
#
# ### Solution

# %%
async with nb.sessions() as db:
    with count_statements(nb.engine) as counter:
        recent = (
            await db.scalars(
                select(Post)
                .options(selectinload(Post.author))
                .order_by(Post.created_at.desc(), Post.id.desc())
                .limit(3)
            )
        ).all()
    for p in recent:
        print(f"{p.author.username:<20} {p.title[:50]}")
print(counter.count, "statements")

# %% [markdown]
# Two statements: the posts, then their authors (`selectinload(Post.author)`). `User.posts` is
# `selectin`, yet it did not load here: SQLAlchemy does not eagerly load back into a class that
# is already on the loading path (posts → author → posts). `joinedload(Post.author)` would fetch
# the authors in the same statement; notebook 05 compares the two.
#

# %%
await nb.close()
