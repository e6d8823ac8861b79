"""Migrations: head matches the models, base leaves nothing, and the last step keeps the rows."""

from __future__ import annotations

import asyncio
import functools
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import NullPool, inspect
from sqlalchemy.engine import URL

from blogdata.cli import main
from blogdata.db import migrate
from blogdata.db.engine import create_engine
from tests.helpers import execute_sql, scalar_sql

ROOT = Path(__file__).resolve().parents[1]
BLOG_TABLES = {"users", "posts", "tags", "post_tags", "accounts"}


async def _tables(url: URL) -> set[str]:
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def test_upgrade_check_downgrade_base_and_upgrade_again(scratch_url: URL) -> None:
    assert await migrate.current(scratch_url) is None
    await migrate.upgrade(scratch_url)
    assert await migrate.current(scratch_url) == migrate.head()
    assert await _tables(scratch_url) >= BLOG_TABLES
    assert await migrate.check(scratch_url) == []

    await migrate.downgrade(scratch_url, "base")
    assert await _tables(scratch_url) - {"alembic_version"} == set()
    assert await migrate.current(scratch_url) is None

    await migrate.upgrade(scratch_url)
    assert await migrate.check(scratch_url) == []


async def test_the_last_revision_goes_down_and_up_with_rows_kept(scratch_url: URL) -> None:
    await migrate.upgrade(scratch_url)
    await execute_sql(
        scratch_url,
        "INSERT INTO users (email, username, hashed_password) VALUES ('k@example.com', 'k', 'h')",
        "INSERT INTO posts (title, author_id, published_at) SELECT 'kept', id, now() FROM users",
    )
    await migrate.downgrade(scratch_url, "-1")
    assert await migrate.current(scratch_url) != migrate.head()
    assert await scalar_sql(scratch_url, "SELECT count(*) FROM posts") == 1
    await migrate.upgrade(scratch_url)
    assert await migrate.current(scratch_url) == migrate.head()
    assert await scalar_sql(scratch_url, "SELECT title FROM posts") == "kept"


async def test_check_reports_drift_between_models_and_database(scratch_url: URL) -> None:
    await migrate.upgrade(scratch_url)
    await execute_sql(scratch_url, "ALTER TABLE users ADD COLUMN nickname text")
    diffs = await migrate.check(scratch_url)
    assert any("nickname" in diff for diff in diffs)


def _cli_env(url: URL) -> dict[str, str]:
    return os.environ | {"BLOGDATA_DATABASE_URL": url.render_as_string(hide_password=False)}


async def test_the_cli_migrates_and_checks(
    scratch_url: URL, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from blogdata.config import get_settings

    monkeypatch.setenv("BLOGDATA_DATABASE_URL", scratch_url.render_as_string(hide_password=False))
    get_settings(reload=True)
    try:
        # The CLI calls asyncio.run, so it runs in a thread of its own here.
        assert await asyncio.to_thread(main, ["migrate", "current"]) == 0
        assert "base" in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["migrate", "upgrade"]) == 0
        assert migrate.head() in capsys.readouterr().out
        assert await asyncio.to_thread(main, ["migrate", "check"]) == 0
        assert await asyncio.to_thread(main, ["migrate", "downgrade", "base"]) == 0
        assert "at base" in capsys.readouterr().out
    finally:
        monkeypatch.undo()
        get_settings(reload=True)


async def test_plain_alembic_works_from_the_repo_root(scratch_url: URL) -> None:
    alembic = [sys.executable, "-m", "alembic"]
    env = _cli_env(scratch_url)
    run = functools.partial(subprocess.run, cwd=ROOT, env=env, capture_output=True, text=True)
    upgraded = await asyncio.to_thread(run, [*alembic, "upgrade", "head"])
    assert upgraded.returncode == 0, upgraded.stderr
    checked = await asyncio.to_thread(run, [*alembic, "check"])
    assert checked.returncode == 0, checked.stderr
    assert "No new upgrade operations detected" in checked.stdout + checked.stderr


def test_offline_mode_renders_the_sql_without_a_server() -> None:
    env = {k: v for k, v in os.environ.items() if k != "BLOGDATA_DATABASE_URL"}
    out = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head", "--sql"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "CREATE TABLE users" in out
    assert "NUMERIC(12, 2)" in out


@pytest.mark.slow
def test_the_wheel_ships_the_migrations(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("blogdata-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "blogdata/migrations/env.py" in names
    assert "blogdata/migrations/script.py.mako" in names
    versions = {n for n in names if n.startswith("blogdata/migrations/versions/0")}
    assert len(versions) == len(list((ROOT / "migrations" / "versions").glob("0*.py")))
