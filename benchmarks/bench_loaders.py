"""Loading all 1,000,000 posts into pandas: blogdata's loaders against the tools analysts use.

Variants (each run in a fresh Python process, so its peak RSS is its own):

* ``load_frame``: ``load_frame(db, select(Post))`` with its defaults in a read-only session
  (``route="auto"``, on the session's own connection like every blogdata load: the route it
  picks is recorded from ``frame.attrs["blogdata.route"]``);
* ``load_frame_arrow``: the same with ``dtype_backend="pyarrow"``;
* ``load_frame_dirty``: ``load_frame`` with its defaults in a session holding an uncommitted
  write (an ``UPDATE`` of one post): the same route, which sees that write;
* ``stream_frames``: iterate ``stream_frames(db, select(Post), chunk_size=50_000)`` in a
  read-only session, keeping nothing (its RSS growth is compared with the full frame's);
* ``adbc_to_pandas``: ADBC ``cursor.fetch_arrow_table().to_pandas()`` by hand (the peer to beat);
* ``pd_read_sql_adbc``: ``pandas.read_sql`` on an ADBC connection;
* ``connectorx``: ``connectorx.read_sql(return_type="arrow").to_pandas()``;
* ``connectorx_p2``: the same with ``partition_on="id", partition_num=2``;
* ``duckdb_scanner``: DuckDB's PostgreSQL scanner (the ``postgres_scanner`` extension loaded
  from the ``duckdb-extension-postgres-scanner`` wheel's file, ``ATTACH ... READ_ONLY``, 2
  threads, ``pg_pages_per_task = 1000``), ``.to_arrow_table().to_pandas()``;
* ``pd_read_sql_psycopg``: ``pandas.read_sql`` on a SQLAlchemy + psycopg 3 engine;
* ``sqla_async_rows``: SQLAlchemy async ``session.execute(text(SELECT ...)).all()`` -> DataFrame;
* ``sqla_async_tuples``: the same, with ``[tuple(r) for r in rows]`` before the DataFrame (these
  two take about 10x ADBC's time; run them with ``--only``, they are not in the default set);
* ``psql_copy_binary`` / ``psql_copy_csv``: ``psql -c "COPY (SELECT ...) TO STDOUT (FORMAT
  binary|csv)" > /dev/null``, the floors: the server produces and ships the bytes, the client
  discards them. Their ratio is what the server's CSV encoding costs.

Rounds are interleaved (order rotated each round); the timing covers the load only (not the
interpreter start, imports or connecting: every variant's connections are open before the clock
starts, blogdata's by one untimed ``LIMIT 1`` load in the same session); ratios are paired per
round. Each child also reports its own CPU time during the load and how many of the machine's
cores were busy meanwhile (it, the server and anything else). The database is
``blogdata_bench_1m`` on the ``BLOGDATA_DATABASE_URL`` server, seeded with
``seed(users=50_000, posts_per_user=20, seed=42)``; it is created when missing and reused.

Usage: ``python benchmarks/bench_loaders.py [--rounds 7] [--only a,b]``.
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
from sqlalchemy.engine import URL

from blogdata.db import migrate
from blogdata.db.engine import create_engine, url_or_start_embedded

DATABASE = os.environ.get("BLOGDATA_BENCH_LOADERS_DB", "blogdata_bench_1m")
USERS, POSTS_PER_USER, SEED = 50_000, 20, 42
COLUMNS = "id, title, content, author_id, created_at, updated_at, published_at, views"
SQL = f"SELECT {COLUMNS} FROM posts"
HERE = Path(__file__).resolve()
REFERENCE = "adbc_to_pandas"
ROUTE_ATTR = "blogdata.route"  # blogdata.loaders.ROUTE_ATTR, without importing it in every child

VARIANTS = [
    "load_frame",
    "load_frame_arrow",
    "load_frame_dirty",
    "stream_frames",
    "adbc_to_pandas",
    "pd_read_sql_adbc",
    "connectorx",
    "connectorx_p2",
    "duckdb_scanner",
    "pd_read_sql_psycopg",
    "psql_copy_binary",
    "psql_copy_csv",
]
OPTIONAL = ["sqla_async_rows", "sqla_async_tuples"]
BLOGDATA = {
    "load_frame",
    "load_frame_arrow",
    "load_frame_dirty",
    "stream_frames",
}
FLOORS = {"psql_copy_binary", "psql_copy_csv"}

# The loaders' dtype contract for posts' columns (blogdata.loaders' docstring).
CONTRACT = {
    "numpy_nullable": {
        "id": "Int64",
        "title": "string",
        "content": "string",
        "author_id": "Int64",
        "created_at": "datetime64[us, UTC]",
        "updated_at": "datetime64[us, UTC]",
        "published_at": "datetime64[us, UTC]",
        "views": "Int64",
    },
    "pyarrow": {
        "id": "int64[pyarrow]",
        "title": "string[pyarrow]",
        "content": "string[pyarrow]",
        "author_id": "int64[pyarrow]",
        "created_at": "timestamp[us, tz=UTC][pyarrow]",
        "updated_at": "timestamp[us, tz=UTC][pyarrow]",
        "published_at": "timestamp[us, tz=UTC][pyarrow]",
        "views": "int64[pyarrow]",
    },
}


def _server() -> URL:
    return url_or_start_embedded()


def _url() -> URL:
    return _server().set(database=DATABASE)


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


async def ensure_database() -> int:
    """Create and seed ``blogdata_bench_1m`` unless it exists; return its number of posts."""
    server = _server()
    admin = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as conn:
            # One creator at a time: whoever holds the lock creates and seeds, others wait.
            await conn.execute(text("SELECT pg_advisory_lock(hashtext('blogdata_bench_1m'))"))
            exists = await conn.scalar(
                text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": DATABASE}
            )
            try:
                if not exists:
                    await conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
                    await migrate.upgrade(_url())
                    from blogdata.seed import seed

                    engine = create_engine(_url(), poolclass=NullPool)
                    try:
                        await seed(
                            engine, users=USERS, posts_per_user=POSTS_PER_USER, random_seed=SEED
                        )
                        async with engine.connect() as c:
                            await c.execution_options(isolation_level="AUTOCOMMIT")
                            await c.execute(text("VACUUM ANALYZE"))
                    finally:
                        await engine.dispose()
            finally:
                await conn.execute(text("SELECT pg_advisory_unlock(hashtext('blogdata_bench_1m'))"))
    finally:
        await admin.dispose()
    engine = create_engine(_url(), poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            posts = await conn.scalar(text("SELECT count(*) FROM posts"))
    finally:
        await engine.dispose()
    return int(posts or 0)


async def _server_facts() -> dict[str, str]:
    engine = create_engine(_url(), poolclass=NullPool)
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


def _describe(frame: Any) -> dict[str, Any]:
    """Facts about a loaded frame, gathered after the clock stopped."""
    content = frame["content"]
    return {
        "rows": len(frame),
        "dtypes": {c: str(t) for c, t in frame.dtypes.items()},
        "null_content": int(content.isna().sum()),
        "empty_content": int((content.str.len() == 0).sum()),
        "null_views": int(frame["views"].isna().sum()),
        "route": frame.attrs.get(ROUTE_ATTR),
    }


async def _blogdata(variant: str) -> dict[str, Any]:
    from sqlalchemy import select

    from blogdata.db.engine import create_sessionmaker
    from blogdata.loaders import load_frame, stream_frames
    from blogdata.models import Post

    backend = "pyarrow" if variant == "load_frame_arrow" else "numpy_nullable"
    engine = create_engine(_url())
    try:
        async with create_sessionmaker(engine)() as db:
            if variant == "load_frame_dirty":
                # An uncommitted write (rolled back when the session closes), which the load
                # sees as session.execute would.
                await db.execute(text("UPDATE posts SET views = views WHERE id = 1"))
            # Untimed: opens the session's connection (the only one a load uses).
            if variant == "stream_frames":
                async for _ in stream_frames(db, select(Post).limit(1), chunk_size=50_000):
                    pass
            else:
                await load_frame(db, select(Post).limit(1), dtype_backend=backend)
            if variant == "stream_frames":
                rows, nulls, empty, counting = 0, [0, 0], 0, 0.0
                dtypes: dict[str, set[str]] = {}
                routes: set[str] = set()
                with _Clock() as clock, _RouteLog() as log:
                    async for chunk in stream_frames(db, select(Post), chunk_size=50_000):
                        tick = time.perf_counter()
                        rows += len(chunk)
                        nulls[0] += int(chunk["content"].isna().sum())
                        nulls[1] += int(chunk["views"].isna().sum())
                        empty += int((chunk["content"].str.len() == 0).sum())
                        for c, t in chunk.dtypes.items():
                            dtypes.setdefault(str(c), set()).add(str(t))
                        routes.add(str(chunk.attrs.get(ROUTE_ATTR)))
                        del chunk
                        counting += time.perf_counter() - tick
                clock.seconds -= counting  # the stream's time, not this loop's bookkeeping
                return clock.result(
                    rows=rows,
                    dtypes={c: ",".join(sorted(t)) for c, t in dtypes.items()},
                    null_content=nulls[0],
                    empty_content=empty,
                    null_views=nulls[1],
                    route=",".join(sorted(routes)),
                    why=log.lines,
                )
            with _Clock() as clock, _RouteLog() as log:
                frame = await load_frame(db, select(Post), dtype_backend=backend)
            return clock.result(**_describe(frame), why=log.lines)
    finally:
        await engine.dispose()


async def _sqla_rows(as_tuples: bool) -> dict[str, Any]:
    import pandas as pd

    from blogdata.db.engine import create_sessionmaker

    engine = create_engine(_url())
    try:
        async with create_sessionmaker(engine)() as db:
            await db.connection()
            with _Clock() as clock:
                result = await db.execute(text(SQL))
                rows = result.all()
                data = [tuple(r) for r in rows] if as_tuples else rows
                frame = pd.DataFrame(data, columns=list(result.keys()))
    finally:
        await engine.dispose()
    return clock.result(**_describe(frame))


def _duckdb_scanner(uri: str) -> dict[str, Any]:
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
        quoted = "'" + uri.replace("'", "''") + "'"
        con.execute(f"ATTACH {quoted} AS pg (TYPE postgres, READ_ONLY)")
        con.sql("SELECT id FROM pg.public.posts LIMIT 1").fetchall()  # connect, read the catalog
        with _Clock() as clock:
            frame = con.sql(f"SELECT {COLUMNS} FROM pg.public.posts").to_arrow_table().to_pandas()
        return clock.result(**_describe(frame))
    finally:
        con.close()


def _sync(variant: str) -> dict[str, Any]:
    import pandas as pd

    uri = _libpq(_url())
    if variant in FLOORS:
        psql = shutil.which("psql") or "/usr/bin/psql"
        fmt = "binary" if variant == "psql_copy_binary" else "csv"
        copy = f"COPY ({SQL}) TO STDOUT (FORMAT {fmt})"
        with _Clock(resource.RUSAGE_CHILDREN) as clock, open(os.devnull, "wb") as sink:
            subprocess.run([psql, "-X", "-q", "-d", uri, "-c", copy], stdout=sink, check=True)
        child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        return clock.result(peak_mb=child, rows=None)
    if variant == "duckdb_scanner":
        return _duckdb_scanner(uri)
    if variant.startswith("connectorx"):
        import connectorx

        partitions: dict[str, Any] = (
            {"partition_on": "id", "partition_num": 2} if variant == "connectorx_p2" else {}
        )
        with _Clock() as clock:
            table = connectorx.read_sql(uri, SQL, return_type="arrow", **partitions)
            frame = table.to_pandas()
        return clock.result(**_describe(frame))
    if variant == "pd_read_sql_psycopg":
        import sqlalchemy

        engine = sqlalchemy.create_engine(_url().set(drivername="postgresql+psycopg"))
        with engine.connect() as conn, _Clock() as clock:
            frame = pd.read_sql(SQL, conn)
        engine.dispose()
        return clock.result(**_describe(frame))
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(uri) as conn:
        with _Clock() as clock:
            if variant == "pd_read_sql_adbc":
                frame = pd.read_sql(SQL, conn)
            else:
                with conn.cursor() as cursor:
                    cursor.execute(SQL)
                    frame = cursor.fetch_arrow_table().to_pandas()
        return clock.result(**_describe(frame))


def run_child(variant: str) -> dict[str, Any]:
    """Measure one load of ``variant`` in this process."""
    if variant in BLOGDATA:
        out = asyncio.run(_blogdata(variant))
    elif variant.startswith("sqla_async"):
        out = asyncio.run(_sqla_rows(as_tuples=variant == "sqla_async_tuples"))
    else:
        out = _sync(variant)
    out.setdefault("peak_mb", _rss_mb())
    return out


# --- the parent: interleaved rounds, paired ratios, RESULTS.md --------------------------------


def _measure(variant: str) -> dict[str, Any]:
    proc = subprocess.run(
        [sys.executable, str(HERE), "--child", variant],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{proc.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _verdict(met: bool) -> str:
    return "**met**" if met else "**missed**"


class _Stats:
    """Medians and paired ratios over the samples of one run."""

    def __init__(self, samples: dict[str, list[dict[str, Any]]]) -> None:
        self.samples = samples
        self.times = {v: [s["seconds"] for s in samples[v]] for v in samples}

    def has(self, *variants: str) -> bool:
        return all(v in self.samples for v in variants)

    def per_round(self, v: str, ref: str) -> list[float]:
        return [a / b for a, b in zip(self.times[v], self.times[ref], strict=True)]

    def ratio(self, v: str, ref: str) -> float:
        return median(self.per_round(v, ref))

    def med(self, v: str, key: str | Callable[[dict[str, Any]], float]) -> float:
        get = key if callable(key) else (lambda s: float(s[key]))
        return median([get(s) for s in self.samples[v]])

    def peak(self, v: str) -> float:
        return self.med(v, "peak_mb")

    def growth(self, v: str) -> float:
        return self.med(v, lambda s: s["peak_mb"] - s["base_mb"])

    def route(self, v: str) -> str:
        routes = sorted({str(s.get("route")) for s in self.samples[v]})
        return ",".join(routes)

    def rounds(self, v: str, ref: str) -> str:
        return ", ".join(f"{r:.2f}" for r in self.per_round(v, ref))


def _contract(sample: dict[str, Any], backend: str) -> str:
    wrong = [
        f"`{c}` {sample['dtypes'].get(c)} (contract: {t})"
        for c, t in CONTRACT[backend].items()
        if sample["dtypes"].get(c) != t
    ]
    return "every column as the contract says" if not wrong else "WRONG: " + "; ".join(wrong)


def _table(st: _Stats) -> list[str]:
    lines = [
        "| variant | route | median s | min | max | vs adbc_to_pandas (paired) | client CPU s "
        "| busy cores | peak RSS MB | RSS growth MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for v in sorted(st.samples, key=lambda v: median(st.times[v])):
        r = f"{st.ratio(v, REFERENCE):.2f}x" if st.has(REFERENCE) else ""
        route = st.route(v) if v in BLOGDATA else ""
        mem = "" if v in FLOORS else f"{st.peak(v):.0f} | {st.growth(v):.0f}"
        lines.append(
            f"| {v} | {route} | {median(st.times[v]):.2f} | {min(st.times[v]):.2f} | "
            f"{max(st.times[v]):.2f} | {r} | {st.med(v, 'cpu_s'):.2f} | "
            f"{st.med(v, 'busy_cores'):.2f} | {mem or ' | '} |"
        )
    lines += [
        "",
        "What each variant returned (first round; every round is checked to agree on the counts):",
        "",
        "| variant | rows | NULL content | '' content | NULL views | views / content / "
        "created_at dtypes |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for v in st.samples:
        if v in FLOORS:
            continue
        s = st.samples[v][0]
        d = s["dtypes"]
        lines.append(
            f"| {v} | {s['rows']:,} | {s['null_content']:,} | {s['empty_content']:,} | "
            f"{s['null_views']:,} | {d.get('views')} / {d.get('content')} / "
            f"{d.get('created_at')} |"
        )
    return lines


def _counts_agree(st: _Stats) -> list[str]:
    keys = ("rows", "null_content", "empty_content", "null_views")
    seen = {
        v: {tuple(s[k] for k in keys) for s in st.samples[v]} for v in st.samples if v not in FLOORS
    }
    distinct = set().union(*seen.values()) if seen else set()
    if len(distinct) <= 1:
        return []
    return [
        "- **Counts differ between variants** (rows, NULL content, '' content, NULL views): "
        + "; ".join(f"{v} {sorted(c)}" for v, c in seen.items())
    ]


def _why(st: _Stats, v: str) -> str:
    """The loader's own DEBUG line(s) for ``v``'s load, from its first round."""
    lines = st.samples[v][0].get("why") or []
    return "; ".join(f"`{line}`" for line in lines) or "(no log line)"


def _limits(st: _Stats, v: str, floor: str) -> str:
    """What bounds variant ``v``, by the route it took."""
    route = st.route(v)
    cores = f"busy cores during its loads: {st.med(v, 'busy_cores'):.2f} of 2"
    if route == "copy":
        return (
            "it took the CSV COPY route on the session's own connection, so the server's CSV "
            f"encoding bounds it ({cores}). {floor}"
        ).strip()
    return f"route `{route}` ({cores})."


def _checks(st: _Stats, loads: list[float]) -> list[str]:
    out: list[str] = []
    floor = ""
    if st.has("psql_copy_csv", "psql_copy_binary"):
        csv, binary = median(st.times["psql_copy_csv"]), median(st.times["psql_copy_binary"])
        floor = (
            "The server alone, into psql and /dev/null, takes "
            f"{st.ratio('psql_copy_csv', 'psql_copy_binary'):.2f}x as long for CSV as for "
            f"binary COPY (paired; {csv:.2f} s against {binary:.2f} s)."
        )
    has_ref = st.has(REFERENCE)
    if has_ref and st.has("load_frame"):
        r = st.ratio("load_frame", REFERENCE)
        out.append(
            f"- {_verdict(r <= 1.0)} `load_frame` with its defaults in a read-only session vs "
            f"ADBC by hand: **{r:.2f}x** (paired median; per round "
            f"{st.rounds('load_frame', REFERENCE)}); target <= 1.0x. Route taken: "
            f"`{st.route('load_frame')}`; the loader's log: {_why(st, 'load_frame')}. Dtypes: "
            f"{_contract(st.samples['load_frame'][0], 'numpy_nullable')} (ADBC by hand gives "
            f"`{st.samples[REFERENCE][0]['dtypes']['views']}` for the nullable `views` and "
            f"`{st.samples[REFERENCE][0]['dtypes']['content']}` text). What limits it: "
            f"{_limits(st, 'load_frame', floor)}"
        )
        peak, ref_peak = st.peak("load_frame"), st.peak(REFERENCE)
        grow, ref_grow = st.growth("load_frame"), st.growth(REFERENCE)
        out.append(
            f"- {_verdict(peak <= ref_peak)} Peak RSS: `load_frame` {peak:.0f} MB vs ADBC by "
            f"hand {ref_peak:.0f} MB (target <=); growth during the load {grow:.0f} MB vs "
            f"{ref_grow:.0f} MB ({_verdict(grow <= ref_grow)} on that reading). The blogdata "
            "process also holds SQLAlchemy, asyncpg and blogdata (RSS before the load: "
            f"{st.med('load_frame', 'base_mb'):.0f} vs {st.med(REFERENCE, 'base_mb'):.0f} MB)."
        )
    if has_ref and st.has("load_frame_arrow"):
        out.append(
            f'- `load_frame(dtype_backend="pyarrow")` (route `{st.route("load_frame_arrow")}`):'
            f" {st.ratio('load_frame_arrow', REFERENCE):.2f}x ADBC by hand, peak RSS "
            f"{st.peak('load_frame_arrow'):.0f} MB; dtypes: "
            f"{_contract(st.samples['load_frame_arrow'][0], 'pyarrow')}."
        )
    if has_ref and st.has("load_frame_dirty"):
        r = st.ratio("load_frame_dirty", REFERENCE)
        out.append(
            f"- Reported (no target; about 1.5x before the rewrite): `load_frame` in a session "
            f"with an uncommitted write takes route `{st.route('load_frame_dirty')}` and is "
            f"**{r:.2f}x** ADBC by hand (per round {st.rounds('load_frame_dirty', REFERENCE)}); "
            f"peak RSS {st.peak('load_frame_dirty'):.0f} MB; the loader's log: "
            f"{_why(st, 'load_frame_dirty')}; dtypes: "
            f"{_contract(st.samples['load_frame_dirty'][0], 'numpy_nullable')}. What limits it: "
            f"{_limits(st, 'load_frame_dirty', floor)}"
        )
    if st.has("stream_frames", "load_frame"):
        r = st.ratio("stream_frames", "load_frame")
        also = [
            f"{st.ratio('stream_frames', v):.2f}x `{v}` (route `{st.route(v)}`)"
            for v in ("load_frame_dirty",)
            if st.has(v)
        ]
        out.append(
            f"- {_verdict(r <= 1.3)} `stream_frames` (50k-row chunks, route "
            f"`{st.route('stream_frames')}`) total time vs `load_frame`'s (route "
            f"`{st.route('load_frame')}`): **{r:.2f}x** (paired; per round "
            f"{st.rounds('stream_frames', 'load_frame')}); target <= 1.3x. "
            + (f"Against the other loads: {', '.join(also)}. " if also else "")
            + "What limits it: it streams the same CSV COPY on the session's own connection "
            f"and cuts it into chunks. {floor}".strip()
        )
        s_grow, f_grow = st.growth("stream_frames"), st.growth("load_frame")
        out.append(
            f"- {_verdict(s_grow / f_grow < 0.25)} `stream_frames` RSS growth {s_grow:.0f} MB vs "
            f"{f_grow:.0f} MB for the full frame (`load_frame`): **{s_grow / f_grow:.0%}**; "
            f"target < 25%" + f". Whole-process peak {st.peak('stream_frames'):.0f} vs "
            f"{st.peak('load_frame'):.0f} MB (the imported libraries count in both). Chunk "
            f"dtypes: {_contract(st.samples['stream_frames'][0], 'numpy_nullable')} in every "
            "chunk."
        )
    peers = []
    if has_ref and st.has("connectorx_p2", "connectorx"):
        peers.append(
            f'connectorx with `partition_on="id", partition_num=2` is '
            f"{st.ratio('connectorx_p2', 'connectorx'):.2f}x connectorx on one connection and "
            f"{st.ratio('connectorx_p2', REFERENCE):.2f}x ADBC (client CPU "
            f"{st.med('connectorx_p2', 'cpu_s'):.2f} s against "
            f"{st.med('connectorx', 'cpu_s'):.2f} s): its two server backends and its decoder "
            "share the 2 cores"
        )
    if has_ref and st.has("duckdb_scanner"):
        d = st.samples["duckdb_scanner"][0]["dtypes"]
        peers.append(
            f"DuckDB's scanner is {st.ratio('duckdb_scanner', REFERENCE):.2f}x ADBC (client CPU "
            f"{st.med('duckdb_scanner', 'cpu_s'):.2f} s, peak RSS "
            f"{st.peak('duckdb_scanner'):.0f} MB); it gives `{d['id']}` ids, `{d['views']}` "
            f"`views` and `{d['created_at']}` timestamps"
        )
    if has_ref and st.has("pd_read_sql_adbc"):
        peers.append(
            f"`pandas.read_sql` on ADBC is {st.ratio('pd_read_sql_adbc', REFERENCE):.2f}x ADBC"
        )
    if has_ref and st.has("pd_read_sql_psycopg"):
        peers.append(
            f"`pandas.read_sql` on SQLAlchemy + psycopg 3 is "
            f"{st.ratio('pd_read_sql_psycopg', REFERENCE):.2f}x ADBC"
        )
    if peers:
        out.append("- Peers: " + "; ".join(peers) + ".")
    if loads:
        out.append(
            "- The machine: 2 cores shared by the server, the loading client and other "
            "engineers' work; the 1-minute load average sampled before each load of the run had "
            f"median {median(loads):.1f}, range {min(loads):.1f}-{max(loads):.1f} (this "
            "benchmark's own client and server backend account for up to about 2 of it). "
            "'busy cores' is how many of the 2 cores were busy during the load (the client, the "
            "server and anything else); 'client CPU s' is the loading process's own CPU time "
            "(all its threads)."
        )
    return out


def _report(
    samples: dict[str, list[dict[str, Any]]],
    rounds: int,
    posts: int,
    loads: list[float],
    facts: dict[str, str],
    load_start: str,
    load_end: str,
    measured: str,
) -> str:
    st = _Stats(samples)
    lines = [
        f"Measured {measured}; PostgreSQL {facts['server_version']} service at 127.0.0.1:5432 "
        f"on the same machine (server_encoding {facts['server_encoding']}, shared_buffers "
        f"{facts['shared_buffers']}; the table is in the OS page cache).",
        f"{posts:,} posts (`SELECT {COLUMNS} FROM posts`, or `select(Post)`), {rounds} "
        "interleaved rounds (order rotated each round), each variant in a fresh process; times "
        "cover the load only: every variant's connections are open before the clock starts. "
        "Peak RSS is the child process's; RSS growth is that peak minus the RSS just before the "
        "load (psql runs as its own process: no RSS shown). Ratios are paired per round, then "
        "the median.",
        f"Load average (1, 5, 15 min) at the start: {load_start}; at the end: {load_end}.",
        "",
        *_table(st),
        "",
        *_counts_agree(st),
        *_checks(st, loads),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--only", default="", help="comma-separated variants")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", action="store_true", help="only create/seed the database")
    parser.add_argument("--no-write", action="store_true", help="print, do not write RESULTS.md")
    parser.add_argument(
        "--save", type=Path, help="write the raw samples to this JSON file, after every load"
    )
    parser.add_argument(
        "--render", type=Path, help="only re-render a --save file's report (its complete rounds)"
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(args.child)))
        return
    if args.render:
        run = _complete_rounds(json.loads(args.render.read_text()))
    else:
        run = _run(args)
        if run is None:
            return
    body = _report(**run)
    print(body)
    if not args.no_write:
        write_section("loaders", "## Loaders: 1M posts into pandas (`bench_loaders.py`)\n\n" + body)


def _run(args: argparse.Namespace) -> dict[str, Any] | None:
    posts = asyncio.run(ensure_database())
    print(f"{posts:,} posts in {DATABASE}", flush=True)
    if args.prepare:
        return None
    variants = [v for v in args.only.split(",") if v] or VARIANTS
    unknown = sorted(set(variants) - set(VARIANTS) - set(OPTIONAL))
    if unknown:
        raise SystemExit(f"unknown variants: {', '.join(unknown)}")
    facts = asyncio.run(_server_facts())
    measured, load_start = machine(), load_average()
    _measure(REFERENCE)  # warm the server's cache
    loads: list[float] = []
    partial: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    run: dict[str, Any] = {
        "samples": partial,
        "rounds": args.rounds,
        "posts": posts,
        "loads": loads,
        "facts": facts,
        "load_start": load_start,
        "load_end": "",
        "measured": measured,
    }

    def measure(variant: str) -> dict[str, Any]:
        result = _measure(variant)
        partial[variant].append(result)
        if args.save:  # a run cut short can still be rendered from its complete rounds
            args.save.write_text(json.dumps({**run, "load_end": load_average()}, indent=1))
        return result

    run["samples"] = interleaved(variants, args.rounds, measure, loads)
    run["load_end"] = load_average()
    if args.save:
        args.save.write_text(json.dumps(run, indent=1))
    return run


def _complete_rounds(run: dict[str, Any]) -> dict[str, Any]:
    """Keep the rounds every variant finished (a saved run may have been cut short)."""
    samples = run["samples"]
    rounds = min(len(s) for s in samples.values())
    if rounds == 0:
        raise SystemExit("the saved run has no complete round")
    # Within a round every variant ran once: trim the load samples to those rounds too.
    loads = run["loads"][: rounds * len(samples)]
    return {
        **run,
        "samples": {v: s[:rounds] for v, s in samples.items()},
        "rounds": rounds,
        "loads": loads,
    }


if __name__ == "__main__":
    main()
