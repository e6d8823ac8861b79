"""Every exercise check, while the learner's cell still says ``answer = ...``."""

from __future__ import annotations

import inspect

import pytest

from blogdata.notebook import exercises

CHECKS = sorted(name for name in exercises.__all__ if name.startswith("check_exercise_"))


def test_every_tutorial_notebook_has_a_check() -> None:
    assert [f"check_exercise_{n:02d}" for n in range(1, 13)] == CHECKS


@pytest.mark.parametrize("name", CHECKS)
async def test_an_unanswered_exercise_says_so_and_touches_nothing(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    check = getattr(exercises, name)
    others = [None] * (len(inspect.signature(check).parameters) - 1)  # no session is needed
    result = check(..., *others)
    if inspect.isawaitable(result):
        await result
    assert capsys.readouterr().out == exercises.NOT_ANSWERED + "\n"
