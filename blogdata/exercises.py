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
__all__ += ["check_exercise_01"]


def check_exercise_01(answer: Any) -> None:
    """Check the exception a third ``connect()`` got from a pool of two with no overflow."""
    if not _answered(answer):
        return
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    from blogdata.errors import PoolExhaustedError

    _expect(
        not isinstance(answer, type),
        f"answer is the class {getattr(answer, '__name__', '')}; set it to the exception you "
        "caught (`except Exception as exc: answer = exc`), so its message can be checked",
    )
    _expect(
        not isinstance(answer, PoolTimeout),
        "that is SQLAlchemy's own pool TimeoutError: build the engine with blogdata's "
        "create_engine, which turns it into PoolExhaustedError with advice",
    )
    _expect(
        isinstance(answer, PoolExhaustedError),
        "answer should be the exception the third `await engine.connect()` raised, caught with "
        f"`except Exception as exc: answer = exc`; got {type(answer).__name__}: {answer!s:.120}",
    )
    message = str(answer)
    _expect(
        "all 2 pooled and 0 overflow connections" in message,
        f"the message says {message.split(': ')[1].split('.')[0]!r}: build the engine with "
        "pool_size=2 and max_overflow=0, and hold two connections before the third connect()",
    )
    _expect(
        "within 0.5 s" in message,
        f"the message says {message.split(':')[0]!r}: pass pool_timeout=0.5",
    )
    _right(
        "PoolExhaustedError after 0.5 s: both pooled connections were checked out and no "
        "overflow was allowed, so the third caller waited pool_timeout and gave up"
    )


# -- 02 · Models and relationships ----------------------------------------------------------
__all__ += ["check_exercise_02"]


async def check_exercise_02(answer: Any, db: Any) -> None:
    """Check the three newest posts as ``(author's username, title)`` pairs, newest first.

    ``db`` is the notebook's ``AsyncSession``; the expected posts are read through it.
    """
    if not _answered(answer):
        return
    from sqlalchemy import select

    from blogdata.models import Post, User

    newest = (
        select(User.username, Post.title)
        .join(Post.author)
        .order_by(Post.created_at.desc(), Post.id.desc())
    )
    expected = [tuple(row) for row in (await db.execute(newest.limit(3))).all()]
    _expect(
        isinstance(answer, list | tuple)
        and all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in answer),
        "answer should be a list of (username, title) pairs, e.g. "
        "[(p.author.username, p.title) for p in posts]",
    )
    pairs = [tuple(pair) for pair in answer]
    _expect(len(pairs) == 3, f"answer has {len(pairs)} pairs; the exercise asks for three posts")
    titles, want = [title for _, title in pairs], [title for _, title in expected]
    if titles != want:
        oldest = (await db.execute(newest.order_by(None).order_by(Post.created_at, Post.id))).all()
        _expect(
            titles != [title for _, title in oldest[:3]],
            "those are the three *oldest* posts: sort newest first, "
            "order_by(Post.created_at.desc(), Post.id.desc())",
        )
        _expect(
            sorted(titles) != sorted(want),
            "the right three posts, in the wrong order: newest first, ties by id descending",
        )
        _expect(
            False,
            "these are not the three newest posts: order by Post.created_at.desc(), then "
            "Post.id.desc(), and take limit(3)",
        )
    _expect(
        pairs == expected,
        "the titles are right, but not every username is that post's author: use "
        "p.author.username, loaded with selectinload(Post.author) or joinedload(Post.author)",
    )
    _right("the three newest posts with their authors, newest first")


# -- 03 · CRUD ------------------------------------------------------------------------------
__all__ += ["check_exercise_03"]

_ADA = "ada@example.org"  # the user notebook 03 signs up


async def check_exercise_03(answer: Any, db: Any) -> None:
    """Check that Ada's deactivation is committed and ``answer`` counts the active users.

    ``db`` is the notebook's ``AsyncSession``; a second session on the same bind checks what is
    committed (on an engine, a new connection: only committed rows).
    """
    if not _answered(answer):
        return
    from sqlalchemy import func, select
    from sqlalchemy.ext.asyncio import AsyncSession

    from blogdata.models import User

    _expect(
        isinstance(answer, int) and not isinstance(answer, bool),
        f"answer should be a number of users (an int from db.scalar(select(func.count())...)), "
        f"not {type(answer).__name__}",
    )
    here = await db.scalar(select(User.is_active).where(User.email == _ADA))
    _expect(here is not None, f"there is no user {_ADA}: run the notebook's cells above first")
    _expect(
        here is False,
        "Ada is still active: crud.user.update(db, db_obj=ada, obj_in=UserUpdate(is_active=False))",
    )
    async with AsyncSession(db.bind) as other:
        committed = await other.scalar(select(User.is_active).where(User.email == _ADA))
        active = select(func.count()).select_from(User).where(User.is_active.is_(True))
        expected = int(await other.scalar(active) or 0)
        everyone = int(await other.scalar(select(func.count()).select_from(User)) or 0)
    _expect(
        committed is False,
        "Ada is inactive in your session only: `await db.commit()` so other sessions see it",
    )
    _expect(
        answer != expected + 1,
        f"{answer} still counts Ada: count the active users after her deactivation",
    )
    _expect(
        answer != everyone,
        f"{answer} is every user, active or not: add .where(User.is_active.is_(True))",
    )
    _expect(
        answer == expected,
        f"{answer} is not the number of active users: "
        "select(func.count()).select_from(User).where(User.is_active.is_(True))",
    )
    _right(f"Ada is deactivated for every session, and {expected} users are active")


# -- 04 · Query patterns --------------------------------------------------------------------
__all__ += ["check_exercise_04"]


async def check_exercise_04(answer: Any, db: Any) -> None:
    """Check keyset pages of 2 over the posts whose title contains "data", newest first.

    ``db`` is the notebook's ``AsyncSession``; the expected posts are read through it. A final
    empty page (what a loop that stops on a short page may collect) is accepted.
    """
    if not _answered(answer):
        return
    from sqlalchemy import select

    from blogdata.models import Post

    _expect(
        isinstance(answer, list)
        and all(isinstance(page, list) for page in answer)
        and all(isinstance(i, int) and not isinstance(i, bool) for page in answer for i in page),
        "answer should be a list of pages, each a list of post ids: [[id, id], [id, id], ...]",
    )
    pages = list(answer)
    while pages and not pages[-1]:
        pages.pop()
    newest = select(Post.id).order_by(Post.created_at.desc(), Post.id.desc())
    expected = list((await db.scalars(newest.where(Post.title.ilike("%data%")))).all())
    _expect(
        all(len(page) == 2 for page in pages[:-1]) and all(0 < len(p) <= 2 for p in pages),
        f"pages of {[len(page) for page in pages]} posts: every page holds 2 posts "
        "(posts_page(after=..., limit=2)), only the last may hold fewer",
    )
    ids = [i for page in pages for i in page]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    _expect(
        not repeated,
        f"post {repeated[0] if repeated else ''} appears on two pages: start each page strictly "
        "after the previous page's last post, after=Keyset(rows[-1].created_at, rows[-1].id)",
    )
    if ids != expected:
        case_sensitive = (await db.scalars(newest.where(Post.title.like("%data%")))).all()
        _expect(
            ids != list(case_sensitive),
            "only lower-case matches: titles can say 'Data' too; use Post.title.ilike('%data%')",
        )
        _expect(
            sorted(ids) != sorted(expected),
            "the right posts in the wrong order: newest first, as posts_page() orders them",
        )
        extra = sorted(set(ids) - set(expected))
        _expect(
            not extra,
            f"post {extra[0] if extra else ''} has no 'data' in its title: add "
            ".where(Post.title.ilike('%data%')) to every page's statement",
        )
        _expect(
            False,
            f"{len(expected) - len(ids)} matching posts are missing: keep fetching pages until "
            "one comes back with fewer than 2 posts",
        )
    _right(f"{len(ids)} posts in {len(pages)} keyset pages, none twice, none skipped")


# -- 05 · Relationship loading --------------------------------------------------------------


# -- 06 · Aggregations ----------------------------------------------------------------------


# -- 07 · Transactions and savepoints -------------------------------------------------------


# -- 08 · Migrations ------------------------------------------------------------------------


# -- 09 · Performance -----------------------------------------------------------------------


# -- 10 · Testing ---------------------------------------------------------------------------


# -- 11 · Exploring the blog ----------------------------------------------------------------


# -- 12 · Scaling out -----------------------------------------------------------------------
