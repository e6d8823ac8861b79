# %% [markdown]
# # 06 · Aggregations into DataFrames
#
# Counting and grouping is where an analyst's questions start: how many users, how many of each
# role, which tags, how many posts a month. The database is good at this: it groups a million
# rows where they live and sends back a handful. We write each aggregation in plain SQLAlchemy
# first, with its SQL, then use `blogdata.aggregations`, which asks PostgreSQL for exactly that
# and hands you a pandas DataFrame with fixed, documented columns.
#
# **Prerequisites:** [notebook 04](04-query-patterns.ipynb) (`select`, `where`, the Result
# API), a little pandas · **Time to learn:** 30 minutes
#
# **What you will learn**
# - the guide's count and group-by, and why its `User.role` group-by could not run;
# - `func.count`, `group_by`, [`having`](glossary.ipynb#having) and `func.date_trunc` in plain
#   SQLAlchemy, with their SQL;
# - ready-made aggregations (`users_by_role`, `posts_per_tag`, `posts_per_month`, ...) that run
#   one SQL statement each and return tidy frames, and `load_frame` for your own statements;
# - why "per month" depends on the session's [time zone](glossary.ipynb#session-timezone), and
#   months in UTC whatever it is;
# - the statement behind each aggregation (its `_query` builder), and asking in SQL with `%sql`;
# - merging two aggregations without mixing up columns that share a name.

# %%
from sqlalchemy import func, select

from blogdata import Post, User
from blogdata.diagnostics import show_sql
from blogdata.notebook import tutorial_database
from blogdata.notebook.exercises import check_exercise_06

nb = await tutorial_database("06-aggregations")
db = nb.sessions()
nb

# %% [markdown]
# ## Counting
#
# The guide counts users with `select(func.count(User.id))` and `scalar()` on a
# [session](glossary.ipynb#session). `func.count` is SQL's `count()`: `func.<name>` builds a
# call to any SQL function of that name. The statement and its answer, one number:

# %%
stmt = select(func.count(User.id))
show_sql(stmt)
await db.scalar(stmt)

# %% [markdown]
# `count_users` is the same query with an optional filter on `is_active`; it returns a plain
# `int`.

# %%
from blogdata import count_users

total_users = await count_users(db)
total_users, await count_users(db, active=False)

# %% [markdown]
# ## The guide's group-by on `User.role`
#
# The guide then groups users by role. But its `User` model (id, email, username,
# hashed_password, is_active, timestamps) never defines a `role` column. Here is a faithful
# copy of that model, on a throwaway declarative base:

# %%
from sqlalchemy import String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class GuideBase(DeclarativeBase):
    pass


class GuideUser(GuideBase):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(255), unique=True)
    username: Mapped[str] = mapped_column(String(50), unique=True)
    is_active: Mapped[bool] = mapped_column(default=True)

# %% [markdown]
# The guide's query fails before any SQL is sent, because the attribute does not exist:

# %% tags=["raises-exception"]
select(GuideUser.role, func.count(GuideUser.id)).group_by(GuideUser.role)

# %% [markdown]
# blogdata's `users` table has a real `role` column (reader, author, editor or admin, checked
# by a constraint); `describe` shows it as the database sees it:

# %%
from blogdata import describe

(await describe(db, "users")).columns.query("name == 'role'")

# %% [markdown]
# So the very same query, on blogdata's `User`, now runs. `execute` gives one `Row` per group:

# %%
stmt = select(User.role, func.count(User.id)).group_by(User.role)
show_sql(stmt)
sorted((await db.execute(stmt)).all())

# %% [markdown]
# Notice the `sorted(...)`: a `GROUP BY` without `ORDER BY` returns groups in whatever order the
# database finds convenient, which can change between runs and servers. In SQL, order the
# groups with `order_by`, by a column or by a labelled aggregate.
#
# ## Filtering groups: `having`
#
# `where` filters rows *before* they are grouped; `having` filters the groups *after*, on an
# aggregate. The authors with at least ten posts, most prolific first (`label` names the
# aggregate so that `order_by` and the result can refer to it):

# %%
from sqlalchemy import desc

posts = func.count(Post.id).label("posts")
prolific = (
    select(User.username, posts)
    .join(Post, Post.author_id == User.id)
    .group_by(User.id)
    .having(func.count(Post.id) >= 10)
    .order_by(desc(posts), User.id)
)
show_sql(prolific)
(await db.execute(prolific.limit(5))).all()

# %% [markdown]
# `group_by(User.id)` is enough to select `User.username` too: PostgreSQL knows that the primary
# key determines the row's other columns.
#
# ## blogdata's aggregations
#
# `load_frame` runs any statement and returns a DataFrame, one column per selected label, with
# pandas types chosen from the SQL types:

# %%
from blogdata import load_frame

(await load_frame(db, prolific)).head(3)

# %% [markdown]
# blogdata's aggregations are such statements with fixed columns and order. `users_by_role`
# orders the roles from least to most privileged and lists a role even when nobody has it:

# %%
from blogdata import users_by_role

await users_by_role(db)

# %% [markdown]
# Each aggregation is a statement first: `users_by_role_query()` returns the `Select` that
# `users_by_role` runs, so you can read it, [`EXPLAIN`](glossary.ipynb#explain) it, or stream
# it with `stream_frames` ([notebook 11](11-exploring-the-blog.ipynb) streams a big table):

# %%
from blogdata.aggregations import users_by_role_query

show_sql(users_by_role_query())

# %% [markdown]
# And when a question is quicker to ask in SQL, the `%sql` magic (loaded with
# `%load_ext blogdata`) runs it on this notebook's database (as one
# [unit of work](glossary.ipynb#unit-of-work)) and returns a DataFrame, here the same count as
# above:

# %%
%load_ext blogdata
%sql SELECT role, count(*) AS users FROM users GROUP BY role ORDER BY users DESC, role

# %% [markdown]
# The grouping happens in PostgreSQL and only the result rows travel: `posts_per_author` sends
# one row per author, not the blog's thousand posts.

# %%
from blogdata import posts_per_author

authors = await posts_per_author(db)
len(authors), int(authors["posts"].sum())

# %% [markdown]
# The frame has documented columns in a fixed order: most prolific authors first, ties broken by
# id. Counts are `Int64` (pandas' nullable integer), names are strings.

# %%
authors.head()

# %%
authors.dtypes

# %% [markdown]
# How concentrated is the writing? The share of all posts written by the top five authors
# ([notebook 11](11-exploring-the-blog.ipynb) draws the whole Lorenz curve):

# %%
round(float(authors["posts"].head(5).sum() / authors["posts"].sum()), 2)

# %% [markdown]
# ## Per tag
#
# `posts_per_tag` counts the posts carrying each tag (unused tags appear with 0); `top_tags`
# keeps the first `n`:

# %%
from blogdata import posts_per_tag, top_tags

await top_tags(db, n=5)

# %%
tags = await posts_per_tag(db)
len(tags), int(tags["posts"].sum())

# %% [markdown]
# The second number is larger than the number of posts when posts carry several tags.
#
# ## Per month: `date_trunc` and the session's time zone
#
# `func.date_trunc("month", Post.created_at)` is PostgreSQL's `date_trunc`: it cuts a timestamp
# down to the first instant of its month. Grouping by it counts posts per month:

# %%
month = func.date_trunc("month", Post.created_at).label("month")
by_month = select(month, func.count().label("posts")).group_by(month).order_by(month)
show_sql(by_month)

# %% [markdown]
# But a month needs a time zone: a post written at 23:30 on 31 January in London is already
# February in Tokyo. For a `timestamptz`, `date_trunc` uses the session's `TimeZone` setting,
# which each connection may change. We run the same statement on two connections, one set to
# UTC and one to Tokyo, and compare the last months' counts, each month named in its own time
# zone. (A `SET` made inside a transaction is undone when the transaction rolls back, as it does
# here when the connection goes back to the pool.)

# %%
from sqlalchemy import text
from zoneinfo import ZoneInfo


async def last_months(stmt, zone):
    async with nb.engine.connect() as conn:
        await conn.execute(text(f"SET TIME ZONE '{zone}'"))
        rows = (await conn.execute(stmt)).all()
    return {m.astimezone(ZoneInfo(zone)).strftime("%Y-%m"): n for m, n in rows[-4:]}


{zone: await last_months(by_month, zone) for zone in ["UTC", "Asia/Tokyo"]}

# %% [markdown]
# Same statement, same data, different answers: the posts of the last hours of each UTC month
# (after 15:00) count for the next month in Tokyo. PostgreSQL 12 and later take the time zone
# as a third argument, `date_trunc('month', created_at, 'UTC')`, which fixes the months
# whatever the session says:

# %%
utc_month = func.date_trunc("month", Post.created_at, "UTC").label("month")
by_utc_month = select(utc_month, func.count().label("posts")).group_by(utc_month)
by_utc_month = by_utc_month.order_by(utc_month)
{zone: await last_months(by_utc_month, zone) for zone in ["UTC", "Asia/Tokyo"]}

# %% [markdown]
# Both sessions now count the UTC months, the same as the first session above.
#
# ## blogdata's `posts_per_month`: UTC months, empty months included
#
# `posts_per_month` uses calendar months in **UTC** too, and also lists months with no posts,
# as 0 (PostgreSQL's `generate_series` builds the list of months). The `month` column is the
# first instant of each month. The statement, run under Tokyo's time zone on the same
# connection as a plain query, gives the same counts as under UTC:

# %%
from blogdata.aggregations import posts_per_month_query


async def utc_counts(zone):
    async with nb.engine.connect() as conn:
        await conn.execute(text(f"SET TIME ZONE '{zone}'"))
        return (await conn.execute(posts_per_month_query())).all()


await utc_counts("Asia/Tokyo") == await utc_counts("UTC")

# %% [markdown]
# The function returns it as a frame:

# %%
from blogdata import posts_per_month

months = await posts_per_month(db)
months.tail(4)

# %% [markdown]
# Plotting the frame is one call away. Each point sits at the first instant of its month; the
# line at the bottom says where the numbers come from.

# %%
import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(months["month"].dt.tz_localize(None), months["posts"], marker="o")
ax.set(title="Posts written per month", xlabel="month (UTC)", ylabel="posts per month")
ax.set_ylim(bottom=0)
fig.autofmt_xdate()
fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))  # room for the source line
fig.text(0.01, 0.01, f"Source: blogdata seed 42, {total_users} users", fontsize=7, color="0.35")
plt.show()

# %% [markdown]
# Read such a chart with care: with only a thousand posts, one prolific author (the `having`
# query above lists them) starting or having a busy month moves a whole month's count;
# [notebook 11](11-exploring-the-blog.ipynb) charts a blog twenty times bigger, where trends
# are easier to tell from noise.

# %% [markdown]
# With `by="published_at"` the same function counts publications; drafts (no `published_at`)
# are left out, so the total is smaller:

# %%
published = await posts_per_month(db, by="published_at")
int(months["posts"].sum()), int(published["posts"].sum())

# %% [markdown]
# ## Worked example: who is active, and how do they write?
#
# `active_authors` takes an explicit `now`, so the answer does not change with the day you run
# it. Here: authors who wrote in the 30 days before the seed's clock. `author_activity`
# summarises each author's whole history. Both frames have a column called `posts`:

# %%
from blogdata import active_authors, author_activity
from blogdata.seed import SEED_NOW

active = await active_authors(db, days=30, now=SEED_NOW)
activity = await author_activity(db)
active.columns.tolist(), activity.columns.tolist()

# %% [markdown]
# They count different things. In `active_authors`, `posts` is the posts written **in the
# window**; in `author_activity` it is all of an author's posts. Merging only `role` and
# `mean_length` from `author_activity` would leave the window's count as the sole `posts`
# column, easy to misread as each author's total output. Merge both counts, with suffixes that
# say which is which:

# %%
recent = active.merge(
    activity[["author_id", "role", "posts", "mean_length"]],
    on="author_id",
    suffixes=("_30d", "_total"),
)
recent[["username", "role", "posts_30d", "posts_total", "mean_length"]].head().round(1)

# %% [markdown]
# `posts_30d` is never more than `posts_total`, and for most of these authors it is much less:
# the window holds only part of their output. Counting the active authors, those who wrote
# everything they ever wrote inside the window, and the share of the active authors' posts
# that falls in the window:

# %%
{
    "30d never above total": bool((recent["posts_30d"] <= recent["posts_total"]).all()),
    "active authors": len(recent),
    "all their posts in the window": int((recent["posts_30d"] == recent["posts_total"]).sum()),
    "share of their posts in the window": round(
        float(recent["posts_30d"].sum() / recent["posts_total"].sum()), 2
    ),
}

# %% [markdown]
# `mean_length` comes from `author_activity` too, so it is the mean over **all** of an author's
# posts, not over the window's. Counting the roles of the active authors:

# %%
recent["role"].value_counts().sort_index().to_dict()

# %% [markdown]
# ## Exercise
#
# Which role writes the longest posts? Write your own aggregation: join posts to their authors,
# group by role, and select the number of posts and the mean content length (rounded to one
# decimal) per role, ordered by role: columns `role`, `posts`, `mean_length`. Set `answer` to
# the statement itself, not its result: the check loads it with `load_frame`, so PostgreSQL
# does the grouping, and compares the frame with the database.

# %%
answer = ...  # your statement: select(...).join(...).group_by(...)

# %%
await check_exercise_06(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
stmt = (
    select(
        User.role,
        func.count(Post.id).label("posts"),
        func.round(func.avg(func.length(Post.content)), 1).label("mean_length"),
    )
    .join(Post, Post.author_id == User.id)
    .group_by(User.role)
    .order_by(User.role)
)
answer = stmt
await check_exercise_06(answer, db)

# %% [markdown]
# The frame itself: readers are absent (they write nothing, and the inner join keeps only
# roles with posts). `mean_length` comes back as exact `Decimal` values: PostgreSQL's `avg` of
# integers is a `numeric`, and the loader keeps numerics exact.

# %%
await load_frame(db, answer)

# %% [markdown]
# ## Further reading
#
# - SQLAlchemy Unified Tutorial, [Aggregate functions with GROUP BY / HAVING](https://docs.sqlalchemy.org/en/20/tutorial/data_select.html#aggregate-functions-with-group-by-having)
#   and [Working with SQL Functions](https://docs.sqlalchemy.org/en/20/tutorial/data_select.html#working-with-sql-functions)
#   (`func`).
# - PostgreSQL: [aggregate functions](https://www.postgresql.org/docs/current/functions-aggregate.html),
#   [GROUP BY and HAVING](https://www.postgresql.org/docs/current/queries-table-expressions.html#QUERIES-GROUP),
#   [`date_trunc`](https://www.postgresql.org/docs/current/functions-datetime.html#FUNCTIONS-DATETIME-TRUNC),
#   [time zones](https://www.postgresql.org/docs/current/datatype-datetime.html#DATATYPE-TIMEZONES),
#   [`generate_series`](https://www.postgresql.org/docs/current/functions-srf.html).
# - pandas: [merge](https://pandas.pydata.org/docs/reference/api/pandas.DataFrame.merge.html)
#   (its `suffixes`), [nullable integer data type](https://pandas.pydata.org/docs/user_guide/integer_na.html).

# %% [markdown]
# ## Summary
#
# - An aggregation is one statement: `func.count` (any `func.<name>`), `group_by`, `having` on
#   the groups, `order_by` for a stable order. blogdata's run such statements and return small
#   frames with fixed columns; each has a `_query` builder to read, explain or reuse.
# - `date_trunc('month', ts)` cuts in the session's time zone; `date_trunc('month', ts, 'UTC')`
#   and `posts_per_month` count UTC months whatever the session says (the latter with empty
#   months filled in).
# - Columns with the same name can mean different things (`posts` in a 30-day window vs all
#   posts): merge with `suffixes` so every column says what it counts.

# %%
await db.close()
await nb.close()
