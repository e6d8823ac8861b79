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


# -- 07 · Transactions and savepoints -------------------------------------------------------


# -- 08 · Migrations ------------------------------------------------------------------------


# -- 09 · Performance -----------------------------------------------------------------------


# -- 10 · Testing ---------------------------------------------------------------------------


# -- 11 · Exploring the blog ----------------------------------------------------------------


# -- 12 · Scaling out -----------------------------------------------------------------------
