# %% [markdown]
# # 11 · Exploring the blog, for analysts
#
# An analyst's first hour with a database: what is in it, how big, who writes, about what, and
# when, and which rows are not what they seem. This notebook is that hour on a blog of 4,000
# users and 20,000 posts, asked one question at a time, each written down before the code that
# answers it.
#
# **Prerequisites:** [notebook 06](06-aggregations.ipynb) (aggregations as statements), pandas
# and matplotlib basics · **Time to learn:** 30 minutes
#
# **What you will learn**
# - opening a database for analysis with `open_database`, looking around with `describe`, and
#   asking quick questions in `%sql` (as a pandas or a polars frame, with a capped display);
# - filtering on what really marks a published post, and why medians describe long-tailed
#   numbers such as page views; a histogram counted in PostgreSQL;
# - finding an outlier (an account that is not a person), examining it, and showing how much it
#   moves a Lorenz curve and its Gini coefficient;
# - monthly and weekly charts with titles, units and a source line; which subjects go together;
# - (advanced) streaming a table chunk by chunk with `stream_frames`, with the memory it holds
#   measured, and saving to Parquet.

# %%
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from blogdata.notebook import open_database, tutorial_database
from blogdata.notebook.exercises import check_exercise_11
from blogdata.seed import SEED_NOW

%load_ext blogdata
tutorial = await tutorial_database("11-exploring-the-blog", scale=20)  # the blog we study

# %% [markdown]
# The setup made this notebook's blog (`tutorial_database` creates and fills a fresh database, so
# the outputs below are the same on every run). From here on, we work the way you would on a
# database of your own.
#
# ## Opening the database
#
# `open_database(url)` opens an existing database for analysis: it checks that the server
# answers and never drops, migrates or seeds anything. Without a URL it opens the configured one
# (`BLOGDATA_DATABASE_URL`); `read=True` makes every transaction READ ONLY, or goes to a hot
# standby ([notebook 12](12-scaling-out.ipynb)). Here the URL is the tutorial's:

# %%
blog = await open_database(tutorial.engine.url)
await tutorial.close()  # the tutorial's own connections are no longer needed
db = blog.sessions()
blog.database

# %% [markdown]
# `db` is one [session](glossary.ipynb#session), used by every cell below, and `%sql` now runs on
# this database (the one opened last).
#
# ## What is in it, and how big?
#
# `describe` lists the tables, with PostgreSQL's estimate of their rows:

# %%
from blogdata import describe

(await describe(db))[["name", "estimated_rows"]]

# %% [markdown]
# Given a table's name it shows its columns, their types and whether they may be NULL. Two
# columns of `posts` matter below: `published_at` (NULL for a draft) and `views` (NULL where
# views were not tracked).

# %%
(await describe(db, "posts")).columns[["name", "type", "nullable"]]

# %% [markdown]
# **Which posts were read most in the blog's last week?** A quick question goes in a `%sql`
# cell: it runs as one [unit of work](glossary.ipynb#unit-of-work) and returns a DataFrame.
# `:since` binds the notebook variable `since` as a query parameter (never pasted into the SQL).

# %%
since = SEED_NOW - pd.Timedelta(days=7)
%sql SELECT title, views FROM posts WHERE published_at > :since ORDER BY views DESC NULLS LAST, id LIMIT 5

# %% [markdown]
# **What does a whole table look like?** Without a `LIMIT`, `%sql` still returns every row, but
# its display is capped: the first rows, and how many the frame holds. `len` confirms it:

# %%
everything = %sql SELECT id, title, author_id, created_at FROM posts ORDER BY id
everything

# %%
len(everything)

# %% [markdown]
# **Which tags are used most?** `%sql --polars` returns the same exact result as a
# [polars](https://docs.pola.rs/) frame, for those who continue in polars (the display is capped
# the same way):

# %%
tags = %sql --polars SELECT t.name AS tag, count(*) AS posts FROM post_tags pt JOIN tags t ON t.id = pt.tag_id GROUP BY t.name ORDER BY posts DESC, tag
tags

# %% [markdown]
# The tags are the blog's subjects: web development, databases, programming, data science,
# cooking. Which ones go together comes later; first, the posts themselves.
#
# ## The posts as frames
#
# `users_frame` and `posts_frame` load one row per user or post, ordered by id (users without
# their password hashes); each post carries its author's name and its list of tags.

# %%
from blogdata import posts_frame, users_frame

users = await users_frame(db)
posts = await posts_frame(db)
posts[["id", "author", "created_at", "published_at", "views", "tags"]].head(3)

# %% [markdown]
# The dtypes are the loader's contract (the default [dtype backend](glossary.ipynb#dtype-backend)):
# ids and counts `Int64`, text `string`, timestamps `datetime64[us, UTC]`, tags a Python list;
# missing values are `<NA>` or `NaT`, never a float `NaN` that would turn integers into floats.

# %%
posts.dtypes

# %% [markdown]
# Every chart below ends with a line saying where its numbers come from. A small function writes
# it under a figure:

# %%
SOURCE = f"Source: blogdata seed 42, {len(users):,} users, {len(posts):,} posts"


def source_line(fig, source=SOURCE):
    """Reserve the bottom of a constrained-layout figure and write the source line there."""
    fig.get_layout_engine().set(rect=(0, 0.06, 1, 0.94))
    fig.text(0.01, 0.01, source, fontsize=7, color="0.35")


# %% [markdown]
# ## How many readers does a typical post get?
#
# First, which posts count. What marks a published post is `published_at`; `views` is `<NA>`
# where views were not tracked. How many posts, drafts, and untracked views are there?

# %%
drafts = posts["published_at"].isna()
{"posts": len(posts), "drafts": int(drafts.sum()), "views not tracked": int(posts["views"].isna().sum())}

# %% [markdown]
# A draft has not been read by anyone, and the data says so with `views = 0`, while `<NA>` only
# means "not tracked", for drafts and published posts alike. So skipping missing values, as
# `median` does, leaves the drafts in. The views of the drafts:

# %%
posts.loc[drafts, "views"].value_counts(dropna=False)

# %% [markdown]
# Per role of the author, the median views over all posts (drafts' zeros included: what a
# "median views" without a filter computes) against the median over the published posts.
# `count` is how many posts each median is based on:

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
# Readers never write, so they have no row. Why the median, and not the mean? Here are the
# mean, the median and the largest views of a published post:

# %%
views = published["views"].dropna()
round(float(views.mean()), 1), float(views.median()), int(views.max())

# %% [markdown]
# The mean is well above the median and the maximum is far out: a long tail, where a few posts
# pull the mean up and the median stays the typical post. To see the shape without loading the
# column, let PostgreSQL count the bins: `%sqlplot histogram` sends one `width_bucket` query and
# receives one row per bin.

# %%
%sqlplot histogram posts.views --bins 40 --unit views --title "Views per post, equal-width bins"
plt.show()

# %% [markdown]
# Equal-width bins put nearly every post in the first bar: the tail is too long for a linear
# axis. On a logarithmic axis the shape appears. `blogdata.charts.histogram` takes any
# one-column statement, so the logarithm is computed in SQL too (published posts with at least
# one view):

# %%
from sqlalchemy import Float, func, select

from blogdata import Post
from blogdata.charts import histogram

log_views = select(func.log(Post.views, type_=Float).label("views")).where(
    Post.published_at.is_not(None), Post.views > 0
)
ax = await histogram(db, log_views, bins=30, unit="log10", title="Views per published post")
ax.axvline(np.log10(views.median()), color="black", label=f"median {views.median():,.0f}")
ax.axvline(np.log10(views.mean()), color="tab:red", linestyle="--", label=f"mean {views.mean():,.0f}")
ax.legend()
plt.show()

# %% [markdown]
# The same median in SQL: `percentile_cont(0.5)` interpolates the way pandas does, and
# `count(views)` skips the NULLs as pandas' `count` skips `<NA>`.

# %%
%%sql
SELECT count(views) AS posts, round(avg(views), 1) AS mean,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY views) AS median
FROM posts
WHERE published_at IS NOT NULL

# %% [markdown]
# ## Who writes, and does anyone stand out?
#
# `author_activity` summarises each author (users with at least one post): number of posts,
# first and last post, mean length of their content.

# %%
from blogdata import author_activity

activity = await author_activity(db)
activity.head(3).round({"mean_length": 1})

# %% [markdown]
# A count of posts favours authors who have been around longer. A fairer question: **how many
# posts does each author write per day, between their first and last post?** Authors with at
# least 10 posts, the fastest first:

# %%
days = (activity["last_post"] - activity["first_post"]) / pd.Timedelta(days=1)
activity["per_day"] = (activity["posts"] / days.clip(lower=1)).round(2)
regular = activity[activity["posts"] >= 10].sort_values("per_day", ascending=False)
regular[["author_id", "username", "posts", "per_day"]].head(4)

# %% [markdown]
# One account writes several posts a day, every day, for months; the next ones write about one a
# day at most. That is worth a closer look before any conclusion about "authors".
#
# ### Examining the outlier
#
# **Is it a person?** Its user row: a name like a feature's, never logged in:

# %%
outlier = regular.iloc[0]
users.loc[users["id"] == outlier["author_id"], ["id", "username", "full_name", "role", "created_at", "last_login"]]

# %% [markdown]
# **When does it post?** The hours (UTC) of its posts, against everyone else's:

# %%
by_bot = posts["author_id"] == outlier["author_id"]
bot_hours = posts.loc[by_bot, "created_at"].dt.hour.value_counts().sort_index()
bot_hours.to_dict(), posts.loc[~by_bot, "created_at"].dt.hour.nunique()

# %% [markdown]
# It posts at four fixed hours, and only those (everyone else's posts fall in all 24 hours); the
# minutes of its posts tell the same story:

# %%
posts.loc[by_bot, "created_at"].dt.minute.value_counts().sort_index().to_dict()

# %% [markdown]
# A few minutes past the hour, every time, as a timer would. **What does it write?** How its
# titles begin, and three of them:

# %%
posts.loc[by_bot, "title"].str.split(":").str[0].value_counts()

# %%
posts.loc[by_bot, "title"].head(3).tolist()

# %% [markdown]
# **Are its posts read?** The median views of published posts, the outlier's against everyone
# else's:

# %%
published_by = posts[posts["published_at"].notna()].groupby(by_bot.rename("outlier"))["views"]
published_by.agg(["count", "median"])

# %% [markdown]
# An automated digest, not a writer: every title starts the same way, and its posts are read far
# less than people's. It is part of the blog (its posts are real rows), but it answers a
# different question: "who writes?" is about people. How much does
# it change the answer? A Lorenz curve sorts the authors from the fewest posts to the most and
# plots the cumulative share of authors against the cumulative share of posts; the
# [Gini coefficient](glossary.ipynb#gini) is 0 for equal output and 1 for one author
# writing everything. Computed with and without the digest:

# %%
def lorenz(counts):
    """Cumulative shares of authors and of posts, fewest posts first, and the Gini coefficient."""
    counts = np.sort(np.asarray(counts, dtype="int64"))
    share_of_posts = np.concatenate([[0], counts.cumsum()]) / counts.sum()
    share_of_authors = np.linspace(0, 1, counts.size + 1)
    return share_of_authors, share_of_posts, 1 - 2 * float(np.trapezoid(share_of_posts, share_of_authors))


people = activity[activity["author_id"] != outlier["author_id"]]
curves = {"all authors": lorenz(activity["posts"]), "people only": lorenz(people["posts"])}
{name: {"top 10% write": round(1 - float(np.interp(0.9, a, p)), 3), "Gini": round(g, 3)}
 for name, (a, p, g) in curves.items()}

# %% [markdown]
# With the digest, the top tenth of authors seems to write a larger share and the Gini is
# higher: one automated account makes the people look more unequal than they are. From here on, questions about writers use `people`. The curves:

# %%
fig, ax = plt.subplots(figsize=(4.5, 4.5), layout="constrained")
for name, (a, p, g) in curves.items():
    ax.plot(a * 100, p * 100, label=f"{name} (Gini {g:.2f})")
ax.plot([0, 100], [0, 100], color="0.6", linestyle="--", label="equal output")
ax.set(title="Who writes the posts", xlim=(0, 100), ylim=(0, 100))
ax.set(xlabel="authors, fewest posts first (% of authors)", ylabel="posts (% of all posts)")
ax.legend(loc="upper left")
source_line(fig)
plt.show()

# %% [markdown]
# The curve counts only users with a post. Writers (non-readers) who never wrote one would make
# it more unequal still; there are this many of them:

# %%
int((users["role"] != "reader").sum()) - len(activity)

# %% [markdown]
# ## When do people write?
#
# **How has the number of posts changed month by month, and how much of it is the digest?**
# `posts_per_month` counts posts per calendar month in UTC, with empty months as 0; only one row
# per month travels from the database. The digest's own posts per month come from the frame:

# %%
from blogdata import posts_per_month

months = await posts_per_month(db)
start = posts.loc[by_bot, "created_at"].dt.tz_localize(None).dt.to_period("M").value_counts()
months["digest"] = months["month"].dt.tz_localize(None).dt.to_period("M").map(start).fillna(0).astype("int64")
months.tail(3)

# %% [markdown]
# A month is a span of time, so each bar starts at its month's first day and is as wide as the
# month (a little less, to leave a gap); the digest's part is stacked on top of the people's.

# %%
import matplotlib.dates as mdates

starts = months["month"].dt.tz_localize(None)
width = starts.dt.days_in_month * 0.9
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(starts, months["posts"] - months["digest"], width=width, align="edge", label="people")
ax.bar(starts, months["digest"], bottom=months["posts"] - months["digest"], width=width,
       align="edge", color="tab:gray", label="digest")
quarters = mdates.MonthLocator(bymonth=[1, 4, 7, 10])
ax.xaxis.set(major_locator=quarters, major_formatter=mdates.ConciseDateFormatter(quarters))
ax.set(title="Posts written per month", xlabel="month (UTC)", ylabel="posts per month")
ax.legend(loc="upper left")
source_line(fig)
plt.show()

# %% [markdown]
# The people's output climbs for the first months as writers sign up, then grows slowly; the
# digest adds a flat band from the month it started. Without separating it, that step would look
# like a sudden jump in the blog's activity. The first user's signup date, and the share of
# people whose last post is more than 90 days before the data's last day:

# %%
quiet = people["last_post"] < SEED_NOW - pd.Timedelta(days=90)
users["created_at"].min().date().isoformat(), round(float(quiet.mean()), 2)

# %% [markdown]
# **Do people write more on some days of the week?** Posts per weekday (UTC), relative to the
# average day, for people and for the digest:

# %%
order = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
weekday = posts["created_at"].dt.day_name().str[:3]
per_day = pd.crosstab(weekday, by_bot.map({True: "digest", False: "people"})).reindex(order)
(per_day / per_day.mean()).round(2).T

# %%
fig, ax = plt.subplots(figsize=(6, 3), layout="constrained")
ax.bar(order, per_day["people"], color="tab:purple")
ax.set(title="Posts written per weekday, people only", xlabel="weekday (UTC)", ylabel="posts")
source_line(fig)
plt.show()

# %% [markdown]
# People write on weekdays and much less at weekends; the digest posts the same every day, as a
# timer does. Mixed together, the digest would flatten the weekly rhythm.
#
# ## What do people write about?
#
# **Which tags are used most, by people?** The `tags` column holds lists: `explode` gives one
# row per (post, tag). Drafts not tagged yet have an empty list, which `explode` turns into a
# missing value that `dropna` removes. `top_tags` counts the same in SQL, all authors included:

# %%
from blogdata import top_tags

tag_counts = posts["tags"].explode().dropna().value_counts()
top = await top_tags(db, n=10)
untagged = int((posts["tags"].str.len() == 0).sum())
bool((top["posts"].to_numpy() == tag_counts.head(10).to_numpy()).all()), untagged

# %% [markdown]
# Without the digest, the ranking is the people's own:

# %%
by_people = posts.loc[~by_bot, "tags"].explode().dropna().value_counts()
people_top = by_people.head(10).rename_axis("tag").reset_index(name="posts")
pd.concat({"everyone": top, "people": people_top}, axis=1)

# %% [markdown]
# **Which tags go together?** `tag_cooccurrence` counts the posts carrying each pair of tags, in
# SQL. The most frequent pairs:

# %%
from blogdata import tag_cooccurrence

pairs = await tag_cooccurrence(db, min_posts=20)
pairs.head(8)

# %% [markdown]
# The frequent pairs stay within a subject: posts are about one thing, and a post's tags
# describe it together.
#
# ### Aside: streaming a table that does not fit in memory (advanced)
#
# *Skip this on first reading.* `load_frame` builds one DataFrame of the whole result.
# `stream_frames` yields it in frames of `chunk_size` rows, read from a
# [COPY](glossary.ipynb#copy) stream as it arrives. **How much memory does a stream hold?** The
# posts with their full text, in chunks of 2,000, adding up the characters written per month;
# `held()` is what Python objects and numpy arrays ([`tracemalloc`](https://docs.python.org/3/library/tracemalloc.html))
# and Arrow's memory pool hold at that moment:

# %%
import tracemalloc

import pyarrow as pa

from blogdata import load_frame, stream_frames


def held():
    """Bytes held now by Python objects and numpy arrays (traced), plus Arrow's pool."""
    return tracemalloc.get_traced_memory()[0] + pa.total_allocated_bytes()


texts = select(Post.id, Post.created_at, Post.content).order_by(Post.id)
# A kernel's first large load also loads blogdata's decoder (numba): not what we measure.
await load_frame(db, texts.limit(5_000))
tracemalloc.start()
base, most, chars = held(), 0, pd.Series(dtype="Int64")
async for chunk in stream_frames(db, texts, chunk_size=2_000):
    month = chunk["created_at"].dt.tz_localize(None).dt.to_period("M")
    chars = chars.add(chunk["content"].str.len().groupby(month).sum(), fill_value=0)
    most = max(most, held() - base, tracemalloc.get_traced_memory()[1] - base)
    tracemalloc.reset_peak()

# %% [markdown]
# Now the whole result in one frame, measured the same way (`most` is the stream's high-water
# mark above the starting point, `whole` the frame's). The megabytes vary a little from run to
# run, so this cell's output is not compared; the comparison after it is:

# %%
# NBVAL_IGNORE_OUTPUT
base = held()
tracemalloc.reset_peak()
whole_frame = await load_frame(db, texts)
whole = max(held() - base, tracemalloc.get_traced_memory()[1] - base)
tracemalloc.stop()
{"rows": len(whole_frame), "stream held at most, MB": round(most / 1e6), "whole frame, MB": round(whole / 1e6)}

# %% [markdown]
# The stream held a fraction of what the whole frame takes: about a chunk and its decoding
# buffers. The last value below checks that it stayed under half of the whole; the first
# two show that the running total agrees with PostgreSQL's own sum of the stored
# `content_length` column:

# %%
in_sql = %sql SELECT sum(content_length) AS chars FROM posts
int(chars.sum()), int(in_sql["chars"].iloc[0]), most < whole / 2

# %% [markdown]
# ### Aside: saving to Parquet (advanced)
#
# *Skip this on first reading.* Parquet keeps the dtypes, compresses well and loads fast: the
# format to keep a result in. The same stream can go straight to a Parquet file, one row group
# per chunk, so a big table is saved without ever being in memory. In a temporary folder:

# %%
import tempfile
from pathlib import Path

import pyarrow.parquet as pq

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
# Before calling these tags a success, look at `posts`: each of the five medians rests on
# hundreds of posts, so the ranking is not the noise of a handful. For comparison, the three most
# used tags sit lower, near the median of all published posts printed earlier:

# %%
top_median_tags(posts, 5), per_tag.median()[top["tag"].head(3)]

# %% [markdown]
# ## Further reading
#
# - pandas: [`DataFrame.explode`](https://pandas.pydata.org/docs/reference/api/pandas.DataFrame.explode.html),
#   [group by: split-apply-combine](https://pandas.pydata.org/docs/user_guide/groupby.html),
#   [nullable integer data type](https://pandas.pydata.org/docs/user_guide/integer_na.html),
#   [`DataFrame.to_parquet`](https://pandas.pydata.org/docs/reference/api/pandas.DataFrame.to_parquet.html).
# - PostgreSQL: [aggregate functions (`percentile_cont`)](https://www.postgresql.org/docs/current/functions-aggregate.html),
#   [mathematical functions (`width_bucket`, `log`)](https://www.postgresql.org/docs/current/functions-math.html),
#   [`COPY`](https://www.postgresql.org/docs/current/sql-copy.html).
# - SQLAlchemy: [`select()` and the SQL Expression Language](https://docs.sqlalchemy.org/en/20/tutorial/data_select.html),
#   [asyncio extension](https://docs.sqlalchemy.org/en/20/orm/extensions/asyncio.html).
# - polars: [its documentation](https://docs.pola.rs/); Arrow:
#   [pyarrow's Parquet reader and writer](https://arrow.apache.org/docs/python/parquet.html);
#   matplotlib: [`Axes.bar`](https://matplotlib.org/stable/api/_as_gen/matplotlib.axes.Axes.bar.html).
# - Python: [`tracemalloc`](https://docs.python.org/3/library/tracemalloc.html).

# %% [markdown]
# ## Summary
#
# - Open the database in code (`open_database`), look first (`describe`), ask quick questions in
#   `%sql` (pandas or `--polars`, capped displays) and filter on what really marks a row
#   (`published_at`, not `views`); long-tailed numbers need medians and logarithmic bins, which
#   PostgreSQL can count (`%sqlplot`, `blogdata.charts`).
# - Look for rows that are not what they seem before drawing conclusions: an automated account
#   writes several posts a day at fixed hours; examined and set apart, it changes the Gini, the
#   monthly trend and the weekly rhythm.
# - `stream_frames` processes a table chunk by chunk in bounded memory (measured above), and the
#   same stream can be written to Parquet one row group per chunk.

# %%
await db.close()
await blog.close()
