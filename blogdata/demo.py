"""``blogdata demo``: a non-interactive tour, from an empty server to tables and charts.

It creates (or recreates) a ``blogdata_demo`` database on the configured server (the embedded
one by default), migrates it, seeds it, prints the key aggregations as plain-text tables and
saves charts as PNG files (matplotlib's Agg canvas, no display needed). The database is left in
place for exploring afterwards (``BLOGDATA_DATABASE_URL=... blogdata lab``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from blogdata import aggregations as agg
from blogdata import migrate
from blogdata.database import create_database, one_off_engine
from blogdata.errors import ConfigurationError
from blogdata.seed import SEED_NOW, SeedSummary, seed

__all__ = ["DEMO_DATABASE", "DemoResult", "run_demo"]

#: The database the demo (re)creates on the configured server.
DEMO_DATABASE = "blogdata_demo"


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: the database it built, what it seeded, and the charts it saved."""

    database: str
    summary: SeedSummary
    charts: list[Path]


def _table(title: str, frame: pd.DataFrame) -> str:
    return f"\n== {title} ==\n{frame.to_string(index=False)}"


async def _tables(db: AsyncConnection, echo: Callable[[str], None]) -> dict[str, pd.DataFrame]:
    """Print the key aggregations; return the frames the charts need."""
    frames = {
        "roles": await agg.users_by_role(db),
        "tags": await agg.top_tags(db, n=10),
        "months": await agg.posts_per_month(db),
        "authors": await agg.posts_per_author(db),
    }
    active = await agg.count_users(db, active=True)
    echo(f"\n{await agg.count_users(db)} users, {active} of them active")
    echo(_table("Users by role", frames["roles"]))
    echo(_table("Top 10 tags", frames["tags"]))
    months = frames["months"].assign(month=frames["months"]["month"].dt.strftime("%Y-%m"))
    echo(_table("Posts written per month (UTC)", months))
    activity = (await agg.author_activity(db)).head(10)
    activity = activity.assign(
        first_post=activity["first_post"].dt.strftime("%Y-%m-%d"),
        last_post=activity["last_post"].dt.strftime("%Y-%m-%d"),
        mean_length=activity["mean_length"].round(1),
    )
    echo(_table("Ten busiest authors", activity))
    recent = await agg.active_authors(db, days=30, now=SEED_NOW)
    echo(f"\n{len(recent)} authors wrote in the 30 days before {SEED_NOW:%Y-%m-%d}")
    pairs = (await agg.tag_cooccurrence(db)).head(10)
    echo(_table("Tags most often seen together", pairs))
    return frames


def _charts(frames: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Draw and save the charts as PNG files in ``out``."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the notebooks extra
        raise ConfigurationError(
            "blogdata demo draws its charts with matplotlib; install it with "
            "`pip install 'blogdata[notebooks]'`"
        ) from exc

    out.mkdir(parents=True, exist_ok=True)
    saved: list[Path] = []

    def save(name: str, draw: Callable[[Any], None]) -> None:
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig.add_subplot())
        path = out / f"{name}.png"
        fig.savefig(path, dpi=100)
        saved.append(path)

    roles, tags, months = frames["roles"], frames["tags"], frames["months"]
    authors = frames["authors"]

    def by_role(ax: Any) -> None:
        ax.bar(roles["role"].tolist(), roles["users"].tolist(), color="tab:blue")
        ax.set(title="Users by role", xlabel="role", ylabel="users")

    def per_month(ax: Any) -> None:
        ax.plot(months["month"].dt.tz_localize(None), months["posts"].tolist(), marker="o")
        ax.set(title="Posts written per month (UTC)", xlabel="month", ylabel="posts")

    def top(ax: Any) -> None:
        ax.barh(tags["tag"].tolist()[::-1], tags["posts"].tolist()[::-1], color="tab:green")
        ax.set(title="Top 10 tags", xlabel="posts", ylabel="tag")

    def spread(ax: Any) -> None:
        ax.hist(authors["posts"].tolist(), bins=30, color="tab:orange")
        ax.set(title="Posts per author (long tail)", xlabel="posts", ylabel="authors")
        ax.set_yscale("log")

    save("users_by_role", by_role)
    save("posts_per_month", per_month)
    save("top_tags", top)
    save("posts_per_author", spread)
    return saved


async def run_demo(
    server: URL,
    out: Path,
    *,
    users: int = 200,
    seed_value: int = 42,
    database: str = DEMO_DATABASE,
    echo: Callable[[str], None],
) -> DemoResult:
    """Build the demo database on ``server``, print the aggregations, and save charts in ``out``.

    Args:
        server: any database URL on the server to use; the demo database is created beside it.
        out: folder for the PNG files (created if missing).
        users: how many users to seed (five posts each on average).
        seed_value: the random seed.
        database: the name of the demo database (dropped and recreated).
        echo: where the text goes (e.g. ``typer.echo``).
    """
    url = await create_database(server, database)
    echo(f"created database {database}; migrating")
    await migrate.upgrade(url)
    async with one_off_engine(url) as engine:
        summary = await seed(engine, users=users, seed=seed_value)
        echo(
            f"seeded {summary.users} users, {summary.posts} posts, {summary.tags} tags, "
            f"{summary.post_tags} post tags (seed {summary.seed})"
        )
        async with engine.connect() as db:
            frames = await _tables(db, echo)
    charts = _charts(frames, out)
    echo(f"\nsaved {len(charts)} charts in {out}: " + ", ".join(p.name for p in charts))
    return DemoResult(database=database, summary=summary, charts=charts)
