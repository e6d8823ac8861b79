"""Time every tutorial notebook end to end (fresh kernel, setup cell, all cells) against its budget.

Budget (issue 6): each notebook under 20 s, the whole set under 2 minutes, on this machine.
Each notebook is built like ``make notebooks`` does (from ``notebooks/src`` when a source exists)
and executed with nbclient in a fresh kernel; nothing is written back to the notebooks. The time
includes the kernel start, the imports and ``connect()`` (fresh database, migrations, seed).

Usage: ``python benchmarks/bench_notebooks.py [--rounds N] [NB ...]`` (default: 1 round, all).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import load_average, machine, median, write_section  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
EACH_BUDGET_S = 20.0
TOTAL_BUDGET_S = 120.0


#: Load average when the script started (the machine is shared with the server).
LOAD = load_average()


def _execute_module():  # notebooks/execute.py is a script, not a package module
    spec = importlib.util.spec_from_file_location("nb_execute", ROOT / "notebooks" / "execute.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*")
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args(argv)
    ex = _execute_module()
    paths = ex.find(args.notebooks)
    times: dict[str, list[float]] = {path.stem: [] for path in paths}
    failures: dict[str, str] = {}
    for _ in range(args.rounds):
        for path in paths:
            nb = ex.build(path)
            started = time.perf_counter()
            try:
                ex.execute(nb)
            except Exception as exc:
                failures[path.stem] = f"{type(exc).__name__}"
                print(f"{path.stem}: FAILED ({type(exc).__name__})", flush=True)
                continue
            elapsed = time.perf_counter() - started
            times[path.stem].append(elapsed)
            print(f"{path.stem}: {elapsed:.1f} s", flush=True)

    server = (
        "the server in BLOGDATA_DATABASE_URL"
        if os.environ.get("BLOGDATA_DATABASE_URL")
        else "the embedded PostgreSQL"
    )
    rows = []
    total = 0.0
    for stem, values in times.items():
        if stem in failures or not values:
            rows.append(f"| {stem} | failed ({failures.get(stem, '?')}) | — |")
            continue
        value = median(values)
        total += value
        verdict = "ok" if value < EACH_BUDGET_S else f"**over {EACH_BUDGET_S:.0f} s**"
        rows.append(f"| {stem} | {value:.1f} | {verdict} |")
    total_verdict = "ok" if total < TOTAL_BUDGET_S and not failures else "**over budget**"
    body = f"""## Notebooks: execution time per notebook (`bench_notebooks.py`)

{machine()}. Server: {server}. {args.rounds} round(s), median.
Each time covers a fresh kernel, the imports, `connect()` (drop, create, migrate, seed 200
users) and every cell, as `make notebooks` runs them (nbval adds its own per-cell overhead).
Budget: each < {EACH_BUDGET_S:.0f} s, all < {TOTAL_BUDGET_S:.0f} s. Load average at start: {LOAD}.

| notebook | seconds | budget |
|---|---:|---|
{chr(10).join(rows)}
| **total** | **{total:.1f}** | {total_verdict} |
"""
    write_section("notebooks", body)
    print(f"total: {total:.1f} s; failures: {sorted(failures) or 'none'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
