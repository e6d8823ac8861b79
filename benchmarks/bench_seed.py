"""Seeding 1M posts with ``blogdata.seed`` against raw asyncpg COPY of the very same rows.

Three variants, each run in its own child process (so peak RSS is its own), interleaved over
``--rounds`` rounds (default 5) on the database ``blogdata_bench`` of the configured server
(``BLOGDATA_DATABASE_URL``, else the embedded one), emptied with ``reset`` before each run:

- ``seed``: ``seed(engine, users=50_000, posts_per_user=20, seed=42)``: generation included,
  rows generated chunk by chunk while COPY streams, foreign keys and indexes rebuilt at the end.
- ``copy_rebuild``: the floor: the same rows, generated *before* the clock starts and held in
  memory, copied with ``copy_records_to_table`` with the same foreign-key/index rebuild.
- ``copy_plain``: the same prepared rows copied into the fully indexed, constrained tables (what
  a hand-written COPY loader does).

Usage: ``python benchmarks/bench_seed.py [--rounds 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _bench_db import bench_url  # type: ignore[import-not-found]
from _report import interleaved, load_average, machine, median, peak_rss_mb, write_section  # type: ignore[import-not-found]
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL

from blogdata.db import migrate
from blogdata.db.engine import create_engine, url_or_start_embedded
from blogdata.seed import SEED_NOW, _Blog, _drop_checks, reset, seed

DATABASE = "blogdata_bench"
USERS, POSTS_PER_USER, TAGS, SEED = 50_000, 20.0, 40, 42
VARIANTS = ["seed", "copy_rebuild", "copy_plain"]
HERE = Path(__file__).resolve()


def _url() -> URL:
    return bench_url(DATABASE)


async def prepare() -> None:
    """Create ``blogdata_bench`` if missing and migrate it."""
    admin = create_engine(url_or_start_embedded(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
            )
            if not exists:
                await conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    finally:
        await admin.dispose()
    await migrate.upgrade(_url())


async def _child(variant: str) -> dict[str, Any]:
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        await reset(engine)
        async with engine.connect() as conn:  # start from a clean, vacuumed state
            await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(text("VACUUM"))
        rows: list[tuple[str, tuple[str, ...], list[tuple[Any, ...]]]] = []
        if variant != "seed":
            blog = _Blog(USERS, POSTS_PER_USER, TAGS, SEED, SEED_NOW)
            rows = [(t.name, t.columns, [r for c in t.chunks for r in c]) for t in blog.tables()]
        start = time.perf_counter()
        if variant == "seed":
            summary = await seed(
                engine, users=USERS, posts_per_user=POSTS_PER_USER, tags=TAGS, random_seed=SEED
            )
            posts = summary.posts
        else:
            async with engine.begin() as conn:
                driver = (await conn.get_raw_connection()).driver_connection
                rebuild = await _drop_checks(driver) if variant == "copy_rebuild" else []
                for name, columns, records in rows:
                    await driver.copy_records_to_table(name, records=records, columns=columns)
                for statement in rebuild:
                    await driver.execute(statement)
                for name, _, records in rows[:4]:
                    await conn.execute(
                        text("SELECT setval(pg_get_serial_sequence(:t, 'id'), :v, false)"),
                        {"t": name, "v": len(records) + 1},
                    )
            posts = len(rows[3][2])
        seconds = time.perf_counter() - start
    finally:
        await engine.dispose()
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "posts": posts}


def _measure(variant: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(HERE), "--child", variant],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _report(samples: dict[str, list[dict[str, Any]]], rounds: int, load: str) -> str:
    floor = samples["copy_rebuild"]
    lines = [
        f"Measured {machine()}; server: {_url().host or 'embedded'} (database `{DATABASE}`); "
        f"load average at start {load}. The server shares the machine's 2 cores; paired "
        "ratios (same round) are the comparable numbers.",
        "",
        f"1,000,000 posts (50,000 users and accounts, 40 tags, ~1.79M post_tags); "
        f"{rounds} interleaved rounds, each run in a fresh child process; ratios paired per round.",
        "",
        "| variant | median s | min | max | peak RSS MB | vs copy_rebuild (paired median) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant in VARIANTS:
        runs = samples[variant]
        secs = [r["seconds"] for r in runs]
        ratio = median([r["seconds"] / f["seconds"] for r, f in zip(runs, floor, strict=True)])
        lines.append(
            f"| `{variant}` | {median(secs):.2f} | {min(secs):.2f} | {max(secs):.2f} | "
            f"{max(r['peak_mb'] for r in runs):.0f} | {ratio:.2f}x |"
        )
    seed_ratio = median(
        [s["seconds"] / f["seconds"] for s, f in zip(samples["seed"], floor, strict=True)]
    )
    plain_ratio = median(
        [
            s["seconds"] / p["seconds"]
            for s, p in zip(samples["seed"], samples["copy_plain"], strict=True)
        ]
    )
    per_round = sorted(
        s["seconds"] / f["seconds"] for s, f in zip(samples["seed"], floor, strict=True)
    )
    verdict = "met" if seed_ratio <= 1.3 else "MISSED"
    lines += [
        "",
        f"- Target (seed within 1.3x of raw COPY of the same rows, same load strategy): "
        f"**{verdict}**, {seed_ratio:.2f}x (per round: "
        f"{', '.join(f'{r:.2f}x' for r in per_round)}). Against a plain COPY into the indexed "
        f"tables (`copy_plain`) seeding takes {plain_ratio:.2f}x the time.",
        "- The floor's rows are generated before its clock starts and held in memory (see its "
        "peak RSS); `seed` generates them while COPY streams, in 50k-row chunks.",
        "- What limits `seed`: generating rows in Python (Faker pools, numpy draws, building "
        "tuples and datetimes: ~6 s of CPU for 1M posts) shares the 2 cores with the server's "
        "COPY and index builds; the foreign-key and index rebuild at the end is server time both "
        "variants pay.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(asyncio.run(_child(args.child))))
        return
    asyncio.run(prepare())
    load = load_average()
    samples = interleaved(VARIANTS, args.rounds, _measure)
    body = _report(samples, args.rounds, load)
    print(body)
    write_section("seed", "## Seeding 1M posts (`bench_seed.py`)\n\n" + body)


if __name__ == "__main__":
    main()
