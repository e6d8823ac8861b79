"""Round trips of a small load, counted on the wire.

A TCP proxy between the driver and the server reads the frontend protocol and counts round
trips: a message the client sends after the server has answered starts one (the messages
asyncpg sends together, such as Parse/Describe/Flush for ``prepare`` or Bind/Execute/Sync for a
``fetch``, are one). asyncpg's own query logger sees neither ``prepare`` nor COPY, hence the
proxy.

Counts (after the session's BEGIN, which ``session.execute`` pays as well), for a load of at
most one row of ``posts`` selected by a bound id ("bound"), and a ``text()`` query without
parameters ("plain"), by ``route="auto"`` and ``route="rows"``:

- before issue 19 (counted by this test on the code of issue 17): bound 11 (auto) / 10 (rows),
  plain 9 / 8: a state query, SAVEPOINT/prepare/RELEASE, SAVEPOINT/prepare of the literal
  twin/RELEASE, SAVEPOINT/COPY (or fetch)/RELEASE, and asyncpg closing the previous load's named
  statement; a session's first load paid a ``SELECT 1`` more to begin the transaction.
- now (``ONE_ROW``): bound 5 / 4, plain 4 / 4: SAVEPOINT, one prepare (PostgreSQL's unnamed
  statement: nothing to close later), the literal twin only for bound values on a COPY route,
  COPY or fetch, RELEASE; the session's state comes from the settings the server reports to the
  driver. A session's first load adds only the BEGIN any statement would send (``FIRST``).
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import URL, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from blogdata.db.engine import create_engine
from blogdata.loaders import load_frame
from blogdata.models import Post

_SSL_REQUEST = 80877103


@dataclass
class Proxy:
    """A TCP proxy that counts the client's Query and Sync messages, per connection."""

    host: str
    port: int
    socket_dir: str | None = None
    counts: list[int] = field(default_factory=list)
    server: asyncio.Server | None = None

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        if self.socket_dir is not None:  # the embedded server listens on a Unix socket only
            path = f"{self.socket_dir}/.s.PGSQL.{self.port}"
            server_r, server_w = await asyncio.open_unix_connection(path)
        else:
            server_r, server_w = await asyncio.open_connection(self.host, self.port)
        index = len(self.counts)
        self.counts.append(0)
        spoke = [True]  # the server has answered since the client last sent a message

        async def upstream() -> None:
            typed = False
            try:
                while True:
                    if not typed:  # the startup packet (or an SSL request): no type byte
                        head = await client_r.readexactly(4)
                        body = await client_r.readexactly(struct.unpack("!i", head)[0] - 4)
                        typed = struct.unpack("!i", body[:4])[0] != _SSL_REQUEST
                        server_w.write(head + body)
                    else:
                        kind = await client_r.readexactly(1)
                        head = await client_r.readexactly(4)
                        body = await client_r.readexactly(struct.unpack("!i", head)[0] - 4)
                        if spoke[0]:  # the first message since the server last answered
                            self.counts[index] += 1
                            spoke[0] = False
                        server_w.write(kind + head + body)
                    await server_w.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                server_w.close()

        async def downstream() -> None:
            try:
                while data := await server_r.read(1 << 16):
                    spoke[0] = True
                    client_w.write(data)
                    await client_w.drain()
            except ConnectionError:
                pass
            client_w.close()

        await asyncio.gather(upstream(), downstream())

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()


@pytest.fixture
async def counted(database_url: URL) -> AsyncIterator[tuple[AsyncEngine, Proxy]]:
    """An engine of one connection whose every message passes through a counting proxy."""
    socket_dir = database_url.query.get("host")
    proxy = Proxy(
        database_url.host or "127.0.0.1",
        database_url.port or 5432,
        socket_dir if isinstance(socket_dir, str) else None,
    )
    port = await proxy.start()
    engine = create_engine(
        database_url.difference_update_query(["host"]).set(host="127.0.0.1", port=port),
        pool_size=1,
        max_overflow=0,
        connect_args={"ssl": False},
    )
    try:
        yield engine, proxy
    finally:
        await engine.dispose()
        await proxy.close()


#: Round trips of a one-row load (after the session's BEGIN): SAVEPOINT, prepare (the column
#: types), [prepare of the literal twin, only with bound values], COPY or fetch, RELEASE.
ONE_ROW = {
    ("bound", "auto"): 5,
    ("bound", "rows"): 4,
    ("plain", "auto"): 4,
    ("plain", "rows"): 4,
}


#: A session's first load: BEGIN (sent by SQLAlchemy's adapter, as for any first statement), then
#: a plain one-row load.
FIRST = 1 + ONE_ROW[("plain", "auto")]


async def _round_trips(
    engine: AsyncEngine, proxy: Proxy, stmt: object, route: str, *, first: bool = False
) -> int:
    async with AsyncSession(engine) as db:
        if first:
            await db.connection()  # checked out; the driver's BEGIN is not sent yet
        else:
            await db.execute(text("select 1"))  # the connection and the session's BEGIN
        before = sum(proxy.counts)
        frame = await load_frame(db, stmt, route=route)  # type: ignore[arg-type]
        after = sum(proxy.counts)
        assert len(frame) <= 1
    return after - before


async def test_a_one_row_load_costs_few_round_trips(
    counted: tuple[AsyncEngine, Proxy],
) -> None:
    engine, proxy = counted
    bound = select(Post.id, Post.title).where(Post.id == 1)
    plain = text("select 1 as a, 'x'::text as b")
    got = {
        (name, route): await _round_trips(engine, proxy, stmt, route)
        for name, stmt in (("bound", bound), ("plain", plain))
        for route in ("auto", "rows")
    }
    assert got == ONE_ROW, got
    plain = text("select 1 as a")
    assert await _round_trips(engine, proxy, plain, "auto", first=True) == FIRST
