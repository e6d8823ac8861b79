from __future__ import annotations

import logging
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import NullPool, select, text
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.db import migrate
from blogdata.db.engine import create_engine
from blogdata.diagnostics import count_statements, echo_sql, render_sql, show_sql
from blogdata.errors import BlogdataError, InvalidInputError
from blogdata.models import Post, Tag, User
from blogdata.notebook import Notebook, database_name, open_database, tutorial_database
from tests.helpers import create_database, drop_database


@pytest.fixture
async def notebook_names(server_url: URL) -> AsyncIterator[Callable[[], str]]:
    """Unique notebook names (so concurrent runs on one server never collide), dropped after."""
    opened: list[str] = []

    def new_name() -> str:
        name = f"test-{uuid.uuid4().hex[:10]}"
        opened.append(name)
        return name

    yield new_name
    for name in opened:
        await drop_database(server_url, database_name(name))


async def _count(nb: Notebook, table: str) -> int:
    async with nb.engine.connect() as conn:
        value = await conn.scalar(text(f"SELECT count(*) FROM {table}"))  # fixed table names
    assert isinstance(value, int)
    return value


async def test_connect_gives_a_migrated_empty_database_named_after_the_notebook(
    notebook_names: Callable[[], str],
) -> None:
    name = notebook_names()
    nb = await tutorial_database(name, seed=None)
    try:
        assert nb.database == "nb_" + name.replace("-", "_")
        assert nb.engine.url.database == nb.database
        assert nb.url.endswith(nb.database) or f"/{nb.database}?" in nb.url
        assert await migrate.current(nb.engine) == migrate.head()
        assert await _count(nb, "users") == 0
    finally:
        await nb.close()


async def test_connect_again_starts_from_a_fresh_database(
    notebook_names: Callable[[], str],
) -> None:
    name = notebook_names()
    first = await tutorial_database(name, seed=None)
    async with first.sessions() as session:
        session.add(Tag(name="leftover"))
        await session.commit()
    # The first notebook still holds pooled connections: the drop must not wait for them.
    second = await tutorial_database(name, seed=None)
    try:
        assert await _count(second, "tags") == 0
    finally:
        await second.close()


async def test_two_notebooks_do_not_see_each_others_rows(
    notebook_names: Callable[[], str],
) -> None:
    one = await tutorial_database(notebook_names(), seed=None)
    two = await tutorial_database(notebook_names(), seed=None)
    try:
        async with one.sessions() as session:
            session.add(Tag(name="only-in-one"))
            await session.commit()
        assert (await _count(one, "tags"), await _count(two, "tags")) == (1, 0)
    finally:
        await one.close()
        await two.close()


async def test_connect_seeds_the_same_data_every_time(
    notebook_names: Callable[[], str],
) -> None:
    name = notebook_names()
    snapshots = []
    for _ in range(2):
        nb = await tutorial_database(name, scale=0.1)
        try:
            async with nb.sessions() as session:
                users = (
                    await session.execute(
                        select(User.id, User.email, User.role, User.created_at).order_by(User.id)
                    )
                ).all()
                posts = (
                    await session.execute(
                        select(Post.id, Post.author_id, Post.title, Post.created_at).order_by(
                            Post.id
                        )
                    )
                ).all()
        finally:
            await nb.close()
        snapshots.append((users, posts))
    assert len(snapshots[0][0]) == 20
    assert snapshots[0][1]
    assert snapshots[0] == snapshots[1]


async def test_the_seed_argument_changes_the_data(notebook_names: Callable[[], str]) -> None:
    emails = []
    for seed in (1, 2):
        nb = await tutorial_database(notebook_names(), seed=seed, scale=0.05)
        try:
            async with nb.sessions() as session:
                emails.append((await session.scalars(select(User.email).order_by(User.id))).all())
        finally:
            await nb.close()
    assert emails[0] != emails[1]


async def test_close_with_drop_removes_the_database(
    notebook_names: Callable[[], str], server_url: URL
) -> None:
    nb = await tutorial_database(notebook_names(), seed=None)
    await nb.close(drop=True)
    admin = create_engine(server_url, poolclass=NullPool)
    try:
        async with admin.connect() as conn:
            exists = await conn.scalar(
                text("SELECT count(*) FROM pg_database WHERE datname = :name"),
                {"name": nb.database},
            )
    finally:
        await admin.dispose()
    assert exists == 0


@pytest.mark.parametrize(
    "name",
    [
        "",
        "Upper",
        "has space",
        "semi;colon",
        'quote"d',
        "-leading-dash",
        "ünïcode",
        "x" * 61,
    ],
    ids=["empty", "uppercase", "space", "semicolon", "quote", "leading-dash", "unicode", "long"],
)
async def test_connect_rejects_a_name_that_is_not_a_safe_identifier(name: str) -> None:
    with pytest.raises(InvalidInputError, match="notebook name"):
        await tutorial_database(name, seed=None)


@pytest.mark.parametrize("scale", [0, -1.0, float("nan")], ids=["zero", "negative", "nan"])
async def test_connect_rejects_a_scale_that_is_not_positive(scale: float) -> None:
    with pytest.raises(InvalidInputError, match="scale"):
        await tutorial_database("test-bad-scale", scale=scale)


async def test_a_name_with_underscores_is_refused_and_leaves_the_dashed_notebook_alive(
    notebook_names: Callable[[], str],
) -> None:
    dashed = notebook_names() + "-q1"  # e.g. "test-1a2b-q1" uses nb_test_1a2b_q1
    nb = await tutorial_database(dashed, seed=None)
    try:
        async with nb.engine.begin() as conn:
            await conn.execute(text("INSERT INTO tags (name) VALUES ('kept')"))
        underscored = dashed.replace("-", "_")
        with pytest.raises(InvalidInputError, match=f'write it with "-" instead .*{dashed}'):
            await tutorial_database(underscored, seed=None)
        assert await _count(nb, "tags") == 1  # its database was not dropped behind its back
    finally:
        await nb.close(drop=True)


@pytest.mark.parametrize(
    "names",
    [("sales-q1", "sales_q1"), ("a-b-c", "a_b-c"), ("x", "x_")],
    ids=["dash-or-underscore", "mixed", "trailing-underscore"],
)
def test_no_two_notebook_names_share_a_database(names: tuple[str, str]) -> None:
    accepted = {}
    for name in names:
        try:
            accepted[name] = database_name(name)
        except InvalidInputError:
            continue
    assert accepted  # the dashed spelling stays valid
    assert len(set(accepted.values())) == len(accepted)


def test_database_name_turns_dashes_into_underscores_with_a_prefix() -> None:
    assert database_name("01-engine-and-sessions") == "nb_01_engine_and_sessions"


def test_notebook_repr_shows_no_addresses_or_paths() -> None:
    assert "Notebook(name='x', database='nb_x')" in repr(
        Notebook(name="x", database="nb_x", engine=None, sessions=None, url="/tmp/x")  # type: ignore[arg-type]
    )


def test_show_sql_prints_the_placeholders_postgresql_receives_and_their_values(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_sql(select(User.id).where(User.email == "ann@example.com").limit(5))
    assert capsys.readouterr().out == (
        "SELECT users.id\n"
        "FROM users\n"
        "WHERE users.email = $1::VARCHAR\n"
        " LIMIT $2::INTEGER\n"
        "-- $1 = 'ann@example.com'\n"
        "-- $2 = 5\n"
    )


def test_show_sql_can_write_the_values_inline_with_quotes_escaped(
    capsys: pytest.CaptureFixture[str],
) -> None:
    show_sql(select(User.id).where(User.username == "o'brien"), literal=True)
    assert (
        capsys.readouterr().out
        == "SELECT users.id\nFROM users\nWHERE users.username = 'o''brien'\n"
    )


def test_show_sql_expands_an_in_list_into_one_placeholder_per_value() -> None:
    rendered = render_sql(select(User.id).where(User.role.in_(["admin", "editor"]), User.id > 5))
    assert "POSTCOMPILE" not in rendered
    assert "IN ($2::VARCHAR, $3::VARCHAR)" in rendered
    assert rendered.splitlines()[-3:] == ["-- $1 = 5", "-- $2 = 'admin'", "-- $3 = 'editor'"]


def test_render_sql_numbers_text_parameters_in_order() -> None:
    stmt = text("SELECT * FROM users WHERE role = :role AND id > :after").bindparams(
        role="admin", after=3
    )
    assert render_sql(stmt).splitlines()[-2:] == ["-- $1 = 'admin'", "-- $2 = 3"]


def _python(script: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_run_works_inside_a_running_event_loop_and_reuses_it() -> None:
    out = _python(
        """
        import asyncio
        from blogdata.notebook import run

        async def double(x):
            await asyncio.sleep(0)
            return x * 2, asyncio.get_running_loop()

        async def main():
            value, loop = run(double(21))
            print(value, loop is asyncio.get_running_loop(), run(double(1))[0])

        asyncio.run(main())
        """
    )
    assert out == "42 True 2\n"


def test_importing_the_module_does_not_patch_asyncio() -> None:
    out = _python(
        """
        import asyncio
        import blogdata.notebook
        print(hasattr(asyncio, "_nest_patched"))
        """
    )
    assert out == "False\n"


def test_run_without_a_running_loop_behaves_like_asyncio_run() -> None:
    async def answer() -> int:
        return 42

    assert _run_in_thread(answer) == 42


def _run_in_thread(factory: Callable[[], object]) -> object:
    # pytest-asyncio's loop runs in this thread; a fresh thread has none.
    import concurrent.futures

    from blogdata.notebook import run

    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: run(factory())).result()  # type: ignore[arg-type]


async def test_echo_sql_prints_the_statements_without_timestamps_or_timings(
    engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    logger = logging.getLogger("sqlalchemy.engine.Engine")
    handlers_before = logger.handlers[:]
    with echo_sql(engine):
        async with engine.connect() as conn:
            await conn.execute(select(User.id).where(User.username == "nobody"))
    output = capsys.readouterr().out
    assert not re.search(r"\d\d:\d\d:\d\d|\d\.\d+s", output)  # no clock, no timings
    lines = output.splitlines()
    lines = lines[lines.index("BEGIN (implicit)") :]  # a first connection also logs its setup
    assert "WHERE users.username = $1::VARCHAR" in lines
    assert re.fullmatch(r"\[(generated in|cached since) …\] \('nobody',\)", lines[-2])
    assert lines[-1] == "ROLLBACK"
    assert engine.echo is False
    assert logger.handlers == handlers_before


async def test_count_statements_is_reexported_and_counts_on_the_engine(engine: AsyncEngine) -> None:
    with count_statements(engine) as counter:
        async with engine.connect() as conn:
            await conn.execute(select(User.id).limit(1))
            await conn.execute(select(Post.id).limit(1))
    assert counter.count == 2
    assert any("FROM posts" in statement for statement in counter.statements)


async def test_open_database_reads_what_is_there_and_never_drops_migrates_or_seeds(
    server_url: URL,
) -> None:
    name = f"analysis_{uuid.uuid4().hex[:8]}"
    url = await create_database(server_url, name)
    try:
        seeder = create_engine(url, poolclass=NullPool)
        async with seeder.begin() as conn:
            await conn.execute(text("CREATE TABLE findings (n int)"))
            await conn.execute(text("INSERT INTO findings VALUES (42)"))
        await seeder.dispose()
        nb = await open_database(url)
        try:
            assert nb.database == name and "findings" in repr(await _tables(nb))
            async with nb.sessions() as db:
                assert await db.scalar(text("SELECT n FROM findings")) == 42
                assert await db.scalar(text("SELECT to_regclass('alembic_version')")) is None
            with pytest.raises(InvalidInputError, match="never drops"):
                await nb.close(drop=True)
        finally:
            await nb.close()
        again = await open_database(url)  # still there, untouched
        async with again.sessions() as db:
            assert await db.scalar(text("SELECT count(*) FROM findings")) == 1
        await again.close()
    finally:
        await drop_database(server_url, name)


async def _tables(nb: Notebook) -> list[str]:
    async with nb.sessions() as db:
        rows = await db.execute(text("SELECT tablename FROM pg_tables WHERE schemaname='public'"))
        return [r[0] for r in rows]


async def test_open_database_on_a_missing_database_is_one_blogdata_error(server_url: URL) -> None:
    with pytest.raises(BlogdataError):
        await open_database(server_url.set(database=f"missing_{uuid.uuid4().hex[:8]}"))
