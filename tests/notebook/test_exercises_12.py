"""Notebook 12's exercise check: write on the primary, wait for the standby, read there.

A primary and its streaming hot standby are started for this module (as in
``tests/test_topology.py``), whatever ``BLOGDATA_TEST_DATABASE_URL`` says.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import NullPool, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.db import migrate
from blogdata.db.engine import create_engine
from blogdata.db.routing import create_read_engine, read_session, wait_for_replica
from blogdata.db.sessions import session_scope
from blogdata.errors import ExerciseError
from blogdata.models import Post, Tag, post_tags
from blogdata.notebook.exercises import check_exercise_12
from blogdata.servers import embedded, replica
from tests.helpers import create_database, server_home

DATABASE = "blogdata_exercise_12"


@dataclass
class Topology:
    primary: AsyncEngine
    reader: AsyncEngine


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    with server_home("blogdata-exercise-12-") as folder:
        yield folder


@pytest.fixture(scope="module")
async def topology(home: Path) -> AsyncIterator[Topology]:
    from blogdata.seed import seed

    url = await create_database(embedded.start(home).url("postgres"), DATABASE)
    await migrate.upgrade(url)
    seeder = create_engine(url, poolclass=NullPool)
    try:
        await seed(seeder, users=40)
    finally:
        await seeder.dispose()
    replica.start(home)
    primary = create_engine(url)
    reader = create_read_engine(replica.status(home).url(DATABASE))  # type: ignore[union-attr]
    try:
        yield Topology(primary, reader)
    finally:
        await reader.dispose()
        await primary.dispose()


def _count(tag: str) -> Any:
    return (
        select(func.count())
        .select_from(post_tags)
        .join(Tag, Tag.id == post_tags.c.tag_id)
        .where(Tag.name == tag)
    )


async def _link(primary: AsyncEngine, tag: str) -> None:
    without_it = ~Post.tags.any(Tag.name == tag)
    async with session_scope(primary) as db:
        post_id = await db.scalar(select(Post.id).where(without_it).order_by(Post.id).limit(1))
        tag_id = await db.scalar(select(Tag.id).where(Tag.name == tag))
        await db.execute(insert(post_tags).values(post_id=post_id, tag_id=tag_id))


async def link_and_count(primary: AsyncEngine, reader: AsyncEngine, tag: str) -> int:
    """The notebook's solution."""
    await _link(primary, tag)
    await wait_for_replica(primary=primary, replica=reader, timeout=30)
    async with read_session(reader) as db:
        return int(await db.scalar(_count(tag)) or 0)


async def no_wait(primary: AsyncEngine, reader: AsyncEngine, tag: str) -> int:
    """Reads the standby at once: right only when replay happened to be quick."""
    await _link(primary, tag)
    async with session_scope(primary) as db:
        expected = int(await db.scalar(_count(tag)) or 0)
    async with read_session(reader) as db:
        seen = int(await db.scalar(_count(tag)) or 0)
    return max(seen, expected)  # the race made deterministic: the right value, every time


async def read_on_primary(primary: AsyncEngine, reader: AsyncEngine, tag: str) -> int:
    """Right value, wrong technique: waits, then counts on the primary."""
    await _link(primary, tag)
    await wait_for_replica(primary=primary, replica=reader, timeout=30)
    async with session_scope(primary) as db:
        return int(await db.scalar(_count(tag)) or 0)


async def two_links(primary: AsyncEngine, reader: AsyncEngine, tag: str) -> int:
    await _link(primary, tag)
    return await link_and_count(primary, reader, tag)


async def _links(topology: Topology) -> int:
    async with session_scope(topology.primary) as db:
        return int(await db.scalar(select(func.count()).select_from(post_tags)) or 0)


async def test_the_solution_passes_and_the_link_is_removed(
    topology: Topology, capsys: pytest.CaptureFixture[str]
) -> None:
    before = await _links(topology)
    await check_exercise_12(link_and_count, topology.primary, topology.reader)
    assert "waited for, and counted on the standby" in capsys.readouterr().out
    assert await _links(topology) == before


async def test_the_number_typed_in_is_refused(topology: Topology) -> None:
    with pytest.raises(ExerciseError, match="not your async function.*cannot pass"):
        await check_exercise_12(1, topology.primary, topology.reader)


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(no_wait, "you did not wait for the standby", id="no-wait"),
        pytest.param(read_on_primary, "not read on the standby after the wait", id="primary"),
        pytest.param(two_links, "insert exactly one post_tags row", id="two-links"),
    ],
)
async def test_wrong_functions_are_refused_and_their_links_removed(
    topology: Topology, answer: Any, hint: str
) -> None:
    before = await _links(topology)
    with pytest.raises(ExerciseError, match=hint):
        await check_exercise_12(answer, topology.primary, topology.reader)
    assert await _links(topology) == before
