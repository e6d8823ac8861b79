"""Notebook 01's exercise check: the exception a third connect() gets from an exhausted pool."""

from __future__ import annotations

from contextlib import AsyncExitStack

import pytest
from sqlalchemy.engine import URL
from sqlalchemy.exc import TimeoutError as PoolTimeout

from blogdata.db.engine import create_engine
from blogdata.errors import ExerciseError
from blogdata.notebook.exercises import check_exercise_01


async def _third_connect_error(
    url: URL, *, pool_size: int, max_overflow: int, pool_timeout: float
) -> Exception:
    """Hold pool_size + max_overflow connections, then return what one more connect() raises."""
    engine = create_engine(
        url, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=pool_timeout
    )
    try:
        async with AsyncExitStack() as held:
            for _ in range(pool_size + max_overflow):
                await held.enter_async_context(engine.connect())
            try:
                await engine.connect()
            except Exception as exc:
                return exc
            raise AssertionError("connect() succeeded on a full pool")
    finally:
        await engine.dispose()


async def test_the_solution_passes(database_url: URL, capsys: pytest.CaptureFixture[str]) -> None:
    answer = await _third_connect_error(database_url, pool_size=2, max_overflow=0, pool_timeout=0.5)
    check_exercise_01(answer)
    assert capsys.readouterr().out.startswith("✓ PoolExhaustedError after 0.5 s")


async def test_a_pool_with_overflow_is_refused_with_the_limits_it_hit(database_url: URL) -> None:
    answer = await _third_connect_error(database_url, pool_size=1, max_overflow=1, pool_timeout=0.5)
    with pytest.raises(ExerciseError, match="pool_size=2 and max_overflow=0"):
        check_exercise_01(answer)


async def test_another_timeout_is_refused(database_url: URL) -> None:
    answer = await _third_connect_error(database_url, pool_size=2, max_overflow=0, pool_timeout=0.2)
    with pytest.raises(ExerciseError, match="pass pool_timeout=0.5"):
        check_exercise_01(answer)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(PoolTimeout("QueuePool limit reached"), "SQLAlchemy's own", id="sa-timeout"),
        pytest.param(TimeoutError, "is the class TimeoutError", id="a-class"),
        pytest.param("PoolExhaustedError", "got str", id="the-name-as-text"),
    ],
)
def test_plausible_wrong_answers_get_a_hint(answer: object, hint: str) -> None:
    with pytest.raises(ExerciseError, match=hint):
        check_exercise_01(answer)
