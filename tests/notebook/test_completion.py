"""Tab completion in %sql and %%sql, through IPython's own completer, from the live catalog."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.completer import Completion, provisionalcompleter
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL

from blogdata.db.engine import create_engine
from blogdata.notebook import completion, current_engine
from tests.notebook.shell import run, sql_shell


@pytest.fixture(scope="module")
def shell(database_url: URL) -> Iterator[InteractiveShell]:
    engine = create_engine(database_url, poolclass=NullPool)
    with sql_shell(engine) as ip:
        yield ip


def offered(ip: InteractiveShell, source: str, offset: int | None = None) -> list[str]:
    """What Tab offers at ``offset`` (the end by default), through IPython's completer."""
    return [c.text for c in completions(ip, source, offset)]


def completions(ip: InteractiveShell, source: str, offset: int | None = None) -> list[Completion]:
    """IPython's completions at ``offset`` (its documented, provisional API)."""
    with provisionalcompleter():
        return list(ip.Completer.completions(source, len(source) if offset is None else offset))


def until_offered(ip: InteractiveShell, source: str, wanted: str, seconds: float = 20) -> list[str]:
    """Complete until ``wanted`` is offered (the catalog is read in the background)."""
    deadline = time.monotonic() + seconds
    while True:
        found = offered(ip, source)
        if wanted in found or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def test_tables_after_from_and_join(shell: InteractiveShell) -> None:
    found = until_offered(shell, "%sql SELECT * FROM po", "posts")
    assert "posts" in found and "post_tags" in found and "users" not in found
    assert "users" in offered(shell, "%sql SELECT * FROM posts p JOIN u")
    cell = "%%sql -o top\nSELECT *\nFROM users AS u\nJOIN ta"
    assert offered(shell, cell) == ["tags"]


def test_columns_after_an_alias_or_a_table_name(shell: InteractiveShell) -> None:
    until_offered(shell, "%sql SELECT * FROM po", "posts")
    assert "author_id" in offered(shell, "%sql SELECT p. FROM posts p", len("%sql SELECT p."))
    cell = "%%sql\nSELECT p.ti\nFROM posts AS p, users u\nWHERE u.id = 1"
    assert offered(shell, cell, cell.index("p.ti") + 4) == ["title"]
    line = "%sql SELECT u.em FROM posts p JOIN users u ON true"
    assert offered(shell, line, line.index("u.em") + 4) == ["email"]
    assert "email" in offered(shell, "%sql SELECT users.em")
    # The replaced text is the word after the dot only.
    found = completions(shell, "%sql SELECT p.ti FROM posts p", 16)
    assert [(c.start, c.end, c.text) for c in found] == [(14, 16, "title")]


def test_keywords_in_the_case_being_typed(shell: InteractiveShell) -> None:
    assert "SELECT" in offered(shell, "%sql SEL")
    assert "select" in offered(shell, "%sql sel")
    assert "WHERE" in offered(shell, "%%sql\nSELECT * FROM posts WH")
    # Outside %sql, Python completion as usual.
    assert "SELECT" not in offered(shell, "SEL")


def test_the_catalog_is_read_again_after_ddl_through_sql(shell: InteractiveShell) -> None:
    name = f"fresh_{uuid.uuid4().hex[:8]}"
    until_offered(shell, "%sql SELECT * FROM po", "posts")
    assert name not in offered(shell, "%sql SELECT * FROM fresh_")
    run(shell, f"%sql CREATE TABLE {name} (first_word text, second_word text)")
    try:
        assert name in until_offered(shell, "%sql SELECT * FROM fresh_", name)
        line = f"%sql SELECT f.sec FROM {name} f"
        assert offered(shell, line, line.index(".sec") + 4) == ["second_word"]
    finally:
        run(shell, f"%sql DROP TABLE {name}")
    deadline = time.monotonic() + 20
    while name in offered(shell, "%sql SELECT * FROM fresh_") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert name not in offered(shell, "%sql SELECT * FROM fresh_")


def test_a_plain_select_does_not_read_the_catalog_again(shell: InteractiveShell) -> None:
    until_offered(shell, "%sql SELECT * FROM po", "posts")
    entry = completion._entries[_current().sync_engine]
    run(shell, "%sql SELECT 1 AS one")
    assert entry.pending is None
    run(shell, "%%sql\n-- a comment first\nSELECT 2 AS two")
    assert entry.pending is None


async def test_completion_answers_without_waiting_for_a_locked_catalog(
    shell: InteractiveShell, database_url: URL
) -> None:
    holder = create_engine(database_url, poolclass=NullPool)
    try:
        async with holder.connect() as conn:
            # The catalog read scans pg_attribute: an exclusive lock on it makes the read wait.
            await conn.execute(text("BEGIN"))
            await conn.execute(text("LOCK TABLE pg_catalog.pg_attribute IN ACCESS EXCLUSIVE MODE"))
            completion.invalidate(_current())
            completion._entries[_current().sync_engine].done = None  # nothing cached either
            # The lock is held until the ROLLBACK below: a completer that waited for the
            # catalog could not answer here at all (no timed assertion: behaviour, not speed).
            assert "posts" not in offered(shell, "%sql SELECT * FROM po")  # no tables yet
            assert "SELECT" in offered(shell, "%sql SEL")  # keywords need no catalog
            await asyncio.sleep(0.3)
            assert "posts" not in offered(shell, "%sql SELECT * FROM po")  # still blocked
            await conn.execute(text("ROLLBACK"))
        assert "posts" in until_offered(shell, "%sql SELECT * FROM po", "posts")
    finally:
        await holder.dispose()


def _current() -> Any:
    return current_engine()
