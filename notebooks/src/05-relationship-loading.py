# %% [markdown]
# # 05 · Relationship loading: N+1, selectinload and joinedload
#
# Loading a list of posts and then each post's tags one by one costs one query for the list
# plus one per post: the [N+1 problem](glossary.ipynb#n-plus-one).
# [Eager loading](glossary.ipynb#eager-loading) fetches the related rows up front, in a fixed
# handful of queries. Here we count the statements each strategy runs on the same data.
#
# **Prerequisites:** [notebook 02](02-models-and-relationships.ipynb) (models and
# relationships), [notebook 04](04-query-patterns.ipynb) (`select` and the Result API) ·
# **Time to learn:** 30 minutes
#
# **What you will learn**
# - how a relationship is declared (`relationship(back_populates=..., secondary=..., lazy=...)`)
#   and why blogdata's raise instead of loading silently;
# - N+1 [lazy loading](glossary.ipynb#lazy-loading) with `lazyload` and `awaitable_attrs`,
#   counted with `count_statements`;
# - `selectinload` (one extra `SELECT … IN` per 500 parent rows) versus `joinedload` (one
#   `JOIN`), with their SQL;
# - when a result needs `.unique()`, and when the guide calls it for nothing;
# - nested loading: users, their posts and the posts' tags, one statement per level;
# - blogdata's builders that wrap these options.

# %%
from sqlalchemy import select

from blogdata import Post, Tag, User
from blogdata.diagnostics import count_statements
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_05

nb = await tutorial_database("05-relationship-loading")
db = nb.sessions()
await db.scalar(select(1))  # start the session's transaction before we count anything
nb

# %% [markdown]
# ## How the relationships are declared
#
# A relationship is declared on the model with `relationship(...)`. Here are `Post`'s two, read
# from blogdata's models module: `author` is many-to-one (through the `author_id` foreign key),
# `tags` many-to-many through the `post_tags` table (`secondary=`). `back_populates` names the
# attribute on the other side that the ORM keeps in step (`Tag.posts`, `User.posts`).

# %%
import inspect

from blogdata import models

post_source = inspect.getsource(models.Post)
print(post_source[post_source.index("    author:") :].rstrip())

# %% [markdown]
# (`passive_deletes=True` lets the database's `ON DELETE CASCADE` remove a deleted post's
# `post_tags` rows; [notebook 02](02-models-and-relationships.ipynb) shows the single `DELETE`
# it leads to.) `lazy=` says what happens when code reads the attribute and it was not loaded. SQLAlchemy's
# default, `lazy="select"`, quietly runs a query there and then; in async code that IO cannot
# happen inside a plain attribute access, so it fails with the cryptic
# [`MissingGreenlet`](glossary.ipynb#missinggreenlet) of
# [notebook 02](02-models-and-relationships.ipynb). blogdata declares `lazy="raise"`: touching
# tags that were not loaded is an immediate, clear error.

# %% tags=["raises-exception"]
post = await db.scalar(select(Post).order_by(Post.id).limit(1))
post.tags

# %% [markdown]
# The models' base class includes `AsyncAttrs`, which adds `awaitable_attrs`: `await
# post.awaitable_attrs.tags` runs the lazy load in an awaitable way. It does not override
# `lazy="raise"`, though; the relationship still refuses:

# %% tags=["raises-exception"]
await post.awaitable_attrs.tags

# %% [markdown]
# `User.posts` is the exception: it keeps the guide's `lazy="selectin"`, which we meet below.

# %%
user_source = inspect.getsource(models.User)
print(user_source[user_source.index("    posts:") : user_source.index("    accounts:")].rstrip())

# %% [markdown]
# ## N+1: one query per post
#
# To see the cost of lazy loading, we switch it back on for one query: the
# [loader option](glossary.ipynb#loader-option)
# `lazyload(Post.tags)` turns `Post.tags` into `lazy="select"` for the objects this statement
# loads. Then `awaitable_attrs` can load each post's tags. Ten posts:

# %%
from sqlalchemy.orm import lazyload

db.expunge_all()
newest10 = select(Post).options(lazyload(Post.tags)).order_by(Post.id.desc()).limit(10)
with count_statements(db) as lazy:
    posts = (await db.scalars(newest10)).all()
    lazy_tags = {p.id: sorted(t.name for t in await p.awaitable_attrs.tags) for p in posts}
lazy.count

# %% [markdown]
# Eleven statements: the list, then the same tag query once per post, each a network round trip.
# With 1,000 posts it would be 1,001. This is the first of the ten lazy loads:

# %%
print(lazy.statements[1])

# %% [markdown]
# ## selectinload: one more query for the related rows
#
# `selectinload` runs the list query, then one query for the tags of all those posts, with
# their ids in an `IN (...)` list. (`expunge_all` empties the session's
# [identity map](glossary.ipynb#identity-map), so nothing is reused from the previous cell.)

# %%
from sqlalchemy.orm import selectinload

db.expunge_all()
newest10 = select(Post).options(selectinload(Post.tags)).order_by(Post.id.desc()).limit(10)
with count_statements(db) as selectin:
    posts = (await db.scalars(newest10)).all()
selectin.count, {p.id: sorted(t.name for t in p.tags) for p in posts} == lazy_tags

# %%
print(selectin.statements[1])

# %% [markdown]
# ### ...but not "two queries, whatever the number of posts"
#
# An `IN` list cannot grow without bound, so SQLAlchemy sends the parent ids in chunks of at
# most 500: one extra statement per 500 posts. We load 500, 501 and 1,000 posts and count the
# `$n` placeholders of each `IN` list:

# %%
for n in (500, 501, 1000):
    db.expunge_all()
    stmt = select(Post).options(selectinload(Post.tags)).order_by(Post.id).limit(n)
    with count_statements(db) as c:
        loaded = (await db.scalars(stmt)).all()
    chunks = [statement.count("$") for statement in c.statements[1:]]
    print(f"{len(loaded):5} posts: {c.count} statements, IN lists of {chunks}")

# %% [markdown]
# 1,000 posts take three statements: the list, then two chunks of 500 ids. The 501st post alone
# costs a round trip of its own. So `selectinload` runs `1 + ⌈N / 500⌉` statements for N parent
# rows: still nothing like N+1, but it grows. The chunks hold *parent* keys, not related rows:
# one tag with a thousand posts is still one `IN` list of one id.
#
# ## joinedload: one query, repeated parent rows
#
# `joinedload` adds a `LEFT OUTER JOIN` to the same statement. Because we asked for 10 posts,
# SQLAlchemy puts the `LIMIT` in a subquery, so the join cannot cut a post's tags short.

# %%
from sqlalchemy.orm import joinedload

db.expunge_all()
newest10 = select(Post).options(joinedload(Post.tags)).order_by(Post.id.desc()).limit(10)
with count_statements(db) as joined:
    result = await db.execute(newest10)
print(joined.statements[0])

# %% [markdown]
# A post with three tags comes back as three rows. SQLAlchemy refuses to hand out the
# duplicated `Post` objects unless you ask it to de-duplicate them:

# %% tags=["raises-exception"]
result.scalars().all()

# %% [markdown]
# `.unique()` merges the repeated rows into one object per post:

# %%
result = await db.execute(newest10)
posts = result.unique().scalars().all()
len(posts), joined.count, {p.id: sorted(t.name for t in p.tags) for p in posts} == lazy_tags

# %% [markdown]
# How many rows did the join send for those 10 posts? One per (post, tag) pair, and one for
# each post without tags:

# %%
from sqlalchemy import func

from blogdata import post_tags

ten = select(Post.id).order_by(Post.id.desc()).limit(10).subquery()
links = post_tags.c.post_id == ten.c.id
await db.scalar(select(func.count()).select_from(ten).join(post_tags, links, isouter=True))

# %% [markdown]
# The three strategies side by side, on the same 10 posts:

# %%
for name, counter in [("lazy (N+1)", lazy), ("selectinload", selectin), ("joinedload", joined)]:
    print(f"{name:13} {counter.count:3} {'statement' if counter.count == 1 else 'statements'}")

# %% [markdown]
# Rule of thumb: `selectinload` for collections (no duplicated rows, one extra query per 500
# parents), and `joinedload` for a single related object, such as a post's author, where the
# join adds columns but no rows.
#
# ## Many-to-one: joinedload without unique()
#
# The guide calls `.unique()` after `joinedload(Post.author)`. It does no harm, but it is not
# needed: each post has one author, so no row repeats, and SQLAlchemy does not ask for it.

# %%
db.expunge_all()
with count_statements(db) as c:
    stmt = select(Post).options(joinedload(Post.author)).order_by(Post.id).limit(3)
    posts = (await db.scalars(stmt)).all()
c.count, [(p.id, p.author.username) for p in posts]

# %% [markdown]
# ## The guide's `lazy="selectin"` on `User.posts`
#
# The guide declares `User.posts` with `lazy="selectin"`, and blogdata keeps it. So every query
# for users also loads **all** their posts, even when you only want names:

# %%
db.expunge_all()
with count_statements(db) as c:
    users = (await db.scalars(select(User).order_by(User.id).limit(5))).all()
c.count, sum(len(u.posts) for u in users)

# %% [markdown]
# Two statements, and every post of those five users loaded just to show five usernames.
# Override it per query when you do not need the posts: `raiseload` skips the load (and raises
# if the code touches `posts` anyway).

# %%
from sqlalchemy.orm import raiseload

db.expunge_all()
with count_statements(db) as c:
    stmt = select(User).options(raiseload(User.posts)).order_by(User.id).limit(5)
    names = [u.username for u in (await db.scalars(stmt)).all()]
c.count, names

# %% [markdown]
# ## Nested loading
#
# Loader options chain along a path. `selectinload(User.posts).selectinload(Post.tags)` loads
# users, then their posts, then those posts' tags: one statement per level, as long as no level
# has more than 500 parent rows (each further 500 adds a statement, as above).

# %%
db.expunge_all()
with count_statements(db) as c:
    stmt = select(User).options(selectinload(User.posts).selectinload(Post.tags))
    users = (await db.scalars(stmt.order_by(User.id).limit(5))).all()
    tags_used = {u.username: len({t.name for p in u.posts for t in p.tags}) for u in users}
c.count, tags_used

# %% [markdown]
# ## blogdata's loading builders
#
# `blogdata.queries` wraps these options in statement builders, so that a caller cannot forget
# the load: `posts_with_author()` is `select(Post)` with `joinedload(Post.author)`,
# `posts_with_tags(loading=...)` loads the tags with `selectinload` (`"selectin"`, the default),
# `joinedload` (`"joined"`) or `lazyload` (`"lazy"`), and refuses anything else, and `users_with_posts_and_tags()` is the nested path above.
# Each runs the statements its plain version ran:

# %%
from blogdata.queries import posts_with_author, posts_with_tags, users_with_posts_and_tags

builders = {
    "posts_with_author()": posts_with_author(),
    "posts_with_tags()": posts_with_tags(),
    "users_with_posts_and_tags()": users_with_posts_and_tags(),
}
for name, stmt in builders.items():
    db.expunge_all()
    with count_statements(db) as c:
        (await db.scalars(stmt.limit(5))).unique().all()
    print(f"{name:28} {c.count} {'statement' if c.count == 1 else 'statements'}")

# %% tags=["raises-exception"]
posts_with_tags(loading="subquery")

# %% [markdown]
# ## Worked example: a post list page
#
# A page of the 5 newest posts shows each title, its author and its tags. Author by join (one
# object per post), tags by selectin (a collection): two statements in total.

# %%
db.expunge_all()
page = (
    select(Post)
    .options(joinedload(Post.author), selectinload(Post.tags))
    .order_by(Post.created_at.desc(), Post.id.desc())
    .limit(5)
)
with count_statements(db) as c:
    posts = (await db.scalars(page)).all()
for p in posts:
    print(f"{p.title[:30]:30}  by {p.author.username:18} {sorted(t.name for t in p.tags)}")
c.count

# %% [markdown]
# ## Exercise
#
# Write a function `tag_with_posts(name)` that returns a statement (not its result) loading the
# tag called `name` with all its posts and each post's author, so that reading `tag.posts` and
# `post.author` afterwards runs no more SQL. Use the rule of thumb above (no join for a
# collection) and as few statements as it allows. Set `answer` to the function itself: the check
# calls it for a tag of its own choosing, runs the statement, counts its statements and reads
# the relationships.

# %%
answer = ...  # your tag_with_posts function (no call)

# %%
await check_exercise_05(answer, db)

# %% [markdown]
# ### Solution
#
# The posts are a collection: `selectinload`. Each post's author is one object: `joinedload`,
# chained after it so that it joins into the posts' query. Two statements.

# %% tags=["solution"]
from sqlalchemy.orm import joinedload, selectinload


def tag_with_posts(name):
    return (
        select(Tag)
        .where(Tag.name == name)
        .options(selectinload(Tag.posts).joinedload(Post.author))
    )


answer = tag_with_posts
await check_exercise_05(answer, db)

# %% [markdown]
# ## Further reading
#
# - SQLAlchemy ORM Querying Guide, [Relationship Loading Techniques](https://docs.sqlalchemy.org/en/20/orm/queryguide/relationships.html):
#   `lazyload`, `selectinload`, `joinedload`, `raiseload`, and why joined eager loading of a
#   collection needs `unique()`.
# - [Basic Relationship Patterns](https://docs.sqlalchemy.org/en/20/orm/basic_relationships.html):
#   many-to-one, one-to-many and many-to-many (`secondary=`) with `back_populates`.
# - [Asynchronous I/O (asyncio)](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html#preventing-implicit-io-when-using-asyncsession):
#   preventing implicit IO, `AsyncAttrs` and `awaitable_attrs`.
# - SQLAlchemy Unified Tutorial, [Working with ORM Related Objects](https://docs.sqlalchemy.org/en/20/tutorial/orm_related_objects.html).

# %% [markdown]
# ## Summary
#
# - Lazy loading runs one query per parent row (N+1); blogdata's relationships raise instead,
#   so every query says how it loads what it needs.
# - `selectinload` adds one `SELECT … IN` per 500 parent rows (three statements for 1,000 posts);
#   use it for collections.
# - `joinedload` loads in the same statement; for a collection it repeats parent rows and needs
#   `.unique()`, for a single related object (an author) it needs neither.

# %%
await db.close()
await nb.close()
