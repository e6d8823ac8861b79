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
# - writing your own pushed-down aggregation with `load_frame`.
#

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
    load_frame,
    posts_per_author,
    posts_per_month,
    posts_per_tag,
    top_tags,
    users_by_role,
)
from blogdata.aggregations import users_by_role_query
from blogdata.notebook import count_statements, show_sql, tutorial_database
from blogdata.seed import SEED_NOW

%load_ext blogdata
nb = await tutorial_database("06-aggregations")
db = nb.sessions()
nb

# %% [markdown]
# ## Counting
#
# The guide counts users with `select(func.count(User.id))` and `scalar()`. That works as
# written: one number comes back.

# %%
await db.scalar(select(func.count(User.id)))

# %% [markdown]
# `count_users` is the same query with an optional filter on `is_active`; it returns a plain
# `int`.

# %%
await count_users(db), await count_users(db, active=False)

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
# blogdata's `User` has a real `role` column (reader, author, editor or admin, checked by a
# constraint), so the very same query now runs:

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
# `users_by_role` runs, so you can read it (or `EXPLAIN` it, or stream it):

# %%
show_sql(users_by_role_query())

# %% [markdown]
# And when a question is quicker to ask in SQL, a `%sql` cell runs it on this notebook's database
# and returns a DataFrame, here the same count as above:

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
# A few authors write most of the posts: the top five wrote this share of them.

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
# Plotting the frame is one call away. The blog grows over time, as newer users join and write:

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(months["month"].dt.tz_localize(None), months["posts"], marker="o")
ax.set(title="Posts written per month (UTC)", xlabel="month", ylabel="posts")
fig.autofmt_xdate()
plt.show()

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
# it. Here: authors who wrote in the 30 days before the seed's clock. Joining with
# `author_activity` adds each one's total output and mean post length.

# %%
active = await active_authors(db, days=30, now=SEED_NOW)
activity = await author_activity(db)
recent = active.merge(activity[["author_id", "role", "mean_length"]], on="author_id")
recent.head().round({"mean_length": 1})

# %%
len(active), recent["role"].value_counts().sort_index().to_dict()

# %% [markdown]
# ## Exercise
#
# Which role writes the longest posts? Write your own aggregation: join posts to their authors,
# group by role, and return the number of posts and the mean content length (rounded to one
# decimal) per role, ordered by role. Let PostgreSQL do the grouping and load the result with
# `load_frame`.
#
# ### Solution

# %%
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
await load_frame(db, stmt)

# %% [markdown]
# `mean_length` comes back as exact `Decimal` values: PostgreSQL's `avg` of integers is a
# `numeric`, and the loader keeps numerics exact.

# %%
await db.close()
await nb.close()
