# %% [markdown]
# # 06 · Aggregations into DataFrames
#
# Counting and grouping is where an analyst's questions start: how many users, how many of each
# role, which tags, how many posts a month. The database is good at this: it groups a million
# rows where they live and sends back a handful. `blogdata.aggregations` asks PostgreSQL for
# exactly that and hands you a pandas DataFrame with fixed, documented columns.
#
# **What you will learn**
# - the guide's count and group-by, and why its `User.role` group-by could not run;
# - ready-made aggregations (`users_by_role`, `posts_per_tag`, `posts_per_month`, ...) that run
#   one SQL statement each and return tidy frames;
# - months in UTC with empty months filled in, and a first chart;
# - the statement behind each aggregation (its `_query` builder), and asking in SQL with `%sql`;
# - merging two aggregations without mixing up columns that share a name;
# - writing your own pushed-down aggregation with `load_frame`.

# %%
import matplotlib.pyplot as plt
from sqlalchemy import String, func, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from blogdata import (
    Post,
    User,
    active_authors,
    author_activity,
    count_users,
    describe,
    load_frame,
    posts_per_author,
    posts_per_month,
    posts_per_tag,
    top_tags,
    users_by_role,
)
from blogdata.aggregations import users_by_role_query
from blogdata.notebook.exercises import check_exercise_06
from blogdata.diagnostics import show_sql
from blogdata.notebook import tutorial_database
from blogdata.seed import SEED_NOW

%load_ext blogdata
nb = await tutorial_database("06-aggregations")
db = nb.sessions()
nb

# %% [markdown]
# ## Counting
#
# The guide counts users with `select(func.count(User.id))` and `scalar()` on a
# [session](glossary.ipynb#session). That works as written: one number comes back.

# %%
await db.scalar(select(func.count(User.id)))

# %% [markdown]
# `count_users` is the same query with an optional filter on `is_active`; it returns a plain
# `int`.

# %%
total_users = await count_users(db)
total_users, await count_users(db, active=False)

# %% [markdown]
# ## The guide's group-by on `User.role`
#
# The guide then groups users by role. But its `User` model (id, email, username,
# hashed_password, is_active, timestamps) never defines a `role` column. Here is a faithful
# copy of that model, on a throwaway declarative base:

# %%
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
(await describe(db, "users")).columns.query("name == 'role'")

# %% [markdown]
# So the very same query, on blogdata's `User`, now runs:

# %%
rows = (await db.execute(select(User.role, func.count(User.id)).group_by(User.role))).all()
sorted(rows)

# %% [markdown]
# Notice the `sorted(...)`: a `GROUP BY` without `ORDER BY` returns groups in whatever order the
# database finds convenient, which can change between runs and servers. `users_by_role` orders
# the roles from least to most privileged and lists a role even when nobody has it:

# %%
await users_by_role(db)

# %% [markdown]
# Each aggregation is a statement first: `users_by_role_query()` returns the `Select` that
# `users_by_role` runs, so you can read it, [`EXPLAIN`](glossary.ipynb#explain) it, or stream
# it with `stream_frames` ([notebook 11](11-exploring-the-blog.ipynb) streams a big table):

# %%
show_sql(users_by_role_query())

# %% [markdown]
# And when a question is quicker to ask in SQL, a `%sql` cell runs it on this notebook's database
# (as one [unit of work](glossary.ipynb#unit-of-work)) and returns a DataFrame, here the same
# count as above:

# %%
%sql SELECT role, count(*) AS users FROM users GROUP BY role ORDER BY users DESC, role

# %% [markdown]
# Each aggregation is a single statement. The grouping happens in PostgreSQL and only the result
# rows travel: one row per author, not the blog's thousand posts.

# %%
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
# A few authors write most of the posts: the top five wrote this share of them
# ([notebook 11](11-exploring-the-blog.ipynb) draws the whole Lorenz curve).

# %%
round(float(authors["posts"].head(5).sum() / authors["posts"].sum()), 2)

# %% [markdown]
# ## Per tag
#
# `posts_per_tag` counts the posts carrying each tag (unused tags appear with 0); `top_tags`
# keeps the first `n`. Tag popularity is very uneven, like real blogs:

# %%
await top_tags(db, n=5)

# %%
tags = await posts_per_tag(db)
len(tags), int(tags["posts"].sum())

# %% [markdown]
# ## Per month, in UTC
#
# "Posts per month" needs a time zone: a post written at 23:30 on 31 January in London is
# already February in Tokyo. `posts_per_month` uses calendar months in **UTC**, whatever the
# session's `TimeZone` is, and includes months with no posts as 0 (PostgreSQL's
# `generate_series` builds the list of months). The `month` column is the first instant of
# each month.

# %%
months = await posts_per_month(db)
months.tail(4)

# %% [markdown]
# Plotting the frame is one call away. Each point sits at the first instant of its month; the
# line at the bottom says where the numbers come from.

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.plot(months["month"].dt.tz_localize(None), months["posts"], marker="o")
ax.set(title="Posts written per month", xlabel="month (UTC)", ylabel="posts per month")
ax.set_ylim(bottom=0)
fig.autofmt_xdate()
fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))  # room for the source line
fig.text(0.01, 0.01, f"Source: blogdata seed 42, {total_users} users", fontsize=7, color="0.35")
plt.show()

# %% [markdown]
# The counts rise over the months as more writers sign up and start posting. With only a
# thousand posts, mostly by a few prolific authors (above), one of them starting or having a
# busy month moves a whole month's count, so the zigzag is mostly noise;
# [notebook 11](11-exploring-the-blog.ipynb) charts a blog twenty times bigger, where the trend
# and the weekly rhythm stand out.

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
# ## Summary
#
# - Aggregations run as one SQL statement in PostgreSQL and return small frames with fixed
#   columns and a deterministic order; each has a `_query` builder to read, explain or reuse.
# - Months are UTC calendar months with empty months filled in; `by="published_at"` counts
#   publications and leaves drafts out.
# - Columns with the same name can mean different things (`posts` in a 30-day window vs all
#   posts): merge with `suffixes` so every column says what it counts.

# %%
await db.close()
await nb.close()
