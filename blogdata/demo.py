"""``blogdata demo``: a non-interactive tour, from an empty server to tables and charts.

It creates (or recreates) a ``blogdata_demo`` database on the configured server (the embedded
one by default), migrates it, seeds it, prints the key aggregations as plain-text tables and
saves charts as PNG files (matplotlib's Agg canvas, no display needed). The database is left in
place for exploring afterwards (``BLOGDATA_DATABASE_URL=... blogdata lab``).

It destroys nothing it did not make: an existing database of that name is recreated only if
blogdata made it (see ``blogdata.db.engine.create_database``), and a chart file in the output
folder is overwritten only if the demo wrote it and it is unchanged since (the folder's
``.blogdata-demo`` file lists what the demo wrote, with SHA-256 digests). Anything else is
refused with ``NotOursError`` before any work.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection

from blogdata import aggregations as agg
from blogdata.db import migrate
from blogdata.db.engine import create_database, one_off_engine
from blogdata.errors import ConfigurationError, InvalidInputError, NotOursError
from blogdata.seed import SEED_NOW, SeedSummary, seed

__all__ = ["CHARTS", "DEMO_DATABASE", "MANIFEST", "DemoResult", "run_demo"]

#: The database the demo (re)creates on the configured server.
DEMO_DATABASE = "blogdata_demo"

#: The charts the demo saves, in this order, as ``<name>.png``.
CHARTS = ("users_by_role", "posts_per_month", "top_tags", "posts_per_author")

#: The demo's record, in its output folder, of the files it wrote (``sha256sum`` lines).
MANIFEST = ".blogdata-demo"
_HEADER = "# made by blogdata demo: it overwrites only the files listed here, and only unchanged"


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


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _written(out: Path) -> dict[str, str]:
    """Return what the demo wrote in ``out`` (file name -> SHA-256); refuse files of others.

    Every chart name that exists in ``out`` must be a regular file the manifest lists with its
    current digest; the manifest itself must be the demo's. Nothing is written here.

    Raises:
        NotOursError: ``out`` is not a folder, or holds a file of a chart's name (or a manifest)
            that the demo did not write or that changed since.
    """
    if out.exists() and not out.is_dir():
        raise NotOursError(
            f"{out} is a file, not a folder: the demo will not replace it; choose another "
            "folder for the charts (--out)"
        )
    manifest = out / MANIFEST
    recorded: dict[str, str] = {}
    if manifest.is_symlink() or manifest.exists():
        lines = manifest.read_text(errors="replace").splitlines() if manifest.is_file() else []
        if manifest.is_symlink() or not lines or lines[0] != _HEADER:
            raise NotOursError(
                f"{manifest} was not written by blogdata demo, so the demo will not overwrite "
                "it; choose another folder for the charts (--out), or move that file away"
            )
        for line in lines[1:]:
            digest, _, name = line.partition("  ")
            recorded[name] = digest
    theirs = []
    for name in (f"{chart}.png" for chart in CHARTS):
        path = out / name
        if path.is_symlink() or not path.exists():
            if path.is_symlink():  # a link may point at anything: never written through
                theirs.append(name)
        elif not path.is_file() or recorded.get(name) != _digest(path.read_bytes()):
            theirs.append(name)
    if theirs:
        raise NotOursError(
            f"{out} already holds {', '.join(theirs)}, which blogdata demo did not write (or "
            "which changed since), so the demo will not overwrite them; choose another folder "
            "for the charts (--out), or move those files away"
        )
    return {name: digest for name, digest in recorded.items() if (out / name).exists()}


def _check_writable(out: Path) -> None:
    """Prove that ``out`` can be made and written in; leave nothing behind (folders included).

    A real write, not ``os.access``: permissions, a read-only file system and a file in the
    path's way all show, for root too.

    Raises:
        InvalidInputError: ``out`` cannot be created or written.
    """
    made = [p for p in (out, *out.absolute().parents) if not p.exists()]
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out, prefix=".blogdata-demo-probe-"):
            pass
    except OSError as exc:
        raise InvalidInputError(
            f"cannot write the charts in {out} ({exc.strerror or exc}); choose a folder you "
            "can write to (--out)"
        ) from exc
    finally:
        for folder in made:  # nearest first; each is empty, and blogdata made it just now
            if folder.is_dir():
                folder.rmdir()


def _save(out: Path, images: dict[str, bytes]) -> list[Path]:
    """Write ``images`` in ``out``: new files exclusively, the demo's own ones over themselves."""
    out.mkdir(parents=True, exist_ok=True)
    recorded = _written(out)  # again, just before writing: the demo may have run for minutes
    saved = []
    for name, data in images.items():
        path = out / name
        with path.open("wb" if name in recorded else "xb") as file:  # "xb": never clobber
            file.write(data)
        recorded[name] = _digest(data)
        saved.append(path)
    manifest = out / MANIFEST
    lines = [_HEADER, *(f"{digest}  {name}" for name, digest in sorted(recorded.items()))]
    existed = manifest.exists()
    with manifest.open("w" if existed else "x", encoding="utf-8") as file:
        file.write("\n".join(lines) + "\n")
    return saved


def _charts(frames: dict[str, pd.DataFrame], out: Path) -> list[Path]:
    """Draw the charts and save them as PNG files in ``out`` (see :func:`_save`)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - matplotlib ships with the notebooks extra
        raise ConfigurationError(
            "blogdata demo draws its charts with matplotlib; install it with "
            "`pip install 'blogdata[notebooks]'`"
        ) from exc

    images: dict[str, bytes] = {}

    def save(name: str, draw: Callable[[Any], None]) -> None:
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        FigureCanvasAgg(fig)
        draw(fig.add_subplot())
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png", dpi=100)
        images[f"{name}.png"] = buffer.getvalue()

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

    for name, draw in zip(CHARTS, (by_role, per_month, top, spread), strict=True):
        save(name, draw)
    return _save(out, images)


async def run_demo(
    server: URL,
    out: Path,
    *,
    users: int = 200,
    random_seed: int = 42,
    database: str = DEMO_DATABASE,
    echo: Callable[[str], None],
) -> DemoResult:
    """Build the demo database on ``server``, print the aggregations, and save charts in ``out``.

    Args:
        server: any database URL on the server to use; the demo database is created beside it.
        out: folder for the PNG files (created if missing); the demo overwrites only charts it
            wrote there itself and that are unchanged since.
        users: how many users to seed (five posts each on average).
        random_seed: the random seed.
        database: the name of the demo database (dropped and recreated if blogdata made it).
        echo: where the text goes (e.g. ``typer.echo``).

    Raises:
        NotOursError: the database exists and blogdata did not make it, or ``out`` holds a
            chart file the demo did not write; checked before any work, nothing is changed.
        InvalidInputError: ``out`` cannot be written; checked before any database work.
    """
    _written(out)  # refuse files of the user's before any work
    _check_writable(out)  # and a folder the charts could never be saved in
    url = await create_database(server, database)
    echo(f"created database {database}; migrating")
    await migrate.upgrade(url)
    async with one_off_engine(url) as engine:
        summary = await seed(engine, users=users, random_seed=random_seed)
        echo(
            f"seeded {summary.users} users, {summary.posts} posts, {summary.tags} tags, "
            f"{summary.post_tags} post tags (seed {summary.seed})"
        )
        async with engine.connect() as db:
            frames = await _tables(db, echo)
    charts = _charts(frames, out)
    echo(f"\nsaved {len(charts)} charts in {out}: " + ", ".join(p.name for p in charts))
    return DemoResult(database=database, summary=summary, charts=charts)
