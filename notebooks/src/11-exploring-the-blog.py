# %% [markdown]
# # 11 · Exploring the blog, for analysts
#
# You do not need to write SQL to explore the blog. `blogdata.frames` loads users, posts and
# tags as pandas DataFrames with sensible types (nullable integers, UTC timestamps, strings),
# and `blogdata.aggregations` answers the common questions inside the database when the tables
# get big. This notebook is a tour of the seeded blog: who writes, what about, and when.
#
# **What you will learn**
# - loading the blog as DataFrames (`users_frame`, `posts_frame`, `tags_frame`) and reading
#   their dtypes;
# - group-bys in pandas, and the same answers from SQL aggregations;
# - a time series of posts, with a rolling mean;
# - top tags (from a column of lists) and author activity, with charts;
# - looking around with `describe`, asking in SQL with `%sql`, and reading the SQL behind an
#   aggregation;
# - an exercise: which tags get the most views?
#

# %%
import matplotlib.pyplot as plt
import pandas as pd

from blogdata import (
    author_activity,
    describe,
    posts_frame,
    posts_per_month,
    tags_frame,
    top_tags,
    users_frame,
)
from blogdata.aggregations import posts_per_author_query
from blogdata.notebook import show_sql, tutorial_database
from blogdata.seed import SEED_NOW

%load_ext blogdata
nb = await tutorial_database("11-exploring-the-blog")
db = nb.sessions()
nb

# %% [markdown]
# ## Looking around
#
# Before loading anything, `describe` lists what the database holds; given a table name it shows
# the columns with their types, whether they may be NULL, and their defaults.

# %%
(await describe(db))[["schema", "name"]]

# %%
(await describe(db, "posts")).columns[["name", "type", "nullable"]]

# %% [markdown]
# A question that is easiest in SQL goes in a `%sql` cell. It runs through the same loader on
# this notebook's database and returns a DataFrame; `:since` binds the notebook variable `since`
# as a query parameter (never pasted into the SQL), and the display shows a few rows while the
# frame keeps them all.

# %%
since = SEED_NOW - pd.Timedelta(days=30)
recent = %sql SELECT title, views FROM posts WHERE created_at > :since ORDER BY views DESC NULLS LAST, id
len(recent), recent.head(3)

# %% [markdown]
# Every aggregation below is a statement first: its `_query` builder returns the SQL it runs,
# which you can read, `EXPLAIN` or stream:

# %%
show_sql(posts_per_author_query())

# %% [markdown]
# ## The frames
#
# One call per table. Users come without their password hashes; every row is one user, ordered
# by id.

# %%
users = await users_frame(db)
users.head(3)

# %% [markdown]
# The dtypes are the loader's contract: ids are `Int64`, text is `string`, flags are `boolean`,
# and timestamps are `datetime64[us, UTC]`. Missing values are `<NA>` or `NaT`, never a float
# `NaN` that would turn an integer column into floats.

# %%
users.dtypes

# %% [markdown]
# Posts carry their author's username and a Python list of their tags. The seed data is
# anchored at a fixed clock, `SEED_NOW`, so every date below is the same on every run.

# %%
posts = await posts_frame(db)
posts[["id", "title", "author", "created_at", "views", "tags"]].head(3)

# %%
SEED_NOW.isoformat(), len(posts), int(posts["published_at"].isna().sum()), int(posts["views"].isna().sum())

# %% [markdown]
# That is: the clock, 1,000 posts, how many are drafts (no `published_at`), and how many have no
# view count tracked (`views` is `<NA>`).

# %%
tags = await tags_frame(db)
tags.sort_values(["posts", "id"], ascending=[False, True]).head(3)

# %% [markdown]
# ## Group-bys
#
# Who writes? Only some users write at all, and their role matters. Merging posts with their
# authors' roles and counting:

# %%
by_author = posts.merge(users[["id", "role"]], left_on="author_id", right_on="id")
by_author.groupby("role")["id_x"].count().rename("posts").sort_index()

# %% [markdown]
# Readers never write. Now the views: the median number of views of published posts, by role.
# `median` skips the missing values.

# %%
by_author.groupby("role")["views"].median().sort_index()

# %% [markdown]
# How recently did users log in? `last_login` is missing for users who never did; the others are
# measured back from the seed's clock.

# %%
days_since = (pd.Timestamp(SEED_NOW) - users["last_login"]).dt.days
days_since.describe().round(1)

# %% [markdown]
# ## A time series
#
# Posts per calendar month (UTC). In pandas: floor each timestamp to its month and count.

# %%
per_month = (
    posts["created_at"].dt.tz_localize(None).dt.to_period("M").value_counts().sort_index()
)
per_month.tail(3)

# %% [markdown]
# `posts_per_month` gives the same numbers from SQL, with the months as UTC timestamps and empty
# months included; on a big blog this is the one to use, since only ~20 rows travel.

# %%
months = await posts_per_month(db)
bool((months["posts"].to_numpy() == per_month.to_numpy()).all())

# %% [markdown]
# A three-month rolling mean smooths the month-to-month noise. Plotted together:

# %%
months["rolling"] = months["posts"].rolling(3, min_periods=1).mean()
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(months["month"].dt.tz_localize(None), months["posts"], width=20, label="posts")
ax.plot(months["month"].dt.tz_localize(None), months["rolling"], color="tab:red", label="3-month mean")
ax.set(title="Posts written per month (UTC)", xlabel="month", ylabel="posts")
ax.legend()
fig.autofmt_xdate()
plt.show()

# %% [markdown]
# ## Top tags
#
# The `tags` column holds lists. `explode` gives one row per (post, tag), and `value_counts`
# counts them:

# %%
tag_counts = posts["tags"].explode().dropna().value_counts()
tag_counts.head(5)

# %% [markdown]
# The SQL version, `top_tags`, agrees, and orders ties by name:

# %%
top = await top_tags(db, n=10)
top.head(5)

# %% [markdown]
# Popularity falls off steeply, the way real tags do: a handful of tags carry most posts.

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.barh(top["tag"][::-1], top["posts"][::-1], color="tab:green")
ax.set(title="Top 10 tags", xlabel="posts", ylabel="tag")
plt.show()

# %% [markdown]
# ## Author activity
#
# `author_activity` summarises each author: number of posts, first and last post, and mean
# length of their posts' content.

# %%
activity = await author_activity(db)
activity.head(5).round({"mean_length": 1})

# %% [markdown]
# Output is very uneven: a long tail of occasional authors and a few prolific ones. The share of
# all posts written by the top 10% of authors:

# %%
top_decile = activity["posts"].head(len(activity) // 10).sum()
round(float(top_decile / activity["posts"].sum()), 2)

# %%
fig, ax = plt.subplots(figsize=(6, 3))
ax.hist(activity["posts"], bins=20, color="tab:orange")
ax.set(title="Posts per author", xlabel="posts", ylabel="authors")
ax.set_yscale("log")
plt.show()

# %% [markdown]
# Do prolific authors write longer posts? The correlation between post count and mean length
# is weak here: in this blog, writing more hardly means writing longer.

# %%
round(float(activity["posts"].astype("float64").corr(activity["mean_length"].astype("float64"))), 2)

# %% [markdown]
# ## Exercise
#
# Which tags get the most views? Using `posts`, keep the posts whose views are tracked, give
# each tag of each post the post's views, and list the five tags with the highest mean views
# (rounded to one decimal), together with how many posts that mean is based on. Most viewed
# first.
#
# ### Solution

# %%
viewed = posts[posts["views"].notna()].explode("tags").dropna(subset=["tags"])
stats = viewed.groupby("tags")["views"].agg(["mean", "count"])
stats.sort_values(["mean", "count"], ascending=False).head(5).round(1)

# %% [markdown]
# Small tags can top such a list by chance: a mean over a handful of posts is noisy. Look at the
# `count` column before drawing conclusions.

# %%
await db.close()
await nb.close()
