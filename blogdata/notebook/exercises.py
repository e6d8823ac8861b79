"""Checks for the notebooks' try-it exercises: ``check_exercise_NN(answer)``.

Each exercise in notebook ``NN`` is three cells: the learner's cell (``answer = ...``), a check
cell (``check_exercise_NN(answer)``, awaited where the check needs the database), and a solution
cell collapsed by default (tag ``solution``) that ends with the same check, so strict nbval runs
and verifies every solution. A check prints one line starting with ``✓`` for a right answer,
says the exercise is not answered yet while ``answer`` is still ``...``, and raises
:class:`ExerciseError` (an ``AssertionError``) with a hint for a wrong one.
"""

from __future__ import annotations

import inspect
import operator
from decimal import Decimal
from typing import Any

import pandas as pd
from sqlalchemy import Engine, Select, and_, event, func, select, text, update
from sqlalchemy.exc import InvalidRequestError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.diagnostics import count_statements, explain, plan_nodes
from blogdata.errors import ExerciseError, PoolExhaustedError
from blogdata.models import Account, Post, Tag, User, post_tags

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


async def check_exercise_02(answer: Any, db: AsyncSession) -> None:
    """Check the three newest posts as ``(author's username, title)`` pairs, newest first.

    ``db`` is the notebook's ``AsyncSession``; the expected posts are read through it.
    """
    if not _answered(answer):
        return

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


async def check_exercise_03(answer: Any, db: AsyncSession) -> None:
    """Check that Ada's deactivation is committed and ``answer`` counts the active users.

    ``db`` is the notebook's ``AsyncSession``; a second session on the same bind checks what is
    committed (on an engine, a new connection: only committed rows).
    """
    if not _answered(answer):
        return

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


async def check_exercise_04(answer: Any, db: AsyncSession) -> None:
    """Check keyset pages of 2 over the posts whose title contains "data", newest first.

    ``db`` is the notebook's ``AsyncSession``; the expected posts are read through it. A final
    empty page (what a loop that stops on a short page may collect) is accepted.
    """
    if not _answered(answer):
        return

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

__all__ += ["check_exercise_05"]


async def check_exercise_05(answer: Any, db: AsyncSession) -> None:
    """Check a statement loading one tag, its posts and their authors in two statements.

    Runs ``answer`` on ``db`` (an ``AsyncSession``; its identity map is emptied first, so
    nothing loaded earlier counts), then reads ``tag.posts`` and each ``post.author``.
    """
    if not _answered(answer):
        return
    _expect(
        isinstance(answer, Select),
        f"answer is a {type(answer).__name__}; give the statement itself, e.g. "
        "answer = select(Tag).where(...).options(...), without executing it",
    )
    db.expunge_all()
    with count_statements(db) as counter:
        tags = (await db.execute(answer)).unique().scalars().all()
    _expect(
        len(tags) == 1 and isinstance(tags[0], Tag),
        f"the statement returned {len(tags)} row(s); it should return one Tag: "
        'select(Tag).where(Tag.name == "any")',
    )
    tag = tags[0]
    try:
        authors = {post.author.id for post in tag.posts}
    except InvalidRequestError as exc:  # lazy="raise": the relationship was not loaded
        raise ExerciseError(
            f"{exc}: load it in the statement, with selectinload(Tag.posts) and, chained "
            "after it, a loader option for Post.author"
        ) from None
    _expect(
        counter.count != 1,
        "one statement: a join brought the collection Tag.posts, repeating the tag's row once "
        "per post; load collections with selectinload",
    )
    _expect(
        counter.count == 2,
        f"{counter.count} statements; each post has one author, so joinedload(Post.author), "
        "chained after selectinload(Tag.posts), joins it into the posts' query: two in all",
    )
    _right(
        f"tag {tag.name!r}: {len(tag.posts)} posts by {len(authors)} authors, "
        "loaded in 2 statements"
    )


# -- 06 · Aggregations ----------------------------------------------------------------------

__all__ += ["check_exercise_06"]


async def check_exercise_06(answer: Any, db: AsyncSession) -> None:
    """Check 06's frame: posts and mean content length (one decimal) per role, by role.

    ``db`` is the notebook's ``AsyncSession``; the expected numbers are computed on it.
    """
    if not _answered(answer):
        return

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

__all__ += ["check_exercise_07"]


def _locked(parameters: tuple[object, ...]) -> str:
    """Describe the rows a ``SELECT ... FOR UPDATE`` locked, from its parameters."""
    if len(parameters) == 1:
        return f"account {parameters[0]}"
    return f"accounts {', '.join(str(p) for p in parameters)}"


async def check_exercise_07(answer: Any, db: AsyncSession) -> None:
    """Check a transfer that locks its rows one at a time, in an order that cannot deadlock.

    Calls ``answer(db, 4, 3, Decimal("1.00"))`` then ``answer(db, 3, 4, Decimal("1.00"))``
    inside a savepoint of ``db`` (an ``AsyncSession``) that is always rolled back, and records
    which rows each transfer locked first (its first ``SELECT ... FOR UPDATE``).
    """
    if not _answered(answer):
        return
    _expect(
        inspect.iscoroutinefunction(answer),
        "answer should be your async function itself: answer = ordered_transfer "
        "(no call, no await)",
    )
    bind = db.sync_session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    locks: list[tuple[object, ...]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if "FOR UPDATE" in statement:
            locks.append(tuple(parameters))

    ids = Account.id.in_((3, 4))
    reset = update(Account).where(ids).values(balance=Decimal("100.00"))
    first: dict[tuple[int, int], tuple[object, ...]] = {}
    try:
        async with db.begin_nested() as rolled_back:
            for payer, payee in ((4, 3), (3, 4)):
                await db.execute(reset)
                locks.clear()
                event.listen(engine, "before_cursor_execute", record)
                try:
                    await answer(db, payer, payee, Decimal("1.00"))
                finally:
                    event.remove(engine, "before_cursor_execute", record)
                rows = await db.execute(select(Account.id, Account.balance).where(ids))
                moved = {account_id: str(balance) for account_id, balance in rows}
                _expect(
                    bool(locks),
                    f"the transfer from {payer} to {payee} locked nothing: read each account "
                    "with db.get(Account, id, with_for_update=True)",
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
            f"{exc}: the function must not begin or commit a transaction; it runs inside the "
            "caller's, which commits (as with transfer_funds)"
        ) from None
    _expect(
        first[4, 3] == first[3, 4],
        f"from 4 to 3 your first lock was on {_locked(first[4, 3])}, from 3 to 4 on "
        f"{_locked(first[3, 4])}: two opposite transfers can then each hold one row and wait "
        "for the other. Lock in one order whatever the direction, e.g. the smaller id first",
    )
    _right("both directions lock the same account first, and the money moves: no deadlock")


# -- 08 · Migrations ------------------------------------------------------------------------

__all__ += ["check_exercise_08"]


async def check_exercise_08(answer: Any, engine: AsyncEngine) -> None:
    """Check a function that finds the models' CHECK constraints missing from the database.

    Calls ``await answer(conn)`` on a connection of ``engine`` (an ``AsyncEngine`` on a migrated
    database): first as migrated, then after dropping ``ck_posts_views_not_negative`` in a
    transaction that is rolled back, so the database is left as it was.
    """
    if not _answered(answer):
        return
    _expect(
        inspect.iscoroutinefunction(answer),
        "answer should be your async function itself: answer = missing_checks (no call, no await)",
    )
    dropped = "ck_posts_views_not_negative"
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
                f"{sorted(clean)}: compare the CHECK names of the models with the database's",
            )
            await conn.execute(text(f"ALTER TABLE posts DROP CONSTRAINT {dropped}"))
            found = await answer(conn)
        finally:
            await conn.rollback()
    _expect(
        found == {dropped},
        f"with {dropped} dropped your function returned {sorted(found)}; it should return "
        f"{{{dropped!r}}}: the names the models declare and the database lacks, over every table",
    )
    _right(f"with {dropped} dropped, your function reports exactly it; at head, nothing")


# -- 09 · Performance -----------------------------------------------------------------------

__all__ += ["check_exercise_09"]

_ROLE_INDEXES = (
    "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
    " AND tablename = 'users' AND indexdef LIKE '%(role)%' ORDER BY indexname"
)


async def _role_uses_index(db: Any, role: str) -> bool:

    plan = await explain(db, select(User).where(User.role == role))
    return any("Index" in node for node in plan_nodes(plan))


async def check_exercise_09(answer: Any, db: AsyncSession) -> None:
    """Check ``{"admin": uses an index?, "reader": uses an index?}`` against real plans.

    ``db`` is an ``AsyncSession`` on the notebook's database: the check looks for an index on
    ``users.role`` there and explains both filters itself.
    """
    if not _answered(answer):
        return

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


async def check_exercise_10(answer: Any, engine: AsyncEngine) -> None:
    """Check the usernames a savepoint-joined session sees after its own rollback: ``["kept"]``.

    ``engine`` is the notebook's ``AsyncEngine``: the check also makes sure that nothing was
    committed and that the exercise's connection went back to the pool.
    """
    if not _answered(answer):
        return

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

__all__ += ["check_exercise_11"]


async def check_exercise_11(answer: Any, db: AsyncSession) -> None:
    """Check 11's frame: the five tags whose published posts have the highest median views.

    ``answer`` is indexed by tag with columns ``median_views`` and ``posts``; ``db`` is the
    notebook's ``AsyncSession``, on which the expected medians are computed.
    """
    if not _answered(answer):
        return

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

__all__ += ["check_exercise_12"]


def check_exercise_12(answer: Any) -> None:
    """Check how much the top tag's count grew on the standby after one new link: 1."""
    if not _answered(answer):
        return

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
