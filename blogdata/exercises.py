"""Checks for the notebooks' try-it exercises: ``check_exercise_NN(answer)``.

Each exercise in notebook ``NN`` is three cells: the learner's cell (``answer = ...``), a check
cell (``check_exercise_NN(answer)``, awaited where the check needs the database), and a solution
cell collapsed by default (tag ``solution``) that ends with the same check, so strict nbval runs
and verifies every solution. A check prints one line starting with ``✓`` for a right answer,
says the exercise is not answered yet while ``answer`` is still ``...``, and raises
:class:`ExerciseError` (an ``AssertionError``) with a hint for a wrong one.
"""

from __future__ import annotations

from typing import Any

from blogdata.errors import BlogdataError

__all__ = ["ExerciseError"]

NOT_ANSWERED = (
    "Not answered yet: replace the ... in the cell above with your answer, run it, then run "
    "this check again. (The solution is in the collapsed cell below.)"
)


class ExerciseError(BlogdataError, AssertionError):
    """An exercise's answer is not right yet; the message says what to look at."""


def _answered(answer: Any) -> bool:
    """Return whether ``answer`` is an attempt; print the reminder when it is still ``...``."""
    if answer is ...:
        print(NOT_ANSWERED)  # noqa: T201
        return False
    return True


def _expect(condition: bool, hint: str) -> None:
    """Raise :class:`ExerciseError` with ``hint`` unless ``condition`` holds."""
    if not condition:
        raise ExerciseError(hint)


def _right(message: str) -> None:
    """Print the line a right answer gets."""
    print(f"✓ {message}")  # noqa: T201


# Each notebook's checks live in its own section below, in notebook order. A check is
# ``def check_exercise_NN(answer: ...) -> None`` (or ``async def`` when it needs a session) and
# starts with ``if not _answered(answer): return``. Add its name to __all__ in your section's
# ``__all__ += [...]`` line.

# -- 01 · Engine and sessions ---------------------------------------------------------------


# -- 02 · Models and relationships ----------------------------------------------------------


# -- 03 · CRUD ------------------------------------------------------------------------------


# -- 04 · Query patterns --------------------------------------------------------------------


# -- 05 · Relationship loading --------------------------------------------------------------


# -- 06 · Aggregations ----------------------------------------------------------------------

__all__ += ["check_exercise_06"]


async def check_exercise_06(answer: Any, db: Any) -> None:
    """Check 06's frame: posts and mean content length (one decimal) per role, by role.

    ``db`` is the notebook's ``AsyncSession``; the expected numbers are computed on it.
    """
    if not _answered(answer):
        return
    import pandas as pd
    from sqlalchemy import func, select

    from blogdata.models import Post, User

    _expect(
        isinstance(answer, pd.DataFrame),
        f"answer should be a DataFrame, not {type(answer).__name__}: build the statement, then "
        "load it with `answer = await load_frame(db, stmt)`",
    )
    columns = ["role", "posts", "mean_length"]
    _expect(
        list(answer.columns) == columns,
        f"the frame should have the columns {columns}, in that order, but has "
        f"{list(answer.columns)}; name them with .label(...)",
    )
    stmt = (
        select(User.role, func.count(Post.id), func.avg(func.length(Post.content)))
        .join(Post, Post.author_id == User.id)
        .group_by(User.role)
        .order_by(User.role)
    )
    expected = {role: (int(n), float(mean)) for role, n, mean in (await db.execute(stmt)).all()}
    roles = [str(role) for role in answer["role"]]
    _expect(
        set(roles) <= set(expected) | {"reader"} and "reader" not in roles,
        "readers write no posts, so they should not appear: join posts to their authors with an "
        "inner join (an outer join gives them a row of 0 posts)",
    )
    _expect(
        sorted(roles) == sorted(expected),
        f"expected one row per role that has posts ({sorted(expected)}), got {roles}",
    )
    _expect(roles == sorted(expected), f"order the rows by role, got {roles}")
    for role, posts, mean in answer.itertuples(index=False):
        want_posts, want_mean = expected[role]
        _expect(
            int(posts) == want_posts,
            f"{role}: posts is {posts}, expected {want_posts}; count the posts of each role "
            "(func.count(Post.id)) after joining posts to users",
        )
        got = float(mean)
        _expect(
            abs(got - round(want_mean, 1)) < 0.051 or abs(got - want_mean) < 1e-6,
            f"{role}: mean_length is {mean}, expected about {want_mean:.1f}; average the length "
            "of the content, func.avg(func.length(Post.content)) (avg skips empty drafts)",
        )
        _expect(
            abs(got - round(got, 1)) < 1e-9,
            f"{role}: mean_length is {mean}; round it to one decimal in SQL, "
            "func.round(func.avg(...), 1)",
        )
    _right(f"{len(roles)} roles, {sum(int(p) for p in answer['posts'])} posts, by role")


# -- 07 · Transactions and savepoints -------------------------------------------------------


# -- 08 · Migrations ------------------------------------------------------------------------


# -- 09 · Performance -----------------------------------------------------------------------


# -- 10 · Testing ---------------------------------------------------------------------------


# -- 11 · Exploring the blog ----------------------------------------------------------------

__all__ += ["check_exercise_11"]


async def check_exercise_11(answer: Any, db: Any) -> None:
    """Check 11's frame: the five tags whose published posts have the highest median views.

    ``answer`` is indexed by tag with columns ``median_views`` and ``posts``; ``db`` is the
    notebook's ``AsyncSession``, on which the expected medians are computed.
    """
    if not _answered(answer):
        return
    import pandas as pd
    from sqlalchemy import and_, func, select

    from blogdata.models import Post, Tag, post_tags

    _expect(
        isinstance(answer, pd.DataFrame)
        and {"median_views", "posts"} <= {str(c) for c in answer.columns},
        "answer should be a DataFrame indexed by tag with the columns median_views and posts, "
        "e.g. ....groupby('tags')['views'].agg(median_views='median', posts='count')",
    )
    _expect(len(answer) == 5, f"keep the five tags with the highest medians, not {len(answer)}")
    published, tracked = Post.published_at.is_not(None), Post.views.is_not(None)
    kept = and_(published, tracked)
    stmt = (
        select(
            Tag.name,
            func.count().filter(kept),
            func.percentile_cont(0.5).within_group(Post.views).filter(kept),
            func.count().filter(tracked),
            func.percentile_cont(0.5).within_group(Post.views).filter(tracked),
            func.count().filter(published),
        )
        .join(post_tags, post_tags.c.tag_id == Tag.id)
        .join(Post, Post.id == post_tags.c.post_id)
        .group_by(Tag.name)
    )
    stats = {str(row[0]): row[1:] for row in (await db.execute(stmt)).all()}
    tags = [str(tag) for tag in answer.index]
    _expect(
        all(tag in stats for tag in tags),
        f"the index should hold tag names, got {tags}; group by the exploded tags column",
    )
    for tag, posts, median in zip(tags, answer["posts"], answer["median_views"], strict=True):
        n_kept, med_kept, n_tracked, med_tracked, n_published = stats[tag]
        if abs(float(median) - float(med_kept)) > 0.05:
            _expect(
                float(median) != med_tracked and int(posts) != n_tracked,
                f"{tag}: {posts} posts with a median of {median} views counts the drafts too; "
                "drafts have views 0, which drags the median down: keep only published posts "
                "(published_at is not NaT)",
            )
            raise ExerciseError(
                f"{tag}: median_views is {median}, expected {float(med_kept):.1f}: the median "
                "(not the mean) of the views of published posts with tracked views"
            )
        _expect(
            int(posts) != n_published or n_published == n_kept,
            f"{tag}: posts is {posts}, which counts published posts whose views are <NA> (not "
            "tracked) too; drop them, or count with 'count' (it skips <NA>), not 'size'",
        )
        _expect(
            int(posts) == n_kept,
            f"{tag}: posts is {posts}, expected {n_kept} (published posts with tracked views "
            "that carry the tag)",
        )
    medians = [float(m) for m in answer["median_views"]]
    _expect(medians == sorted(medians, reverse=True), "sort by median_views, highest first")
    others = {tag: float(row[1]) for tag, row in stats.items() if tag not in tags and row[0]}
    better = sorted((m, tag) for tag, m in others.items() if m > medians[-1] + 1e-9)
    _expect(
        not better,
        f"{better[-1][1] if better else ''} has a higher median than your fifth tag: sort all "
        "the tags by median_views, then take the first five",
    )
    _right(
        f"top tag {tags[0]}: median {medians[0]:g} views over {int(answer['posts'].iloc[0])} posts"
    )


# -- 12 · Scaling out -----------------------------------------------------------------------
