"""SQL time of each aggregation on 1M posts: EXPLAIN (ANALYZE) execution time and wall time.

For each of the nine aggregations of ``blogdata.aggregations``, over ``--rounds`` interleaved
rounds (the order of the aggregations rotates each round):

- ``exec ms``: ``Execution Time`` of ``EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON)`` on the
  statement its builder returns (``posts_per_author_query()`` ...), through
  ``blogdata.explain.explain``; ``plan ms`` is its ``Planning Time``;
- ``wall ms``: the public function (``await posts_per_author(conn)``) end to end: planning,
  execution, transfer and the DataFrame.

The target is <= 200 ms of SQL time (execution + planning, median). The node that limits an
aggregation is the plan node with the largest exclusive time in its median round.

With ``--baseline REF``, the same is measured, interleaved, for the aggregations as they were at
git revision ``REF`` (their statements captured from the old functions' ``load_frame`` calls),
on ``--baseline-database`` (a copy of the data at that revision's schema), and every answer is
first checked equal to the new one.

The database: ``blogdata_bench_1m`` (created by ``bench_loaders.py``'s ``ensure_database`` when
missing: ``seed(users=50_000, posts_per_user=20, seed=42)``), migrated to head first (the
content-length column rewrites the posts table once: ~30 s), or ``--database NAME``.

Usage: ``python benchmarks/bench_aggregation_sql.py [--rounds 7] [--baseline 44d3a67
--baseline-database blogdata_bench_1m_base]``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import time
import types
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pandas as pd
from _bench_db import DATABASE, ensure_database  # type: ignore[import-not-found]
from _report import load_average, machine, median, write_section  # type: ignore[import-not-found]
from sqlalchemy import NullPool, func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from blogdata import aggregations as agg
from blogdata.db import migrate
from blogdata.db.engine import create_engine, url_or_start_embedded
from blogdata.diagnostics import explain
from blogdata.models import User
from blogdata.seed import SEED_NOW

ROOT = Path(__file__).resolve().parents[1]
TARGET_MS = 200.0

#: Each aggregation: its keyword arguments (the ones the notebooks and bench_aggregations use).
CASES: dict[str, dict[str, Any]] = {
    "count_users": {},
    "users_by_role": {},
    "posts_per_author": {},
    "posts_per_tag": {},
    "top_tags": {"n": 10},
    "posts_per_month": {},
    "active_authors": {"days": 30, "now": SEED_NOW},
    "tag_cooccurrence": {},
    "author_activity": {},
}


class _Captured(Exception):  # noqa: N818 - a signal, never shown
    def __init__(self, stmt: Any) -> None:
        self.stmt = stmt


def _baseline_module(ref: str) -> types.ModuleType:
    """Import ``blogdata/aggregations.py`` as it was at git revision ``ref``."""
    source = subprocess.run(
        ["git", "show", f"{ref}:blogdata/aggregations.py"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    module = types.ModuleType("baseline_aggregations")
    module.__dict__["__name__"] = "baseline_aggregations"
    exec(compile(source, f"{ref}:blogdata/aggregations.py", "exec"), module.__dict__)  # noqa: S102
    return module


async def _statement(module: types.ModuleType, case: str, db: AsyncConnection) -> Any:
    """The statement ``module``'s aggregation runs: from its builder, or captured from a call."""
    builder = getattr(module, f"{case}_query", None)
    if builder is not None:
        return builder(**CASES[case])
    if case == "count_users":  # the old count_users ran exactly this with db.scalar
        return select(func.count()).select_from(User)

    async def capture(_db: Any, stmt: Any, **_kw: Any) -> pd.DataFrame:
        raise _Captured(stmt)

    real = module.__dict__["load_frame"]
    module.__dict__["load_frame"] = capture
    try:
        await getattr(module, case)(db, **CASES[case])
    except _Captured as captured:
        return captured.stmt
    finally:
        module.__dict__["load_frame"] = real
    raise SystemExit(f"{case}: no statement captured")


def _exclusive(node: dict[str, Any], processes: int = 1) -> list[tuple[float, str]]:
    """(exclusive ms, description) of every node of a plan tree, in wall-clock terms.

    Below a Gather, PostgreSQL sums a node's loops over its ``processes`` (workers and leader);
    dividing by them gives the time the node took while they ran side by side.
    """
    children = node.get("Plans", [])
    inner_processes = (
        node.get("Workers Launched", 0) + 1 if "Workers Launched" in node else processes
    )

    def spent(n: dict[str, Any], over: int) -> float:
        return float(n["Actual Total Time"]) * float(n.get("Actual Loops", 1)) / over

    own = spent(node, processes) - sum(spent(c, inner_processes) for c in children)
    name = node["Node Type"]
    if "Index Name" in node:
        name += f" using {node['Index Name']}"
    elif "Relation Name" in node:
        name += f" on {node['Relation Name']}"
    rows = node["Actual Rows"] * node.get("Actual Loops", 1)
    out = [(max(own, 0.0), f"{name} ({rows:,.0f} rows)")]
    for child in children:
        out += _exclusive(child, inner_processes)
    return out


Sample = dict[str, Any]


async def _measure(
    db: AsyncConnection, stmt: Any, fn: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]
) -> Sample:
    plan = await explain(db, stmt, analyze=True)
    start = time.perf_counter()
    await fn(db, **kwargs)
    wall = (time.perf_counter() - start) * 1000
    await db.rollback()
    heaviest = max(_exclusive(plan["Plan"]))
    return {
        "exec": plan["Execution Time"],
        "plan": plan["Planning Time"],
        "wall": wall,
        "node": f"{heaviest[1]}: {heaviest[0]:.0f} ms",
    }


def _same(a: Any, b: Any) -> bool:
    if not isinstance(a, pd.DataFrame):
        return bool(a == b)
    try:
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    except AssertionError:
        return False
    return True


async def _migrated(name: str) -> None:
    url = url_or_start_embedded().set(database=name)
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            # One migrator at a time (bench_loaders uses the same lock to create the database).
            await conn.execute(text("SELECT pg_advisory_lock(hashtext('blogdata_bench_1m'))"))
            try:
                await migrate.upgrade(url)
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext('blogdata_bench_1m'))"))
            await conn.commit()
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM ANALYZE posts"))
    finally:
        await engine.dispose()


async def bench(
    database: str, rounds: int, baseline: types.ModuleType | None, baseline_db: str | None
) -> dict[str, dict[str, list[Sample]]]:
    sides = {"after": (agg, database)}
    if baseline is not None and baseline_db is not None:
        sides["before"] = (baseline, baseline_db)
    engines = {
        side: create_engine(url_or_start_embedded().set(database=name), poolclass=NullPool)
        for side, (_, name) in sides.items()
    }
    samples: dict[str, dict[str, list[Sample]]] = {c: {s: [] for s in sides} for c in CASES}
    try:
        conns = {side: await engines[side].connect() for side in sides}
        stmts = {
            side: {c: await _statement(m, c, conns[side]) for c in CASES}
            for side, (m, _) in sides.items()
        }
        for case in CASES:  # the same answers first (and a warm cache)
            answers = {
                side: await getattr(m, case)(conns[side], **CASES[case])
                for side, (m, _) in sides.items()
            }
            if "before" in answers and not _same(answers["after"], answers["before"]):
                raise SystemExit(f"{case}: the new answer differs from the baseline's")
            for conn in conns.values():
                await conn.rollback()
        names = list(CASES)
        for r in range(rounds):
            for case in names[r % len(names) :] + names[: r % len(names)]:
                order = list(sides) if r % 2 == 0 else list(reversed(sides))
                for side in order:
                    fn = getattr(sides[side][0], case)
                    sample = await _measure(conns[side], stmts[side][case], fn, CASES[case])
                    samples[case][side].append(sample)
            print(f"round {r + 1} done", flush=True)
        for conn in conns.values():
            await conn.close()
    finally:
        for engine in engines.values():
            await engine.dispose()
    return samples


def _median_sample(runs: list[Sample]) -> Sample:
    ordered = sorted(runs, key=lambda s: s["exec"] + s["plan"])
    return ordered[len(ordered) // 2]


def _report(samples: dict[str, dict[str, list[Sample]]], **info: Any) -> str:
    before = "before" in next(iter(samples.values()))
    lines = [
        f"Measured {machine()}; server: {url_or_start_embedded().host or 'embedded'}, database "
        f"`{info['database']}` ({info['posts']:,} posts) at migration head"
        + (
            f"; before: the aggregations of `{info['ref']}` on `{info['baseline_db']}` (the same "
            "data at that revision's schema), interleaved with after in every round"
            if before
            else ""
        )
        + f". Load average at start {info['load']}, at end {info['load_end']} (2 cores shared "
        "with other work: absolute times vary with it).",
        "",
        f"{info['rounds']} interleaved rounds, medians. exec/plan = EXPLAIN (ANALYZE, BUFFERS) "
        "Execution/Planning Time of the builder's statement; wall = the public function end to "
        "end (statement, transfer, DataFrame). Target: exec + plan <= 200 ms.",
        "",
    ]
    if before:
        lines += [
            "| aggregation | before exec ms | before wall ms | after exec ms | after plan ms "
            "| after wall ms | target | heaviest plan node (after, median round) |",
            "|---|---:|---:|---:|---:|---:|---|---|",
        ]
    else:
        lines += [
            "| aggregation | exec ms | plan ms | wall ms | target | heaviest plan node |",
            "|---|---:|---:|---:|---|---|",
        ]
    for case, sides in samples.items():
        after = sides["after"]
        sql = median([s["exec"] + s["plan"] for s in after])
        verdict = "met" if sql <= TARGET_MS else "**missed**"
        cells = [f"`{case}`"]
        if before:
            cells += [
                f"{median([s['exec'] for s in sides['before']]):.0f}",
                f"{median([s['wall'] for s in sides['before']]):.0f}",
            ]
        cells += [
            f"{median([s['exec'] for s in after]):.0f}",
            f"{median([s['plan'] for s in after]):.1f}",
            f"{median([s['wall'] for s in after]):.0f}",
            verdict,
            _median_sample(after)["node"],
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


async def _posts(database: str) -> int:
    engine = create_engine(url_or_start_embedded().set(database=database), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return int(await conn.scalar(text("SELECT count(*) FROM posts")) or 0)
    finally:
        await engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--database", default=DATABASE)
    parser.add_argument("--baseline", help="git revision whose aggregations to compare against")
    parser.add_argument("--baseline-database", help="the same data at that revision's schema")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch RESULTS.md")
    args = parser.parse_args()
    if bool(args.baseline) != bool(args.baseline_database):
        parser.error("--baseline and --baseline-database go together")
    if args.database == DATABASE:
        asyncio.run(ensure_database())
    asyncio.run(_migrated(args.database))
    posts = asyncio.run(_posts(args.database))
    load = load_average()
    baseline = _baseline_module(args.baseline) if args.baseline else None
    samples = asyncio.run(bench(args.database, args.rounds, baseline, args.baseline_database))
    body = _report(
        samples,
        database=args.database,
        posts=posts,
        load=load,
        load_end=load_average(),
        rounds=args.rounds,
        ref=args.baseline,
        baseline_db=args.baseline_database,
    )
    print(body)
    if not args.no_write:
        write_section(
            "aggregation_sql",
            "## Aggregations: SQL time on 1M posts (`bench_aggregation_sql.py`)\n\n" + body,
        )


if __name__ == "__main__":
    main()
