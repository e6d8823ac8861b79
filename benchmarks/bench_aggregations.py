"""Each aggregation pushed down to SQL against loading the raw tables and grouping in pandas.

On the shared 1M-post database ``blogdata_bench_1m`` (created by ``bench_loaders.py``'s
``ensure_database`` when missing: ``seed(users=50_000, posts_per_user=20, seed=42)``), for
every function of ``blogdata.aggregations``, four ways, interleaved over ``--rounds`` rounds:

- ``sql``: the blogdata function (one statement; only the result travels);
- ``tables``: load the whole tables it needs with blogdata's loader as an analyst calls it
  (``load_frame`` with its defaults, ``route="auto"``; the routes it took are reported) and
  compute the same frame in pandas (the target's "load-then-groupby");
- ``columns``: the same loader, loading only the columns it needs (a careful analyst).

Every load reads on the session's own connection (blogdata has no second-connection route).

Before timing, each pandas answer is checked equal to the SQL one. Peak RSS (VmHWM) is
measured first, in one child process per way running all nine aggregations.

Usage: ``python benchmarks/bench_aggregations.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd
from _bench_db import DATABASE, ensure_database  # type: ignore[import-not-found]
from _report import load_average, machine, median, peak_rss_mb, write_section  # type: ignore[import-not-found]
from sqlalchemy import NullPool, select
from sqlalchemy.ext.asyncio import AsyncConnection

from blogdata import aggregations as agg
from blogdata.db.engine import create_engine, url_or_start_embedded
from blogdata.loaders import ROUTE_ATTR, load_frame
from blogdata.models import ROLES, Post, Tag, User, post_tags
from blogdata.seed import SEED_NOW

HERE = Path(__file__).resolve()
WAYS = ["sql", "tables", "columns"]
ROUTES: dict[str, set[str]] = {}  # way -> the routes load_frame reported taking
TABLES: dict[str, Any] = {"users": User, "posts": Post, "tags": Tag, "links": post_tags}
COLUMNS: dict[str, Any] = {
    "users": [User.id, User.username, User.role, User.is_active],
    "posts": [Post.id, Post.author_id, Post.created_at, Post.content],
    "tags": [Tag.id, Tag.name],
    "links": [post_tags.c.post_id, post_tags.c.tag_id],
}


async def _load(db: AsyncConnection, names: list[str], way: str) -> dict[str, pd.DataFrame]:
    frames = {}
    for name in names:
        stmt = select(*COLUMNS[name]) if way == "columns" else select(TABLES[name])
        frame = await load_frame(db, stmt)
        ROUTES.setdefault(way, set()).add(str(frame.attrs.get(ROUTE_ATTR)))
        frames[name] = frame
    return frames


def _by_count(frame: pd.DataFrame, count: str, tiebreak: list[str]) -> pd.DataFrame:
    ordered = frame.sort_values([count, *tiebreak], ascending=[False] + [True] * len(tiebreak))
    return ordered.reset_index(drop=True)


def _names(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return t["users"][["id", "username"]].rename(columns={"id": "author_id"})


def p_count_users(t: dict[str, pd.DataFrame]) -> int:
    return len(t["users"])


def p_users_by_role(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    counts = t["users"]["role"].value_counts().reindex(list(ROLES), fill_value=0)
    return pd.DataFrame({"role": list(ROLES), "users": counts.to_numpy()})


def p_posts_per_author(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    counts = t["posts"].groupby("author_id").size().rename("posts").reset_index()
    frame = counts.merge(_names(t), on="author_id")[["author_id", "username", "posts"]]
    return _by_count(frame, "posts", ["author_id"])


def p_posts_per_tag(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    used = t["links"].groupby("tag_id").size()
    tags = t["tags"].assign(posts=t["tags"]["id"].map(used).fillna(0).astype("int64"))
    return _by_count(tags.rename(columns={"name": "tag"})[["tag", "posts"]], "posts", ["tag"])


def p_top_tags(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return p_posts_per_tag(t).head(10)


def p_posts_per_month(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    months = t["posts"]["created_at"].dt.tz_localize(None).dt.to_period("M").dt.start_time
    counts = months.value_counts()
    every = pd.date_range(counts.index.min(), counts.index.max(), freq="MS")
    return pd.DataFrame(
        {"month": every.tz_localize("UTC"), "posts": counts.reindex(every, fill_value=0).to_numpy()}
    )


def p_active_authors(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    posts, now = t["posts"], pd.Timestamp(SEED_NOW)
    recent = posts[(posts["created_at"] > now - pd.Timedelta(days=30))]
    recent = recent[recent["created_at"] <= now]
    grouped = recent.groupby("author_id")["created_at"].agg(["size", "max"]).reset_index()
    grouped.columns = ["author_id", "posts", "last_post"]
    frame = grouped.merge(_names(t), on="author_id")
    return _by_count(frame[["author_id", "username", "posts", "last_post"]], "posts", ["author_id"])


def p_tag_cooccurrence(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    links = t["links"].merge(t["tags"], left_on="tag_id", right_on="id")[["post_id", "name"]]
    pairs = links.merge(links, on="post_id", suffixes=("_a", "_b"))
    pairs = pairs[pairs["name_a"] < pairs["name_b"]]
    counts = pairs.groupby(["name_a", "name_b"]).size().rename("posts").reset_index()
    counts.columns = ["tag_a", "tag_b", "posts"]
    return _by_count(counts, "posts", ["tag_a", "tag_b"])


def p_author_activity(t: dict[str, pd.DataFrame]) -> pd.DataFrame:
    posts = t["posts"].assign(length=t["posts"]["content"].str.len())
    grouped = posts.groupby("author_id").agg(
        posts=("id", "size"),
        first_post=("created_at", "min"),
        last_post=("created_at", "max"),
        mean_length=("length", "mean"),
    )
    users = t["users"][["id", "username", "role"]].rename(columns={"id": "author_id"})
    frame = grouped.reset_index().merge(users, on="author_id")
    columns = ["author_id", "username", "role", "posts", "first_post", "last_post", "mean_length"]
    return _by_count(frame[columns], "posts", ["author_id"])


Sql = Callable[[AsyncConnection], Awaitable[Any]]
CASES: dict[str, tuple[Sql, list[str], Callable[[dict[str, pd.DataFrame]], Any]]] = {
    "count_users": (agg.count_users, ["users"], p_count_users),
    "users_by_role": (agg.users_by_role, ["users"], p_users_by_role),
    "posts_per_author": (agg.posts_per_author, ["posts", "users"], p_posts_per_author),
    "posts_per_tag": (agg.posts_per_tag, ["links", "tags"], p_posts_per_tag),
    "top_tags": (lambda db: agg.top_tags(db, n=10), ["links", "tags"], p_top_tags),
    "posts_per_month": (agg.posts_per_month, ["posts"], p_posts_per_month),
    "active_authors": (
        lambda db: agg.active_authors(db, days=30, now=SEED_NOW),
        ["posts", "users"],
        p_active_authors,
    ),
    "tag_cooccurrence": (agg.tag_cooccurrence, ["links", "tags"], p_tag_cooccurrence),
    "author_activity": (agg.author_activity, ["posts", "users"], p_author_activity),
}


async def _run(db: AsyncConnection, case: str, way: str) -> Any:
    sql, tables, pandas_way = CASES[case]
    if way == "sql":
        return await sql(db)
    return pandas_way(await _load(db, tables, way))


def _same(a: Any, b: Any) -> bool:
    if not isinstance(a, pd.DataFrame):
        return bool(a == b)
    b = b.reset_index(drop=True).astype(a.dtypes.to_dict())
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


async def bench(rounds: int) -> dict[str, dict[str, list[float]]]:
    engine = create_engine(url_or_start_embedded().set(database=DATABASE), poolclass=NullPool)
    samples: dict[str, dict[str, list[float]]] = {c: {w: [] for w in WAYS} for c in CASES}
    try:
        async with engine.connect() as db:
            for case in CASES:  # correctness first (and a warm cache)
                answer = await _run(db, case, "sql")
                for way in WAYS[1:]:
                    if not _same(answer, await _run(db, case, way)):
                        raise SystemExit(f"{case}: the {way} answer differs from SQL's")
                await db.rollback()
            for r in range(rounds):
                for case in CASES:
                    order = WAYS[r % len(WAYS) :] + WAYS[: r % len(WAYS)]
                    for way in order:
                        start = time.perf_counter()
                        await _run(db, case, way)
                        samples[case][way].append(time.perf_counter() - start)
                        await db.rollback()
                print(f"round {r + 1} done", flush=True)
    finally:
        await engine.dispose()
    return samples


def _hwm_mb() -> float:
    """Peak RSS of this process (VmHWM: unlike ru_maxrss, not inherited across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return peak_rss_mb()  # type: ignore[no-any-return]


async def _child(way: str) -> dict[str, float]:
    engine = create_engine(url_or_start_embedded().set(database=DATABASE), poolclass=NullPool)
    try:
        async with engine.connect() as db:
            before = _hwm_mb()
            for case in CASES:
                await _run(db, case, way)
                await db.rollback()
    finally:
        await engine.dispose()
    return {"before_mb": before, "peak_mb": _hwm_mb()}


def _memory(way: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", way], check=True, capture_output=True, text=True
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _report(samples: dict[str, dict[str, list[float]]], memory: dict[str, Any], **info: Any) -> str:
    lines = [
        f"Measured {machine()}; server: {url_or_start_embedded().host or 'embedded'} (database "
        f"`{DATABASE}`: {info['posts']:,} posts); load average at start {info['load']}. "
        "The server shares the machine's 2 cores; paired ratios (same round) are the comparable "
        "numbers.",
        "",
        f"{info['rounds']} interleaved rounds; median seconds; ratios = pandas way / SQL, paired "
        "per round, median. Every pandas answer was first checked equal to the SQL one. "
        '`load_frame` is blogdata\'s loader with its defaults (`route="auto"`; routes it '
        f"took: {', '.join(sorted(ROUTES.get('tables', set()))) or '?'}), on the session's own "
        "connection.",
        "",
        "| aggregation | SQL s | load_frame tables + pandas s | ratio "
        "| load_frame columns + pandas s | ratio |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    worst: dict[str, float] = {w: float("inf") for w in WAYS[1:]}
    for case, ways in samples.items():
        sql = ways["sql"]
        cells = [f"`{case}`", f"{median(sql):.3f}"]
        for w in WAYS[1:]:
            ratio = median([p / s for p, s in zip(ways[w], sql, strict=True)])
            worst[w] = min(worst[w], ratio)
            cells += [f"{median(ways[w]):.2f}", f"{ratio:.1f}x"]
        lines.append("| " + " | ".join(cells) + " |")
    met = [case for case, ways in samples.items() if _ratio(ways, "tables") >= 10]
    lines += [
        "",
        "Peak RSS (VmHWM) of a process running all nine: "
        + ", ".join(f"{w} {memory[w]['peak_mb']:.0f} MB" for w in WAYS)
        + f" (after imports, before any query: {memory['sql']['before_mb']:.0f} MB).",
        "",
        f"- Target (each aggregation >= 10x faster than load-then-groupby with the default "
        f"loader): met for {len(met)} of {len(samples)} "
        f"({', '.join(f'`{c}`' for c in met) or 'none'}); smallest ratio "
        f"{worst['tables']:.1f}x; against loading only the needed columns "
        f"{worst['columns']:.1f}x.",
        "- What limits it: where the raw data is small (users, the two-integer post_tags) "
        "loading it is cheap and little can be saved; where the query must read every post "
        "(`author_activity` computes `length(content)` over ~430 MB of text, "
        "`tag_cooccurrence` groups 1.8M links by post) the database's own scan dominates. The "
        "server's 128 MB shared_buffers cannot hold the 517 MB posts table, so every scan "
        "reads from the OS cache. Each aggregation groups in a subquery before joining names "
        "so PostgreSQL can use index-only and parallel scans.",
    ]
    return "\n".join(lines)


def _ratio(ways: dict[str, list[float]], way: str) -> float:
    return median([p / s for p, s in zip(ways[way], ways["sql"], strict=True)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child))))
        return
    posts = asyncio.run(ensure_database())
    print(f"{posts:,} posts in {DATABASE}", flush=True)
    load = load_average()
    memory = {way: _memory(way) for way in WAYS}  # first: children inherit nothing heavy
    samples = asyncio.run(bench(args.rounds))
    body = _report(samples, memory, posts=posts, load=load, rounds=args.rounds)
    print(body)
    write_section(
        "aggregations", "## Aggregations on 1M posts (`bench_aggregations.py`)\n\n" + body
    )


if __name__ == "__main__":
    main()
