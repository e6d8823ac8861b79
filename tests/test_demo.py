from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from matplotlib.image import imread
from sqlalchemy.engine import URL

from blogdata.cli import main
from blogdata.config import get_settings
from tests.helpers import drop_database, scalar_sql

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def demo_database(server_url: URL, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A unique demo database name on the run's server, dropped afterwards."""
    monkeypatch.setenv("BLOGDATA_DATABASE_URL", server_url.render_as_string(hide_password=False))
    get_settings(reload=True)
    name = f"blogdata_demo_{uuid.uuid4().hex[:8]}"
    try:
        yield name
    finally:
        monkeypatch.undo()
        get_settings(reload=True)
        asyncio.run(drop_database(server_url, name))


def test_demo_prints_the_tables_and_saves_valid_png_charts(
    demo_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "charts"
    code = main(["demo", "--out", str(out), "--users", "60", "--database", demo_database])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert f"created database {demo_database}" in printed.out
    for heading in (
        "== Users by role ==",
        "== Top 10 tags ==",
        "== Posts written per month (UTC) ==",
    ):
        assert heading in printed.out
    assert "reader" in printed.out and "admin" in printed.out
    charts = sorted(out.glob("*.png"))
    assert [p.name for p in charts] == [
        "posts_per_author.png",
        "posts_per_month.png",
        "top_tags.png",
        "users_by_role.png",
    ]
    for chart in charts:
        data = chart.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5_000
        assert imread(chart).shape[:2] == (350, 700)  # decodes: 7x3.5 inches at 100 dpi
    assert printed.err == ""


def test_demo_with_no_users_is_a_usage_error_before_any_work(
    demo_database: str, server_url: URL, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["demo", "--out", str(tmp_path), "--users", "0", "--database", demo_database])
    assert code == 2
    assert "Invalid value for '--users'" in capsys.readouterr().err
    made = f"SELECT count(*) FROM pg_database WHERE datname = '{demo_database}'"
    assert asyncio.run(scalar_sql(server_url, made)) == 0  # the demo database was never created
