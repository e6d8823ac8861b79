"""Deterministic synthetic blog data at any scale, written through PostgreSQL COPY.

``await seed(target, users=200)`` fills an empty, migrated database with users (Faker names,
unique usernames and emails, a spread of roles, some inactive, most with a last login), one
account each (exact ``Decimal`` balances), tags with Zipf-like popularity, posts with a long tail
of posts per author, and the post-tag links. Every value comes from ``seed`` and ``now``: the
same arguments give identical tables on any day, on any server (timestamps are computed from
``now``, never from the server clock).

All seeded users share one precomputed argon2 hash of :data:`DEMO_PASSWORD`, so any of them can
log in with it (hashing a million passwords is not the point of seed data).

Rows go through asyncpg's binary ``copy_records_to_table`` on the caller's own connection, inside
the caller's transaction; they are generated chunk by chunk while COPY streams, so memory stays
bounded at a million posts.
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import exists, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession
from tqdm import tqdm

if TYPE_CHECKING:
    from faker import Faker

from blogdata._progress import make_bar
from blogdata.errors import InvalidInputError, NotOursError
from blogdata.models import ROLES, Account, Post, Tag, User, post_tags
from blogdata.models import USER_COLUMNS as _USER_COLUMNS
from blogdata.translate import translating

__all__ = ["DEMO_PASSWORD", "DEMO_PASSWORD_HASH", "SEED_NOW", "SeedSummary", "reset", "seed"]

#: The default "now" of seeded data: every seeded timestamp lies before it.
SEED_NOW: datetime = datetime(2026, 1, 1, tzinfo=UTC)

#: The password every seeded user has (demo data only).
DEMO_PASSWORD: str = "blogdata-demo"

#: An argon2id hash of DEMO_PASSWORD, computed once with pwdlib and stored here so that seeded
#: tables are byte-identical across processes (a fresh hash would get a fresh random salt).
DEMO_PASSWORD_HASH: str = (
    "$argon2id$v=19$m=65536,t=3,p=4$10AXKStfxilSPbLI9NeUlw$"
    "oVG2Xn+nRXuz4+m2OO7Yo4TUs79q+7QVArI4agk+oZE"
)

#: Share of users per role (readers most, admins few).
ROLE_SHARES: dict[str, float] = {"reader": 0.70, "author": 0.22, "editor": 0.06, "admin": 0.02}

Target = AsyncEngine | AsyncConnection | AsyncSession
Rows = Iterator[list[tuple[Any, ...]]]

_CHUNK = 50_000  # rows per generated chunk; fixed so the data never depends on it
_BULK_POSTS = 100_000  # from this many posts on, rebuild foreign keys and indexes after COPY
_DAY_US = 86_400 * 1_000_000
_SIGNUP_DAYS = 540  # users signed up within the last ~18 months
_ACTIVE_DAYS = 365  # a writer's mean active life before going quiet
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TABLES = ("users", "accounts", "tags", "posts", "post_tags")


@dataclass(frozen=True)
class SeedSummary:
    """How many rows ``seed`` wrote to each table, and with which arguments."""

    users: int
    accounts: int
    tags: int
    posts: int
    post_tags: int
    seed: int
    now: datetime

    @property
    def rows(self) -> int:
        """Return the total number of rows written."""
        return self.users + self.accounts + self.tags + self.posts + self.post_tags


@dataclass(frozen=True)
class _Table:
    name: str
    columns: tuple[str, ...]
    count: int
    chunks: Rows


def _datetimes(micros: np.ndarray, missing: np.ndarray | None = None) -> list[datetime | None]:
    """Turn epoch microseconds into aware UTC datetimes in whole seconds; None where ``missing``."""
    seconds = (micros // 1_000_000).tolist()  # whole seconds read better in frames and notebooks
    at = datetime.fromtimestamp
    values: list[datetime | None] = [at(s, UTC) for s in seconds]
    if missing is not None:
        for i in np.flatnonzero(missing).tolist():
            values[i] = None
    return values


#: Relative posting activity by weekday, Monday first: busy weekdays, quiet weekends.
_WEEKDAY_RATE = np.array([1.10, 1.15, 1.15, 1.10, 1.00, 0.60, 0.50])
_SEASON_SWING = 0.10  # +10% around early February, -10% around early August


def _rhythm(micros: np.ndarray) -> np.ndarray:
    """Return the relative posting rate at each instant: weekly rhythm times a seasonal swing."""
    days = micros / _DAY_US
    weekday = (np.floor(days).astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday
    season = 1 + _SEASON_SWING * np.cos(2 * np.pi * (days % 365.25 - 35) / 365.25)
    return _WEEKDAY_RATE[weekday] * season


def _rhythmic_times(rng: np.random.Generator, start: np.ndarray, end: np.ndarray) -> np.ndarray:
    """Draw one instant in [start, end) per row, with density proportional to :func:`_rhythm`.

    Rejection sampling: a uniform candidate is kept with probability rhythm / its maximum; the
    rows still pending draw again, in row order, so the result depends only on the generator.
    """
    top = float(_WEEKDAY_RATE.max()) * (1 + _SEASON_SWING)
    out = np.empty(start.size, dtype=np.int64)
    pending = np.arange(start.size)
    while pending.size:
        lo = start[pending]
        candidate = lo + ((end[pending] - lo) * rng.random(pending.size)).astype(np.int64)
        keep = rng.random(pending.size) * top < _rhythm(candidate)
        out[pending[keep]] = candidate[keep]
        pending = pending[~keep]
    return out


def _unique(base: str, taken: set[str], limit: int) -> str:
    """Return ``base`` (cut to ``limit``) or, if taken, the first free ``base2``, ``base3``..."""
    candidate, n = base[:limit], 1
    while candidate in taken:
        n += 1
        suffix = str(n)
        candidate = base[: limit - len(suffix)] + suffix
    taken.add(candidate)
    return candidate


class _Blog:
    """The planned blog: every random draw is made here, up front, in a fixed order."""

    def __init__(self, users: int, posts_per_user: float, tags: int, seed: int, now: datetime):
        self.n_users, self.n_tags = users, tags
        self.n_posts = round(users * posts_per_user)
        self.now_us = (now - _EPOCH) // timedelta(microseconds=1)
        from faker import Faker  # heavy (its locale data): loaded only when seeding

        fake = Faker("en_US")
        fake.seed_instance(seed)
        streams = np.random.SeedSequence(seed).spawn(5)
        r_users, r_acc, r_tags, r_posts, r_links = (np.random.default_rng(s) for s in streams)
        self._plan_users(fake, r_users)
        self._plan_accounts(r_acc)
        self._plan_tags(fake, r_tags)
        self._plan_posts(fake)
        self._post_rng = r_posts  # numbers drawn by _plan_post_numbers, maybe in a worker thread
        self._plan_links(r_links)

    def _plan_users(self, fake: Faker, rng: np.random.Generator) -> None:
        n = self.n_users
        firsts = [fake.first_name() for _ in range(min(n, 400))]
        lasts = [fake.last_name() for _ in range(min(n, 400))]
        domains = sorted({fake.free_email_domain() for _ in range(20)})
        first_i = rng.integers(len(firsts), size=n)
        last_i = rng.integers(len(lasts), size=n)
        style = rng.integers(3, size=n)
        domain_i = rng.integers(len(domains), size=n)
        no_name = rng.random(n) < 0.03
        self.roles = rng.choice(len(ROLES), size=n, p=[ROLE_SHARES[r] for r in ROLES])
        # Ids follow signup order, as a real serial column would.
        self.signup_us = np.sort(self.now_us - rng.integers(_DAY_US, _SIGNUP_DAYS * _DAY_US, n))
        self.active = rng.random(n) >= 0.08
        self.no_login = rng.random(n) < 0.12
        since = self.now_us - self.signup_us
        self.login_us = self.signup_us + (since * rng.random(n) ** 0.3).astype(np.int64)
        self.usernames: list[str] = []
        self.emails: list[str] = []
        self.full_names: list[str | None] = []
        taken: set[str] = set()
        plain_firsts = [re.sub(r"[^a-z]", "", name.lower()) for name in firsts]
        plain_lasts = [re.sub(r"[^a-z]", "", name.lower()) for name in lasts]
        for i in range(n):
            first, last = firsts[first_i[i]], lasts[last_i[i]]
            f, la = plain_firsts[first_i[i]], plain_lasts[last_i[i]]
            base = (f"{f}.{la}", f"{f}{la}", f"{f[:1]}{la}")[style[i]]
            username = _unique(base, taken, 40)
            self.usernames.append(username)
            self.emails.append(f"{username}@{domains[domain_i[i]]}")
            self.full_names.append(None if no_name[i] else f"{first} {last}")

    def _plan_accounts(self, rng: np.random.Generator) -> None:
        cents = np.rint(rng.lognormal(mean=10.0, sigma=1.3, size=self.n_users)).astype(np.int64)
        cents[rng.random(self.n_users) < 0.05] = 0
        self.cents = np.minimum(cents, 99_999_999_99)

    def _plan_tags(self, fake: Faker, rng: np.random.Generator) -> None:
        taken: set[str] = set()
        self.tag_names = [_unique(fake.word().lower(), taken, 50) for _ in range(self.n_tags)]
        # Zipf-like popularity over a random ranking, so tag 1 is not always the favourite.
        rank = rng.permutation(self.n_tags) + 1
        self.tag_logw = -1.1 * np.log(rank.astype(np.float64))

    def _plan_posts(self, fake: Faker) -> None:
        n = self.n_posts
        if n == 0:
            return
        self.titles = np.array(
            [fake.sentence(nb_words=7).rstrip(".")[:255] for _ in range(min(n, 2000))],
            dtype=object,
        )
        self.bodies = np.array(
            [fake.paragraph(nb_sentences=12) for _ in range(min(n, 1000))], dtype=object
        )

    def _plan_post_numbers(self) -> None:
        """Draw the posts' authors, times, views and texts (numpy only; GIL mostly released)."""
        n, rng = self.n_posts, self._post_rng
        if n == 0:
            return
        writers = np.flatnonzero(self.roles != ROLES.index("reader"))
        if writers.size == 0:
            writers = np.arange(self.n_users)
        # Each writer posts at their own rate (Pareto: a few prolific authors, a long tail of
        # occasional ones) over an active life from signing up until they go quiet (exponential,
        # a year on average, or today). A writer's share of the posts is rate x active days, and
        # the posts are spread over that life: none are squeezed into the last weeks.
        rate = rng.pareto(1.16, size=writers.size) + 0.05
        begin = self.signup_us[writers]
        life = rng.exponential(_ACTIVE_DAYS * _DAY_US, size=writers.size).astype(np.int64)
        end = np.minimum(begin + np.maximum(life, _DAY_US), self.now_us)
        pick = rng.choice(writers.size, size=n, p=(w := rate * (end - begin)) / w.sum())
        author = writers[pick]
        # The calendar rhythm draws from its own generator, so the other columns do not depend
        # on how many candidates it rejected (moving ``now`` leaves them unchanged).
        times_rng = np.random.default_rng(rng.integers(2**63))
        created = _rhythmic_times(times_rng, begin[pick], end[pick])
        order = np.argsort(created, kind="stable")  # ids follow writing order
        self.author_id, self.created_us = author[order] + 1, created[order]
        self.published = rng.random(n) < 0.9
        delay = rng.integers(0, 3 * _DAY_US, size=n)
        self.published_us = np.minimum(self.created_us + delay, self.now_us)
        self.edited = rng.random(n) < 0.25
        since = self.now_us - self.created_us
        self.updated_us = self.created_us + (since * rng.random(n)).astype(np.int64)
        views = np.rint(rng.lognormal(mean=5.0, sigma=1.5, size=n)).astype(np.int64)
        self.views = np.where(self.published, views, 0)
        self.views_missing = rng.random(n) < 0.05
        self.title_i = rng.integers(self.titles.size, size=n)
        self.body_i = rng.integers(self.bodies.size, size=n)
        self.empty = ~self.published & (rng.random(n) < 0.2)

    def _plan_links(self, rng: np.random.Generator) -> None:
        kmax = min(5, self.n_tags)
        k = np.clip(rng.poisson(1.8, size=self.n_posts), 0, kmax) if kmax else None
        self.tags_per_post = k if k is not None else np.zeros(self.n_posts, dtype=np.int64)
        self.link_rng = rng

    def tables(self, pool: ThreadPoolExecutor | None = None) -> list[_Table]:
        """Return the tables in load order, each with a lazy generator of row chunks.

        With a ``pool``, the post-tag links are drawn in it straight away, in the background.
        """
        if pool is None:
            numbers: Future[None] | None = None
            pending = None
        else:  # one worker, in this order: post numbers, then links, while users COPY streams
            numbers = pool.submit(self._plan_post_numbers)
            pending = pool.submit(self.link_arrays)
        return [
            _Table("users", _USER_COLUMNS, self.n_users, self._users()),
            _Table("accounts", ("id", "owner_id", "balance", "created_at"), self.n_users,
                   self._accounts()),
            _Table("tags", ("id", "name"), self.n_tags, self._tags()),
            _Table("posts", _POST_COLUMNS, self.n_posts, self._posts(numbers)),
            _Table("post_tags", ("post_id", "tag_id"), int(self.tags_per_post.sum()),
                   self._links(pending)),
        ]  # fmt: skip

    def _users(self) -> Rows:
        for lo in range(0, self.n_users, _CHUNK):
            hi = min(lo + _CHUNK, self.n_users)
            m = hi - lo
            yield list(
                zip(
                    range(lo + 1, hi + 1),
                    self.emails[lo:hi],
                    self.usernames[lo:hi],
                    self.full_names[lo:hi],
                    [DEMO_PASSWORD_HASH] * m,
                    self.active[lo:hi].tolist(),
                    [ROLES[r] for r in self.roles[lo:hi].tolist()],
                    _datetimes(self.signup_us[lo:hi]),
                    [None] * m,
                    _datetimes(self.login_us[lo:hi], self.no_login[lo:hi]),
                    strict=True,
                )
            )

    def _accounts(self) -> Rows:
        for lo in range(0, self.n_users, _CHUNK):
            hi = min(lo + _CHUNK, self.n_users)
            ids = range(lo + 1, hi + 1)
            balances = [Decimal(c).scaleb(-2) for c in self.cents[lo:hi].tolist()]
            created = _datetimes(self.signup_us[lo:hi])
            yield list(zip(ids, ids, balances, created, strict=True))

    def _tags(self) -> Rows:
        if self.n_tags:
            yield list(enumerate(self.tag_names, start=1))

    def _posts(self, numbers: Future[None] | None) -> Rows:
        if numbers is None:
            self._plan_post_numbers()
        else:
            numbers.result()
        for lo in range(0, self.n_posts, _CHUNK):
            hi = min(lo + _CHUNK, self.n_posts)
            views: list[int | None] = self.views[lo:hi].tolist()
            for i in np.flatnonzero(self.views_missing[lo:hi]).tolist():
                views[i] = None
            bodies: list[str | None] = self.bodies[self.body_i[lo:hi]].tolist()
            for i in np.flatnonzero(self.empty[lo:hi]).tolist():
                bodies[i] = None
            yield list(
                zip(
                    range(lo + 1, hi + 1),
                    self.titles[self.title_i[lo:hi]].tolist(),
                    bodies,
                    self.author_id[lo:hi].tolist(),
                    _datetimes(self.created_us[lo:hi]),
                    _datetimes(self.updated_us[lo:hi], ~self.edited[lo:hi]),
                    _datetimes(self.published_us[lo:hi], ~self.published[lo:hi]),
                    views,
                    strict=True,
                )
            )

    def link_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Draw every post's tags; return (post ids, tag ids). Numpy only, so it can run in a
        worker thread (numpy releases the GIL) while COPY streams the other tables.
        """  # noqa: D205
        kmax = int(self.tags_per_post.max(initial=0))
        post_parts, tag_parts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        step = max(1, 4_000_000 // max(self.n_tags, 1))  # bounds the (posts x tags) matrix
        for lo in range(0, self.n_posts if kmax else 0, step):
            hi = min(lo + step, self.n_posts)
            # Gumbel top-k: k distinct tags per post, weighted by popularity. Noise is drawn
            # for every post, tagged or not, so the stream never depends on the counts.
            noise = self.link_rng.gumbel(size=(hi - lo, self.n_tags))
            rows = np.flatnonzero(self.tags_per_post[lo:hi])
            k = self.tags_per_post[lo:hi][rows]
            keys = self.tag_logw + noise[rows]
            top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
            top = np.take_along_axis(
                top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1
            )
            keep = np.arange(kmax) < k[:, None]
            chosen = np.sort(np.where(keep, top + 1, np.iinfo(np.int64).max), axis=1)
            post_parts.append(np.broadcast_to((rows + lo + 1)[:, None], chosen.shape)[keep])
            tag_parts.append(chosen[keep])
        return np.concatenate(post_parts), np.concatenate(tag_parts)

    def _links(self, pending: Future[tuple[np.ndarray, np.ndarray]] | None) -> Rows:
        post_ids, tag_ids = pending.result() if pending is not None else self.link_arrays()
        for lo in range(0, post_ids.size, _CHUNK * 4):
            hi = lo + _CHUNK * 4
            yield list(zip(post_ids[lo:hi].tolist(), tag_ids[lo:hi].tolist(), strict=True))


_POST_COLUMNS = tuple(
    c.name
    for c in (
        Post.id, Post.title, Post.content, Post.author_id, Post.created_at, Post.updated_at,
        Post.published_at, Post.views,
    )
)  # fmt: skip


def _check_arguments(
    users: int, posts_per_user: float, tags: int, seed: int, now: datetime
) -> None:
    if isinstance(users, bool) or not isinstance(users, int) or users <= 0:
        raise InvalidInputError(f"users must be a positive integer, got {users!r}")
    if (
        isinstance(posts_per_user, bool)
        or not isinstance(posts_per_user, int | float)
        or not math.isfinite(posts_per_user)
        or posts_per_user < 0
    ):
        raise InvalidInputError(
            f"posts_per_user must be a finite number >= 0, got {posts_per_user!r}"
        )
    if isinstance(tags, bool) or not isinstance(tags, int) or tags < 0:
        raise InvalidInputError(f"tags must be an integer >= 0, got {tags!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InvalidInputError(f"random_seed must be an integer >= 0, got {seed!r}")
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise InvalidInputError(
            f"now must be a time-zone-aware datetime, e.g. datetime(2026, 1, 1, tzinfo=UTC); "
            f"got {now!r}"
        )


@asynccontextmanager
async def _connection(target: Target) -> AsyncIterator[AsyncConnection]:
    """Yield a connection in a transaction: ours (committed) for an engine, else the caller's."""
    # translating: a lost connection is discarded and named, raw driver errors included.
    if isinstance(target, AsyncEngine):
        async with target.begin() as conn, translating("seeding", connection=conn):
            yield conn
    elif isinstance(target, AsyncSession):
        await target.flush()
        async with translating("seeding", connection=target):
            yield await target.connection()
    elif isinstance(target, AsyncConnection):
        async with translating("seeding", connection=target):
            yield target
    else:
        raise InvalidInputError(
            f"seed needs an AsyncEngine, AsyncConnection or AsyncSession, got {type(target)!r}"
        )


async def _nonempty_tables(conn: AsyncConnection) -> list[str]:
    tables = (User.__table__, Account.__table__, Tag.__table__, Post.__table__, post_tags)
    checks = [exists().select_from(t).label(name) for t, name in zip(tables, _TABLES, strict=True)]
    row = (await conn.execute(select(*checks))).one()
    return [name for name, used in zip(_TABLES, row, strict=True) if used]


async def seed(
    target: Target,
    *,
    users: int = 200,
    posts_per_user: float = 5.0,
    tags: int = 40,
    random_seed: int = 42,
    now: datetime = SEED_NOW,
    progress: bool = False,
    analyze: bool | None = None,
) -> SeedSummary:
    """Fill an empty, migrated database with a deterministic synthetic blog.

    On an ``AsyncEngine`` the rows are committed in one transaction of our own; on an
    ``AsyncConnection`` or ``AsyncSession`` they are written inside the caller's transaction,
    which the caller commits.

    Args:
        target: where to write.
        users: number of users (each gets one account); must be positive.
        posts_per_user: mean posts per user; the total is ``round(users * posts_per_user)``,
            written by the non-reader users with a long-tailed (Pareto) spread.
        tags: number of tags, with Zipf-like popularity; each post carries 0 to 5 of them.
        random_seed: the random seed; the same arguments always give identical tables.
        now: the reference time; every timestamp lies within ~18 months before it.
        progress: show a progress bar when seeding takes more than a second: tqdm's notebook
            widget in Jupyter (with ipywidgets installed; else a text bar), a bar on a
            terminal's stderr, and nothing at all when stderr is neither (a file, a pipe, CI).
        analyze: run ``ANALYZE`` on the blog tables at the end, in the same transaction, so
            the planner (and ``describe``'s row estimates) know the new rows at once; it reads a
            sample of at most 30,000 rows per table, so it costs little beside the load. The
            default (None) analyses when ``seed`` owns the transaction (an ``AsyncEngine``);
            in a caller's transaction pass True (it is not undone by a rollback: PostgreSQL
            updates the row estimates in place).

    Raises:
        InvalidInputError: an argument is out of range, or the blog tables are not empty.
        QueryError: the database rejected the load (e.g. it is not migrated).
    """
    _check_arguments(users, posts_per_user, tags, random_seed, now)
    async with _connection(target) as conn:
        async with translating("checking the blog tables", connection=conn):
            filled = await _nonempty_tables(conn)
        if filled:
            raise InvalidInputError(
                f"seed needs empty blog tables, but {', '.join(filled)} already have rows; "
                "call blogdata.seed.reset() first (or `blogdata seed --reset`)"
            )
        blog = _Blog(users, posts_per_user, tags, random_seed, now)
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="blogdata-seed")
        tables = blog.tables(pool)
        bar = _progress_bar(sum(t.count for t in tables), progress)
        driver: Any = (await conn.get_raw_connection()).driver_connection
        try:
            async with translating("seeding", connection=conn):
                # A big load is faster with foreign keys and secondary indexes rebuilt once at
                # the end than checked row by row; same transaction, so it is all or nothing.
                rebuild = await _drop_checks(driver) if blog.n_posts >= _BULK_POSTS else []
                with bar:
                    for table in tables:
                        await driver.copy_records_to_table(
                            table.name, records=_flatten(table.chunks, bar), columns=table.columns
                        )
                for statement in rebuild:
                    await driver.execute(statement)
                for table in tables[:4]:
                    # Next ids continue after the copied ones: COPY does not advance sequences.
                    await conn.execute(
                        text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v, false)"),
                        {"t": table.name, "v": table.count + 1},
                    )
                if analyze or (analyze is None and isinstance(target, AsyncEngine)):
                    # Fixed names. Without it, describe() shows no row estimates until autovacuum
                    # comes by, and the first queries are planned for empty tables.
                    await conn.execute(text(f"ANALYZE {', '.join(_TABLES)}"))
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
    return SeedSummary(
        users=users,
        accounts=users,
        tags=tags,
        posts=blog.n_posts,
        post_tags=tables[4].count,
        seed=random_seed,
        now=now,
    )


_CHECKS_SQL = """
SELECT format('ALTER TABLE %s DROP CONSTRAINT %I', conrelid::regclass, conname) AS drop_sql,
       format('ALTER TABLE %s ADD CONSTRAINT %I %s', conrelid::regclass, conname,
              pg_get_constraintdef(oid)) AS create_sql
FROM pg_constraint
WHERE contype = 'f' AND conrelid = ANY($1::regclass[])
UNION ALL
SELECT format('DROP INDEX %s', indexrelid::regclass), pg_get_indexdef(indexrelid)
FROM pg_index
WHERE indrelid = ANY($1::regclass[]) AND NOT indisprimary AND NOT indisunique
"""


async def _drop_checks(driver: Any) -> list[str]:
    """Drop the blog tables' foreign keys and plain indexes; return the statements to rebuild them.

    The statements come from PostgreSQL's own catalog (``pg_get_constraintdef``,
    ``pg_get_indexdef``), so indexes added by later migrations are rebuilt too.
    """
    rows = await driver.fetch(_CHECKS_SQL, list(_TABLES))
    for row in rows:
        await driver.execute(row["drop_sql"])
    # Indexes first (UNION ALL order puts constraints first; rebuild indexes, then validate FKs).
    creates = [row["create_sql"] for row in rows]
    return sorted(creates, key=lambda sql: sql.startswith("ALTER TABLE"))


_PROGRESS_DELAY = 1.0  # seconds before a bar appears: short seeds show nothing


def _progress_bar(total: int, wanted: bool) -> tqdm[Any]:
    """Make the seeding bar: a widget in a notebook, a bar on a terminal, else disabled."""
    bar: tqdm[Any] = make_bar(
        wanted=wanted, delay=_PROGRESS_DELAY, total=total, unit="rows", unit_scale=True,
        desc="seeding",
    )  # fmt: skip
    return bar


def _flatten(chunks: Rows, bar: tqdm[Any]) -> Iterable[tuple[Any, ...]]:
    for chunk in chunks:
        yield from chunk
        bar.update(len(chunk))


_OUTSIDERS_SQL = """
SELECT format('%s (foreign key %I on %s)', conrelid::regclass, conname, confrelid::regclass)
FROM pg_constraint
WHERE contype = 'f' AND confrelid = ANY(CAST(:tables AS text[])::regclass[])
  AND NOT conrelid = ANY(CAST(:tables AS text[])::regclass[])
UNION ALL
SELECT format('%s (inherits from %s)', inhrelid::regclass, inhparent::regclass)
FROM pg_inherits
WHERE inhparent = ANY(CAST(:tables AS text[])::regclass[])
ORDER BY 1
"""


async def reset(target: Target) -> None:
    """Empty exactly the blog's tables and restart their ids; refuse if other tables depend on them.

    ``TRUNCATE ONLY <blog tables> RESTART IDENTITY``, without ``CASCADE``: a table of yours
    that references the blog's tables (a foreign key) or inherits from one would be emptied, or
    block the truncate, so reset refuses with ``NotOursError`` naming them and changes nothing.
    On an ``AsyncEngine`` it commits a transaction of its own; on a connection or session it
    runs in the caller's transaction, which the caller commits.

    Raises:
        NotOursError: other tables reference or inherit from the blog's tables.
    """
    async with _connection(target) as conn, translating("resetting the tables", connection=conn):
        found = await conn.execute(text(_OUTSIDERS_SQL), {"tables": list(_TABLES)})
        outsiders = found.scalars().all()
        if outsiders:
            raise NotOursError(
                f"reset empties only the blog's tables ({', '.join(_TABLES)}), but other tables "
                f"depend on them: {'; '.join(outsiders)}. Emptying the blog's tables would "
                "empty or break those too, so nothing was changed; drop those foreign keys "
                "(or tables) yourself first, or seed a database of its own"
            )
        # Fixed names; ONLY: a table that inherits from a blog table is never emptied with it.
        await conn.execute(text(f"TRUNCATE ONLY {', '.join(_TABLES)} RESTART IDENTITY"))
