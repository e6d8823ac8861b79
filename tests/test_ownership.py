"""blogdata never drops, empties or overwrites what it did not make (issue 17, defect 11).

Databases blogdata creates carry a marker (a comment); its helpers drop only those. ``reset``
empties exactly the blog's tables and refuses when other tables depend on them. ``demo --out``
overwrites only the charts it wrote itself.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy import NullPool, func, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.cli import main
from blogdata.config import get_settings
from blogdata.db.engine import DATABASE_MARKER, create_database, create_engine, drop_database
from blogdata.errors import AlreadyExistsError, NotOursError
from blogdata.models import Post, User
from blogdata.notebook import database_name, tutorial_database
from blogdata.seed import reset, seed
from tests.helpers import execute_sql, migrated_database, scalar_sql


async def _admin(server: URL, *statements: str) -> None:
    """Run ``statements`` on ``server`` in AUTOCOMMIT, as a user with psql would."""
    engine = create_engine(server, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as conn:
            for sql in statements:
                await conn.execute(text(sql))
    finally:
        await engine.dispose()


async def _exists(server: URL, name: str) -> bool:
    found = await scalar_sql(server, f"SELECT count(*) FROM pg_database WHERE datname = '{name}'")
    return found == 1


async def _comment(server: URL, name: str) -> object:
    return await scalar_sql(
        server,
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{name}'",
    )


@asynccontextmanager
async def users_database(server: URL, name: str) -> AsyncIterator[URL]:
    """A database made by the user (no marker) holding a table with one row; dropped after."""
    await _admin(server, f'CREATE DATABASE "{name}"')
    url = server.set(database=name)
    try:
        await execute_sql(url, "CREATE TABLE findings (n int)", "INSERT INTO findings VALUES (42)")
        yield url
    finally:
        await _admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _untouched(url: URL) -> None:
    assert await scalar_sql(url, "SELECT n FROM findings") == 42


def _assert_clear(message: str, name: str) -> None:
    assert name in message and "blogdata did not make it" in message
    assert "choose another name" in message and "drop it yourself" in message


# -- databases ----------------------------------------------------------------------------------


async def test_an_unmarked_database_survives_create_and_drop_database(server_url: URL) -> None:
    name = f"users_own_{uuid.uuid4().hex[:10]}"
    async with users_database(server_url, name) as url:
        with pytest.raises(NotOursError) as created:
            await create_database(server_url, name)
        _assert_clear(str(created.value), name)
        assert "drop and recreate" in str(created.value)
        await _untouched(url)
        with pytest.raises(NotOursError) as dropped:
            await drop_database(server_url, name)
        _assert_clear(str(dropped.value), name)
        await _untouched(url)
        assert await _comment(server_url, name) is None  # nothing was marked either


async def test_a_database_whose_marker_was_removed_is_no_longer_dropped(server_url: URL) -> None:
    name = f"unmarked_{uuid.uuid4().hex[:10]}"
    url = await create_database(server_url, name)
    try:
        await execute_sql(url, "CREATE TABLE findings (n int)", "INSERT INTO findings VALUES (42)")
        await _admin(server_url, f'COMMENT ON DATABASE "{name}" IS NULL')  # the user keeps it
        with pytest.raises(NotOursError):
            await drop_database(server_url, name)
        await _untouched(url)
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_a_database_blogdata_made_is_marked_recreated_and_dropped(server_url: URL) -> None:
    name = f"marked_{uuid.uuid4().hex[:10]}"
    try:
        url = await create_database(server_url, name)
        comment = await _comment(server_url, name)
        assert isinstance(comment, str) and comment.startswith(DATABASE_MARKER)
        await execute_sql(url, "CREATE TABLE leftover (n int)")
        holder = create_engine(url)  # a connection still open: FORCE disconnects it
        try:
            async with holder.connect() as conn:
                await conn.execute(text("SELECT 1"))
            assert await create_database(server_url, name) == url
        finally:
            await holder.dispose()
        assert await scalar_sql(url, "SELECT to_regclass('leftover')") is None  # recreated
        assert str(await _comment(server_url, name)).startswith(DATABASE_MARKER)
        await drop_database(server_url, name)
        assert not await _exists(server_url, name)
        await drop_database(server_url, name)  # missing: nothing to do, no error
    finally:
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def test_concurrent_creates_of_one_name_end_marked_and_fail_clearly(server_url: URL) -> None:
    name = f"race_{uuid.uuid4().hex[:10]}"
    try:
        for _ in range(2):  # first from nothing, then over a marked database
            results = await asyncio.gather(
                *(create_database(server_url, name) for _ in range(4)), return_exceptions=True
            )
            made = [r for r in results if isinstance(r, URL)]
            assert made and all(r.database == name for r in made)
            for failed in (r for r in results if not isinstance(r, URL)):
                assert isinstance(failed, AlreadyExistsError | NotOursError), repr(failed)
                if isinstance(failed, AlreadyExistsError):
                    assert "created by someone else" in str(failed)
            assert str(await _comment(server_url, name)).startswith(DATABASE_MARKER)
    finally:
        await drop_database(server_url, name)


async def test_tutorial_database_refuses_an_nb_database_it_did_not_make(server_url: URL) -> None:
    name = f"test-{uuid.uuid4().hex[:10]}"
    async with users_database(server_url, database_name(name)) as url:
        with pytest.raises(NotOursError) as info:
            await tutorial_database(name, seed=None)
        _assert_clear(str(info.value), database_name(name))
        await _untouched(url)


async def test_closing_a_tutorial_with_drop_refuses_once_the_marker_is_gone(
    server_url: URL,
) -> None:
    name = f"test-{uuid.uuid4().hex[:10]}"
    database = database_name(name)
    nb = await tutorial_database(name, seed=None)
    try:
        await _admin(server_url, f"COMMENT ON DATABASE \"{database}\" IS 'mine now'")
        with pytest.raises(NotOursError):
            await nb.close(drop=True)
        assert await _exists(server_url, database)
    finally:
        await nb.close()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


@pytest.fixture
def configured(server_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point BLOGDATA_DATABASE_URL at the run's server for one CLI test."""
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", server_url.render_as_string(hide_password=False))
    get_settings(reload=True)
    yield
    monkeypatch.undo()
    get_settings(reload=True)


def _one_line(err: str) -> str:
    assert err.startswith("blogdata: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def test_demo_refuses_a_database_it_did_not_make_before_any_work(
    server_url: URL, configured: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"users_demo_{uuid.uuid4().hex[:10]}"
    out = tmp_path / "charts"

    async def attempt() -> None:
        async with users_database(server_url, name) as url:
            code = await asyncio.to_thread(
                main, ["demo", "--out", str(out), "--users", "5", "--database", name]
            )
            assert code == 1
            await _untouched(url)
            assert await scalar_sql(url, "SELECT to_regclass('users')") is None  # not migrated

    asyncio.run(attempt())
    captured = capsys.readouterr()
    _assert_clear(_one_line(captured.err), name)
    assert "created database" not in captured.out
    assert not out.exists()  # no chart, not even the folder


# -- demo --out ---------------------------------------------------------------------------------


@pytest.fixture
def demo_database(server_url: URL, configured: None) -> Iterator[str]:
    """A unique demo database name on the run's server, dropped afterwards."""
    name = f"blogdata_demo_{uuid.uuid4().hex[:8]}"
    yield name
    asyncio.run(drop_database(server_url, name))


def _demo(out: Path, database: str) -> int:
    return main(["demo", "--out", str(out), "--users", "20", "--database", database])


def test_demo_never_overwrites_a_chart_file_it_did_not_write(
    server_url: URL, demo_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "top_tags.png").write_bytes(b"my own chart")
    (tmp_path / "notes.txt").write_text("mine")
    assert _demo(tmp_path, demo_database) == 1
    err = _one_line(capsys.readouterr().err)
    assert "top_tags.png" in err and "did not write" in err and "--out" in err
    assert (tmp_path / "top_tags.png").read_bytes() == b"my own chart"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "top_tags.png"]
    assert not asyncio.run(_exists(server_url, demo_database))  # refused before any work


def test_demo_overwrites_its_own_charts_and_keeps_other_files(
    demo_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "notes.txt").write_text("mine")  # a folder of the user's, with room for charts
    assert _demo(tmp_path, demo_database) == 0, capsys.readouterr().err
    first = {p.name: p.read_bytes() for p in tmp_path.glob("*.png")}
    assert len(first) == 4 and (tmp_path / ".blogdata-demo").is_file()
    assert _demo(tmp_path, demo_database) == 0, capsys.readouterr().err  # its own: rewritten
    assert {p.name for p in tmp_path.glob("*.png")} == set(first)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "users_by_role.png").write_bytes(b"edited by hand")  # now the user's
    capsys.readouterr()
    assert _demo(tmp_path, demo_database) == 1
    err = _one_line(capsys.readouterr().err)
    assert "users_by_role.png" in err and "top_tags.png" not in err
    assert (tmp_path / "users_by_role.png").read_bytes() == b"edited by hand"


def test_demo_never_writes_through_a_link_or_over_a_foreign_manifest(
    demo_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "elsewhere.png"
    target.write_bytes(b"precious")
    out = tmp_path / "out"
    out.mkdir()
    (out / "posts_per_month.png").symlink_to(target)
    assert _demo(out, demo_database) == 1
    assert "posts_per_month.png" in _one_line(capsys.readouterr().err)
    assert target.read_bytes() == b"precious"
    (out / "posts_per_month.png").unlink()
    (out / ".blogdata-demo").write_text("my notes\n")
    assert _demo(out, demo_database) == 1
    assert ".blogdata-demo" in _one_line(capsys.readouterr().err)
    assert (out / ".blogdata-demo").read_text() == "my notes\n"


# -- reset --------------------------------------------------------------------------------------


async def _counts(url: URL, *tables: str) -> dict[str, object]:
    return {t: await scalar_sql(url, f"SELECT count(*) FROM {t}") for t in tables}


@pytest.fixture
async def seeded(server_url: URL) -> AsyncIterator[tuple[URL, AsyncEngine]]:
    """A migrated database of this test's own, seeded with a few users, and an engine on it."""
    async with migrated_database(server_url, "blogdata_reset") as url:
        engine = create_engine(url)
        try:
            await seed(engine, users=5, posts_per_user=2, tags=3)
            yield url, engine
        finally:
            await engine.dispose()


async def test_reset_refuses_when_a_users_table_references_users_and_changes_nothing(
    seeded: tuple[URL, AsyncEngine],
) -> None:
    url, engine = seeded
    await execute_sql(
        url,
        "CREATE TABLE notes (id int PRIMARY KEY, author_id int "
        "CONSTRAINT notes_author_fk REFERENCES users (id))",
        "INSERT INTO notes VALUES (1, 1), (2, 2)",
        "CREATE TABLE readings (post_id int REFERENCES posts (id) ON DELETE CASCADE)",
        "INSERT INTO readings VALUES (1)",
    )
    before = await _counts(url, "users", "posts", "post_tags", "notes", "readings")
    with pytest.raises(NotOursError) as info:
        await reset(engine)
    message = str(info.value)
    assert "notes (foreign key notes_author_fk on users)" in message
    assert "readings (foreign key readings_post_id_fkey on posts)" in message
    assert "nothing was changed" in message
    assert await _counts(url, "users", "posts", "post_tags", "notes", "readings") == before


async def test_reset_refuses_on_the_callers_session_which_stays_usable_and_uncommitted(
    seeded: tuple[URL, AsyncEngine],
) -> None:
    url, engine = seeded
    await execute_sql(url, "CREATE TABLE notes (author_id int REFERENCES users (id))")
    async with engine.connect() as conn:
        await conn.begin()
        await conn.execute(text("INSERT INTO notes VALUES (3)"))
        with pytest.raises(NotOursError):
            await reset(conn)
        assert await conn.scalar(text("SELECT count(*) FROM notes")) == 1  # still usable
        await conn.rollback()
    assert await _counts(url, "notes", "users") == {"notes": 0, "users": 5}


async def test_reset_refuses_a_table_that_inherits_from_a_blog_table(
    seeded: tuple[URL, AsyncEngine],
) -> None:
    url, engine = seeded
    await execute_sql(
        url,
        "CREATE TABLE archived_tags () INHERITS (tags)",
        "INSERT INTO archived_tags (id, name) VALUES (100, 'old')",
    )
    with pytest.raises(NotOursError, match=r"archived_tags \(inherits from tags\)"):
        await reset(engine)
    assert await _counts(url, "ONLY tags", "archived_tags") == {"ONLY tags": 3, "archived_tags": 1}


async def test_reset_empties_exactly_the_blog_tables_and_restarts_their_ids(
    seeded: tuple[URL, AsyncEngine],
) -> None:
    url, engine = seeded
    await execute_sql(
        url, "CREATE TABLE notes (author_id int)", "INSERT INTO notes VALUES (1), (2)"
    )
    await reset(engine)  # an engine: reset commits its own transaction
    assert await scalar_sql(url, "SELECT nextval(pg_get_serial_sequence('posts', 'id'))") == 1
    assert await _counts(url, "users", "accounts", "tags", "posts", "post_tags", "notes") == {
        "users": 0, "accounts": 0, "tags": 0, "posts": 0, "post_tags": 0, "notes": 2,
    }  # fmt: skip
    summary = await seed(engine, users=2, posts_per_user=1, tags=1)
    async with engine.connect() as conn:
        assert await conn.scalar(select(func.max(User.id))) == summary.users
        assert await conn.scalar(select(func.max(Post.id))) == summary.posts


def test_seed_reset_refuses_with_one_line_and_keeps_every_row(
    server_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    async def prepare(url: URL) -> None:
        await execute_sql(
            url,
            "CREATE TABLE notes (author_id int CONSTRAINT notes_author_fk REFERENCES users)",
        )

    async def run() -> None:
        async with migrated_database(server_url, "blogdata_seedreset") as url:
            monkeypatch.setenv("BLOGDATA_DATABASE_URL", url.render_as_string(hide_password=False))
            get_settings(reload=True)
            try:
                assert await asyncio.to_thread(main, ["seed", "--users", "4"]) == 0
                capsys.readouterr()  # its progress bar
                await prepare(url)
                await execute_sql(url, "INSERT INTO notes VALUES (1)")
                code = await asyncio.to_thread(main, ["seed", "--users", "3", "--reset"])
                assert code == 1
                assert await _counts(url, "users", "notes") == {"users": 4, "notes": 1}
            finally:
                monkeypatch.undo()
                get_settings(reload=True)

    asyncio.run(run())
    err = _one_line(capsys.readouterr().err)
    assert "notes (foreign key notes_author_fk on users)" in err
