"""Deterministic synthetic blog data at any scale, written through PostgreSQL COPY.

``await seed(target, users=200)`` fills an empty, migrated database with a blog that reads as a
real one: users (Faker names, unique usernames and emails, a spread of roles, some inactive, most
with a last login), one account each (exact ``Decimal`` balances), tags from a fixed vocabulary of
real blog subjects (python, postgresql, travel, cooking, personal-finance, ...) in topical
clusters, and posts whose 1-5 tags mostly share a subject and whose titles and text are about
those tags. Writers stick to one or two subjects and post at plausible rates (log-normal: most
write a few posts, some dozens), weekdays more than weekends. One account is not a person: once
the blog has 200 posts or more, ``daily.digest`` (the first author to sign up) posts a digest
every six hours, around the clock, up to 5% of the posts; an analyst should find it (notebook 11
does). Every value comes from ``seed`` and ``now``: the same arguments give identical tables on
any day, on any server (timestamps are computed from ``now``, never from the server clock).

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
_RATE_CAP = math.exp(3.0)  # a writer posts at most ~20x the median writer's rate
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


# --- The blog's subjects -----------------------------------------------------------------------
#
# Tags come from a fixed vocabulary of real blog subjects in topical clusters. Each cluster has a
# relative popularity, a shift of its posts' log views (some subjects draw more readers), its
# tags (most used first; ``name:Display`` where the display differs from the name) and phrases
# that titles and content are built from. Every display contains the words of its tag's name, so
# a title about a tag names it.


@dataclass(frozen=True)
class _Cluster:
    weight: float
    view_shift: float
    tags: tuple[str, ...]
    phrases: tuple[str, ...]
    area: str  # tags co-occur across subjects of the same area more than across areas


_CLUSTERS: tuple[_Cluster, ...] = (
    _Cluster(1.0, 0.2, (
        "python:Python", "django:Django", "pandas", "asyncio", "fastapi:FastAPI",
        "type-hints:type hints", "packaging", "jupyter:Jupyter",
    ), (
        "virtual environments", "dataclasses", "the standard library", "async generators",
        "dependency pinning", "a slow test suite", "profiling a hot loop", "structured logging",
        "error handling", "a small command-line tool",
    ), "tech"),
    _Cluster(0.9, 0.2, (
        "web-development:web development", "javascript:JavaScript", "typescript:TypeScript",
        "react:React", "css:CSS", "accessibility", "html:HTML", "web-performance:web performance",
    ), (
        "a responsive layout", "form validation", "state management", "a design system",
        "bundle size", "server-side rendering", "keyboard navigation", "dark mode", "a REST API",
        "caching headers",
    ), "tech"),
    _Cluster(0.8, 0.1, (
        "postgresql:PostgreSQL", "databases", "sql:SQL", "sqlalchemy:SQLAlchemy", "indexing",
        "data-modeling:data modeling", "redis:Redis", "sqlite:SQLite", "migrations",
    ), (
        "query plans", "connection pooling", "a missing index", "window functions",
        "foreign keys", "isolation levels", "slow queries", "backups you can restore",
        "vacuum and bloat", "schema changes",
    ), "tech"),
    _Cluster(0.8, 0.4, (
        "machine-learning:machine learning", "data-science:data science", "statistics",
        "data-visualization:data visualization", "deep-learning:deep learning", "nlp:NLP",
        "llms:LLMs",
    ), (
        "feature engineering", "a baseline model", "cross-validation", "messy CSV files",
        "confidence intervals", "A/B tests", "a clear chart", "overfitting", "embeddings",
        "a labelled dataset",
    ), "tech"),
    _Cluster(0.7, 0.0, (
        "devops:DevOps", "docker:Docker", "kubernetes:Kubernetes", "linux:Linux", "ci-cd:CI/CD",
        "aws:AWS", "terraform:Terraform", "monitoring", "security",
    ), (
        "zero-downtime deploys", "container images", "on-call", "a flaky pipeline",
        "log aggregation", "secrets management", "infrastructure as code", "alerts that help",
        "a home server", "TLS certificates",
    ), "tech"),
    _Cluster(0.6, 0.1, (
        "travel", "hiking", "japan:Japan", "italy:Italy", "road-trips:road trips",
        "budget-travel:budget travel", "camping", "europe:Europe",
    ), (
        "a rail pass", "packing light", "a week in the mountains", "night trains",
        "travel insurance", "the off season", "a long layover", "local markets", "a coastal walk",
        "jet lag",
    ), "life"),
    _Cluster(0.6, 0.0, (
        "cooking", "baking", "recipes", "vegetarian:vegetarian food", "coffee", "bread",
        "meal-prep:meal prep", "fermentation",
    ), (
        "a sourdough starter", "weeknight dinners", "cast-iron pans", "a pantry curry",
        "knife skills", "pour-over", "seasonal vegetables", "kimchi", "a birthday cake",
        "batch cooking",
    ), "life"),
    _Cluster(0.5, 0.5, (
        "personal-finance:personal finance", "investing", "budgeting", "retirement", "taxes",
        "frugal-living:frugal living",
    ), (
        "an emergency fund", "index funds", "a zero-based budget", "paying off debt",
        "compound interest", "a spending review", "renting versus buying", "a pension top-up",
        "subscriptions", "saving for a house",
    ), "life"),
    _Cluster(0.5, 0.3, (
        "career", "productivity", "remote-work:remote work", "open-source:open source",
        "management", "interviews", "writing",
    ), (
        "a first job in tech", "code review", "saying no", "a four-day week", "mentoring",
        "burnout", "deep work", "a promotion", "the first 90 days", "a side project",
    ), "tech"),
    _Cluster(0.45, -0.2, (
        "books", "music", "film", "video-games:video games", "board-games:board games",
        "podcasts",
    ), (
        "a reading list", "the year in review", "a vinyl collection", "a slow second act",
        "game night", "an old favourite", "a book club", "short stories", "a soundtrack",
        "a long series",
    ), "life"),
    _Cluster(0.4, -0.2, (
        "photography", "cameras", "street-photography:street photography",
        "film-photography:film photography", "lightroom:Lightroom",
        "landscape-photography:landscape photography",
    ), (
        "a 35mm prime", "golden hour", "editing presets", "composition", "shooting in RAW",
        "low light", "a used camera body", "printing at home", "black and white", "a photo walk",
    ), "life"),
    _Cluster(0.4, -0.1, (
        "running", "fitness", "cycling", "yoga", "climbing", "nutrition",
    ), (
        "a first marathon", "interval training", "recovery days", "a training plan",
        "strength work", "a knee injury", "commuting by bike", "morning routines", "a 10k",
        "protein",
    ), "life"),
    _Cluster(0.35, -0.3, (
        "gardening", "diy:DIY", "woodworking", "home-improvement:home improvement",
        "sustainability",
    ), (
        "raised beds", "composting", "a workbench", "tomatoes", "insulation", "a small balcony",
        "reclaimed wood", "rainwater", "repairing instead of replacing", "a garden shed",
    ), "life"),
    _Cluster(0.3, -0.1, (
        "parenting", "education", "language-learning:language learning", "homeschooling",
    ), (
        "screen time", "bedtime routines", "a first bike", "school mornings", "flashcards",
        "a new language", "reading aloud", "teenagers", "a family calendar", "pocket money",
    ), "life"),
)  # fmt: skip

#: Title templates: {T} is the post's main tag as words, {p} a phrase of its subject.
_TITLES = (
    "Getting started with {T}", "{T}: notes on {p}", "What {p} taught me about {T}",
    "{n} lessons from a year of {T}", "Why I changed my mind about {T}", "{T} in practice: {p}",
    "The {T} mistakes I keep making", "Five things nobody tells you about {T}",
    "My {T} setup, revisited", "{T} for the impatient: {p}", "Revisiting {p}: more {T} notes",
    "A weekend of {T}, and {p}", "Is {T} worth it? Thoughts on {p}",
)  # fmt: skip
#: The automated digest account's titles: always the same few shapes, as a template engine makes.
_DIGEST_TITLES = (
    "Daily digest: {T} and more", "Daily digest: this morning in {T}",
    "Daily digest: today's {T} links",
)  # fmt: skip
_OPENINGS = (
    "This post is about {p}, something I have wanted to write up for a while.",
    "If you spend time on {T}, you have probably run into {p} at some point.",
    "A reader asked me about {p} last month, so here is the long answer.",
    "I spent the last few weeks on {p}, and this is what I found.",
)  # fmt: skip
_MIDDLES = (
    "The short version: it is simpler than it looks once you stop fighting it.",
    "I tried three approaches to {q} before one of them stuck.",
    "Most of what follows applies to {T} in general, not only to my situation.",
    "The part that surprised me most was {q}.",
    "It took me longer than I like to admit to see how {p} and {q} fit together.",
    "None of this is new, but it is easy to forget when you are in a hurry.",
    "I kept a checklist along the way, and it is at the end of this post.",
    "Your situation may differ, so take my numbers as a starting point.",
    "Friends who know more about {T} than I do pointed me to {q}.",
)  # fmt: skip
_CLOSINGS = (
    "Questions and corrections are welcome in the comments.",
    "I will keep this post updated as things change.", "Next time: more on {q}.",
    "Thanks for reading, and let me know how it goes for you.",
)  # fmt: skip
_DIGEST_BODY = (
    "Today's reading list, collected automatically from the most read posts of the last six "
    "hours. Featured: {T}, with a post on {p} and another on {q}. Also trending: {U}. "
    "You receive this digest because you follow {T}. Manage your subscriptions in settings."
)
_TITLES_PER_TAG = 24  # distinct titles per tag (posts reuse them, as real titles repeat)
_BODIES_PER_TAG = 12
_SAME_SUBJECT = 6.0  # log-weight bonus for a post's further tags in its main tag's subject
_SAME_AREA = 2.5  # and a smaller one for the subjects of its area (tech, or life and leisure)
_AREA = np.array([c.area == "tech" for c in _CLUSTERS])
_TAGS_PER_POST = np.array([0.42, 0.33, 0.16, 0.06, 0.03])  # P(1 tag) ... P(5 tags)
_DIGEST_SLOTS_PER_DAY = 4  # the digest account posts every six hours
_DIGEST_SHARE = 0.05  # it writes at most this share of the posts
_DIGEST_MIN_POSTS = 200  # smaller blogs have no digest account
_DIGEST_USERNAME = "daily.digest"


@dataclass(frozen=True)
class _Tag:
    name: str
    words: str  # the tag as it reads in a sentence
    cluster: int
    weight: float  # relative popularity within the vocabulary


def _vocabulary(n: int) -> list[_Tag]:
    """Return ``n`` tags: the clusters' tags round-robin, most used first, then qualified ones.

    Round-robin over the clusters (most popular first), so the first ``n`` tags always span
    many subjects: ``n=14`` is each subject's main tag. Beyond the vocabulary, a subject's tags
    get qualifiers (``python-tips``), then numbers, with smaller weights.
    """
    ranked: list[_Tag] = []
    for pos in range(max(len(c.tags) for c in _CLUSTERS)):
        for ci, cluster in enumerate(_CLUSTERS):
            if pos < len(cluster.tags):
                name, _, words = cluster.tags[pos].partition(":")
                ranked.append(_Tag(name, words or name, ci, cluster.weight / (pos + 1)))
    out = ranked[:n]
    qualifiers = ("tips", "basics", "news", "notes", "projects", "tools", "community", "weekly")
    rounds = 0
    while len(out) < n:
        rounds += 1
        for base in ranked:
            if len(out) == n:
                break
            q = qualifiers[(rounds - 1) % len(qualifiers)]
            r = (rounds - 1) // len(qualifiers)
            suffix = q if r == 0 else f"{q}-{r + 1}"
            out.append(
                _Tag(f"{base.name}-{suffix}", f"{base.words} {suffix}", base.cluster,
                     base.weight / (2 + rounds))
            )  # fmt: skip
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


def _sentence(template: str, **words: str) -> str:
    """Fill ``template`` and capitalise its first letter (a tag may open a title)."""
    text_ = template.format(**words)
    return text_[:1].upper() + text_[1:]


class _Blog:
    """The planned blog: every random draw is made here, up front, in a fixed order."""

    def __init__(self, users: int, posts_per_user: float, tags: int, seed: int, now: datetime):
        self.n_users, self.n_tags = users, tags
        self.n_posts = round(users * posts_per_user)
        self.now_us = (now - _EPOCH) // timedelta(microseconds=1)
        from faker import Faker  # heavy (its locale data): loaded only when seeding

        fake = Faker("en_US")
        fake.seed_instance(seed)
        streams = np.random.SeedSequence(seed).spawn(6)
        r_users, r_acc, r_tags, r_posts, r_links, r_text = (
            np.random.default_rng(s) for s in streams
        )
        self._plan_users(fake, r_users)
        self._plan_accounts(r_acc)
        self._plan_tags(r_tags)
        self._plan_texts(r_text)
        self._plan_post_counts()
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
        # The blog's automated digest account: the first user with the author role to sign up,
        # once the blog is big enough. It never logs in; it posts on a timer (_plan_post_counts).
        writers = np.flatnonzero(self.roles != ROLES.index("reader"))
        authors = np.flatnonzero(self.roles == ROLES.index("author"))
        big = self.n_posts >= _DIGEST_MIN_POSTS and writers.size >= 5 and authors.size > 0
        self.digest = int(authors[0]) if big else -1
        if self.digest >= 0:
            self.active[self.digest], self.no_login[self.digest] = True, True
        self.usernames: list[str] = []
        self.emails: list[str] = []
        self.full_names: list[str | None] = []
        taken: set[str] = {_DIGEST_USERNAME} if self.digest >= 0 else set()
        plain_firsts = [re.sub(r"[^a-z]", "", name.lower()) for name in firsts]
        plain_lasts = [re.sub(r"[^a-z]", "", name.lower()) for name in lasts]
        for i in range(n):
            first, last = firsts[first_i[i]], lasts[last_i[i]]
            f, la = plain_firsts[first_i[i]], plain_lasts[last_i[i]]
            full_name: str | None
            if i == self.digest:
                username, full_name = _DIGEST_USERNAME, "Daily Digest"
            else:
                base = (f"{f}.{la}", f"{f}{la}", f"{f[:1]}{la}")[style[i]]
                username = _unique(base, taken, 40)
                full_name = None if no_name[i] else f"{first} {last}"
            self.usernames.append(username)
            self.emails.append(f"{username}@{domains[domain_i[i]]}")
            self.full_names.append(full_name)

    def _plan_accounts(self, rng: np.random.Generator) -> None:
        cents = np.rint(rng.lognormal(mean=10.0, sigma=1.3, size=self.n_users)).astype(np.int64)
        cents[rng.random(self.n_users) < 0.05] = 0
        self.cents = np.minimum(cents, 99_999_999_99)

    def _plan_tags(self, rng: np.random.Generator) -> None:
        # Texts need a subject even without tags: then the vocabulary's first tag lends it.
        self.vocab = _vocabulary(max(self.n_tags, 1))
        self.tag_names = [t.name for t in self.vocab[: self.n_tags]]
        self.tag_cluster = np.array([t.cluster for t in self.vocab], dtype=np.int64)
        # Popularity: the vocabulary's, varied a little by the seed.
        weight = np.array([t.weight for t in self.vocab]) * rng.lognormal(0, 0.25, len(self.vocab))
        self.tag_logw = np.log(weight)
        self.tag_p = weight / weight.sum()
        n_clusters = len(_CLUSTERS)
        share = np.bincount(self.tag_cluster, weights=weight, minlength=n_clusters)
        self.cluster_p: np.ndarray = share / share.sum()
        # A sorted key per tag, cluster + cumulative share within it, to draw a tag of a given
        # cluster by searchsorted (see _tag_in).
        by = np.lexsort((np.arange(len(self.vocab)), self.tag_cluster))
        sc, sw = self.tag_cluster[by], weight[by]
        total = np.bincount(sc, weights=sw, minlength=n_clusters)
        before = np.concatenate([[0.0], np.cumsum(total)])[sc]
        within = (np.cumsum(sw) - before) / total[sc]
        within[np.r_[sc[1:] != sc[:-1], True]] = 1.0  # each cluster's last tag ends it exactly
        self._tag_key, self._tag_by = sc + within, by

    def _tag_in(self, cluster: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Return a tag of each ``cluster``, drawn by popularity with the uniforms ``u``."""
        found: np.ndarray = self._tag_by[np.searchsorted(self._tag_key, cluster + u, side="right")]
        return found

    def _plan_texts(self, rng: np.random.Generator) -> None:
        """Write the pools of titles and bodies: a few dozen per tag, about that tag."""
        titles: list[str] = []
        bodies: list[str] = []
        digest_titles: list[str] = []
        digest_bodies: list[str] = []
        for tag in self.vocab:
            phrases = _CLUSTERS[tag.cluster].phrases
            for _ in range(_TITLES_PER_TAG):
                template = _TITLES[rng.integers(len(_TITLES))]
                p = phrases[rng.integers(len(phrases))]
                titles.append(_sentence(template, T=tag.words, p=p, n=str(rng.integers(3, 13))))
            for _ in range(_BODIES_PER_TAG):
                p, q = (phrases[i] for i in rng.choice(len(phrases), 2, replace=False))
                middles = rng.choice(len(_MIDDLES), rng.integers(3, 5), replace=False)
                parts = [
                    _OPENINGS[rng.integers(len(_OPENINGS))],
                    *(_MIDDLES[i] for i in middles),
                    _CLOSINGS[rng.integers(len(_CLOSINGS))],
                ]
                bodies.append(" ".join(_sentence(s, T=tag.words, p=p, q=q) for s in parts))
            for template in _DIGEST_TITLES:
                digest_titles.append(_sentence(template, T=tag.words))
                p, q = (phrases[i] for i in rng.choice(len(phrases), 2, replace=False))
                other = self.vocab[rng.integers(len(self.vocab))].words
                digest_bodies.append(_sentence(_DIGEST_BODY, T=tag.words, p=p, q=q, U=other))
        self.titles = np.array([t[:255] for t in titles + digest_titles], dtype=object)
        self.bodies = np.array(bodies + digest_bodies, dtype=object)

    def _plan_post_counts(self) -> None:
        """How many posts the digest account writes: one every six hours, a capped share."""
        self.n_digest = 0
        if self.digest >= 0:
            slot = _DAY_US // _DIGEST_SLOTS_PER_DAY
            slots = (self.now_us - int(self.signup_us[self.digest]) - _DAY_US) // slot
            self.n_digest = int(min(max(slots, 0), round(_DIGEST_SHARE * self.n_posts)))

    def _plan_post_numbers(self) -> None:
        """Draw the posts' authors, subjects, times, views and texts (numpy; GIL mostly free)."""
        n, rng = self.n_posts, self._post_rng
        if n == 0:
            return
        n_dig = self.n_digest
        n_reg = n - n_dig
        writers = np.flatnonzero(self.roles != ROLES.index("reader"))
        writers = writers[writers != self.digest]
        if writers.size == 0:
            writers = np.arange(self.n_users)
        # Each writer posts at their own rate (log-normal: most write a few posts, some write
        # dozens; capped, so nobody human posts several times a day) over an active life from
        # signing up until they go quiet (exponential, a year on average, or today). A writer's
        # share of the posts is rate x active days, spread over that life.
        rate = np.minimum(rng.lognormal(0.0, 1.0, size=writers.size), _RATE_CAP)
        begin = self.signup_us[writers]
        life = rng.exponential(_ACTIVE_DAYS * _DAY_US, size=writers.size).astype(np.int64)
        end = np.minimum(begin + np.maximum(life, _DAY_US), self.now_us)
        pick = rng.choice(writers.size, size=n_reg, p=(w := rate * (end - begin)) / w.sum())
        # Writers stick to their subjects: a home one, a second one, now and then anything.
        clusters = np.arange(len(_CLUSTERS))
        home = rng.choice(clusters, size=writers.size, p=self.cluster_p)
        second = rng.choice(clusters, size=writers.size, p=self.cluster_p)
        anything = rng.choice(clusters, size=n_reg, p=self.cluster_p)
        u = rng.random(n_reg)
        subject = np.where(u < 0.65, home[pick], np.where(u < 0.85, second[pick], anything))
        main = np.concatenate([
            self._tag_in(subject, rng.random(n_reg)),
            rng.choice(len(self.vocab), size=n_dig, p=self.tag_p),  # the digest: any subject
        ])  # fmt: skip
        # The calendar rhythm draws from its own generator, so the other columns do not depend
        # on how many candidates it rejected (moving ``now`` leaves them unchanged).
        times_rng = np.random.default_rng(rng.integers(2**63))
        slot = _DAY_US // _DIGEST_SLOTS_PER_DAY
        digest_at = (
            self.now_us
            - (np.arange(n_dig, dtype=np.int64) + 1) * slot
            + 300_000_000
            + rng.integers(0, 90_000_000, size=n_dig)
        )  # fmt: skip  five past the hour, plus the timer's jitter
        created = np.concatenate([_rhythmic_times(times_rng, begin[pick], end[pick]), digest_at])
        author = np.concatenate([writers[pick], np.full(n_dig, max(self.digest, 0))])
        # Every other column is drawn in the same order as the authors and subjects, then put in
        # writing order with them: moving ``now`` reorders the posts but changes none of them.
        bot = np.arange(n) >= n_reg
        published = ~self._draft_pick
        delay = np.where(bot, rng.integers(0, 60_000_000, size=n),
                         rng.integers(0, 3 * _DAY_US, size=n))  # fmt: skip
        edited = (rng.random(n) < 0.25) & ~bot
        updated_at = rng.random(n)  # where in the time since writing the last edit fell
        shift = np.array([c.view_shift for c in _CLUSTERS])[self.tag_cluster[main]]
        log_views = np.where(bot, rng.normal(2.5, 0.8, size=n), rng.normal(5.0 + shift, 1.5))
        views = np.where(published, np.rint(np.exp(log_views)).astype(np.int64), 0)
        views_missing = rng.random(n) < 0.05
        n_vocab, n_dt = len(self.vocab), len(_DIGEST_TITLES)
        title_i = np.where(
            bot,
            n_vocab * _TITLES_PER_TAG + main * n_dt + rng.integers(n_dt, size=n),
            main * _TITLES_PER_TAG + rng.integers(_TITLES_PER_TAG, size=n),
        )
        body_i = np.where(
            bot,
            n_vocab * _BODIES_PER_TAG + main * n_dt + rng.integers(n_dt, size=n),
            main * _BODIES_PER_TAG + rng.integers(_BODIES_PER_TAG, size=n),
        )
        empty = ~published & (rng.random(n) < 0.2)
        order = np.argsort(created, kind="stable")  # ids follow writing order
        self.author_id, self.created_us = author[order] + 1, created[order]
        self.is_digest, self.main_tag = bot[order], main[order]
        self.tags_per_post = self._k_pick[order]
        self.published, self.edited = published[order], edited[order]
        self.published_us = np.minimum(self.created_us + delay[order], self.now_us)
        since = self.now_us - self.created_us
        self.updated_us = self.created_us + (since * updated_at[order]).astype(np.int64)
        self.views, self.views_missing = views[order], views_missing[order]
        self.title_i, self.body_i, self.empty = title_i[order], body_i[order], empty[order]

    def _plan_links(self, rng: np.random.Generator) -> None:
        kmax = min(5, self.n_tags)
        n_reg = self.n_posts - self.n_digest
        k = np.concatenate([rng.choice(5, size=n_reg, p=_TAGS_PER_POST) + 1,
                            np.full(self.n_digest, 3)])  # fmt: skip
        # A tenth of the posts are drafts (the digest publishes everything), and a third of
        # the drafts are not tagged yet. Drawn here, as the number of links must be known first.
        bot = np.arange(self.n_posts) >= n_reg
        self._draft_pick = (rng.random(self.n_posts) < 0.1) & ~bot
        k[self._draft_pick & (rng.random(self.n_posts) < 1 / 3)] = 0
        self._k_pick = np.minimum(k, kmax)  # per post, in the order _plan_post_numbers draws
        self.tags_per_post = self._k_pick  # put in post order by _plan_post_numbers
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
            _Table("post_tags", ("post_id", "tag_id"), int(self._k_pick.sum()),
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

        A post's first tag is its main tag (the one its title and text are about); the others
        are drawn by popularity, strongly preferring the main tag's subject (the digest's are
        from any subject).
        """  # noqa: D205
        kmax = int(self.tags_per_post.max(initial=0))
        post_parts, tag_parts = [np.zeros(0, np.int64)], [np.zeros(0, np.int64)]
        if kmax == 0:  # no posts, or no tags
            return post_parts[0], tag_parts[0]
        step = max(1, 4_000_000 // self.n_tags)  # bounds the (posts x tags) matrix
        # Log-weights of every tag as a further tag of a post of each subject (one row per
        # cluster), and a last row for the digest: popularity alone.
        cluster = self.tag_cluster[: self.n_tags]
        subjects = np.arange(len(_CLUSTERS))[:, None]
        bonus = _SAME_SUBJECT * (cluster == subjects) + _SAME_AREA * (
            _AREA[cluster] == _AREA[subjects]
        )
        table = self.tag_logw[: self.n_tags] + np.vstack([bonus, np.zeros(self.n_tags)])
        row = np.where(self.is_digest, len(_CLUSTERS), self.tag_cluster[self.main_tag])
        for lo in range(0, self.n_posts, step):
            hi = min(lo + step, self.n_posts)
            # Gumbel top-k: distinct tags, weighted. Noise is drawn for every post, whatever
            # its count, so the stream never depends on the counts.
            noise = self.link_rng.gumbel(size=(hi - lo, self.n_tags))
            k = self.tags_per_post[lo:hi]
            chosen = np.full((hi - lo, kmax), np.iinfo(np.int64).max)
            chosen[:, 0] = self.main_tag[lo:hi] + 1  # the main tag, if any tag
            more = np.flatnonzero(k > 1)  # only these need a draw
            if more.size:
                keys = noise[more]
                keys += table[row[lo:hi][more]]
                keys[np.arange(more.size), self.main_tag[lo:hi][more]] = np.inf  # first
                top = np.argpartition(-keys, kmax - 1, axis=1)[:, :kmax]
                top = np.take_along_axis(
                    top, np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1), axis=1
                )
                chosen[more] = top + 1
            keep = np.arange(kmax) < k[:, None]
            chosen = np.sort(np.where(keep, chosen, np.iinfo(np.int64).max), axis=1)
            post_parts.append(
                np.broadcast_to(np.arange(lo + 1, hi + 1)[:, None], chosen.shape)[keep]
            )
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
            written by the non-reader users with a long-tailed (log-normal) spread.
        tags: number of tags: the first ``tags`` of the subject vocabulary, taken round-robin
            over its 14 subjects (beyond its 97 names, qualified ones such as
            ``python-tips``); each published post carries 1 to 5, some drafts none.
        random_seed: the random seed; the same arguments always give identical tables.
        now: the reference time; every timestamp lies within ~18 months before it.
        progress: show a progress bar when seeding takes more than a second: tqdm's notebook
            widget in Jupyter (ipywidgets, in the notebooks extra; without it no bar), a bar on a
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
