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

__all__ += ["check_exercise_09"]

_ROLE_INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    " AND tablename = 'users' AND indexdef LIKE '%(role)%' ORDER BY indexname"
)


async def _role_uses_index(db: Any, role: str) -> bool:
    from sqlalchemy import select

    from blogdata.explain import explain, plan_nodes
    from blogdata.models import User

    plan = await explain(db, select(User).where(User.role == role))
    return any("Index" in node for node in plan_nodes(plan))


async def check_exercise_09(answer: Any, db: Any) -> None:
    """Check ``{"admin": uses an index?, "reader": uses an index?}`` against real plans.

    ``db`` is an ``AsyncSession`` on the notebook's database: the check looks for an index on
    ``users.role`` there and explains both filters itself.
    """
    if not _answered(answer):
        return
    from sqlalchemy import text

    _expect(
        isinstance(answer, dict)
        and set(answer) == {"admin", "reader"}
        and all(isinstance(value, bool) for value in answer.values()),
        'answer should be a dict {"admin": True or False, "reader": True or False}: for each '
        "role, whether the plan of select(User).where(User.role == role) uses an index",
    )
    indexes = (await db.execute(text(_ROLE_INDEXES))).scalars().all()
    _expect(
        bool(indexes),
        "users.role has no index yet: run CREATE INDEX ix_users_role ON users (role) (and "
        "ANALYZE users) on this session, then explain both filters again",
    )
    uses = {role: await _role_uses_index(db, role) for role in ("admin", "reader")}
    _expect(
        uses["admin"] and not uses["reader"],
        "the planner does not yet use the role index for the rare 'admin' only: run ANALYZE "
        "users so its statistics know how few admins (and how many readers) there are",
    )
    for role in ("admin", "reader"):
        _expect(
            answer[role] == uses[role],
            f"look again at the plan for role == {role!r}: plan_nodes(plan) "
            f"{'has an index node' if uses[role] else 'is a Seq Scan, with no index node'}",
        )
    _right(
        f"the index on role ({', '.join(indexes)}) finds the rare admins, while for the common "
        "readers the planner still reads the whole table: an index pays for selective filters"
    )


# -- 10 · Testing ---------------------------------------------------------------------------

__all__ += ["check_exercise_10"]


async def check_exercise_10(answer: Any, engine: Any) -> None:
    """Check the usernames a savepoint-joined session sees after its own rollback: ``["kept"]``.

    ``engine`` is the notebook's ``AsyncEngine``: the check also makes sure that nothing was
    committed and that the exercise's connection went back to the pool.
    """
    if not _answered(answer):
        return
    from sqlalchemy import select

    from blogdata.models import User

    _expect(
        isinstance(answer, list | tuple) and all(isinstance(name, str) for name in answer),
        "answer should be the sorted list of usernames (among 'kept' and 'dropped') the session "
        "sees after its rollback, e.g. ['someone']",
    )
    checked_out = getattr(engine.sync_engine.pool, "checkedout", lambda: 0)()
    _expect(
        checked_out == 0,
        f"{checked_out} connection(s) still checked out of the engine's pool: finish as the "
        "fixture does (await db.close(), await outer.rollback(), await conn.close())",
    )
    async with engine.connect() as other:
        committed = sorted(
            await other.scalars(select(User.username).where(User.username.in_(["kept", "dropped"])))
        )
    _expect(
        not committed,
        f"{committed} committed for everyone: the outer transaction must be rolled back at the "
        "end (await outer.rollback()), and only the session may commit, inside it. Delete "
        "them, then try again",
    )
    seen = sorted(answer)
    _expect(
        "dropped" not in seen,
        "'dropped' should be gone: add it, await db.flush(), then await db.rollback() before "
        "you query the usernames",
    )
    _expect(
        seen == ["kept"],
        "'kept' should survive the session's rollback: bind the session to the connection with "
        'join_transaction_mode="create_savepoint", so that its commit() only releases a '
        "savepoint and its rollback() returns to the next one, not to the start of the test",
    )
    _right(
        "the session's rollback() undid only 'dropped' (back to the savepoint its commit() "
        "had begun); the outer rollback then undid 'kept' too, and nothing was left behind"
    )


# -- 11 · Exploring the blog ----------------------------------------------------------------


# -- 12 · Scaling out -----------------------------------------------------------------------

__all__ += ["check_exercise_12"]


def check_exercise_12(answer: Any) -> None:
    """Check how much the top tag's count grew on the standby after one new link: 1."""
    if not _answered(answer):
        return
    import operator

    try:
        grown = operator.index(answer)  # int, or a NumPy integer taken from a DataFrame
    except TypeError:
        grown = None
    _expect(
        grown is not None and not isinstance(answer, bool),
        f"answer should be a whole number (the top tag's posts after, minus before), not "
        f"{type(answer).__name__}",
    )
    _expect(
        grown != 0,
        "the standby shows no change yet: commit the new post_tags row on the primary, then "
        "await wait_for_replica(primary=primary, replica=reader) before you read top_tags again",
    )
    _expect(
        grown == 1,
        f"the count grew by {grown}, but one new link adds exactly one post: insert a single "
        "post_tags row, for a post that did not carry the tag yet, and compare the same tag",
    )
    _right(
        "the standby counts the new link once it has replayed the primary's WAL: write on the "
        "primary, wait_for_replica, then read"
    )
