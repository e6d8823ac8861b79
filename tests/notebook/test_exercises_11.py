"""Notebook 11's exercise check accepts the solution and explains the plausible mistakes."""

from __future__ import annotations

from typing import Protocol, cast

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.frames import posts_frame
from blogdata.notebook.exercises import check_exercise_11


@pytest.fixture
async def posts(seeded_db: AsyncSession) -> pd.DataFrame:
    return await posts_frame(seeded_db)


class _Grouped(Protocol):
    """A grouped column; pandas-stubs types ``agg(**named)`` as a Series, it is a DataFrame."""

    def agg(self, **named: str) -> pd.DataFrame: ...


def per_tag(posts: pd.DataFrame, *, published_only: bool = True) -> _Grouped:
    """The views of each tag's posts (published ones with tracked views, as the exercise asks)."""
    kept = posts["views"].notna()
    if published_only:
        kept &= posts["published_at"].notna()
    exploded = posts[kept].explode("tags").dropna(subset=["tags"])
    return cast(_Grouped, exploded.groupby("tags")["views"])


def top_five(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values(["median_views", "posts"], ascending=False).head(5)


async def test_the_check_accepts_the_solution(
    seeded_db: AsyncSession, posts: pd.DataFrame, capsys: pytest.CaptureFixture[str]
) -> None:
    answer = top_five(per_tag(posts).agg(median_views="median", posts="count"))
    await check_exercise_11(answer, seeded_db)
    assert capsys.readouterr().out.startswith("✓ top tag ")


async def test_the_check_rejects_medians_that_count_the_drafts(
    seeded_db: AsyncSession, posts: pd.DataFrame
) -> None:
    # The old exercise's flaw: drafts have views 0, and "views tracked" does not leave them out.
    flawed = per_tag(posts, published_only=False).agg(median_views="median", posts="count")
    with pytest.raises(ExerciseError, match="counts the drafts too"):
        await check_exercise_11(top_five(flawed), seeded_db)


async def test_the_check_rejects_the_mean_instead_of_the_median(
    seeded_db: AsyncSession, posts: pd.DataFrame
) -> None:
    means = per_tag(posts).agg(median_views="mean", posts="count")
    with pytest.raises(ExerciseError, match=r"the median \(not the mean\)"):
        await check_exercise_11(top_five(means), seeded_db)


async def test_the_check_rejects_counts_that_include_untracked_views(
    seeded_db: AsyncSession, posts: pd.DataFrame
) -> None:
    published = posts[posts["published_at"].notna()].explode("tags").dropna(subset=["tags"])
    sized = cast(_Grouped, published.groupby("tags")["views"]).agg(
        median_views="median", posts="size"
    )
    with pytest.raises(ExerciseError, match="not 'size'"):
        await check_exercise_11(top_five(sized), seeded_db)


async def test_the_check_rejects_five_tags_that_are_not_the_top_five(
    seeded_db: AsyncSession, posts: pd.DataFrame
) -> None:
    stats = per_tag(posts).agg(median_views="median", posts="count")
    busiest = stats.sort_values("posts", ascending=False).head(5)
    with pytest.raises(ExerciseError, match="highest first|higher median than your fifth"):
        await check_exercise_11(busiest, seeded_db)
    lowest_first = top_five(stats).iloc[::-1]
    with pytest.raises(ExerciseError, match="highest first"):
        await check_exercise_11(lowest_first, seeded_db)
