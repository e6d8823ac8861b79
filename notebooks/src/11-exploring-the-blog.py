# %% [markdown]
# # 11 · Exploring the blog, for analysts
#
# An analyst's first hour with a database: what is in it, how big, who does what, and when. This
# notebook is that hour on a bigger seeded blog (4,000 users, 20,000 posts), using the surface
# blogdata gives you: `describe` to look around, `%sql` for a quick question, aggregations whose
# SQL you can read, DataFrames with honest dtypes, streaming for tables that do not fit in
# memory, and Parquet files to keep what you found.
#
# **What you will learn**
# - looking around with `describe`, asking in SQL with `%sql`, and reading the SQL behind an
#   aggregation with `show_sql`;
# - loading the blog as DataFrames and filtering on what marks a published post;
# - why medians, not means, describe long-tailed numbers such as page views;
# - a Lorenz curve: how much the most prolific 10% of authors write;
# - monthly bars that sit on their months, the weekly rhythm, and charts with titles, units and
#   a source line;
# - streaming a big table chunk by chunk with `stream_frames`, and saving to Parquet.

# %%
import tempfile
from pathlib import Path

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select

from blogdata import (
    Post,
    author_activity,
    describe,
    posts_frame,
    posts_per_month,
    stream_frames,
    top_tags,
    users_frame,
)
from blogdata.aggregations import posts_per_author_query, top_tags_query
from blogdata.notebook.exercises import check_exercise_11
from blogdata.diagnostics import show_sql
from blogdata.notebook import tutorial_database
from blogdata.seed import SEED_NOW

%load_ext blogdata
nb = await tutorial_database("11-exploring-the-blog", scale=20)
db = nb.sessions()
nb

# %% [markdown]
# `tutorial_database(..., scale=20)` makes a fresh database seeded with twenty times the usual
# blog; on a database of your own, `open_database()` opens it without dropping, migrating or
# seeding anything (and a hot standby keeps the analysis off the primary:
# [notebook 12](12-scaling-out.ipynb)). `db` is one [session](glossary.ipynb#session), used by
# every cell below.
#
# ## Looking around
#
# Before loading anything, `describe` lists the tables the database holds:

# %%
(await describe(db))[["schema", "name"]]

# %% [markdown]
# Given a table's name it shows its columns, their types and whether they may be NULL. Two
# columns of `posts` matter for everything below: `published_at` is NULL for a draft, and
# `views` is NULL where views were not tracked.

# %%
(await describe(db, "posts")).columns[["name", "type", "nullable"]]

# %% [markdown]
# A quick question goes in a `%sql` cell. It runs on this notebook's database as one
# [unit of work](glossary.ipynb#unit-of-work) and returns a DataFrame. `:since` binds the
# notebook variable `since` as a query parameter (never pasted into the SQL text). The display
# shows a few rows; the frame keeps them all.

# %%
since = SEED_NOW - pd.Timedelta(days=7)
%sql SELECT title, views FROM posts WHERE published_at > :since ORDER BY views DESC NULLS LAST, id

# %% [markdown]
# The aggregations ([notebook 06](06-aggregations.ipynb)) are statements first: each has a
# `_query` builder that returns the SQL it runs, to read, [`EXPLAIN`](glossary.ipynb#explain),
# stream or refine.

# %%
show_sql(posts_per_author_query())

# %% [markdown]
# `%sql` also runs a statement held in a variable, so a builder refined with `.limit()` is a
# one-liner:

# %%
busiest = posts_per_author_query().limit(3)
%sql busiest

# %% [markdown]
# ## The frames
#
# `users_frame` and `posts_frame` load one row per user or post, ordered by id (users without
# their password hashes).

# %%
users = await users_frame(db)
posts = await posts_frame(db)
posts[["id", "author", "created_at", "published_at", "views", "tags"]].head(3)

# %% [markdown]
# The dtypes are the loader's contract (the default
# [dtype backend](glossary.ipynb#dtype-backend)): ids and counts `Int64`, text `string`,
# timestamps `datetime64[us, UTC]`, tags a Python list; missing values are `<NA>` or `NaT`, never
# a float `NaN` that would turn an integer column into floats.

# %%
posts.dtypes

# %% [markdown]
# Every chart below ends with a line saying where its numbers come from. A small function writes
# it under a figure:

# %%
SOURCE = f"Source: blogdata seed 42, {len(users):,} users, {len(posts):,} posts"


def source_line(fig):
    """Reserve the bottom of a constrained-layout figure and write the source line there."""
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    fig.text(0.01, 0.01, SOURCE, fontsize=7, color="0.35")


# %% [markdown]
# What marks a published post is `published_at`. Counting the drafts, and the posts whose views
# were not tracked:

# %%
drafts = posts["published_at"].isna()
len(posts), int(drafts.sum()), int(posts["views"].isna().sum())

# %% [markdown]
# ## Views: filter on publication, then take the median
#
# A draft has not been read by anyone, and the data says so with `views = 0`; `<NA>` only
# means that views were not tracked, for drafts and published posts alike. So skipping the
# missing values, as `median` does, leaves almost every draft in. The views of the drafts:

# %%
posts.loc[drafts, "views"].value_counts(dropna=False)

# %% [markdown]
# Per role of the author: the median views over all posts, drafts' zeros included (what a
# "median views of published posts" without a filter really computes), against the median over
# the posts whose `published_at` is set. `count` is how many posts each median is based on. The
# filter takes the drafts out of every count and raises every median:

# %%
with_role = posts.merge(users[["id", "role"]].rename(columns={"id": "author_id"}), on="author_id")
published = with_role[with_role["published_at"].notna()]
pd.concat(
    {
        "all posts": with_role.groupby("role")["views"].agg(["count", "median"]),
        "published": published.groupby("role")["views"].agg(["count", "median"]),
    },
    axis=1,
)

# %% [markdown]
# Readers never write, so they have no row. Why the median, and not the mean? Page views have a
# long tail: most posts get tens or hundreds, a handful get tens of thousands. The mean is
# pulled up by the few; the median is the typical post.

# %%
views = published["views"].dropna()
round(float(views.mean()), 1), float(views.median()), int(views.max())

# %% [markdown]
# That is the mean, the median and the most viewed post. The same, computed by PostgreSQL in a
# `%%sql` cell: `percentile_cont(0.5)` is the median, interpolated the way pandas does it, and
# `count(views)` skips the NULLs as pandas' `count` skips `<NA>`.

# %%
%%sql
SELECT count(views) AS posts, round(avg(views), 1) AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY views) AS median
FROM posts
WHERE published_at IS NOT NULL

# %% [markdown]
# On a logarithmic axis the long tail becomes visible, with the mean far to the right of the
# median:

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.hist(views.clip(lower=1), bins=np.geomspace(1, views.max(), 40), color="tab:blue")
ax.axvline(views.median(), color="black", label=f"median {views.median():,.0f}")
ax.axvline(views.mean(), color="tab:red", linestyle="--", label=f"mean {views.mean():,.0f}")
ax.set(xscale="log", title="Views per published post", xlabel="views (log scale)")
ax.set(ylabel="posts")
ax.legend()
source_line(fig)
plt.show()

# %% [markdown]
# ## Who writes: a Lorenz curve
#
# `author_activity` summarises each author (users with at least one post): number of posts,
# first and last post, mean length of their content.

# %%
activity = await author_activity(db)
activity.head(3).round({"mean_length": 1})

# %% [markdown]
# A Lorenz curve sorts the authors from the fewest posts to the most and plots the cumulative
# share of authors against the cumulative share of posts. Equal output would be the diagonal.
# Reading it at 90% of the authors gives what the top 10% write:

# %%
counts = np.sort(activity["posts"].to_numpy(dtype="int64"))
share_of_posts = np.concatenate([[0], counts.cumsum()]) / counts.sum()
share_of_authors = np.linspace(0, 1, counts.size + 1)
below_top = float(np.interp(0.9, share_of_authors, share_of_posts))
gini = 1 - 2 * float(np.trapezoid(share_of_posts, share_of_authors))
{"authors": counts.size, "top 10% write": round(1 - below_top, 3), "Gini": round(gini, 2)}

# %% [markdown]
# More than half of all posts come from a tenth of the authors. The Gini coefficient is 0 for
# equal output and 1 for one author writing everything. The curve counts only users with a
# post; writers (non-readers) who never wrote one would make it more unequal still. There are
# this many of them:

# %%
int((users["role"] != "reader").sum()) - len(activity)

# %%
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
ax.plot(share_of_authors * 100, share_of_posts * 100, label="Lorenz curve")
ax.plot([0, 100], [0, 100], color="0.6", linestyle="--", label="equal output")
label = f"top 10% of authors: {1 - below_top:.0%} of posts"
ax.vlines(90, below_top * 100, 100, color="tab:orange", linewidth=4, label=label)
ax.set(title="Who writes the posts", xlim=(0, 100), ylim=(0, 100))
ax.set(xlabel="authors, fewest posts first (% of authors)", ylabel="posts (% of all posts)")
ax.legend(loc="upper left")
source_line(fig)
plt.show()

# %% [markdown]
# ## When: posts per month
#
# `posts_per_month` counts posts per calendar month in UTC, with empty months as 0; only one row
# per month travels from the database. The same count in pandas agrees:

# %%
months = await posts_per_month(db)
in_pandas = posts["created_at"].dt.tz_localize(None).dt.to_period("M").value_counts()
bool((months["posts"].to_numpy() == in_pandas.sort_index().to_numpy()).all())

# %% [markdown]
# A month is a span of time, so each bar starts at its month's first day and is as wide as the
# month (a little less, to leave a gap); the three-month mean is drawn at the middle of each
# month.

# %%
starts = months["month"].dt.tz_localize(None)
days = starts.dt.days_in_month
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(starts, months["posts"], width=days * 0.9, align="edge", label="posts that month")
middle = starts + pd.to_timedelta(days / 2, unit="D")
rolling = months["posts"].rolling(3, min_periods=1).mean()
ax.plot(middle, rolling, color="tab:red", label="3-month mean")
quarters = mdates.MonthLocator(bymonth=[1, 4, 7, 10])
ax.xaxis.set(major_locator=quarters, major_formatter=mdates.ConciseDateFormatter(quarters))
ax.set(title="Posts written per month", xlabel="month (UTC)", ylabel="posts per month")
ax.legend(loc="upper left")
source_line(fig)
plt.show()

# %% [markdown]
# What the months show: the first bar is short because the blog starts mid-month (its first
# user signed up on the date below). Output climbs steeply for about half a year as writers
# sign up, then rises slowly: new writers keep joining while others go quiet. The second number
# is the share of authors whose last post is more than 90 days before the seed's clock:

# %%
quiet = activity["last_post"] < SEED_NOW - pd.Timedelta(days=90)
users["created_at"].min().date().isoformat(), round(float(quiet.mean()), 2)

# %% [markdown]
# The week has a rhythm too. Counting posts by weekday (UTC):

# %%
weekday = posts["created_at"].dt.day_name().str[:3].value_counts()
order = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
weekday = weekday.reindex(order)
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(order, weekday, color="tab:purple")
ax.set(title="Posts written per weekday", xlabel="weekday (UTC)", ylabel="posts")
source_line(fig)
plt.show()

# %% [markdown]
# Weekends are quiet: Saturdays and Sundays get about half the posts of a weekday (the numbers
# are relative to the average day).

# %%
(weekday / weekday.mean()).round(2).to_dict()

# %% [markdown]
# That rhythm explains part of the last bar of the monthly chart. December is the busiest
# month, but no spike. It has one day and three weekdays more than November, and weekdays are
# the busy days. Weighting every day of a month by its weekday's rate above gives the month's
# `busy_days`; posts per busy day then compare months fairly:

# %%
ends = (starts + pd.offsets.MonthBegin(1)).to_numpy().astype("datetime64[D]")
weekdays = np.busday_count(starts.to_numpy().astype("datetime64[D]"), ends)
calendar = pd.Series(pd.date_range(starts.iloc[0], periods=int(days.sum()), freq="D"))
weight = calendar.dt.day_name().str[:3].map(weekday / weekday.mean())
busy_days = weight.groupby(calendar.dt.to_period("M")).sum().to_numpy()
fair = months.assign(days=days, weekdays=weekdays, busy_days=busy_days.round(1))
fair.assign(per_busy_day=(months["posts"] / busy_days).round(1)).tail(4)

# %% [markdown]
# Per busy day, the autumn months climb steadily, by 6 to 9% a month, December included:
# the blog's slow rise, plus the seed's seasonal swing (documented in `blogdata.seed`: ±10%,
# busiest in early February, quietest in early August).

# %% [markdown]
# ## Tags
#
# The `tags` column holds lists. `explode` gives one row per (post, tag), and `value_counts`
# counts them; `top_tags` gives the same from SQL, with ties ordered by name:

# %%
tag_counts = posts["tags"].explode().dropna().value_counts()
top = await top_tags(db, n=10)
bool((top["posts"].to_numpy() == tag_counts.head(10).to_numpy()).all())

# %% [markdown]
# Its builder is one line of SQL away from any refinement; here its statement:

# %%
show_sql(top_tags_query(n=10))

# %% [markdown]
# Popularity falls off steeply: a handful of tags carry most posts.

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.barh(top["tag"][::-1], top["posts"][::-1], color="tab:green")
ax.set(title="The 10 most used tags", xlabel="posts carrying the tag", ylabel="tag")
source_line(fig)
plt.show()

# %% [markdown]
# ## Streaming a table that does not fit in memory
#
# `load_frame` builds one DataFrame of the whole result. For a table bigger than memory,
# `stream_frames` yields it in frames of `chunk_size` rows, read from a
# [COPY](glossary.ipynb#copy) stream as it arrives, so only one chunk is held at a time. Here
# the posts with their full text, in chunks of 5,000, adding up the characters written per month
# chunk by chunk:

# %%
texts = select(Post.id, Post.created_at, Post.content).order_by(Post.id)
chars = pd.Series(dtype="Int64")
async for chunk in stream_frames(db, texts, chunk_size=5_000):
    month = chunk["created_at"].dt.tz_localize(None).dt.to_period("M")
    chars = chars.add(chunk["content"].str.len().groupby(month).sum(), fill_value=0)
    megabytes = chunk.memory_usage(deep=True).sum() / 1e6
    print(f"{len(chunk):,} rows, {megabytes:.1f} MB in memory, via {chunk.attrs['blogdata.route']}")

# %% [markdown]
# Four chunks of the same few megabytes: on ten million posts the loop would be the same, and
# so would the memory it needs. The running total agrees with PostgreSQL's own sum over the stored
# `content_length` column:

# %%
in_sql = %sql SELECT sum(content_length) AS chars FROM posts
int(chars.sum()), int(in_sql["chars"].iloc[0])

# %% [markdown]
# ## Saving to Parquet
#
# Parquet keeps the dtypes, compresses well and loads fast, which makes it the format to keep a
# result in. The same stream can go straight to a Parquet file, one row group per chunk, so a
# big table is saved without ever being in memory. In a temporary folder:

# %%
folder = tempfile.TemporaryDirectory()
path = Path(folder.name) / "posts.parquet"
writer = None
async for chunk in stream_frames(db, texts, chunk_size=5_000):
    table = pa.Table.from_pandas(chunk, preserve_index=False)
    if writer is None:  # the first chunk gives the file its schema
        writer = pq.ParquetWriter(path, table.schema)
    writer.write_table(table)
writer.close()

# %% [markdown]
# Reading back only the file's metadata: every post is there, in four row groups.

# %%
saved = pq.ParquetFile(path).metadata
path.name, saved.num_rows, saved.num_row_groups

# %% [markdown]
# A small frame goes in with one call, and comes back equal, dtypes included:

# %%
months.to_parquet(Path(folder.name) / "months.parquet")
back = pd.read_parquet(Path(folder.name) / "months.parquet")
sorted(p.name for p in Path(folder.name).iterdir()), back.equals(months), back.dtypes.to_dict()

# %%
folder.cleanup()

# %% [markdown]
# ## Exercise
#
# Which tags get the most views? Write a function `top_median_tags(posts, n)` that takes a
# frame like `posts` and, among its **published** posts whose views are tracked, gives each tag
# of each post that post's views and returns the `n` tags with the highest median views: a
# DataFrame indexed by tag with the columns `median_views` and `posts` (how many posts each
# median is based on), highest median first. Try it with `top_median_tags(posts, 5)`, then set
# `answer` to the function itself: the check calls it on `posts` and on a part of it, with
# other values of `n`, and compares with medians PostgreSQL computes.

# %%
answer = ...  # your top_median_tags function (no call)

# %%
await check_exercise_11(answer, db)

# %% [markdown]
# ### Solution

# %% tags=["solution"]
def top_median_tags(posts, n):
    kept = posts[posts["published_at"].notna() & posts["views"].notna()]
    per_tag = kept.explode("tags").dropna(subset=["tags"]).groupby("tags")["views"]
    return (
        per_tag.agg(median_views="median", posts="count")
        .sort_values(["median_views", "posts"], ascending=False)
        .head(n)
    )


answer = top_median_tags
await check_exercise_11(answer, db)
kept = posts[posts["published_at"].notna() & posts["views"].notna()]
per_tag = kept.explode("tags").dropna(subset=["tags"]).groupby("tags")["views"]

# %% [markdown]
# Before calling these tags a success, look at `posts`: the top five are far smaller than the
# most used ones, and the highest of forty medians tends to come from a small, noisy sample. The
# three most used tags sit much closer to the median of all published posts, printed earlier:

# %%
top_median_tags(posts, 5), per_tag.median()[top["tag"].head(3)]

# %% [markdown]
# ## Summary
#
# - Look first (`describe`), ask quick questions in `%sql`, and read the SQL of an aggregation
#   with `show_sql`; filter on what really marks a row (`published_at`, not `views`).
# - Long-tailed numbers need medians; a Lorenz curve shows how concentrated output is; charts
#   need a title, units on their axes, and a source line, with monthly bars on their months.
# - `stream_frames` processes a table chunk by chunk in bounded memory, and the same stream can
#   be written to Parquet one row group per chunk.

# %%
await db.close()
await nb.close()
