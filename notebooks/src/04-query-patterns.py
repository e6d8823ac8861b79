# %% [markdown]
# # 04 · Query patterns: filters, ordering and pagination
#
# The guide's query section shows `where`, `and_`, `order_by(desc(...))` and
# `offset(10).limit(20)`. Each is fine on a fixed example and fragile once a user supplies the
# values: a naive date, a sort key typed into a form, a page number, a search box. Those are
# where wrong answers, SQL injection and duplicated pages come from. We first write each pattern
# in plain SQLAlchemy, with the SQL it sends, then use the small statement builders of
# `blogdata.queries` that check their input.
#
# **Prerequisites:** [notebook 01](01-engine-and-sessions.ipynb) (engine and session),
# [notebook 03](03-crud.ipynb) (reading rows) · **Time to learn:** 30 minutes
#
# **What you will learn**
#
# - `select()` with `where`, `and_`, `or_`, `desc()` and `offset().limit()`, and what each
#   becomes in SQL;
# - the Result API: `execute`, `scalars`, `scalar`, `scalar_one`, `all`;
# - why "created since" needs an aware datetime: a naive one means another instant in another
#   time zone;
# - how a user-chosen sort key becomes an SQL injection, and the whitelist that stops it;
# - offset pagination with a capped `limit`, and why
#   [keyset pagination](glossary.ipynb#keyset-pagination) stays correct while rows are being
#   added;
# - a title search where `%` and `_` in the user's text mean themselves;
# - (advanced) the same filters in a bulk `UPDATE`: the guide's `deactivate_old_users`.

# %%
from datetime import UTC, datetime

from sqlalchemy import func, select

from blogdata import Post, User
from blogdata.diagnostics import show_sql
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_04

nb = await tutorial_database("04-query-patterns")
db = nb.sessions()
nb

# %% [markdown]
# ## The guide's queries in plain SQLAlchemy
#
# A query is a `Select` statement, built with `select(...)` and methods that each return a new
# statement. Nothing runs until a [session](glossary.ipynb#session) executes it. (`db` is one
# session, opened in the setup cell and reused below.) `show_sql` prints the statement compiled
# for PostgreSQL and asyncpg, the SQL the server receives, with each bound value on a
# `-- $n = …` line. The guide's first filter:

# %%
stmt = select(User).where(User.is_active == True)  # noqa: E712 (the guide's spelling)
show_sql(stmt)

# %% [markdown]
# `User.is_active == True` is not compared in Python: SQLAlchemy overloads `==` on a column to
# build SQL (the `# noqa` only silences a linter that takes it for Python).
# `User.is_active.is_(True)` writes `IS true`, the same test for a `NOT NULL` column.
#
# ### The Result API
#
# `await db.execute(stmt)` returns a `Result`, an iterator of `Row`s, each a named tuple with one
# item per selected column. Its methods say what shape you want back:
#
# | call | returns |
# |---|---|
# | `result.all()` | every row, as `Row` tuples |
# | `result.scalars().all()` | the first column of every row (here: `User` objects) |
# | `result.first()` | the first row, or `None` |
# | `result.scalar()` | the first column of the first row, or `None` |
# | `result.scalar_one()` | exactly one row's first column, else an error |
# | `result.unique()` | the same rows with duplicates removed (needed after `joinedload` of a collection, [notebook 05](05-relationship-loading.ipynb)) |
#
# `await db.scalars(stmt)` is `(await db.execute(stmt)).scalars()` and `await db.scalar(stmt)`
# is `(await db.execute(stmt)).scalar()`. Two columns give `Row`s:

# %%
result = await db.execute(select(User.id, User.username).order_by(User.id).limit(3))
rows = result.all()
rows, rows[0].username

# %% [markdown]
# One column, or a whole entity, is easier to handle with `scalars()`:

# %%
first_three = (await db.scalars(select(User).order_by(User.id).limit(3))).all()
[user.username for user in first_three]

# %% [markdown]
# One value: `scalar()`.

# %%
await db.scalar(select(func.count()).select_from(User))

# %% [markdown]
# `scalar()` does not check how many rows came back: no row gives `None`, many rows give the
# first one's value, silently:

# %%
no_row = await db.scalar(select(User.id).where(User.id == -1))
many_rows = await db.scalar(select(User.id).order_by(User.id))
no_row, many_rows

# %% [markdown]
# `scalar_one()` checks that exactly one row came back, and fails loudly otherwise:

# %% tags=["raises-exception"]
(await db.execute(select(User).where(User.id == -1))).scalar_one()

# %% [markdown]
# A `Result` is read once. The `result` above was consumed by its `all()`; asking again gives
# nothing. Keep the list, not the result:

# %%
result.all()

# %% [markdown]

# ### `and_`, `or_`, `desc()`, `offset().limit()`
#
# The guide imports `and_`, `or_` and `desc` from `sqlalchemy`. `and_` joins conditions with
# `AND`. Its date is the first trap, taken up in the next section; here we give it a time
# zone:

# %%
from sqlalchemy import and_, desc, or_

since = datetime(2025, 1, 1, tzinfo=UTC)
stmt = select(User).where(and_(User.is_active == True, User.created_at >= since))  # noqa: E712
show_sql(stmt)
len((await db.scalars(stmt)).all())

# %% [markdown]
# Several arguments to `where`, or several `where` calls, build the same SQL as `and_`:

# %%
active, recent = User.is_active == True, User.created_at >= since  # noqa: E712
two_arguments = select(User).where(active, recent)
two_calls = select(User).where(active).where(recent)
str(two_arguments) == str(two_calls) == str(stmt)

# %% [markdown]
# `or_` is `OR`; SQLAlchemy adds the parentheses that keep it inside the `AND`:

# %%
stmt = (
    select(User.username, User.role)
    .where(User.is_active.is_(True), or_(User.role == "admin", User.role == "editor"))
    .order_by(User.id)
    .limit(4)
)
show_sql(stmt)
(await db.execute(stmt)).all()

# %% [markdown]
# `desc(User.created_at)` and `User.created_at.desc()` are the same `DESC` term:

# %%
str(desc(User.created_at)), str(User.created_at.desc())

# %% [markdown]
# The guide's pagination, `offset(10).limit(20)`, becomes `LIMIT`/`OFFSET` with bound values:

# %%
show_sql(select(User.id).order_by(desc(User.created_at)).offset(10).limit(20))

# %% [markdown]
# The guide's own pagination statement has no `ORDER BY` at all, so "rows 11 to 30" means
# whatever order PostgreSQL happens to read them in: always sort before you page (we come back
# to pages below).
#
# ## A naive datetime is another instant somewhere else
#
# The guide filters `User.created_at >= datetime(2024, 1, 1)`: a *naive* datetime (no time
# zone) compared with a `timestamptz` column. asyncpg must send an instant, so it reads a naive
# datetime as the **client machine's local time**. The same line of code then means a
# different instant on a laptop in Tokyo than on a server in UTC. To show it, a small script
# runs in a separate Python process whose time zone is Asia/Tokyo (`TZ`), and asks the server
# to send back the value it received, naive as in the guide and then with `tzinfo=UTC`:

# %%
import os
import subprocess
import sys

SCRIPT = """
import asyncio, os
from datetime import UTC, datetime
from sqlalchemy import DateTime, literal, select
from sqlalchemy.ext.asyncio import create_async_engine

async def main():
    engine = create_async_engine(os.environ["NB_URL"])
    async with engine.connect() as conn:
        for value in (datetime(2024, 1, 1), datetime(2024, 1, 1, tzinfo=UTC)):
            received = await conn.scalar(select(literal(value, DateTime(timezone=True))))
            print(f"{value!r:62} arrives as {received.astimezone(UTC)}")
    await engine.dispose()

asyncio.run(main())
"""
url = nb.engine.url.render_as_string(hide_password=False)
env = {**os.environ, "TZ": "Asia/Tokyo", "NB_URL": url}
run = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True)
print(run.stdout + run.stderr, end="")

# %% [markdown]
# Nine hours early: in Tokyo the guide's filter also counts the users who signed up on the last
# evening of 2023 (UTC). No error, just a different answer depending on where the code runs.
# With a time zone attached the question is unambiguous.
#
# ## blogdata's query builders
#
# `blogdata.queries` returns the same kind of `Select` statements, with their input checked.
# `users_created_since` refuses a naive datetime outright:

# %% tags=["raises-exception"]
from blogdata.queries import active_users, users_created_since, users_matching

users_created_since(datetime(2025, 6, 1))

# %% [markdown]
# With an aware one it builds the statement; `select(func.count())` over it counts its rows:

# %%
since = datetime(2025, 6, 1, tzinfo=UTC)
await db.scalar(select(func.count()).select_from(users_created_since(since).subquery()))

# %% [markdown]
# `active_users()` is the guide's first filter, ordered so that its rows come back the same way
# on every run:

# %%
show_sql(active_users())

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
from sqlalchemy import text


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
from blogdata.queries import order_by_clause

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
from blogdata.queries import MAX_LIMIT, paginate

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
from blogdata.seed import SEED_NOW

author = await db.get(User, 1)
db.add(Post(title="Breaking: a new post", author=author, created_at=SEED_NOW))
await db.commit()
page2 = (await db.scalars(paginate(newest_first, skip=3, limit=3))).all()
[(p.id, p.title) for p in page2]

# %% [markdown]
# ## Keyset pagination
#
# Keyset (or "seek") pagination remembers where the page ended, the last row's
# `(created_at, id)`, and asks for rows strictly after it. In plain SQLAlchemy that is a row
# comparison built with `tuple_`, on the same order as before, and a plain `limit`:

# %%
from sqlalchemy import tuple_

last = page1[-1]
after_last = tuple_(Post.created_at, Post.id) < (last.created_at, last.id)
stmt = select(Post).where(after_last).order_by(desc(Post.created_at), desc(Post.id)).limit(3)
show_sql(stmt)
[(p.id, p.title) for p in (await db.scalars(stmt)).all()]

# %% [markdown]
# The new post sits above the key, so it does not push anything onto this page: the page starts
# right after the last post the reader saw. blogdata's `posts_page(after=Keyset(...))` builds
# that statement, and `fetch_posts_page` runs it and returns the page with the key of the next
# one:

# %%
from blogdata.queries import Keyset, fetch_posts_page, posts_page

keyset_page1 = await fetch_posts_page(db, limit=3)
keyset_page1.next

# %% [markdown]
# The next page's statement is `posts_page(after=...)`: a row comparison,
# `(created_at, id) < (…, …)`, newest first. The index on `(created_at, id)` serves it, so
# PostgreSQL starts right at the key instead of counting rows from the top:

# %%
from blogdata.diagnostics import explain, plan_indexes

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
from blogdata.queries import search_posts

for needle in ["%", "_", "SNAKE"]:
    print(repr(needle), [p.title for p in (await db.scalars(search_posts(needle))).all()])

# %% [markdown]
# SQL text typed into the search box is just text to look for; the tables are untouched.

# %%
print((await db.scalars(search_posts("'; DROP TABLE users; --"))).all())
await db.scalar(select(func.count()).select_from(User))

# %% [markdown]
# ## Filters in a bulk UPDATE: the guide's `deactivate_old_users` (advanced)
#
# *Skip this on first reading.* A `where` clause also drives `update()`: one statement changes
# every matching row, without loading any. The guide's bulk update, verbatim:

# %%
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession


async def deactivate_old_users(db: AsyncSession, days: int):
    cutoff = datetime.utcnow() - timedelta(days=days)
    await db.execute(
        update(User)
        .where(User.last_login < cutoff)
        .values(is_active=False)
    )
    await db.commit()

# %% [markdown]
# Our session `db` has loaded `User` objects above. We run the guide's function on it, counting
# the statements it sends:

# %% tags=["raises-exception"]
from blogdata.diagnostics import count_statements

with count_statements(db) as sent:
    await deactivate_old_users(db, days=180)

# %% [markdown]
# A Python error, but only after the `UPDATE` had run:

# %%
sent.statements

# %% [markdown]
# An ORM `update()` keeps the objects already loaded in the session in step with the rows it
# changed ([`synchronize_session`](glossary.ipynb#synchronize_session), "auto" by default) by
# evaluating the `WHERE` in Python against
# each of them, and Python refuses to compare the naive cut-off with an aware `last_login`. So
# the commit never ran, and the updated rows sit locked in `db`'s open transaction: we roll it
# back before anything else waits on those locks.

# %%
await db.rollback()

# %% [markdown]
# In a session with no users loaded the function goes through. The database then compares with
# the naive cut-off read as local time (the section above), and the answer depends on the day
# you run it: the seeded logins all lie before the seed's fixed clock, so half a year after it
# every user who has logged in counts as old. We note who is active, run it in a fresh session,
# and compare:

# %%
active = select(User.id).where(User.is_active.is_(True))
has_logged_in = select(func.count()).where(User.is_active, User.last_login.is_not(None))
async with nb.sessions() as fresh:
    logged_in = await fresh.scalar(has_logged_in)
    before = set((await fresh.scalars(active)).all())
    await deactivate_old_users(fresh, days=180)
    after = set((await fresh.scalars(active)).all())
len(before - after), logged_in

# %% [markdown]
# Every active user who ever logged in was deactivated, and committed: the function owned no
# transaction but ended one. We put them back, and run blogdata's `bulk.deactivate_old_users`,
# which takes an aware `now` (here the seed's clock), returns how many rows it changed, and
# leaves the commit to the caller; we roll back:

# %%
await db.execute(update(User).where(User.id.in_(before - after)).values(is_active=True))
await db.commit()

from blogdata import bulk

changed = await bulk.deactivate_old_users(db, days=180, now=SEED_NOW)
await db.rollback()
changed

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

# %% [markdown]
# ## Further reading
#
# - SQLAlchemy Unified Tutorial, [Using SELECT Statements](https://docs.sqlalchemy.org/en/20/tutorial/data_select.html):
#   `select`, `where`, `and_`/`or_`, `order_by`, `desc`.
# - [Working with Engine Results](https://docs.sqlalchemy.org/en/20/core/connections.html#sqlalchemy.engine.Result):
#   the `Result` API (`all`, `scalars`, `scalar`, `scalar_one`, `unique`).
# - [ORM-Enabled INSERT, UPDATE, and DELETE statements](https://docs.sqlalchemy.org/en/20/orm/queryguide/dml.html):
#   bulk `update()` and `synchronize_session`.
# - PostgreSQL: [LIMIT and OFFSET](https://www.postgresql.org/docs/current/queries-limit.html),
#   [row constructor comparison](https://www.postgresql.org/docs/current/functions-comparisons.html#ROW-WISE-COMPARISON)
#   (keyset pages), [pattern matching with LIKE](https://www.postgresql.org/docs/current/functions-matching.html#FUNCTIONS-LIKE),
#   [date/time types and time zones](https://www.postgresql.org/docs/current/datatype-datetime.html).
# - asyncpg: [type conversion](https://magicstack.github.io/asyncpg/current/usage.html#type-conversion)
#   (how `datetime` values travel).

# %% [markdown]
# ## Summary
#
# - A query is a `select()` built with `where` (`and_`/`or_`), `order_by` (`desc`) and
#   `limit`/`offset`, run by `execute` and shaped by the Result API (`scalars`, `scalar`,
#   `scalar_one`). Give time filters aware datetimes (a naive one shifts with the client's time
#   zone) and pass user text only as bound values (escaped for `LIKE`), never as SQL.
# - A sort key from a user goes through a whitelist (`order_by_clause`), with the primary key as
#   a tie-breaker, so it can neither inject SQL nor shuffle rows between pages.
# - Offset pages are simple but shift when rows arrive; keyset pages continue strictly after the
#   last row seen, served by the `(created_at, id)` index.

# %%
await db.close()
await nb.close()
