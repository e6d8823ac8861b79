"""Shared helpers for the benchmark scripts: machine description, peak RSS, and RESULTS.md sections.

Each script owns one section of ``benchmarks/RESULTS.md`` between
``<!-- BEGIN name -->`` and ``<!-- END name -->`` and rewrites only that section.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import re
import resource
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).with_name("RESULTS.md")
_HEADER = (
    "# Benchmark results\n\n"
    "Written by the scripts in this folder (`make bench`); each section says when and where it "
    "was measured. Ratios are paired per round (same round, same conditions), median over rounds.\n"
)


def machine() -> str:
    """One line describing this machine and the date."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{mem_kb / 1024 / 1024:.0f} GiB"
    except OSError:
        mem = "?"
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return (
        f"{now}; {os.cpu_count()} cores ({cpu}), {mem} RAM; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the report's header."""
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def machine_busy_jiffies() -> tuple[int, int]:
    """(busy, total) CPU jiffies of the whole machine so far, all cores, from /proc/stat.

    The difference of two readings divided by the wall time (in jiffies, ``os.sysconf
    ("SC_CLK_TCK")`` a second) says how many cores were busy in between: this process, the
    database server and whatever else runs on the machine.
    """
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is in user)
    return total - idle, total


def busy_cores(before: tuple[int, int], after: tuple[int, int]) -> float:
    """How many of the machine's cores were busy between two ``machine_busy_jiffies`` readings."""
    busy, total = after[0] - before[0], after[1] - before[1]
    return (os.cpu_count() or 1) * busy / total if total else 0.0


def median(values: Sequence[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def interleaved(
    variants: Sequence[str],
    rounds: int,
    measure: Callable[[str], dict[str, Any]],
    loads: list[float] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """Run every variant once per round, rotating the order each round; return the samples.

    ``measure(variant)`` returns a dict with at least ``seconds`` and ``peak_mb``. When
    ``loads`` is given, the 1-minute load average is appended to it before every measurement.
    """
    samples: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for r in range(rounds):
        shift = r % len(variants)
        for variant in [*variants[shift:], *variants[:shift]]:
            if loads is not None:
                loads.append(os.getloadavg()[0])
            result = measure(variant)
            samples[variant].append(result)
            print(
                f"round {r + 1} {variant}: {result['seconds']:.2f}s {result['peak_mb']:.0f} MB",
                flush=True,
            )
    return samples


def write_section(name: str, body: str) -> None:
    """Replace (or append) section ``name`` of RESULTS.md with ``body``."""
    text = RESULTS.read_text() if RESULTS.exists() else _HEADER
    block = f"<!-- BEGIN {name} -->\n{body.strip()}\n<!-- END {name} -->"
    pattern = re.compile(
        rf"<!-- BEGIN {re.escape(name)} -->.*?<!-- END {re.escape(name)} -->", re.S
    )
    text = (
        pattern.sub(lambda _: block, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{block}\n"
    )
    RESULTS.write_text(text)
