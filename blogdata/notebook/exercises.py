"""Checks for the notebooks' try-it exercises: ``check_exercise_NN(answer, ...)``.

Each exercise in notebook ``NN`` is three cells: the learner's cell (``answer = ...``), a check
cell (``await check_exercise_NN(answer, ...)``), and a solution cell collapsed by default (tag
``solution``) that ends with the same check, so strict nbval runs and verifies every solution.

The answer is the learner's *function*, never a value: the check calls it itself, on a state it
prepares and with arguments other than the prompt's, and watches the SQL it sends (a
``before_cursor_execute`` listener on the engine), so a value typed in, or a function that gets
the right value by another technique than the one taught, is refused. A check prints one line
starting with ``✓`` for a right answer, says the exercise is not answered yet while ``answer`` is
still ``...``, and raises :class:`ExerciseError` (an ``AssertionError``) with a hint for a wrong
one. Expected values are always computed from the database, never written down.
"""

from __future__ import annotations

import asyncio
import inspect
import operator
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import (
    CheckConstraint,
    Engine,
    Select,
    and_,
    delete,
    event,
    func,
    select,
    text,
    update,
)
from sqlalchemy.engine import URL
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession

from blogdata.db.routing import wait_for_replica
from blogdata.diagnostics import explain, plan_nodes
from blogdata.errors import ExerciseError, PoolExhaustedError
from blogdata.frames import posts_frame
from blogdata.loaders import load_frame
from blogdata.models import Account, Base, Post, Tag, User, post_tags

__all__: list[str] = []

NOT_ANSWERED = (
    "Not answered yet: replace the ... in the cell above with your answer, run it, then run "
    "this check again. (The solution is in the collapsed cell below.)"
)


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


def _function(answer: Any, name: str, *, is_async: bool = True) -> None:
    """Refuse an ``answer`` that is not the learner's (async) function ``name`` itself."""
    kind = "async function" if is_async else "function"
    if inspect.iscoroutine(answer):
        answer.close()  # never awaited: no "coroutine was never awaited" warning
        raise ExerciseError(
            f"answer is a coroutine: you called {name}(...). Set answer = {name}, the function "
            "itself (no call, no await): the check calls it with arguments of its own"
        )
    right = inspect.iscoroutinefunction(answer) if is_async else callable(answer)
    if not is_async and inspect.iscoroutinefunction(answer):
        right = False
    if inspect.iscoroutinefunction(answer):
        what = "an async function"
    elif callable(answer):
        what = "a plain function (not async def)"
    else:
        what = f"a {type(answer).__name__} value"
    _expect(
        right,
        f"answer is {what}, not your {kind}: write `{'async ' if is_async else ''}def "
        f"{name}(...)` and set answer = {name} (no call). The check runs it itself, with "
        "arguments other than the prompt's, so a value typed in cannot pass",
    )


@dataclass(frozen=True)
class _Statement:
    """One SQL statement seen on an engine: its text, parameters and a label for the engine."""

    sql: str
    parameters: Any
    where: str


def _sync_engine(target: AsyncEngine | AsyncConnection | AsyncSession) -> Engine:
    """Return the sync ``Engine`` behind an async engine, connection or session."""
    if isinstance(target, AsyncSession):
        bind = target.sync_session.get_bind()
        return bind if isinstance(bind, Engine) else bind.engine
    return target.sync_engine


@contextmanager
def _watch(
    *targets: AsyncEngine | AsyncConnection | AsyncSession, labels: tuple[str, ...] = ()
) -> Iterator[list[_Statement]]:
    """Record, in order, every statement sent through the targets' engines while the block runs."""
    seen: list[_Statement] = []
    listeners = []
    for i, target in enumerate(targets):
        label = labels[i] if i < len(labels) else ""

        def record(
            conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any, label: str = label
        ) -> None:
            seen.append(_Statement(statement, parameters, label))

        engine = _sync_engine(target)
        event.listen(engine, "before_cursor_execute", record)
        listeners.append((engine, record))
    try:
        yield seen
    finally:
        for engine, record in listeners:
            event.remove(engine, "before_cursor_execute", record)


def _sql(seen: list[_Statement], where: str | None = None) -> list[str]:
    """Return the statements' texts, upper-cased, optionally only those seen on ``where``."""
    return [s.sql.upper() for s in seen if where is None or s.where == where]


def _flat(parameters: Any) -> list[Any]:
    """Return the values of a statement's parameters (a tuple, a dict, or a list of those)."""
    if isinstance(parameters, dict):
        return [v for value in parameters.values() for v in _flat(value)]
    if isinstance(parameters, list | tuple):
        return [v for value in parameters for v in _flat(value)]
    return [parameters]


_SAVEPOINTS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


def _queries(seen: list[_Statement]) -> list[str]:
    """Return the statements' texts, upper-cased, without the savepoints (a test's, a CRUD's)."""
    return [sql for sql in _sql(seen) if not sql.lstrip().startswith(_SAVEPOINTS)]


# Each notebook's checks live in its own section below, in notebook order. A check is
# ``async def check_exercise_NN(answer: ..., ...) -> None``, starts with
# ``if not _answered(answer): return`` and then ``_function(answer, ...)``. Add its name to
# __all__ in your section's ``__all__ += [...]`` line.

# -- 01 · Engine and sessions ---------------------------------------------------------------
__all__ += ["check_exercise_01"]

_POOL_01 = 3  # the check's pool size: not the prompt's 2, so a size typed in fails


async def check_exercise_01(answer: Any, url: URL) -> None:
    """Check ``answer(url, pool_size)``: the error of a connect beyond a full, no-overflow pool.

    Calls ``await answer(url, 3)`` (the prompt uses 2), at most 10 s.
    """
    if not _answered(answer):
        return
    _function(answer, "third_connection")
    try:
        got = await asyncio.wait_for(answer(url, _POOL_01), timeout=10)
    except TimeoutError:
        raise ExerciseError(
            "your function did not return within 10 s: the extra connect() waits pool_timeout "
            "seconds for a free connection; pass pool_timeout=0.5 to create_engine"
        ) from None
    except PoolExhaustedError as exc:
        raise ExerciseError(
            f"your function raised {type(exc).__name__} instead of returning it: catch it "
            "(`except Exception as exc: return exc`), after giving the connections back"
        ) from None
    _expect(
        not isinstance(got, PoolTimeout),
        "that is SQLAlchemy's own pool TimeoutError: build the engine with blogdata's "
        "create_engine, which turns it into PoolExhaustedError with advice",
    )
    _expect(
        isinstance(got, PoolExhaustedError),
        f"with pool_size={_POOL_01} your function returned {type(got).__name__}: {got!s:.100}. "
        "It should hold pool_size connections, then return the exception the next "
        "`await engine.connect()` raises (is max_overflow=0? with overflow the extra "
        "connect succeeds)",
    )
    _expect(
        got.__traceback__ is not None,
        "that PoolExhaustedError was never raised: return the exception the extra connect() "
        "raised, not one you built",
    )
    message = str(got)
    _expect(
        f"all {_POOL_01} pooled and 0 overflow connections" in message,
        f"called with pool_size={_POOL_01}, the message says "
        f"{message.split(': ')[-1].split('.')[0]!r}: pass the pool_size argument (not a fixed "
        f"2) and max_overflow=0 to create_engine, and check out pool_size connections first",
    )
    _expect(
        "within 0.5 s" in message,
        f"the message says {message.split(':')[0]!r}: pass pool_timeout=0.5",
    )
    _right(
        f"PoolExhaustedError after 0.5 s with a pool of {_POOL_01}: every pooled connection was "
        "checked out and no overflow was allowed, so the next caller waited pool_timeout and "
        "gave up"
    )


# -- 02 · Models and relationships ----------------------------------------------------------
__all__ += ["check_exercise_02"]

_NEWEST_02 = 4  # the check asks for 4 posts: the prompt shows 3


async def check_exercise_02(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(db, n)``: the n newest posts as ``(username, title)``, in two statements.

    Calls ``await answer(db, 4)`` on ``db`` (an ``AsyncSession``, identity map emptied first) and
    watches its SQL: ordering and limit in PostgreSQL, the authors by a loader option.
    """
    if not _answered(answer):
        return
    _function(answer, "newest_posts")
    n = _NEWEST_02
    db.expunge_all()  # nothing loaded earlier may help
    with _watch(db) as seen:
        try:
            got = await answer(db, n)
        except InvalidRequestError as exc:  # lazy="raise": the author was not loaded
            raise ExerciseError(
                f"{str(exc).splitlines()[0]}: Post.author is lazy='raise'. Load it in the "
                "statement with a loader option, e.g. .options(selectinload(Post.author))"
            ) from None
    newest = (
        select(User.username, Post.title)
        .join(Post.author)
        .order_by(Post.created_at.desc(), Post.id.desc())
    )
    expected = [tuple(row) for row in (await db.execute(newest.limit(n))).all()]
    _expect(
        isinstance(got, list | tuple)
        and all(isinstance(pair, list | tuple) and len(pair) == 2 for pair in got),
        f"your function returned {type(got).__name__} {got!r:.80}; return a list of "
        "(username, title) pairs, e.g. [(p.author.username, p.title) for p in posts]",
    )
    pairs = [tuple(pair) for pair in got]
    _expect(
        len(pairs) == n,
        f"newest_posts(db, {n}) returned {len(pairs)} pairs: take n posts, .limit(n), not a "
        "fixed 3",
    )
    titles, want = [title for _, title in pairs], [title for _, title in expected]
    if titles != want:
        oldest = (await db.execute(newest.order_by(None).order_by(Post.created_at, Post.id))).all()
        _expect(
            titles != [title for _, title in oldest[:n]],
            "those are the *oldest* posts: sort newest first, "
            "order_by(Post.created_at.desc(), Post.id.desc())",
        )
        _expect(
            sorted(titles) != sorted(want),
            "the right posts, in the wrong order: newest first, ties by id descending",
        )
        _expect(
            False,
            f"these are not the {n} newest posts: order by Post.created_at.desc(), then "
            "Post.id.desc(), and take limit(n)",
        )
    _expect(
        pairs == expected,
        "the titles are right, but not every username is that post's author: use "
        "p.author.username, loaded with selectinload(Post.author) or joinedload(Post.author)",
    )
    sql = _queries(seen)
    _expect(
        any("FROM POSTS" in s and "LIMIT" in s for s in sql),
        "the right posts, but your function read every post and picked the newest in Python: "
        "let PostgreSQL sort and cut, select(Post).order_by(...).limit(n)",
    )
    _expect(
        len(sql) <= 2,
        f"{len(sql)} statements for {n} posts: the authors came one query at a time (N+1). "
        "Load them with the posts, by a loader option on the statement: two statements at most",
    )
    _right(f"the {n} newest posts with their authors, newest first, in {len(sql)} statement(s)")


# -- 03 · CRUD ------------------------------------------------------------------------------
__all__ += ["check_exercise_03"]

_ADA = "ada@example.org"  # the user notebook 03 signs up


async def check_exercise_03(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(db, email)``: deactivates that user, commits, returns the active count.

    Calls it on ``db`` (an ``AsyncSession``) for another active user than Ada, watching its
    commit and SQL, then makes that user active again (committed).
    """
    if not _answered(answer):
        return
    _function(answer, "deactivate")
    ada = await db.scalar(select(User.is_active).where(User.email == _ADA))
    _expect(
        ada is not True,
        "Ada is still active: run your function on her, await deactivate(db, "
        f"{_ADA!r}), before this check",
    )
    target = (
        await db.execute(
            select(User.id, User.email)
            .where(User.is_active.is_(True), User.email != _ADA)
            .order_by(User.id.desc())
            .limit(1)
        )
    ).first()
    _expect(target is not None, "there is no active user to try your function on")
    assert target is not None
    user_id, email = target
    commits: list[bool] = []

    def committed(session: Any) -> None:
        if not session.in_nested_transaction():  # a savepoint released is not a commit
            commits.append(True)

    event.listen(db.sync_session, "after_commit", committed)
    try:
        with _watch(db) as seen:
            got = await answer(db, email)
    finally:
        event.remove(db.sync_session, "after_commit", committed)
    try:
        db.expire_all()
        active = select(func.count()).select_from(User).where(User.is_active.is_(True))
        still = await db.scalar(select(User.is_active).where(User.id == user_id))
        expected = int(await db.scalar(active) or 0)
        everyone = int(await db.scalar(select(func.count()).select_from(User)) or 0)
        _expect(
            still is False,
            f"after deactivate(db, {email!r}) that user is still active: find the user by the "
            "email you are given (crud.user.get_by_email) and update it with "
            "UserUpdate(is_active=False)",
        )
        _expect(
            bool(commits),
            "your function did not commit: the change is only in this session, and other "
            "sessions still see the user active. `await db.commit()` after the update",
        )
        _expect(
            isinstance(got, int) and not isinstance(got, bool),
            f"your function returned {type(got).__name__} {got!r:.60}; return the number of "
            "active users, an int from db.scalar(select(func.count())...)",
        )
        _expect(got != expected + 1, f"{got} still counts that user: count after the commit")
        _expect(
            got != everyone,
            f"{got} is every user, active or not: add .where(User.is_active.is_(True))",
        )
        _expect(
            got == expected,
            f"{got} is not the number of active users ({expected}): "
            "select(func.count()).select_from(User).where(User.is_active.is_(True))",
        )
        _expect(
            any("COUNT(" in s for s in _sql(seen)),
            "the right number, but counted in Python: your function loaded the users to count "
            "them. Let PostgreSQL count, select(func.count()).select_from(User).where(...)",
        )
    finally:
        await db.rollback()
        await db.execute(update(User).where(User.id == user_id).values(is_active=True))
        await db.commit()
    _right(
        f"deactivate({email!r}) committed and counted {expected} active users in SQL "
        "(that user is active again)"
    )


# -- 04 · Query patterns --------------------------------------------------------------------
__all__ += ["check_exercise_04"]

_PER_PAGE_04 = 3  # the check's page size: the prompt's is 2

# A word of titles that enough posts carry to fill several pages (the seed's words change).
_TITLE_WORD = text(
    "SELECT word FROM ("
    " SELECT DISTINCT p.id, lower(m[1]) AS word"
    " FROM posts p, regexp_matches(p.title, '([[:alpha:]]{4,})', 'g') AS m) AS words"
    " GROUP BY word ORDER BY count(*) BETWEEN :low AND 40 DESC, count(*) DESC, word LIMIT 1"
)


async def check_exercise_04(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(db, word, per_page)``: keyset pages of the posts with ``word`` in the title.

    Calls it with a word of the data in upper case and pages of 3, watching its SQL: one query
    per page, each with a LIMIT and no OFFSET. A final empty page is accepted.
    """
    if not _answered(answer):
        return
    _function(answer, "keyset_pages")
    per_page = _PER_PAGE_04
    word = await db.scalar(_TITLE_WORD, {"low": 2 * per_page + 1})
    _expect(word is not None, "there are no posts to page through: run the notebook's seed")
    asked = str(word).upper()
    with _watch(db) as seen:
        got = await answer(db, asked, per_page)
    _expect(
        isinstance(got, list)
        and all(isinstance(page, list) for page in got)
        and all(isinstance(i, int) and not isinstance(i, bool) for page in got for i in page),
        f"keyset_pages returned {type(got).__name__}; return a list of pages, each a list of "
        "post ids: [[id, id], [id, id], ...]",
    )
    pages = list(got)
    while pages and not pages[-1]:
        pages.pop()
    newest = select(Post.id).order_by(Post.created_at.desc(), Post.id.desc())
    expected = list((await db.scalars(newest.where(Post.title.ilike(f"%{asked}%")))).all())
    call = f"keyset_pages(db, {asked!r}, {per_page})"
    _expect(
        all(len(page) == per_page for page in pages[:-1])
        and all(0 < len(p) <= per_page for p in pages),
        f"{call} gave pages of {[len(page) for page in pages]} posts: every page holds "
        "per_page posts (posts_page(after=..., limit=per_page)), only the last may hold fewer",
    )
    ids = [i for page in pages for i in page]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    _expect(
        not repeated,
        f"post {repeated[0] if repeated else ''} appears on two pages: start each page strictly "
        "after the previous page's last post, after=Keyset(rows[-1].created_at, rows[-1].id)",
    )
    if ids != expected:
        _expect(
            bool(ids),
            f"{call} found no posts, but {len(expected)} titles contain {word!r} in some case: "
            "match any case with Post.title.ilike(f'%{word}%'), and use the word you are given",
        )
        _expect(
            sorted(ids) != sorted(expected),
            "the right posts in the wrong order: newest first, as posts_page() orders them",
        )
        extra = sorted(set(ids) - set(expected))
        _expect(
            not extra,
            f"post {extra[0] if extra else ''} has no {word!r} in its title: add "
            ".where(Post.title.ilike(f'%{word}%')) to every page's statement",
        )
        _expect(
            False,
            f"{len(expected) - len(ids)} matching posts are missing (any case counts: ilike): "
            "keep fetching pages until one comes back with fewer than per_page posts",
        )
    sql = [s for s in _sql(seen) if "FROM POSTS" in s]
    _expect(
        not any("OFFSET" in s for s in sql),
        "the right pages, but taken with OFFSET, which re-reads every skipped row and shifts "
        "when posts arrive: start each page after the last one's post instead, "
        "posts_page(after=Keyset(rows[-1].created_at, rows[-1].id), limit=per_page)",
    )
    _expect(
        len(sql) >= len(pages) and all("LIMIT" in s for s in sql),
        f"{len(sql)} query(ies) for {len(pages)} pages: your function read the matching posts "
        "at once and cut them into pages in Python. Ask PostgreSQL for one page at a time, "
        "posts_page(after=..., limit=per_page)",
    )
    _right(f"{len(ids)} posts in {len(pages)} keyset pages of {per_page}, one query each")


# -- 05 · Relationship loading --------------------------------------------------------------

__all__ += ["check_exercise_05"]


async def check_exercise_05(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(name)``: a statement loading a tag, its posts and their authors in two.

    Calls it for a tag of the data (the most used one with posts by several authors), runs the
    statement on ``db`` (identity map emptied first), counts its statements and reads
    ``tag.posts`` and each ``post.author``.
    """
    if not _answered(answer):
        return
    _function(answer, "tag_with_posts", is_async=False)
    authors_per_tag = (
        select(Tag.name)
        .join(post_tags, post_tags.c.tag_id == Tag.id)
        .join(Post, Post.id == post_tags.c.post_id)
        .group_by(Tag.name)
        .having(func.count(func.distinct(Post.author_id)) > 1)
        .order_by(func.count().desc(), Tag.name)
        .limit(1)
    )
    name = await db.scalar(authors_per_tag)
    _expect(name is not None, "no tag has posts by two authors: run the notebook's seed")
    stmt = answer(name)
    _expect(
        isinstance(stmt, Select),
        f"tag_with_posts({name!r}) returned a {type(stmt).__name__}; return the statement "
        "itself, select(Tag).where(...).options(...), without executing it",
    )
    db.expunge_all()
    with _watch(db) as seen:
        tags = (await db.execute(stmt)).unique().scalars().all()
        _expect(
            len(tags) == 1 and isinstance(tags[0], Tag),
            f"the statement returned {len(tags)} row(s); it should return one Tag: "
            "select(Tag).where(Tag.name == name)",
        )
        tag = tags[0]
        _expect(
            tag.name == name,
            f"tag_with_posts({name!r}) loaded the tag {tag.name!r}: filter on the name you are "
            "given, Tag.name == name",
        )
        try:
            authors = {post.author.id for post in tag.posts}
        except InvalidRequestError as exc:  # lazy="raise": the relationship was not loaded
            raise ExerciseError(
                f"{str(exc).splitlines()[0]}: load it in the statement, with "
                "selectinload(Tag.posts) and, chained after it, a loader option for Post.author"
            ) from None
    count = len(_queries(seen))
    _expect(
        count != 1,
        "one statement: a join brought the collection Tag.posts, repeating the tag's row once "
        "per post; load collections with selectinload",
    )
    _expect(
        count == 2,
        f"{count} statements; each post has one author, so joinedload(Post.author), chained "
        "after selectinload(Tag.posts), joins it into the posts' query: two in all",
    )
    _right(f"tag {name!r}: {len(tag.posts)} posts by {len(authors)} authors, in 2 statements")


# -- 06 · Aggregations ----------------------------------------------------------------------

__all__ += ["check_exercise_06"]


async def check_exercise_06(answer: Any, db: AsyncSession) -> None:
    """Check the statement ``answer``: posts and mean content length (one decimal) per role.

    The check loads it itself with ``load_frame`` on ``db`` (an ``AsyncSession``), so the
    grouping, the mean and its rounding can only run in PostgreSQL; the expected numbers are
    computed on ``db`` too.
    """
    if not _answered(answer):
        return
    _expect(
        isinstance(answer, Select),
        f"answer is a {type(answer).__name__}; set it to your statement itself, "
        "select(User.role, ...).join(...).group_by(...), not to its result: the check runs it "
        "with load_frame, so a frame typed in (or grouped in pandas) cannot pass",
    )
    got = await load_frame(db, answer)
    shape = str(answer.compile(dialect=_sync_engine(db).dialect)).upper()
    columns = ["role", "posts", "mean_length"]
    _expect(
        list(got.columns) == columns,
        f"the frame should have the columns {columns}, in that order, but has "
        f"{list(got.columns)}; name them with .label(...)",
    )
    stmt = (
        select(User.role, func.count(Post.id), func.avg(func.length(Post.content)))
        .join(Post, Post.author_id == User.id)
        .group_by(User.role)
        .order_by(User.role)
    )
    expected = {role: (int(n), float(mean)) for role, n, mean in (await db.execute(stmt)).all()}
    roles = [str(role) for role in got["role"]]
    _expect(
        not (set(roles) - set(expected)),
        f"{sorted(set(roles) - set(expected))} write no posts, so they should not appear: join "
        "posts to their authors with an inner join (an outer join gives them a row of 0 posts)",
    )
    _expect(
        sorted(roles) == sorted(expected),
        f"expected one row per role that has posts ({sorted(expected)}), got {roles}",
    )
    _expect(roles == sorted(expected), f"order the rows by role, got {roles}")
    for role, posts, mean in got.itertuples(index=False):
        want_posts, want_mean = expected[role]
        _expect(
            int(posts) == want_posts,
            f"{role}: posts is {posts}, expected {want_posts}; count the posts of each role "
            "(func.count(Post.id)) after joining posts to users",
        )
        value = float(mean)
        _expect(
            abs(value - round(want_mean, 1)) < 0.051 or abs(value - want_mean) < 1e-6,
            f"{role}: mean_length is {mean}, expected about {want_mean:.1f}; average the length "
            "of the content, func.avg(func.length(Post.content)) (avg skips empty drafts)",
        )
        _expect(
            abs(value - round(value, 1)) < 1e-9,
            f"{role}: mean_length is {mean}; round it to one decimal in SQL, "
            "func.round(func.avg(...), 1)",
        )
    _expect(
        "GROUP BY" in shape,
        "one row per role, but not from GROUP BY: group in the statement, .group_by(User.role)",
    )
    _right(f"{len(roles)} roles, {sum(int(p) for p in got['posts'])} posts, grouped in SQL")


# -- 07 · Transactions and savepoints -------------------------------------------------------

__all__ += ["check_exercise_07"]

_ACCOUNTS_07 = (3, 4)


def _locked(ids: list[int]) -> str:
    """Describe the rows a ``SELECT ... FOR UPDATE`` locked."""
    return f"account {ids[0]}" if len(ids) == 1 else f"accounts {', '.join(map(str, ids))}"


def _lock_ids(statement: _Statement, accounts: tuple[int, ...]) -> list[int]:
    """Return the accounts among ``accounts`` that a ``FOR UPDATE`` statement was sent with."""
    parameters = statement.parameters
    values = parameters.values() if isinstance(parameters, dict) else parameters
    return sorted(v for v in values if isinstance(v, int) and v in accounts)


async def check_exercise_07(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(db, from_id, to_id, amount)``: locks both rows in one order, moves money.

    Calls it from 4 to 3 then from 3 to 4, 1.00 each, inside a savepoint of ``db`` (an
    ``AsyncSession``) that is always rolled back, and records every ``SELECT ... FOR UPDATE``.
    """
    if not _answered(answer):
        return
    _function(answer, "ordered_transfer")
    ids = Account.id.in_(_ACCOUNTS_07)
    reset = update(Account).where(ids).values(balance=Decimal("100.00"))
    first: dict[tuple[int, int], list[int]] = {}
    low, high = _ACCOUNTS_07
    try:
        async with db.begin_nested() as rolled_back:
            for payer, payee in ((high, low), (low, high)):
                await db.execute(reset)
                with _watch(db) as seen:
                    await answer(db, payer, payee, Decimal("1.00"))
                rows = await db.execute(select(Account.id, Account.balance).where(ids))
                moved = {account_id: str(balance) for account_id, balance in rows}
                locks = [_lock_ids(s, _ACCOUNTS_07) for s in seen if "FOR UPDATE" in s.sql.upper()]
                locks = [lock for lock in locks if lock]
                _expect(
                    bool(locks),
                    f"the transfer from {payer} to {payee} locked nothing: read each account "
                    "with db.get(Account, id, with_for_update=True)",
                )
                unlocked = sorted({payer, payee} - {i for lock in locks for i in lock})
                _expect(
                    not unlocked,
                    f"the transfer from {payer} to {payee} locked {_locked(locks[0])} only: "
                    f"account {unlocked[0] if unlocked else ''} was read without FOR UPDATE, so "
                    "a concurrent transfer can change it between your read and your write (a "
                    "lost update). Lock both rows, each with with_for_update=True",
                )
                _expect(
                    moved == {payer: "99.00", payee: "101.00"},
                    f"moving 1.00 from {payer} to {payee}, 100.00 each before, left "
                    f"{dict(sorted(moved.items()))}: take the amount from the payer's balance "
                    "and add it to the payee's",
                )
                first[payer, payee] = locks[0]
            await rolled_back.rollback()
    except InvalidRequestError as exc:
        raise ExerciseError(
            f"{str(exc).splitlines()[0]}: the function must not begin or commit a transaction; "
            "it runs inside the caller's, which commits (as with transfer_funds)"
        ) from None
    _expect(
        first[high, low] == first[low, high],
        f"from {high} to {low} your first lock was on {_locked(first[high, low])}, from {low} "
        f"to {high} on {_locked(first[low, high])}: two opposite transfers can then each hold "
        "one row and wait for the other. Lock in one order whatever the direction, e.g. the "
        "smaller id first",
    )
    _right("both rows locked, in the same order both ways, and the money moves: no deadlock")


# -- 08 · Migrations ------------------------------------------------------------------------

__all__ += ["check_exercise_08"]


def _declared_checks() -> dict[str, list[str]]:
    """Return the CHECK constraint names the models declare, by table."""
    return {
        table.name: sorted(
            str(c.name) for c in table.constraints if isinstance(c, CheckConstraint) and c.name
        )
        for table in Base.metadata.sorted_tables
    }


async def check_exercise_08(answer: Any, engine: AsyncEngine) -> None:
    """Check ``answer(conn)``: the models' CHECK constraints the database lacks, by name.

    Calls ``await answer(conn)`` on a connection of ``engine`` (on a migrated database): as
    migrated; after dropping one CHECK on each of two tables; and with one more CHECK added to
    the models' metadata for the call. The drops are rolled back and the metadata restored.
    """
    if not _answered(answer):
        return
    _function(answer, "missing_checks")
    declared = {name: checks for name, checks in _declared_checks().items() if checks}
    tables = sorted(declared, key=lambda name: (name != "posts", name))[:2]
    dropped = {declared[name][0] for name in tables}
    probe_table = Base.metadata.tables[sorted(declared)[-1]]
    async with engine.connect() as conn:
        try:
            clean = await answer(conn)
            _expect(
                isinstance(clean, set | frozenset),
                f"your function returned a {type(clean).__name__}; return a set of names",
            )
            _expect(
                not clean,
                f"on a database at head nothing is missing, but your function returned "
                f"{sorted(clean)}: return the CHECK names the models declare minus those the "
                "database has",
            )
            for name in tables:
                await conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {declared[name][0]}"))
            found = await answer(conn)
            _expect(
                found == dropped,
                f"with {sorted(dropped)} dropped (on {' and '.join(tables)}), your function "
                f"returned {sorted(found)}: compare the names the models declare with the "
                "database's over every table of Base.metadata, not one",
            )
            probe = CheckConstraint("true", name="exercise_probe")
            probe_table.append_constraint(probe)
            try:
                probed = await answer(conn)
            finally:
                probe_table.constraints.discard(probe)
            _expect(
                probed == dropped | {str(probe.name)},
                f"the check declared one more CHECK on the model, {probe.name}, which the "
                f"database lacks, and your function returned {sorted(probed)}: read the "
                "declared names from Base.metadata (table.constraints) on each call, not from "
                "a list written down",
            )
        finally:
            await conn.rollback()
    _right(
        f"with {sorted(dropped)} dropped your function reports exactly them, a CHECK new to the "
        "models too, and at head nothing"
    )


# -- 09 · Performance -----------------------------------------------------------------------

__all__ += ["check_exercise_09"]

_ROLE_INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    " AND tablename = 'users' AND indexdef LIKE '%(role)%' ORDER BY indexname"
)


async def _role_uses_index(db: Any, role: str) -> bool:
    """Whether PostgreSQL's plan for the users of ``role`` has an index node."""
    plan = await explain(db, select(User).where(User.role == role))
    return any("Index" in node for node in plan_nodes(plan))


async def check_exercise_09(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(db, role)``: whether the plan of the users of ``role`` uses an index.

    Calls it for every role in ``users`` on ``db`` (an ``AsyncSession`` on the notebook's
    database), watching for its ``EXPLAIN``, and compares with the plans the check explains.
    """
    if not _answered(answer):
        return
    _function(answer, "uses_index")
    indexes = (await db.execute(text(_ROLE_INDEXES))).scalars().all()
    _expect(
        bool(indexes),
        "users.role has no index yet: run CREATE INDEX ix_users_role ON users (role) (and "
        "ANALYZE users) on this session, then try again",
    )
    roles = [str(r) for r in (await db.scalars(select(User.role).distinct())).all()]
    uses = {role: await _role_uses_index(db, role) for role in sorted(roles)}
    _expect(
        uses.get("admin", True) and not uses.get("reader", False),
        "the planner does not yet use the role index for the rare 'admin' only: run ANALYZE "
        "users so its statistics know how few admins (and how many readers) there are",
    )
    for role, want in uses.items():
        with _watch(db) as seen:
            got = await answer(db, role)
        _expect(
            isinstance(got, bool),
            f"uses_index(db, {role!r}) returned {type(got).__name__}; return True or False",
        )
        _expect(
            any(s.lstrip().startswith("EXPLAIN") for s in _sql(seen)),
            f"uses_index(db, {role!r}) answered without asking PostgreSQL for a plan: explain "
            "select(User).where(User.role == role) and look for an index node in "
            "plan_nodes(plan)",
        )
        _expect(
            got == want,
            f"look again at the plan for role == {role!r}: plan_nodes(plan) "
            f"{'has an index node' if want else 'is a Seq Scan, with no index node'}",
        )
    _right(
        f"for {len(uses)} roles your function read the plan: the index on role "
        f"({', '.join(indexes)}) finds the rare admins, while for the common readers the "
        "planner reads the whole table; an index pays for selective filters"
    )


# -- 10 · Testing ---------------------------------------------------------------------------

__all__ += ["check_exercise_10"]

_NAMES_10 = ("kept_by_check", "dropped_by_check")


async def check_exercise_10(answer: Any, engine: AsyncEngine) -> None:
    """Check ``answer(engine, kept, dropped)``: the names a savepoint-joined session keeps.

    Calls ``await answer(engine, "kept_by_check", "dropped_by_check")`` on ``engine`` (an
    ``AsyncEngine``), watching its savepoints; then checks that nothing was committed (rows
    left behind are deleted) and that the connection went back to the pool.
    """
    if not _answered(answer):
        return
    _function(answer, "rollback_keeps_commits")
    kept, dropped = _NAMES_10
    with _watch(engine) as seen:
        got = await answer(engine, kept, dropped)
    checked_out = getattr(engine.sync_engine.pool, "checkedout", lambda: 0)()
    _expect(
        checked_out == 0,
        f"{checked_out} connection(s) still checked out of the engine's pool: finish as the "
        "fixture does (await db.close(), await outer.rollback(), await conn.close())",
    )
    names = User.username.in_(_NAMES_10)
    async with engine.connect() as other:
        committed = sorted(await other.scalars(select(User.username).where(names)))
    if committed:
        async with engine.begin() as cleanup:
            await cleanup.execute(delete(User).where(names))
    _expect(
        not committed,
        f"{committed} committed for everyone (the check deleted them): the outer transaction "
        "must be rolled back at the end (await outer.rollback()), and only the session may "
        "commit, inside it",
    )
    _expect(
        isinstance(got, list | tuple) and all(isinstance(name, str) for name in got),
        f"your function returned {type(got).__name__}; return the sorted list of the usernames "
        "(among kept and dropped) the session sees after its rollback",
    )
    sql = _sql(seen)
    inserted = [s for s in seen if s.sql.upper().startswith("INSERT INTO USERS")]
    written = {str(v) for s in inserted for v in _flat(s.parameters)}
    _expect(
        len(inserted) >= 2 and {kept, dropped} <= written,
        f"{len(inserted)} user(s) inserted: add a user named kept ({kept!r} here) and commit, "
        f"then one named dropped ({dropped!r}), flush, and roll back; use the names you are given",
    )
    seen_names = sorted(got)
    _expect(
        dropped not in seen_names,
        f"{dropped!r} should be gone: add it, await db.flush(), then await db.rollback() "
        "before you query the usernames",
    )
    _expect(
        seen_names == [kept],
        f"your function returned {seen_names}; {kept!r} should survive the session's rollback: "
        'bind the session to the connection with join_transaction_mode="create_savepoint", so '
        "that its commit() only releases a savepoint and its rollback() returns to the next "
        "one, not to the start of the test",
    )
    _expect(
        any("RELEASE SAVEPOINT" in s for s in sql)
        and any("ROLLBACK TO SAVEPOINT" in s for s in sql),
        "the names are right, but the session did not commit and roll back through savepoints "
        "of the outer transaction: commit kept with await db.commit() and undo dropped with "
        'await db.rollback(), on a session with join_transaction_mode="create_savepoint"',
    )
    _right(
        "the session's rollback() undid only the second user (back to the savepoint its "
        "commit() had begun); the outer rollback then undid the first too, and nothing was left"
    )


# -- 11 · Exploring the blog ----------------------------------------------------------------

__all__ += ["check_exercise_11"]


async def _tag_view_stats(db: AsyncSession, ids: list[int] | None) -> dict[str, tuple[Any, ...]]:
    """Per tag: (n kept, median kept, n tracked, median tracked, n published), over ``ids``."""
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
    if ids is not None:
        stmt = stmt.where(Post.id.in_(ids))
    return {str(row[0]): tuple(row[1:]) for row in (await db.execute(stmt)).all()}


def _check_top_tags(got: Any, n: int, stats: dict[str, tuple[Any, ...]], call: str) -> None:
    """Compare one call's frame with the top ``n`` tags by median views in ``stats``."""
    _expect(
        isinstance(got, pd.DataFrame)
        and {"median_views", "posts"} <= {str(c) for c in got.columns},
        f"{call} returned {type(got).__name__}; return a DataFrame indexed by tag with the "
        "columns median_views and posts, e.g. ....groupby('tags')['views'].agg("
        "median_views='median', posts='count')",
    )
    _expect(len(got) == n, f"{call} returned {len(got)} tags: keep the top n, .head(n)")
    tags = [str(tag) for tag in got.index]
    _expect(
        all(tag in stats for tag in tags),
        f"{call}: the index should hold tag names of the frame you are given, got {tags}; "
        "group by the exploded tags column",
    )
    for tag, posts, median in zip(tags, got["posts"], got["median_views"], strict=True):
        n_kept, med_kept, n_tracked, med_tracked, n_published = stats[tag]
        if med_kept is None or abs(float(median) - float(med_kept)) > 0.05:
            _expect(
                med_tracked is None or float(median) != med_tracked or int(posts) != n_tracked,
                f"{call}: {tag} has {posts} posts with a median of {median} views, counting the "
                "drafts too; drafts have views 0, which drags the median down: keep only "
                "published posts (published_at is not NaT)",
            )
            raise ExerciseError(
                f"{call}: {tag}'s median_views is {median}, expected "
                f"{float(med_kept or 0):.1f}: the median (not the mean) of the views of the "
                "published posts with tracked views in the frame you are given"
            )
        _expect(
            int(posts) != n_published or n_published == n_kept,
            f"{call}: {tag}'s posts is {posts}, which counts published posts whose views are "
            "<NA> (not tracked) too; drop them, or count with 'count' (it skips <NA>), not "
            "'size'",
        )
        _expect(
            int(posts) == n_kept,
            f"{call}: {tag}'s posts is {posts}, expected {n_kept} (published posts with "
            "tracked views that carry the tag)",
        )
    medians = [float(m) for m in got["median_views"]]
    _expect(
        medians == sorted(medians, reverse=True), f"{call}: sort by median_views, highest first"
    )
    others = {tag: float(row[1]) for tag, row in stats.items() if tag not in tags and row[0]}
    better = sorted((m, tag) for tag, m in others.items() if m > medians[-1] + 1e-9)
    _expect(
        not better,
        f"{call}: {better[-1][1] if better else ''} has a higher median than your last tag: "
        "sort all the tags by median_views, then take the first n",
    )


async def check_exercise_11(answer: Any, db: AsyncSession) -> None:
    """Check ``answer(posts, n)``: the n tags whose published posts have the highest median views.

    Calls it on ``posts_frame(db)`` with n=5, then on every other post with n=3; the expected
    medians are computed by PostgreSQL on ``db`` (an ``AsyncSession``) for the same posts.
    """
    if not _answered(answer):
        return
    _function(answer, "top_median_tags", is_async=False)
    posts = await posts_frame(db)
    _check_top_tags(answer(posts.copy(), 5), 5, await _tag_view_stats(db, None), "on all posts")
    half = posts.iloc[::2].copy()
    ids = [int(i) for i in half["id"]]
    got = answer(half, 3)
    _check_top_tags(
        got,
        3,
        await _tag_view_stats(db, ids),
        "on every other post, posts.iloc[::2], with n=3 (compute from the frame you are given)",
    )
    _right("your function finds the top tags by median views of whatever posts it is given")


# -- 12 · Scaling out -----------------------------------------------------------------------

__all__ += ["check_exercise_12"]


def _tag_posts(tag: str) -> Select[int]:
    """Select the number of posts carrying ``tag``."""
    return (
        select(func.count())
        .select_from(post_tags)
        .join(Tag, Tag.id == post_tags.c.tag_id)
        .where(Tag.name == tag)
    )


async def check_exercise_12(answer: Any, primary: AsyncEngine, reader: AsyncEngine) -> None:
    """Check ``answer(primary, reader, tag)``: link ``tag`` once, then count it on the standby.

    Calls it for the least used tag (the prompt uses the top one), watching both engines: the
    INSERT on the primary, then ``wait_for_replica``, then the read on ``reader``. The new link
    is deleted afterwards, and the check waits for the standby to replay that too.
    """
    if not _answered(answer):
        return
    _function(answer, "link_and_count")
    least = (
        select(Tag.name, Tag.id)
        .join(post_tags, post_tags.c.tag_id == Tag.id)
        .group_by(Tag.id)
        .order_by(func.count(), Tag.name)
        .limit(1)
    )
    async with primary.connect() as conn:
        row = (await conn.execute(least)).first()
        _expect(row is not None, "no tag carries a post: run the notebook's seed")
        assert row is not None
        tag, tag_id = str(row[0]), int(row[1])
        linked = set(
            (
                await conn.scalars(select(post_tags.c.post_id).where(post_tags.c.tag_id == tag_id))
            ).all()
        )
        before = len(linked)
    try:
        with _watch(primary, reader, labels=("primary", "reader")) as seen:

            def checkout(*args: Any) -> None:
                seen.append(_Statement("", None, "reader checkout"))

            event.listen(reader.sync_engine, "checkout", checkout)
            try:
                got = await answer(primary, reader, tag)
            finally:
                event.remove(reader.sync_engine, "checkout", checkout)
        async with primary.connect() as conn:
            after = int((await conn.execute(_tag_posts(tag))).scalar_one())
        try:
            grown = operator.index(got)
        except TypeError:
            grown = None
        _expect(
            grown is not None and not isinstance(got, bool),
            f"link_and_count returned {type(got).__name__}; return the tag's number of posts "
            "read on the standby, a whole number",
        )
        _expect(
            after == before + 1,
            f"{tag!r} had {before} posts on the primary and has {after} after your function: "
            "insert exactly one post_tags row, for the tag you are given and a post that does "
            "not carry it yet, and commit (session_scope(primary))",
        )
        written = [
            i for i, s in enumerate(seen) if s.where == "primary" and "INSERT" in s.sql.upper()
        ]
        waited = [
            i
            for i, s in enumerate(seen)
            if s.where == "reader"
            and "PG_LAST_WAL_REPLAY_LSN" in s.sql.upper()
            and written
            and i > written[0]
        ]
        _expect(
            bool(waited),
            "you did not wait for the standby after writing on the primary: it may not have "
            "replayed the write yet, and then it counts the old number. await "
            "wait_for_replica(primary=primary, replica=reader) between the write and the read",
        )
        read = [i for i, s in enumerate(seen) if s.where == "reader checkout" and i > waited[0]]
        _expect(
            bool(read),
            "the count was not read on the standby after the wait: read it in "
            "read_session(reader), not on the primary (whose count is right at once, and which "
            "a read-heavy app wants to spare)",
        )
        _expect(
            grown == after,
            f"your function returned {grown}; {tag!r} now has {after} posts: return the tag's "
            "count as the standby reads it after the wait",
        )
    finally:
        async with primary.begin() as conn:
            new = post_tags.c.tag_id == tag_id
            if linked:
                new = and_(new, post_tags.c.post_id.not_in(linked))
            await conn.execute(delete(post_tags).where(new))
        await wait_for_replica(primary=primary, replica=reader, timeout=30)
    _right(
        f"{tag!r}: one link written on the primary, waited for, and counted on the standby "
        f"({after}); the check removed the link again"
    )
