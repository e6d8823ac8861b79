"""Loading posts into pandas: blogdata's loaders against the tools analysts use, in one run.

The matrix (issue 19, item 7), every cell measured interleaved (the order rotated each round)
and paired (ratios per round, then the median), each measurement in a fresh Python process so
its peak RSS is its own:

* cases: ``1m`` (``SELECT <8 columns> FROM posts``, 1,000,000 rows), ``4m`` (the same from
  ``posts_4m``: posts repeated 4 times, built once in the same database), ``10k``, ``100`` and
  ``1`` rows (``... FROM posts WHERE id <= n``). The big cases time one load per process; the
  small ones time ``--reps`` loads per process after 3 untimed ones and report their median.
* blogdata, always ``load_frame(db, stmt)`` on a session whose connection is open before the
  clock starts: ``load_frame`` (the default route, whichever exists: the route taken is read
  from ``frame.attrs["blogdata.route"]``), ``load_frame[route=X]`` for every route
  ``blogdata.loaders.Route`` names (the ``rows`` route on the small cases only),
  ``load_arrow`` where ``blogdata.loaders`` has it, ``load_frame_dirty`` (an uncommitted INSERT
  in the session's transaction, which the load sees), ``load_frame_pgbouncer`` (through
  PgBouncer in transaction mode, ``blogdata.servers.pooler.start_pgbouncer``), ``stream_frames``
  (1m: 50k-row chunks, keeping nothing) and ``sql_magic`` (small cases: ``%sql`` driven through
  a real IPython ``InteractiveShell``, one ``session_scope`` per run as in a notebook).
* peers: ``adbc_new`` (connect, query, ``fetch_arrow_table().to_pandas()``, close: the clock
  covers the connection), ``adbc_reused`` (the same on an open connection: the reference),
  ``adbc_arrow`` (``fetch_arrow_table()`` only, on an open connection), ``duckdb_scanner``
  (DuckDB's PostgreSQL scanner, the extension loaded from the ``duckdb-extension-postgres-
  scanner`` wheel's file, ``ATTACH ... READ_ONLY``, 2 threads, ``pg_pages_per_task = 1000``),
  ``connectorx`` (``read_sql(return_type="arrow").to_pandas()``), ``polars_uri``
  (``polars.read_database_uri``, connectorx underneath, ``.to_pandas()``),
  ``pd_read_sql_psycopg`` (``pandas.read_sql`` on a SQLAlchemy + psycopg 3 connection) and
  ``asyncpg_df`` (asyncpg ``fetch`` -> ``DataFrame`` by hand, on an open connection; these last
  two not on 4m, where they would need ~10 GB and minutes per load);
* floors (big cases): ``psql_copy_binary`` / ``psql_copy_csv``, ``psql -c "COPY (...) TO
  STDOUT (FORMAT ...)" > /dev/null``: the server produces and ships the bytes, nothing decodes.

The database is ``blogdata_bench_1m`` on the ``BLOGDATA_DATABASE_URL`` server (else the embedded
one), seeded with ``seed(users=50_000, posts_per_user=20, seed=42)``; it and ``posts_4m`` are
created when missing and reused.

Usage: ``python benchmarks/bench_loaders.py [--rounds 5] [--cases 1m,4m,10k,100,1] [--reps 30]
[--only a,b] [--quick]`` (``--quick``: 2 rounds, 10 reps, no 4m case). The report goes to the
``loaders`` section of ``benchmarks/RESULTS.md`` (``--no-write`` prints it only).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _bench_db import (  # type: ignore[import-not-found]
    DATABASE,
    bench_url,
    ensure_database,
    server_url,
)
from _report import (  # type: ignore[import-not-found]
    busy_cores,
    interleaved,
    load_average,
    machine,
    machine_busy_jiffies,
    median,
    write_section,
)
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL, make_url

from blogdata.db.engine import create_engine

COLUMNS = "id, title, content, author_id, created_at, updated_at, published_at, views"
HERE = Path(__file__).resolve()
ROUTE_ATTR = "blogdata.route"  # blogdata.loaders.ROUTE_ATTR, without importing it in every child
PGBOUNCER_ENV = "BLOGDATA_BENCH_PGBOUNCER_URL"
BIG_TABLE, BIG_COPIES = "posts_4m", 4

#: case -> (table, WHERE clause, whether one load per process)
CASES: dict[str, tuple[str, str, bool]] = {
    "1m": ("posts", "", True),
    "4m": (BIG_TABLE, "", True),
    "10k": ("posts", " WHERE id <= 10000", False),
    "100": ("posts", " WHERE id <= 100", False),
    "1": ("posts", " WHERE id = 1", False),
}
REFERENCE = "adbc_reused"
ROW_PEERS = {"pd_read_sql_psycopg", "asyncpg_df"}
FLOORS = {"psql_copy_binary", "psql_copy_csv"}
PEERS = [
    "adbc_new",
    "adbc_reused",
    "adbc_arrow",
    "duckdb_scanner",
    "connectorx",
    "polars_uri",
    "pd_read_sql_psycopg",
    "asyncpg_df",
]

# The loaders' dtype contract for posts' columns (blogdata.loaders' docstring).
CONTRACT = {
    "id": "Int64",
    "title": "string",
    "content": "string",
    "author_id": "Int64",
    "created_at": "datetime64[us, UTC]",
    "updated_at": "datetime64[us, UTC]",
    "published_at": "datetime64[us, UTC]",
    "views": "Int64",
}


def sql(case: str) -> str:
    """The statement every variant of ``case`` runs."""
    table, where, _ = CASES[case]
    return f"SELECT {COLUMNS} FROM {table}{where}"


def routes() -> list[str]:
    """The routes ``load_frame`` can be forced to, as this blogdata names them."""
    from typing import get_args

    from blogdata import loaders

    return [r for r in get_args(loaders.Route) if r != "auto"]


def has_load_arrow() -> bool:
    """Whether this blogdata has ``load_arrow`` (issue 19, item 3)."""
    from blogdata import loaders

    return hasattr(loaders, "load_arrow")


def variants(case: str) -> list[str]:
    """The variants measured for ``case``."""
    big = CASES[case][2]
    forced = [f"load_frame[route={r}]" for r in routes() if not (big and r == "rows")]
    out = ["load_frame", *forced]
    if has_load_arrow():
        out.append("load_arrow")
    out += ["load_frame_dirty", "load_frame_pgbouncer"]
    if case == "1m":
        out.append("stream_frames")
    if not big:
        out.append("sql_magic")
    # The row-by-row peers (5-6x ADBC at 1m, ~2.5 GB peak) would need ~10 GB and minutes per
    # load at 4m: they are measured at 1m and below.
    out += [p for p in PEERS if not (case == "4m" and p in ROW_PEERS)]
    if big:
        out += sorted(FLOORS)
    return out


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_big_table() -> int:
    """Build ``posts_4m`` (posts repeated ``BIG_COPIES`` times, new ids) unless it exists."""
    engine = create_engine(bench_url(), poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            await conn.execute(text(f"SELECT pg_advisory_lock(hashtext('{BIG_TABLE}'))"))
            try:
                exists = await conn.scalar(text(f"SELECT to_regclass('{BIG_TABLE}') IS NOT NULL"))
                if not exists:
                    step = await conn.scalar(text("SELECT max(id) FROM posts"))
                    await conn.execute(
                        text(
                            f"CREATE TABLE {BIG_TABLE} AS SELECT id + k * {int(step or 0)} AS id, "
                            "title, content, author_id, created_at, updated_at, published_at, "
                            f"views FROM posts, generate_series(0, {BIG_COPIES - 1}) AS k "
                            "ORDER BY k, id"
                        )
                    )
                    await conn.execute(text(f"ALTER TABLE {BIG_TABLE} ADD PRIMARY KEY (id)"))
                    await conn.execute(text(f"VACUUM ANALYZE {BIG_TABLE}"))
            finally:
                await conn.execute(text(f"SELECT pg_advisory_unlock(hashtext('{BIG_TABLE}'))"))
            return int(await conn.scalar(text(f"SELECT count(*) FROM {BIG_TABLE}")) or 0)
    finally:
        await engine.dispose()


async def _server_facts() -> dict[str, str]:
    engine = create_engine(bench_url(), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            names = ("server_version", "server_encoding", "shared_buffers")
            return {n: str(await conn.scalar(text(f"SHOW {n}"))) for n in names}
    finally:
        await engine.dispose()


# --- one variant, in a child process --------------------------------------------------------


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _cpu_s(who: int = resource.RUSAGE_SELF) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


class _Clock:
    """Wall time, this process's CPU time and the machine's busy cores over one load."""

    def __init__(self, who: int = resource.RUSAGE_SELF) -> None:
        self.who = who

    def __enter__(self) -> _Clock:
        self.base_mb = _rss_mb()
        self._cpu = _cpu_s(self.who)
        self._jiffies = machine_busy_jiffies()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._start
        self.cpu_s = _cpu_s(self.who) - self._cpu
        self.busy = busy_cores(self._jiffies, machine_busy_jiffies())
        # Before anything else is computed: counting the frame's values afterwards allocates.
        self.peak_mb = _rss_mb()

    def result(self, **info: Any) -> dict[str, Any]:
        return {
            "seconds": self.seconds,
            "base_mb": self.base_mb,
            "peak_mb": self.peak_mb,
            "cpu_s": self.cpu_s,
            "busy_cores": self.busy,
            **info,
        }


class _RouteLog(logging.Handler):
    """Collects blogdata.loaders' DEBUG lines (the route taken, and why not the others)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def __enter__(self) -> _RouteLog:
        logger = logging.getLogger("blogdata.loaders")
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("blogdata.loaders").removeHandler(self)


def _route_of(result: Any) -> str | None:
    """The route a blogdata load took: ``attrs`` of a frame, schema metadata of a table."""
    attrs = getattr(result, "attrs", None)
    if isinstance(attrs, dict) and ROUTE_ATTR in attrs:
        return str(attrs[ROUTE_ATTR])
    schema = getattr(result, "schema", None)
    meta = getattr(schema, "metadata", None) or {}
    value = meta.get(ROUTE_ATTR.encode())
    return value.decode() if value else None


def _facts(result: Any) -> dict[str, Any]:
    """Rows, dtypes and NULL counts of a frame (or Arrow table), gathered after the clock."""
    if not hasattr(result, "dtypes"):  # an Arrow table
        return {
            "rows": result.num_rows,
            "dtypes": {f.name: str(f.type) for f in result.schema},
            "null_views": result.column("views").null_count,
            "route": _route_of(result),
        }
    return {
        "rows": len(result),
        "dtypes": {str(c): str(t) for c, t in result.dtypes.items()},
        "null_views": int(result["views"].isna().sum()),
        "route": _route_of(result),
    }


class _Reps:
    """Times ``reps`` calls after 3 untimed ones; the median is the measurement."""

    def __init__(self, big: bool, reps: int) -> None:
        self.count = 1 if big else reps
        self.warm = 0 if big else 3
        self.times: list[float] = []

    def result(self, clock: _Clock, last: Any, **info: Any) -> dict[str, Any]:
        out = clock.result(**_facts(last), **info)
        if self.times:
            out["seconds"] = median(self.times)
            out["spread"] = [min(self.times), max(self.times)]
            out["timed_loads"] = len(self.times)
        return out


async def _blogdata(case: str, variant: str, reps: int) -> dict[str, Any]:
    from blogdata.db.engine import create_sessionmaker
    from blogdata.loaders import load_frame, stream_frames

    big = CASES[case][2]
    stmt = text(sql(case))
    url = bench_url()
    overrides: dict[str, Any] = {}
    if variant == "load_frame_pgbouncer":
        url, overrides = make_url(os.environ[PGBOUNCER_ENV]), {"pgbouncer": True}
    kwargs: dict[str, Any] = {}
    if variant.startswith("load_frame[route="):
        kwargs["route"] = variant.removeprefix("load_frame[route=").removesuffix("]")
    engine = create_engine(url, **overrides)
    try:
        async with create_sessionmaker(engine)() as db:
            if variant == "load_frame_dirty":
                # An uncommitted write in the session's transaction (rolled back at close); the
                # load sees it, as session.execute would.
                table = CASES[case][0]
                await db.execute(
                    text(
                        f"INSERT INTO {table} (id, title, content, author_id, created_at, views) "
                        f"SELECT -id, title, content, author_id, created_at, views FROM {table} "
                        "WHERE id = 1"
                    )
                )
            if variant == "load_arrow":
                from blogdata.loaders import load_arrow  # type: ignore[attr-defined]

                load: Callable[[], Any] = lambda: load_arrow(db, stmt)  # noqa: E731
            else:
                load = lambda: load_frame(db, stmt, **kwargs)  # noqa: E731
            await load_frame(db, text(f"SELECT {COLUMNS} FROM posts LIMIT 1"))  # opens it
            if big:
                # The decoder's one-time start (import numba, load its cached kernels: ~0.5 s,
                # paid by a kernel's first large binary load) happens before the clock, as the
                # peers' drivers are imported and loaded before theirs; bench_import.py and
                # _binary.py's docstring report that first-load cost on its own.
                from blogdata.loaders import _binary

                _binary._compiled()
            if variant == "stream_frames":
                rows, counting = 0, 0.0
                seen: set[str] = set()
                with _Clock() as clock, _RouteLog() as log:
                    async for chunk in stream_frames(db, stmt, chunk_size=50_000):
                        tick = time.perf_counter()
                        rows += len(chunk)
                        seen.add(str(chunk.attrs.get(ROUTE_ATTR)))
                        last = chunk
                        del chunk
                        counting += time.perf_counter() - tick
                clock.seconds -= counting  # the stream's time, not this loop's bookkeeping
                out = clock.result(**_facts(last), why=log.lines)
                out.update(rows=rows, route=",".join(sorted(seen)))
                return out
            timer = _Reps(big, reps)
            for _ in range(timer.warm):
                await load()
            with _Clock() as clock, _RouteLog() as log:
                for _ in range(timer.count):
                    tick = time.perf_counter()
                    result = await load()
                    timer.times.append(time.perf_counter() - tick)
            return timer.result(clock, result, why=log.lines[:2])
    finally:
        await engine.dispose()


def _sql_magic(case: str, reps: int) -> dict[str, Any]:
    from IPython.core.interactiveshell import InteractiveShell

    from blogdata.notebook import use_engine

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "blogdata")
    engine = create_engine(bench_url())
    use_engine(engine)
    line = sql(case)
    timer = _Reps(False, reps)
    for _ in range(timer.warm):
        shell.run_line_magic("sql", line)
    with _Clock() as clock:
        for _ in range(timer.count):
            tick = time.perf_counter()
            frame = shell.run_line_magic("sql", line)
            timer.times.append(time.perf_counter() - tick)
    return timer.result(clock, frame)


async def _asyncpg_df(case: str, reps: int) -> dict[str, Any]:
    import asyncpg
    import pandas as pd

    conn = await asyncpg.connect(_libpq(bench_url()))
    try:
        timer = _Reps(CASES[case][2], reps)

        async def load() -> Any:
            records = await conn.fetch(sql(case))
            return pd.DataFrame([tuple(r) for r in records], columns=COLUMNS.split(", "))

        for _ in range(timer.warm):
            await load()
        with _Clock() as clock:
            for _ in range(timer.count):
                tick = time.perf_counter()
                frame = await load()
                timer.times.append(time.perf_counter() - tick)
        return timer.result(clock, frame)
    finally:
        await conn.close()


def _timed(case: str, reps: int, load: Callable[[], Any], **info: Any) -> dict[str, Any]:
    timer = _Reps(CASES[case][2], reps)
    for _ in range(timer.warm):
        load()
    with _Clock() as clock:
        for _ in range(timer.count):
            tick = time.perf_counter()
            result = load()
            timer.times.append(time.perf_counter() - tick)
    return timer.result(clock, result, **info)


def _duckdb_scanner(case: str, reps: int) -> dict[str, Any]:
    import duckdb
    import duckdb_extension_postgres_scanner as wheel

    folder = Path(wheel.__file__).parent
    files = sorted(folder.glob("extensions/*/postgres_scanner.duckdb_extension"))
    if not files:
        raise SystemExit("the duckdb-extension-postgres-scanner wheel holds no extension file")
    con = duckdb.connect(config={"allow_unsigned_extensions": "true", "threads": "2"})
    try:
        con.execute(f"LOAD '{files[-1]}'")
        con.execute("SET pg_pages_per_task = 1000")
        # ATTACH takes no parameters: the libpq URI is ours, quoted as a DuckDB string literal.
        quoted = "'" + _libpq(bench_url()).replace("'", "''") + "'"
        con.execute(f"ATTACH {quoted} AS pg (TYPE postgres, READ_ONLY)")
        con.sql("SELECT id FROM pg.public.posts LIMIT 1").fetchall()  # connect, read the catalog
        table, where, _ = CASES[case]
        query = f"SELECT {COLUMNS} FROM pg.public.{table}{where}"
        return _timed(case, reps, lambda: con.sql(query).to_arrow_table().to_pandas())
    finally:
        con.close()


def _sync(case: str, variant: str, reps: int) -> dict[str, Any]:
    import pandas as pd

    uri, query = _libpq(bench_url()), sql(case)
    if variant in FLOORS:
        psql = shutil.which("psql") or "/usr/bin/psql"
        fmt = "binary" if variant == "psql_copy_binary" else "csv"
        copy = f"COPY ({query}) TO STDOUT (FORMAT {fmt})"
        with _Clock(resource.RUSAGE_CHILDREN) as clock, open(os.devnull, "wb") as sink:
            subprocess.run([psql, "-X", "-q", "-d", uri, "-c", copy], stdout=sink, check=True)
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return clock.result(peak_mb=child, rows=None)
    if variant == "duckdb_scanner":
        return _duckdb_scanner(case, reps)
    if variant == "connectorx":
        import connectorx

        return _timed(
            case, reps, lambda: connectorx.read_sql(uri, query, return_type="arrow").to_pandas()
        )
    if variant == "polars_uri":
        import polars as pl

        return _timed(case, reps, lambda: pl.read_database_uri(query, uri).to_pandas())
    if variant == "pd_read_sql_psycopg":
        import sqlalchemy

        engine = sqlalchemy.create_engine(bench_url().set(drivername="postgresql+psycopg"))
        try:
            with engine.connect() as conn:
                return _timed(case, reps, lambda: pd.read_sql(query, conn))
        finally:
            engine.dispose()
    import adbc_driver_postgresql.dbapi as adbc

    if variant == "adbc_new":

        def fresh() -> Any:
            with adbc.connect(uri) as conn, conn.cursor() as cursor:
                cursor.execute(query)
                return cursor.fetch_arrow_table().to_pandas()

        return _timed(case, reps, fresh)
    with adbc.connect(uri) as conn:

        def reused() -> Any:
            with conn.cursor() as cursor:
                cursor.execute(query)
                table = cursor.fetch_arrow_table()
            return table if variant == "adbc_arrow" else table.to_pandas()

        return _timed(case, reps, reused)


def run_child(case: str, variant: str, reps: int) -> dict[str, Any]:
    """Measure ``variant`` on ``case`` in this process."""
    if variant.startswith(("load_frame", "load_arrow", "stream_frames")):
        out = asyncio.run(_blogdata(case, variant, reps))
    elif variant == "sql_magic":
        out = _sql_magic(case, reps)
    elif variant == "asyncpg_df":
        out = asyncio.run(_asyncpg_df(case, reps))
    else:
        out = _sync(case, variant, reps)
    out.setdefault("peak_mb", _rss_mb())
    return out


# --- the parent: interleaved rounds, paired ratios, RESULTS.md --------------------------------


def _measure(key: str, reps: int, env: dict[str, str]) -> dict[str, Any]:
    case, variant = key.split("/", 1)
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", key, "--reps", str(reps)],
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{case} {variant} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


class _Stats:
    """Medians and paired ratios over one case's samples."""

    def __init__(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        self.samples = samples
        self.times = {v: [s["seconds"] for s in samples[v]] for v in samples}

    def has(self, *variants: str) -> bool:
        return all(v in self.samples for v in variants)

    def per_round(self, v: str, ref: str) -> list[float]:
        return [a / b for a, b in zip(self.times[v], self.times[ref], strict=True)]

    def ratio(self, v: str, ref: str) -> float:
        return median(self.per_round(v, ref))

    def diff_ms(self, v: str, ref: str) -> float:
        return 1000 * median([a - b for a, b in zip(self.times[v], self.times[ref], strict=True)])

    def med(self, v: str, key: str | Callable[[dict[str, Any]], float]) -> float:
        get = key if callable(key) else (lambda s: float(s[key]))
        return median([get(s) for s in self.samples[v]])

    def peak(self, v: str) -> float:
        return self.med(v, "peak_mb")

    def growth(self, v: str) -> float:
        return self.med(v, lambda s: s["peak_mb"] - s["base_mb"])

    def route(self, v: str) -> str:
        return ",".join(sorted({str(s.get("route")) for s in self.samples[v]}))

    def rounds(self, v: str, ref: str) -> str:
        return ", ".join(f"{r:.2f}" for r in self.per_round(v, ref))


def _fmt(seconds: float) -> str:
    return f"{seconds:.2f} s" if seconds >= 1 else f"{seconds * 1000:.1f} ms"


def _table(case: str, st: _Stats) -> list[str]:
    big = CASES[case][2]
    lines = [
        f"| variant | route | median | min | max | vs {REFERENCE} (paired) | client CPU s "
        "| peak RSS MB | RSS growth MB | rows |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in sorted(st.samples, key=lambda v: median(st.times[v])):
        r = f"{st.ratio(v, REFERENCE):.2f}x" if st.has(REFERENCE) else ""
        route = st.route(v) if v.startswith(("load_", "stream_", "sql_")) else ""
        mem = " | " if v in FLOORS else f"{st.peak(v):.0f} | {st.growth(v):.0f}"
        rows = st.samples[v][0].get("rows")
        lines.append(
            f"| {v} | {route} | {_fmt(median(st.times[v]))} | {_fmt(min(st.times[v]))} | "
            f"{_fmt(max(st.times[v]))} | {r} | {st.med(v, 'cpu_s'):.2f} | {mem} | "
            f"{'' if rows is None else f'{rows:,}'} |"
        )
    if not big:
        lines.append("")
        lines.append(
            "Small cases: each sample is the median of its process's timed loads (after 3 "
            "untimed ones); CPU and RSS cover all of them."
        )
    return lines


def _limits(st: _Stats, v: str, floor: str) -> str:
    route = st.route(v)
    cpu = f"client CPU {st.med(v, 'cpu_s'):.2f} s"
    if route == "copy":
        return (
            f"the CSV COPY route on the session's connection: the server's CSV encoding and "
            f"pyarrow's CSV parse ({cpu}). {floor}"
        ).strip()
    if route == "binary":
        return f"the binary COPY route on the session's connection: the in-process decode ({cpu})."
    return f"route `{route}` ({cpu})."


def _checks(case: str, st: _Stats, reps: int) -> list[str]:
    out: list[str] = []
    big = CASES[case][2]
    ref = REFERENCE
    floor = ""
    if st.has("psql_copy_csv", "psql_copy_binary"):
        csv_vs_binary = st.ratio("psql_copy_csv", "psql_copy_binary")
        floor = (
            f"The server alone (psql into /dev/null) takes {csv_vs_binary:.2f}x as long for CSV "
            f"as for binary COPY; binary COPY alone is {st.ratio('psql_copy_binary', ref):.2f}x "
            f"{ref}."
        )
    if big and st.has("load_frame", ref):
        r = st.ratio("load_frame", ref)
        out.append(
            f"- {_verdict(r <= 1.0)} `load_frame` (default, route `{st.route('load_frame')}`) "
            f"**{r:.2f}x** `{ref}` (target <= 1.0x; per round {st.rounds('load_frame', ref)}). "
            f"Limit: {_limits(st, 'load_frame', floor)}"
        )
        peak, ref_peak = st.peak("load_frame"), st.peak(ref)
        out.append(
            f"- {_verdict(peak <= ref_peak)} peak RSS `load_frame` {peak:.0f} MB vs {ref} "
            f"{ref_peak:.0f} MB (target <=); growth {st.growth('load_frame'):.0f} vs "
            f"{st.growth(ref):.0f} MB; before the load {st.med('load_frame', 'base_mb'):.0f} vs "
            f"{st.med(ref, 'base_mb'):.0f} MB (SQLAlchemy, asyncpg and blogdata loaded)."
        )
    if big and st.has("adbc_arrow"):
        if st.has("load_arrow"):
            r = st.ratio("load_arrow", "adbc_arrow")
            out.append(
                f"- {_verdict(r <= 1.0)} `load_arrow` **{r:.2f}x** `adbc_arrow` (target <= 1.0x;"
                f" route `{st.route('load_arrow')}`)."
            )
        else:
            out.append(
                "- **missed** `load_arrow` <= 1.0x `adbc_arrow`: this blogdata has no "
                "`load_arrow` yet."
            )
    if big and st.has("load_frame_dirty", ref):
        r = st.ratio("load_frame_dirty", ref)
        out.append(
            f"- {_verdict(r <= 1.05)} with an uncommitted INSERT in the session: **{r:.2f}x** "
            f"`{ref}`'s clean time (target <= 1.05x; route `{st.route('load_frame_dirty')}`). "
            f"Limit: {_limits(st, 'load_frame_dirty', floor)}"
        )
    if st.has("load_frame_pgbouncer", "load_frame"):
        same = st.route("load_frame_pgbouncer") == st.route("load_frame")
        r = st.ratio("load_frame_pgbouncer", ref) if st.has(ref) else float("nan")
        out.append(
            f"- {_verdict(same)} through PgBouncer (transaction mode): route "
            f"`{st.route('load_frame_pgbouncer')}` (direct: `{st.route('load_frame')}`), "
            f"**{r:.2f}x** `{ref}`, {st.ratio('load_frame_pgbouncer', 'load_frame'):.2f}x the "
            "direct load."
        )
    if not big and case in ("1", "100") and st.has("load_frame", "asyncpg_df"):
        r = st.ratio("load_frame", "asyncpg_df")
        out.append(
            f"- {_verdict(r <= 2.0)} `load_frame` {_fmt(median(st.times['load_frame']))} "
            f"(route `{st.route('load_frame')}`) is **{r:.2f}x** asyncpg `fetch` -> DataFrame "
            f"({_fmt(median(st.times['asyncpg_df']))}; target <= 2x)."
        )
    if not big and case in ("1", "100") and st.has("load_frame", "pd_read_sql_psycopg"):
        r = st.ratio("load_frame", "pd_read_sql_psycopg")
        out.append(
            f"- {_verdict(r <= 1.0)} vs `pandas.read_sql` over psycopg "
            f"({_fmt(median(st.times['pd_read_sql_psycopg']))}): **{r:.2f}x** (target <= 1x)."
        )
    if case == "10k" and st.has("load_frame", ref):
        r = st.ratio("load_frame", ref)
        out.append(
            f"- {_verdict(r <= 1.2)} `load_frame` {_fmt(median(st.times['load_frame']))} (route "
            f"`{st.route('load_frame')}`) is **{r:.2f}x** ADBC on a reused connection "
            f"({_fmt(median(st.times[ref]))}; target <= 1.2x)."
        )
    if not big and st.has("load_frame"):
        wall = median(st.times["load_frame"])
        cpu = st.med("load_frame", lambda s: s["cpu_s"] / s.get("timed_loads", reps))
        out.append(
            f"- Limit of `load_frame` here (route `{st.route('load_frame')}`): client CPU "
            f"{_fmt(cpu)} per load of {_fmt(wall)} wall, so "
            + (
                "the rest is waiting: the server's work and the round trips of each load "
                "(the route's planning statements before the read: issue 19, item 2)."
                if cpu < 0.6 * wall
                else "the client's own work (planning, decoding, building the frame) dominates."
            )
        )
    if st.has("sql_magic", "load_frame"):
        d = st.diff_ms("sql_magic", "load_frame")
        out.append(
            f"- {_verdict(d <= 0.5)} `%sql` (one `session_scope` per run, through IPython) takes "
            f"**{d:+.2f} ms** more than `load_frame` on an open session (target within 0.5 ms)."
        )
    if case == "1m" and st.has("stream_frames", "load_frame"):
        r = st.ratio("stream_frames", "load_frame")
        g = st.growth("stream_frames") / max(st.growth("load_frame"), 1e-9)
        out.append(
            f"- (item 4) `stream_frames` {r:.2f}x `load_frame` (target <= 1.3x: "
            f"{_verdict(r <= 1.3)}); RSS growth {g:.0%} of the full frame's (target <= 25%: "
            f"{_verdict(g <= 0.25)})."
        )
    wrong = {
        v: t
        for v in st.samples
        if v.startswith(("load_frame", "stream_frames", "sql_magic"))
        for t in [_contract(st.samples[v][0])]
        if t
    }
    if wrong:
        out.append("- dtypes off the contract: " + "; ".join(f"{v}: {t}" for v, t in wrong.items()))
    return out


def _contract(sample: dict[str, Any]) -> str:
    dtypes = sample.get("dtypes") or {}
    return ", ".join(
        f"`{c}` {dtypes.get(c)} (not {t})" for c, t in CONTRACT.items() if dtypes.get(c) != t
    )


def _report(run: dict[str, Any]) -> str:
    lines = [
        f"Measured {run['measured']}; PostgreSQL {run['facts']['server_version']} at "
        f"{run['facts']['where']} (shared_buffers {run['facts']['shared_buffers']}; tables in "
        "the OS page cache). "
        f"{run['rounds']} interleaved rounds (all cases and variants in one rotation), each "
        "measurement in a fresh process; connections are open before the clock starts except "
        "where a variant's own connect is part of it (`adbc_new`, `connectorx`, `polars_uri`), "
        "and blogdata's binary decoder is loaded before the clock on the big cases, as the "
        "peers' drivers are (its one-time start per process is in the import section). "
        "Ratios are paired per round, then the median. Peak RSS is the child process's.",
        f"Load average (1, 5, 15 min) at the start: {run['load_start']}; at the end: "
        f"{run['load_end']}; 1-minute load sampled before each measurement: median "
        f"{median(run['loads']):.1f}, range {min(run['loads']):.1f}-{max(run['loads']):.1f} "
        "(2 cores, shared with other work).",
    ]
    by_case: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for key, samples in run["samples"].items():
        case, variant = key.split("/", 1)
        by_case.setdefault(case, {})[variant] = samples
    for case in [c for c in CASES if c in by_case]:
        st = _Stats(by_case[case])
        rows = st.samples[REFERENCE][0].get("rows") if st.has(REFERENCE) else None
        lines += [
            "",
            f"### {case} rows: `{sql(case)}`" + (f" ({rows:,} rows)" if rows else ""),
            "",
            *_table(case, st),
            "",
            *_checks(case, st, run.get("reps", 10)),
        ]
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> dict[str, Any] | None:
    posts = asyncio.run(ensure_database())
    print(f"{posts:,} posts in {DATABASE}", flush=True)
    cases = [c for c in args.cases.split(",") if c]
    unknown = sorted(set(cases) - set(CASES))
    if unknown:
        raise SystemExit(f"unknown cases: {', '.join(unknown)}")
    if "4m" in cases or args.prepare:
        print(f"{asyncio.run(ensure_big_table()):,} rows in {BIG_TABLE}", flush=True)
    if args.prepare:
        return None
    only = {v for v in args.only.split(",") if v}
    keys = [f"{c}/{v}" for c in cases for v in variants(c) if not only or v in only]
    env = dict(os.environ)
    bouncer = None
    if any(k.endswith("/load_frame_pgbouncer") for k in keys):
        from blogdata.servers.pooler import start_pgbouncer

        bouncer = start_pgbouncer(server_url())
        env[PGBOUNCER_ENV] = bouncer.url(DATABASE).render_as_string(hide_password=False)
    server = server_url()
    facts = {**asyncio.run(_server_facts()), "where": f"{server.host}:{server.port}"}
    run: dict[str, Any] = {
        "samples": {},
        "rounds": args.rounds,
        "reps": args.reps,
        "loads": [],
        "facts": facts,
        "load_start": load_average(),
        "load_end": "",
        "measured": machine(),
    }
    try:
        _measure(f"{cases[0]}/{REFERENCE}", args.reps, env)  # warm the server's cache
        run["samples"] = interleaved(
            keys, args.rounds, lambda k: _measure(k, args.reps, env), run["loads"]
        )
    finally:
        if bouncer is not None:
            bouncer.stop()
    run["load_end"] = load_average()
    if args.save:
        args.save.write_text(json.dumps(run, indent=1))
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated cases")
    parser.add_argument("--reps", type=int, default=30, help="timed loads per small-case process")
    parser.add_argument("--only", default="", help="comma-separated variants")
    parser.add_argument("--quick", action="store_true", help="2 rounds, 10 reps, no 4m case")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help="only create the database/tables")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    parser.add_argument("--save", type=Path, help="write the raw samples to this JSON file")
    parser.add_argument("--render", type=Path, help="only re-render a --save file's report")
    args = parser.parse_args()
    if args.child:
        case, variant = args.child.split("/", 1)
        print(json.dumps(run_child(case, variant, args.reps)))
        return
    if args.quick:
        args.rounds, args.reps = 2, 10
        args.cases = ",".join(c for c in args.cases.split(",") if c != "4m")
    run = json.loads(args.render.read_text()) if args.render else _run(args)
    if run is None:
        return
    body = _report(run)
    print(body)
    if not args.no_write:
        write_section("loaders", "## Loaders: posts into pandas (`bench_loaders.py`)\n\n" + body)


if __name__ == "__main__":
    main()
