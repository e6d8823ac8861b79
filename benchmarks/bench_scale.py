"""Scaling out: ``load_frame`` of every post from the standby vs from the primary, and the
aggregations through PgBouncer (transaction mode, pool of 5) vs direct.

Starts its own topology in a temporary folder (an embedded primary seeded with
``seed(users=USERS, posts_per_user=20, seed=42)``, a streaming standby made by
``pg_basebackup -R``, a PgBouncer in front of the primary), measures paired rounds (every
variant once per round, order rotated), writes the ``scale`` section of RESULTS.md, and stops
and deletes everything. ``--users 50000`` (the default) gives 1M posts.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import NullPool, func, select, text
from sqlalchemy.engine import URL

sys.path.insert(0, str(Path(__file__).parent))
from _report import load_average, machine, median, write_section  # type: ignore[import-not-found]  # noqa: E402

from blogdata import aggregations  # noqa: E402
from blogdata.db import migrate  # noqa: E402
from blogdata.db.engine import create_engine  # noqa: E402
from blogdata.db.routing import create_read_engine, read_session, wait_for_replica  # noqa: E402
from blogdata.db.sessions import session_scope  # noqa: E402
from blogdata.loaders import load_frame  # noqa: E402
from blogdata.models import Post  # noqa: E402
from blogdata.seed import seed  # noqa: E402
from blogdata.servers import embedded, replica  # noqa: E402
from blogdata.servers.pooler import start_pgbouncer  # noqa: E402

DATABASE = "blogdata_bench_scale"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _aggregations() -> dict[str, Any]:
    return {
        "count_users": lambda db: aggregations.count_users(db),
        "users_by_role": lambda db: aggregations.users_by_role(db),
        "posts_per_author": lambda db: aggregations.posts_per_author(db),
        "posts_per_tag": lambda db: aggregations.posts_per_tag(db),
        "top_tags": lambda db: aggregations.top_tags(db, n=10),
        "posts_per_month": lambda db: aggregations.posts_per_month(db),
        "active_authors": lambda db: aggregations.active_authors(db, days=90, now=NOW),
        "tag_cooccurrence": lambda db: aggregations.tag_cooccurrence(db, min_posts=2),
        "author_activity": lambda db: aggregations.author_activity(db),
    }


async def _setup(home: Path, users: int) -> tuple[URL, URL, int]:
    admin_url = embedded.start(home).url("postgres")
    admin = create_engine(admin_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    async with admin.connect() as conn:
        await conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    await admin.dispose()
    url = admin_url.set(database=DATABASE)
    await migrate.upgrade(url)
    seeder = create_engine(url, poolclass=NullPool)
    try:
        summary = await seed(seeder, users=users, posts_per_user=20, random_seed=42, progress=False)
    finally:
        await seeder.dispose()
    standby = replica.start(home)
    return url, standby.url(DATABASE), summary.posts


async def _run(home: Path, users: int, rounds: int) -> str:
    url, standby_url, posts = await _setup(home, users)
    primary = create_engine(url)
    reader = create_read_engine(standby_url)
    bouncer = start_pgbouncer(url, pool_size=5)
    pooled = create_engine(bouncer.url(DATABASE), pgbouncer=True)
    stmt = select(Post)
    try:
        await wait_for_replica(primary=primary, replica=reader, timeout=600)
        async with read_session(reader) as db:
            assert (await db.execute(text("SELECT pg_is_in_recovery()"))).scalar_one()
            assert (await db.execute(select(func.count()).select_from(Post))).scalar_one() == posts

        async def load(where: str) -> float:
            started = time.perf_counter()
            if where == "standby":
                async with read_session(reader) as db:
                    frame = await load_frame(db, stmt)
            else:
                async with session_scope(primary) as db:
                    frame = await load_frame(db, stmt)
            seconds = time.perf_counter() - started
            assert len(frame) == posts
            return seconds

        loads: dict[str, list[float]] = {"primary": [], "standby": []}
        await load("primary")  # warm-up: caches on both servers
        await load("standby")
        for r in range(rounds):
            order = ["primary", "standby"] if r % 2 == 0 else ["standby", "primary"]
            for where in order:
                loads[where].append(await load(where))
                print(f"round {r + 1} load {where}: {loads[where][-1]:.2f}s", flush=True)

        aggs = _aggregations()
        times: dict[str, dict[str, list[float]]] = {
            n: {"direct": [], "pgbouncer": []} for n in aggs
        }
        for r in range(rounds):
            for name, run in aggs.items():
                order = ["direct", "pgbouncer"] if r % 2 == 0 else ["pgbouncer", "direct"]
                for how in order:
                    engine = primary if how == "direct" else pooled
                    started = time.perf_counter()
                    async with session_scope(engine) as db:
                        await run(db)
                    times[name][how].append(time.perf_counter() - started)
            print(f"round {r + 1} aggregations done", flush=True)
    finally:
        await pooled.dispose()
        bouncer.stop()
        await reader.dispose()
        await primary.dispose()

    ratio = median([s / p for s, p in zip(loads["standby"], loads["primary"], strict=True)])
    lines = [
        "## Scaling out: standby vs primary, PgBouncer vs direct (`bench_scale.py`)",
        "",
        f"Measured {machine()}; load average at start {START_LOAD}. Both servers are embedded "
        f"PostgreSQL 18 on this machine (Unix sockets), {posts:,} posts; PgBouncer 1.18 in "
        "transaction mode with a pool of 5 server connections, on loopback, in front of the "
        f"primary. {rounds} paired rounds (order alternated), after a warm-up; median seconds; "
        "ratios paired per round, median.",
        "",
        "| `load_frame(select(Post))` | seconds |",
        "|---|---:|",
        f"| from the primary | {median(loads['primary']):.2f} |",
        f"| from the standby (read session) | {median(loads['standby']):.2f} |",
        f"| standby / primary | {ratio:.2f}x |",
        "",
        "| aggregation | direct s | through PgBouncer s | PgBouncer / direct |",
        "|---|---:|---:|---:|",
    ]
    for name, t in times.items():
        r_ = median([b / d for b, d in zip(t["pgbouncer"], t["direct"], strict=True)])
        lines.append(
            f"| `{name}` | {median(t['direct']):.3f} | {median(t['pgbouncer']):.3f} | {r_:.2f}x |"
        )
    lines += [
        "",
        "- Both servers share the same 2 cores and disk (and, here, a machine busy with other "
        "work: see the load average), so the standby cannot be faster by design: the point of a "
        "standby is that this work leaves the primary's CPU and I/O free, which one machine "
        "cannot show. What the ratio shows is that a read session on the standby costs no more "
        "than one on the primary; a gap of 10-20 % either way is within this machine's noise.",
        "- Through PgBouncer every session opens a new client connection (`NullPool`, as "
        "SQLAlchemy advises) and every statement is prepared afresh (no statement cache); that "
        "fixed cost per call matters for the millisecond aggregations and vanishes in the long "
        "ones.",
    ]
    return "\n".join(lines)


START_LOAD = load_average()


def main() -> None:
    """Run the benchmark and write its RESULTS.md section."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--users", type=int, default=50_000, help="20 posts each")
    args = parser.parse_args()
    home = Path(tempfile.mkdtemp(prefix="blogdata-bench-scale-"))
    home.chmod(0o755)
    try:
        body = asyncio.run(_run(home, args.users, args.rounds))
    finally:
        replica.stop(home)
        embedded.stop(home)
        shutil.rmtree(home, ignore_errors=True)
    write_section("scale", body)
    print(body)


if __name__ == "__main__":
    main()
