"""Binary COPY decode (blogdata/loaders/_binary.py) against the CSV parse and hand ADBC.

One scratch database on the service (127.0.0.1:5432 unless BENCH_SERVER_URL says otherwise),
a table of ROWS rows x 8 columns (int4, int8, float8, text with NULLs, timestamptz with NULLs,
bool, float4, text), dropped at the end. Measured, paired and interleaved, medians of REPEATS:

- decode only: the captured binary COPY bytes fed to the decoder in asyncpg's chunks, against
  pyarrow's CSV reader on the captured CSV COPY bytes (the CSV route's options);
- end to end on one asyncpg connection: binary COPY + decode, against the CSV route's
  ``copy_to_table``, against hand ADBC ``fetch_arrow_table()`` (its own connection);
- the decoder's kernels as plain Python (no numba) on a slice, extrapolated;
- a new process: import + first decode of a small stream, numba cache empty and warm.

Usage: python benchmarks/bench_binary_decode.py [ROWS] [REPEATS]
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import tempfile
import time
import uuid
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.csv as pacsv
from _report import median  # type: ignore[import-not-found]

from blogdata.loaders import _binary
from blogdata.loaders._copy import _header, _options, copy_to_table
from blogdata.loaders._dtypes import _WIRE_TYPE

SERVER = os.environ.get("BENCH_SERVER_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
ROWS = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
REPEATS = int(sys.argv[2]) if len(sys.argv) > 2 else 5

CREATE = """
create table bench as
select i::int4 as a, (i::int8 * 1000003) as b, i * 0.5::float8 as c,
       case when i % 10 = 0 then null else 'post title number ' || i end as d,
       case when i % 7 = 0 then null
            else timestamptz '2020-01-01 00:00+00' + i * interval '1 second' end as e,
       i % 2 = 0 as f, (i % 1000)::float4 / 7 as g, md5(i::text) as h
from generate_series(1, {rows}) as i
"""
QUERY = "select * from bench"
KINDS = ["int", "int", "float64", "text", "timestamptz", "bool", "float32", "text"]
CHUNK = 65536  # bytes per chunk handed to the decoder in "decode only"


async def _capture(conn: Any, fmt: str) -> tuple[bytes, list[int]]:
    parts: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        parts.append(bytes(chunk))

    await conn.copy_from_query(QUERY, output=sink, format=fmt)
    return b"".join(parts), [len(p) for p in parts]


def _decode(data: bytes, oids: list[int], chunk: int = CHUNK) -> pa.Table:
    decoder = _binary.BinaryCopyDecoder(oids)
    batches = []
    for start in range(0, len(data), chunk):
        batches += decoder.feed(data[start : start + chunk])
    batches += decoder.finish()
    return pa.Table.from_batches(batches, schema=decoder.schema)


def _parse_csv(data: bytes) -> pa.Table:
    wires = [_WIRE_TYPE[k] for k in KINDS]
    stream = io.BytesIO(_header(wires) + data)
    return pacsv.read_csv(stream, **_options(wires, 4 << 20))


async def _binary_e2e(conn: Any, oids: list[int]) -> pa.Table:
    decoder = _binary.BinaryCopyDecoder(oids)
    batches: list[pa.RecordBatch] = []

    async def sink(chunk: bytes) -> None:
        batches.extend(decoder.feed(chunk))

    await conn.copy_from_query(QUERY, output=sink, format="binary")
    batches += decoder.finish()
    return pa.Table.from_batches(batches, schema=decoder.schema)


def _adbc(uri: str) -> pa.Table:
    import adbc_driver_postgresql.dbapi as adbc

    with adbc.connect(uri) as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        return cur.fetch_arrow_table()


_COLD = """
import time; t0 = time.perf_counter()
import asyncio, sys
from blogdata.loaders import _binary
from blogdata.loaders._binary import BinaryCopyDecoder
_binary._JIT_FROM = int(sys.argv[3])
t1 = time.perf_counter()
data = open(sys.argv[1], 'rb').read(); oids = [int(o) for o in sys.argv[2].split(',')]
d = BinaryCopyDecoder(oids); bs = d.feed(data) + d.finish()
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {sum(b.num_rows for b in bs)}")
"""


def _new_process(small: bytes, oids: list[int], cache: str, jit_from: int) -> tuple[float, float]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    path = os.path.join(cache, "stream.bin")
    with open(path, "wb") as f:
        f.write(small)
    cmd = [sys.executable, "-c", _COLD, path, ",".join(map(str, oids)), str(jit_from)]
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    imp, first, _ = out.split()
    return wall, float(imp) + float(first)


async def main() -> None:
    name = f"bench_binary_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f'create database "{name}"')
    uri = SERVER.rsplit("/", 1)[0] + f"/{name}"
    try:
        conn = await asyncpg.connect(uri)
        await conn.execute(CREATE.format(rows=ROWS))
        await conn.execute("vacuum analyze bench")
        oids = [a.type.oid for a in (await conn.prepare(QUERY)).get_attributes()]
        binary, sizes = await _capture(conn, "binary")
        csv, _ = await _capture(conn, "csv")
        print(f"{ROWS} rows x 8 columns; binary {len(binary) / 1e6:.1f} MB in {len(sizes)} chunks "
              f"(median {int(median(sizes))} B); csv {len(csv) / 1e6:.1f} MB")  # fmt: skip
        _decode(binary[:0] + binary, oids)  # compile / load the kernels, warm the caches
        same = _decode(binary, oids)
        assert same.num_rows == ROWS, same.num_rows

        wires = [_WIRE_TYPE[k] for k in KINDS]
        times: dict[str, list[float]] = {
            k: [] for k in ("decode", "csv_parse", "binary_e2e", "csv_e2e", "adbc")
        }
        for _ in range(REPEATS):
            for key, run in (
                ("decode", lambda: _decode(binary, oids)),
                ("csv_parse", lambda: _parse_csv(csv)),
                ("adbc", lambda: _adbc(uri)),
            ):
                t0 = time.perf_counter()
                run()
                times[key].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await _binary_e2e(conn, oids)
            times["binary_e2e"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            await copy_to_table(conn, QUERY, wires)
            times["csv_e2e"].append(time.perf_counter() - t0)
        med = {k: median(v) for k, v in times.items()}
        print(f"medians of {REPEATS}, interleaved:")
        for key, value in med.items():
            print(f"  {key:<11} {value:7.3f} s")
        print(f"  decode / csv_parse      {med['decode'] / med['csv_parse']:.2f}x")
        print(f"  binary_e2e / csv_e2e    {med['binary_e2e'] / med['csv_e2e']:.2f}x")
        print(f"  binary_e2e / hand ADBC  {med['binary_e2e'] / med['adbc']:.2f}x")
        print(f"  decode / hand ADBC      {med['decode'] / med['adbc']:.2f}x")

        # The same kernels as plain Python, on a slice of rows, extrapolated.
        kernels = _binary._kernels
        _binary._kernels = (_binary._scan, _binary._gather_fixed, _binary._gather_var)
        try:
            cut = await conn.fetchval("select 1")  # keep the connection warm
            del cut
            small_rows = 20_000
            part, _ = await _capture_limited(conn, small_rows)
            t0 = time.perf_counter()
            _decode(part, oids)
            python = (time.perf_counter() - t0) * ROWS / small_rows
        finally:
            _binary._kernels = kernels
        print(f"  pure-Python kernels, extrapolated to {ROWS} rows: {python:.1f} s "
              f"({python / med['decode']:.0f}x numba)")  # fmt: skip

        small, _ = await _capture_limited(conn, 1000)
        print("new process, import blogdata.loaders._binary + first decode of 1000 rows:")
        for label, jit_from in (("numba forced", 0), ("default (Python below 256 KB)", 256 << 10)):
            with tempfile.TemporaryDirectory() as cache:
                cold = _new_process(small, oids, cache, jit_from)
                warm = [_new_process(small, oids, cache, jit_from) for _ in range(3)]
            print(f"  {label}: empty numba cache {cold[1]:.2f} s (process {cold[0]:.2f} s); "
                  f"warm cache {median([w[1] for w in warm]):.2f} s "
                  f"(process {median([w[0] for w in warm]):.2f} s)")  # fmt: skip
        await conn.close()
    finally:
        await admin.execute(f'drop database if exists "{name}" with (force)')
        await admin.close()


async def _capture_limited(conn: Any, rows: int) -> tuple[bytes, list[int]]:
    parts: list[bytes] = []

    async def sink(chunk: bytes) -> None:
        parts.append(bytes(chunk))

    await conn.copy_from_query(f"{QUERY} limit {rows}", output=sink, format="binary")
    return b"".join(parts), [len(p) for p in parts]


if __name__ == "__main__":
    asyncio.run(main())
