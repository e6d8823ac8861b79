"""``stream_frames`` keeps memory bounded: over a few hundred thousand rows its RSS growth stays
well under the size of the whole frame, and every chunk has the same dtypes.

Measured in a fresh Python process (so nothing else of the test run is in its peak), from
``/proc/self/status``' ``VmHWM`` (the peak resident set): after a warm-up stream that loads the
decoder's kernels and the first allocations, the peak grows by what the stream holds at most at
once. The same process then loads the whole result with ``load_frame``, showing that this
measure does see a full frame.
"""

from __future__ import annotations

import json
import subprocess
import sys

from sqlalchemy.engine import URL

CHILD = r"""
import asyncio, json, sys
from sqlalchemy import NullPool, text
from blogdata.db.engine import create_engine
from blogdata.loaders import load_frame, stream_frames

def hwm() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")

def sql(n: int) -> str:
    return (f"SELECT g AS id, repeat(md5(g::text), 3) AS title, g * 0.5::float8 AS score, "
            f"timestamptz '2026-01-01 00:00+00' + g * interval '1 second' AS at "
            f"FROM generate_series(1, {n}) AS g")

async def main(url: str, rows: int, chunk: int) -> None:
    engine = create_engine(url, poolclass=NullPool)
    async with engine.connect() as conn:
        async with conn.begin():
            async for _ in stream_frames(conn, text(sql(chunk * 3)), chunk_size=chunk):
                pass  # warm: the decoder's kernels, pandas' and pyarrow's first allocations
            before = hwm()
            dtypes, routes, count = set(), set(), 0
            async for frame in stream_frames(conn, text(sql(rows)), chunk_size=chunk):
                dtypes.add(tuple(map(str, frame.dtypes)))
                routes.add(frame.attrs["blogdata.route"])
                count += len(frame)
                del frame
            streamed = hwm() - before
            full = await load_frame(conn, text(sql(rows)))
            size = int(full.memory_usage(deep=True).sum())
            full_growth = hwm() - before
    await engine.dispose()
    print(json.dumps({"stream_growth": streamed, "frame_bytes": size, "full_growth": full_growth,
                      "dtypes": sorted(dtypes), "routes": sorted(routes), "rows": count}))

asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
"""

ROWS, CHUNK = 400_000, 20_000


def test_a_binary_stream_grows_rss_by_far_less_than_the_whole_frame(server_url: URL) -> None:
    url = server_url.render_as_string(hide_password=False)
    out = subprocess.run(
        [sys.executable, "-c", CHILD, url, str(ROWS), str(CHUNK)],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["rows"] == ROWS and got["routes"] == ["binary"], got
    assert got["dtypes"] == [["Int64", "string", "Float64", "datetime64[us, UTC]"]], got
    frame = got["frame_bytes"]  # about 52 MB
    assert got["full_growth"] > frame // 2, got  # the measure sees a whole frame ...
    assert got["stream_growth"] < frame // 4, got  # ... and the stream stays under a quarter
