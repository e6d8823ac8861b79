"""Notebook 11's exercise check: ``top_median_tags(posts, n)`` on whatever posts it is given."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, cast

import pandas as pd
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.errors import ExerciseError
from blogdata.frames import posts_frame
from blogdata.notebook.exercises import check_exercise_11


class _Grouped(Protocol):
    """A grouped column; pandas-stubs types ``agg(**named)`` as a Series, it is a DataFrame."""

    def agg(self, **named: str) -> pd.DataFrame: ...


def _per_tag(posts: pd.DataFrame, *, published_only: bool = True) -> _Grouped:
    kept = posts["views"].notna()
    if published_only:
        kept &= posts["published_at"].notna()
    exploded = posts[kept].explode("tags").dropna(subset=["tags"])
    return cast(_Grouped, exploded.groupby("tags")["views"])


def _top(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    return frame.sort_values(["median_views", "posts"], ascending=False).head(n)


def top_median_tags(posts: pd.DataFrame, n: int) -> pd.DataFrame:
    """The notebook's solution."""
    return _top(_per_tag(posts).agg(median_views="median", posts="count"), n)


def with_drafts(posts: pd.DataFrame, n: int) -> pd.DataFrame:
    return _top(_per_tag(posts, published_only=False).agg(median_views="median", posts="count"), n)


def mean_not_median(posts: pd.DataFrame, n: int) -> pd.DataFrame:
    return _top(_per_tag(posts).agg(median_views="mean", posts="count"), n)


def five_always(posts: pd.DataFrame, n: int) -> pd.DataFrame:
    """The prompt's five written in."""
    return top_median_tags(posts, 5)


def counts_untracked(posts: pd.DataFrame, n: int) -> pd.DataFrame:
    published = posts[posts["published_at"].notna()].explode("tags").dropna(subset=["tags"])
    grouped = cast(_Grouped, published.groupby("tags")["views"])
    return _top(grouped.agg(median_views="median", posts="size"), n)


class Remembers:
    """Right value, wrong technique: computed once on the notebook's posts, then replayed."""

    def __init__(self, posts: pd.DataFrame) -> None:
        self.frame = top_median_tags(posts, 5)

    def __call__(self, posts: pd.DataFrame, n: int) -> pd.DataFrame:
        return self.frame.head(n)


@pytest.fixture
async def posts(seeded_db: AsyncSession) -> pd.DataFrame:
    return await posts_frame(seeded_db)


async def test_the_check_accepts_the_solution(
    seeded_db: AsyncSession, capsys: pytest.CaptureFixture[str]
) -> None:
    await check_exercise_11(top_median_tags, seeded_db)
    assert capsys.readouterr().out.startswith("✓ your function finds the top tags")


async def test_the_frame_typed_in_is_refused(seeded_db: AsyncSession, posts: pd.DataFrame) -> None:
    with pytest.raises(ExerciseError, match="not your function.*cannot pass"):
        await check_exercise_11(top_median_tags(posts, 5), seeded_db)


async def test_a_function_that_remembers_the_notebook_posts_is_refused(
    seeded_db: AsyncSession, posts: pd.DataFrame
) -> None:
    with pytest.raises(ExerciseError, match="on every other post.*frame you are given"):
        await check_exercise_11(Remembers(posts), seeded_db)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(with_drafts, "counting the drafts too", id="drafts"),
        pytest.param(mean_not_median, "the median \\(not the mean\\)", id="mean"),
        pytest.param(five_always, "returned 5 tags: keep the top n", id="fixed-five"),
        pytest.param(counts_untracked, "not 'size'", id="size"),
    ],
)
async def test_wrong_functions_are_refused_with_a_hint(
    seeded_db: AsyncSession, answer: Callable[[pd.DataFrame, int], pd.DataFrame], hint: str
) -> None:
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_11(answer, seeded_db)
