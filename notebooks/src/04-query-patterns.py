# %% [markdown]
# # 04 · Query patterns: filters, ordering and pagination
#
# The guide's query section shows `where`, `and_`, `order_by(desc(...))` and
# `offset(10).limit(20)`. Each is fine on a fixed example and fragile once a user supplies the
# values: a naive date, a sort key typed into a form, a page number, a search box. Those are
# where wrong answers, SQL injection and duplicated pages come from. `blogdata.queries` wraps
# them in small statement builders that check their input.
#
# **What you will learn**
#
# - filters with `where`, `and_` and `or_`, and why "created since" needs an aware datetime;
# - how a user-chosen sort key becomes an SQL injection, and the whitelist that stops it;
# - offset pagination with a capped `limit`, and why
#   [keyset pagination](glossary.ipynb#keyset-pagination) stays correct while
#   rows are being added;
# - a title search where `%` and `_` in the user's text mean themselves.

# %%
from datetime import UTC, datetime

from sqlalchemy import func, select, text

from blogdata import Post, User
from blogdata.diagnostics import explain, plan_indexes, show_sql
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_04
from blogdata.queries import (
    MAX_LIMIT,
    Keyset,
    active_users,
    fetch_posts_page,
    order_by_clause,
    paginate,
    posts_page,
    search_posts,
    users_created_since,
    users_matching,
)
from blogdata.seed import SEED_NOW

nb = await tutorial_database("04-query-patterns")
db = nb.sessions()
nb

# %% [markdown]
# ## Filters
#
# Every builder returns a `Select`; `show_sql` prints what PostgreSQL receives. (`db` is one
# [session](glossary.ipynb#session), opened in the setup cell and reused below.) The boolean test
# is written `is_(True)`, which reads better than the guide's `== True` and says the same.

# %%
show_sql(active_users())

# %% [markdown]
# Executing it gives `User` objects; `scalars()` unwraps the one-column rows.

# %%
users = (await db.scalars(active_users())).all()
len(users), users[0].username

# %% [markdown]
# The guide filters `created_at >= datetime(2024, 1, 1)`: a *naive* datetime compared with a
# `timestamptz` column. Which instant that means depends on conventions outside the code, so
# `users_created_since` refuses it:

# %% tags=["raises-exception"]
users_created_since(datetime(2025, 6, 1))

# %% [markdown]
# With a time zone attached the question is unambiguous.

# %%
since = datetime(2025, 6, 1, tzinfo=UTC)
await db.scalar(select(func.count()).select_from(users_created_since(since).subquery()))

# %% [markdown]
# `users_matching` combines conditions with `and_`, and matches a piece of text against the
# username, the email *or* the full name with `or_`. (`literal=True` shows the values inline,
# for reading; the real statement sends them as parameters.)

# %%
since = datetime(2025, 1, 1, tzinfo=UTC)
stmt = users_matching(active=True, roles=["editor", "admin"], created_since=since, text="an")
show_sql(stmt, literal=True)

# %%
[(u.username, u.role) for u in (await db.scalars(stmt)).all()]

# %% [markdown]
# ## Ordering by a key the user chose
#
# A web page or a notebook widget often lets the reader pick the sort column. The tempting code
# pastes that string into the query. Here is what a "sort key" can then do: each value below is
# a yes/no question about a password hash, and the *order* of the rows answers it.

# %%
def sorted_users_unsafe(key):
    return select(User.id).order_by(text(key)).limit(3)


question = (
    "CASE WHEN (SELECT hashed_password FROM users WHERE id = 1) LIKE '{}%' THEN id ELSE -id END"
)
for guess in ["$2b$", "$argon2id$"]:
    print(f"{guess:11}", (await db.scalars(sorted_users_unsafe(question.format(guess)))).all())

# %% [markdown]
# Ascending ids mean "yes": the hash is argon2id. Guess by guess, such keys can read any column
# of any table. `order_by_clause` looks each key up among the model's columns and never puts
# the text into SQL; an unknown key is an error, with a suggestion when it looks like a typo.

# %% tags=["raises-exception"]
order_by_clause(User, question.format("$argon2id$"))

# %% tags=["raises-exception"]
order_by_clause(Post, "-titel")

# %% [markdown]
# A valid key becomes an ORDER BY term, `-` meaning descending; the primary key is appended as
# a tie-breaker so that rows with equal values keep a fixed order from page to page.

# %%
show_sql(select(Post.id).order_by(*order_by_clause(Post, ["-views", "title"])))

# %% [markdown]
# ## Offset pagination
#
# `paginate` adds `OFFSET`/`LIMIT` after checking them. The guide's `offset(10).limit(20)` has
# no `ORDER BY`, so PostgreSQL may return the rows of "page 2" in any order; always sort first.

# %%
newest_first = select(Post).order_by(*order_by_clause(Post, "-created_at"))
page1 = (await db.scalars(paginate(newest_first, skip=0, limit=3))).all()
[(p.id, p.title) for p in page1]

# %% [markdown]
# Negative values and oversized pages are refused with a message that says what to do.

# %% tags=["raises-exception"]
paginate(newest_first, skip=-3, limit=3)

# %% tags=["raises-exception"]
paginate(newest_first, skip=0, limit=MAX_LIMIT + 1)

# %% [markdown]
# Offsets have a subtler problem. While the reader looks at page 1, someone publishes a post.
# Every older post moves down one place, so page 2 starts with the last post of page 1 again:

# %%
author = await db.get(User, 1)
db.add(Post(title="Breaking: a new post", author=author, created_at=SEED_NOW))
await db.commit()
page2 = (await db.scalars(paginate(newest_first, skip=3, limit=3))).all()
[(p.id, p.title) for p in page2]

# %% [markdown]
# ## Keyset pagination
#
# Keyset (or "seek") pagination remembers where the page
# ended, the last row's `(created_at, id)`, and asks for rows strictly after it.

# %%
keyset_page1 = await fetch_posts_page(db, limit=3)
keyset_page1.next

# %% [markdown]
# The next page's statement is `posts_page(after=...)`: a row comparison,
# `(created_at, id) < (…, …)`, newest first. The index on `(created_at, id)` serves it, so
# PostgreSQL starts right at the key instead of counting rows from the top:

# %%
show_sql(posts_page(after=keyset_page1.next, limit=3))
plan_indexes(await explain(db, posts_page(after=keyset_page1.next, limit=3)))

# %% [markdown]
# Another post arrives between the two pages; the next page still starts right after the last
# post we saw.

# %%
db.add(Post(title="Breaking: another post", author=author, created_at=SEED_NOW))
await db.commit()
keyset_page2 = await fetch_posts_page(db, after=keyset_page1.next, limit=3)
[(p.id, p.title) for p in keyset_page2.items]

# %% [markdown]
# The new posts appear when the reader goes back to the first page, and no post is shown twice
# or skipped. The price: you can only go to the *next* page, not jump to page 17.
#
# ## Searching titles
#
# A search box usually becomes `title ILIKE '%' || text || '%'`. The user's `%` and `_` are
# wildcards there too. We add two posts whose titles contain them:

# %%
db.add_all(
    [
        Post(title="100% test coverage", author=author, created_at=SEED_NOW),
        Post(title="Naming things in snake_case", author=author, created_at=SEED_NOW),
    ]
)
await db.commit()

# %% [markdown]
# Searching for `%` with a plain pattern matches every title, and `_` matches any character:

# %%
for needle in ["%", "_"]:
    unsafe = select(func.count()).where(Post.title.ilike(f"%{needle}%"))
    print(repr(needle), await db.scalar(unsafe))

# %% [markdown]
# `search_posts` escapes them, so they match themselves, case-insensitively:

# %%
for needle in ["%", "_", "SNAKE"]:
    print(repr(needle), [p.title for p in (await db.scalars(search_posts(needle))).all()])

# %% [markdown]
# SQL text typed into the search box is just text to look for; the tables are untouched.

# %%
print((await db.scalars(search_posts("'; DROP TABLE users; --"))).all())
await db.scalar(select(func.count()).select_from(User))

# %% [markdown]
# ## Worked example: a searchable, sortable, paged user list
#
# The pieces combine: a filter from `users_matching`, a user-chosen sort key checked by
# `order_by_clause` (`order_by(None)` drops the builder's default order), then a checked page.

# %%
requested_sort, requested_page = "-created_at", 0
stmt = users_matching(active=True, text="an").order_by(None)
stmt = stmt.order_by(*order_by_clause(User, requested_sort))
page = (await db.scalars(paginate(stmt, skip=requested_page * 5, limit=5))).all()
[(u.username, u.created_at.date().isoformat()) for u in page]

# %% [markdown]
# ## Exercise
#
# Write `async def keyset_pages(db, word, per_page)` that lists the posts whose title contains
# `word` (in any case), newest first, with keyset pagination: one query per page, each
# `posts_page(after=..., limit=per_page)` with a `where` added, each page starting after the
# last post of the previous one (`Keyset(post.created_at, post.id)`). It returns the list of
# pages, each page a list of post ids: `[[id, id], [id, id], ...]`. Try it with a word of your
# choice and `per_page=2`, then set `answer` to the function itself: the check calls it with a
# word and a page size of its own and reads the SQL of every page.

# %%
answer = ...  # your keyset_pages function (no call)

# %%
await check_exercise_04(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
async def keyset_pages(db, word, per_page):
    pages, after = [], None
    while True:
        stmt = posts_page(after=after, limit=per_page).where(Post.title.ilike(f"%{word}%"))
        rows = (await db.scalars(stmt)).all()
        if rows:
            pages.append([p.id for p in rows])
        if len(rows) < per_page:
            return pages
        after = Keyset(rows[-1].created_at, rows[-1].id)


answer = keyset_pages
await check_exercise_04(answer, db)

# %% [markdown]
# A page shorter than 2 is the last one. (`fetch_posts_page` knows that one page earlier: it
# asks for one row more than it shows.)
#
# ## Summary
#
# - Build queries from checked pieces: aware datetimes for time filters, `and_`/`or_` for
#   conditions, and user text only as bound values (escaped for `LIKE`), never as SQL.
# - A sort key from a user goes through a whitelist (`order_by_clause`), with the primary key as
#   a tie-breaker, so it can neither inject SQL nor shuffle rows between pages.
# - Offset pages are simple but shift when rows arrive; keyset pages continue strictly after the
#   last row seen, served by the `(created_at, id)` index.

# %%
await db.close()
await nb.close()
