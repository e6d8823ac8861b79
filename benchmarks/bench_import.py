"""A light start (issue 19, item 5): ``import blogdata`` and a first load, each in a fresh process.

Cases, interleaved (order rotated each round), every one a new interpreter timed from outside
(``subprocess.run`` wall time: interpreter start, imports, work, exit), medians over rounds:

* ``python -c pass``: the interpreter alone;
* ``import pandas, sqlalchemy``: the baseline an analyst pays anyway (target: ``import
  blogdata`` within 0.3 s of it);
* ``import blogdata``;
* ``first cell``: ``from blogdata import Post, create_engine, describe, load_frame,
  session_scope``;
* ``first load_frame``: that cell plus ``create_engine(url)``, a session and one
  ``load_frame`` of ``SELECT <8 columns> FROM posts WHERE id <= 100`` on the
  ``BLOGDATA_DATABASE_URL`` server's ``blogdata_bench_1m`` database (``bench_loaders.py
  --prepare`` makes it); the child also reports the load's own time (connect + load).

Bytecode is written and reused (``PYTHONDONTWRITEBYTECODE`` is removed from the children's
environment, one untimed run per case first), as in an installed package: without it every
process compiles blogdata's sources again (about 0.2 s here). Each child also lists which of
the heavy libraries it loaded.

Usage: ``python benchmarks/bench_import.py [--rounds 10] [--no-write]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _bench_db import DATABASE  # noqa: E402
from _report import load_average, machine, median, write_section  # noqa: E402

HEAVY = (
    "alembic",
    "email_validator",
    "pwdlib",
    "argon2",
    "pydantic_settings",
    "faker",
    "matplotlib",
    "IPython",
    "numba",
    "fastapi",
    "typer",
)
REPORT = f"import json, sys; print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
FIRST_CELL = "from blogdata import Post, create_engine, describe, load_frame, session_scope"
FIRST_LOAD = f"""
import asyncio, os, time
{FIRST_CELL}
from sqlalchemy import text
from blogdata.db.engine import url_or_start_embedded

async def main():
    start = time.perf_counter()
    engine = create_engine(url_or_start_embedded().set(database={DATABASE!r}))
    async with session_scope(engine) as db:
        frame = await load_frame(db, text(
            "SELECT id, title, content, author_id, created_at, updated_at, published_at, views "
            "FROM posts WHERE id <= 100"))
    await engine.dispose()
    assert len(frame) == 100, len(frame)
    print("LOAD", time.perf_counter() - start)

asyncio.run(main())
"""
CASES = {
    "python -c pass": "pass",
    "import pandas, sqlalchemy": "import pandas, sqlalchemy",
    "import blogdata": "import blogdata",
    "first cell": FIRST_CELL,
    "first load_frame": FIRST_LOAD,
}


def _child(code: str, env: dict[str, str]) -> tuple[float, list[str], float | None]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code + "\n" + REPORT],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    seconds = time.perf_counter() - start
    lines = out.stdout.strip().splitlines()
    load = next((float(x.split()[1]) for x in lines if x.startswith("LOAD ")), None)
    return seconds, json.loads(lines[-1]), load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start_load, measured = load_average(), machine()
    heavy: dict[str, list[str]] = {}
    for name, code in CASES.items():  # untimed: writes __pycache__, warms the OS cache
        heavy[name] = _child(code, env)[1]
    times: dict[str, list[float]] = {n: [] for n in CASES}
    loads: list[float] = []
    names = list(CASES)
    for r in range(args.rounds):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            seconds, _, load = _child(CASES[name], env)
            times[name].append(seconds)
            if load is not None:
                loads.append(load)
    base = times["import pandas, sqlalchemy"]
    lines = [
        f"Measured {measured}; {args.rounds} interleaved rounds, each a fresh interpreter timed "
        f"from outside; load average at the start {start_load}, at the end {load_average()}.",
        "",
        "| case | median | min | max | minus `import pandas, sqlalchemy` (paired) | heavy "
        "libraries loaded |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for name in CASES:
        t = times[name]
        extra = median([a - b for a, b in zip(t, base, strict=True)])
        lines.append(
            f"| {name} | {median(t):.3f} s | {min(t):.3f} s | {max(t):.3f} s | "
            f"{extra:+.3f} s | {', '.join(heavy[name]) or 'none'} |"
        )
    extra = median([a - b for a, b in zip(times["import blogdata"], base, strict=True)])
    lines += [
        "",
        f"- {'**met**' if extra <= 0.3 else '**missed**'} `import blogdata` takes "
        f"{extra:+.3f} s over `import pandas, sqlalchemy` (paired median; target within 0.3 s).",
        f"- The first `load_frame` in a new process (engine, session, connect, 100 rows), "
        f"timed inside it: median {median(loads) * 1000:.0f} ms "
        f"(range {min(loads) * 1000:.0f}-{max(loads) * 1000:.0f} ms).",
    ]
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        write_section(
            "import", "## A light start: `import blogdata` (`bench_import.py`)\n\n" + body
        )


if __name__ == "__main__":
    main()
