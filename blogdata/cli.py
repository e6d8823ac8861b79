"""The ``blogdata`` command: manage the embedded server, migrate, seed, and open the notebooks.

Each command runs one ``asyncio.run``; a BlogdataError prints one line to stderr and exits 1.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from sqlalchemy import NullPool
from sqlalchemy.engine import URL

from blogdata import embedded, migrate
from blogdata.database import create_engine, resolve_url
from blogdata.errors import BlogdataError

if TYPE_CHECKING:
    from blogdata.seed import SeedSummary

__all__ = ["app", "main"]

app = typer.Typer(
    help="Explore a PostgreSQL blog database: server, migrations, seed data, notebooks.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Manage the embedded PostgreSQL server.", no_args_is_help=True)
migrate_app = typer.Typer(help="Apply and inspect the Alembic migrations.", no_args_is_help=True)
replica_app = typer.Typer(
    help="Manage a hot standby of the embedded server (for read sessions).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
db_app.add_typer(replica_app, name="replica")
app.add_typer(migrate_app, name="migrate")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server (or reuse the running one) and print its URL."""
    server = embedded.start()
    typer.echo(f"embedded PostgreSQL running (pid {server.pid}), data in {server.pgdata}")
    typer.echo(server.url().render_as_string(hide_password=True))


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server."""
    typer.echo("stopped" if embedded.stop() else "not running")


@db_app.command("status")
def db_status() -> None:
    """Say whether the embedded server is running (exit code 3 if not)."""
    server = embedded.status()
    if server is None:
        typer.echo(f"not running (data directory {embedded.data_directory()})")
        raise typer.Exit(3)
    typer.echo(f"running (pid {server.pid}), data in {server.pgdata}, log {server.log_file}")
    _replica_status_line(server)


@db_app.command("url")
def db_url(
    read: Annotated[bool, typer.Option("--read", help="print the read sessions' URL")] = False,
) -> None:
    """Print the database URL blogdata uses (starting the embedded server if needed)."""
    if read:
        from blogdata.routing import read_url

        configured = read_url()
        if configured is not None:
            typer.echo(configured.render_as_string(hide_password=True))
            return
    typer.echo(resolve_url().render_as_string(hide_password=True))


def _replica_status_line(primary: embedded.EmbeddedServer) -> None:
    """Print the embedded standby's state and its replay lag, if it exists."""
    from blogdata import replica

    standby = replica.status()
    if standby is None:
        if replica.replica_directory().exists():
            typer.echo("replica: not running (`blogdata db replica start`)")
        return
    lag = asyncio.run(_replay_lag(primary.url(), standby.url()))
    typer.echo(
        f"replica: running (pid {standby.pid}), data in {standby.pgdata}, replay lag {lag} bytes"
    )


async def _replay_lag(primary: URL, standby: URL) -> int | None:
    from blogdata.routing import replay_lag_bytes

    engines = [create_engine(u, poolclass=NullPool) for u in (primary, standby)]
    try:
        return await replay_lag_bytes(engines[0], engines[1])
    finally:
        for engine in engines:
            await engine.dispose()


@replica_app.command("start")
def replica_start() -> None:
    """Make (first time) and start a hot standby of the embedded server; print its URL."""
    from blogdata import replica

    standby = replica.start()
    url = standby.url().render_as_string(hide_password=True)
    typer.echo(f"standby running (pid {standby.pid}), data in {standby.pgdata}")
    typer.echo(url)
    typer.echo(f"read from it: export BLOGDATA_READ_URL='{url}'")


@replica_app.command("stop")
def replica_stop() -> None:
    """Stop the embedded standby."""
    from blogdata import replica

    typer.echo("stopped" if replica.stop() else "not running")


@replica_app.command("status")
def replica_status() -> None:
    """Say whether the embedded standby is running, and its replay lag (exit code 3 if not)."""
    from blogdata import replica

    standby = replica.status()
    if standby is None:
        typer.echo(f"not running (data directory {replica.replica_directory()})")
        raise typer.Exit(3)
    primary = embedded.status()
    lag = "unknown: the primary is not running"
    if primary is not None:
        lag = f"{asyncio.run(_replay_lag(primary.url(), standby.url()))} bytes"
    typer.echo(
        f"running (pid {standby.pid}), data in {standby.pgdata}, log {standby.log_file}, "
        f"replay lag {lag}"
    )


@migrate_app.command("upgrade")
def migrate_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the database to REVISION (default: head)."""
    asyncio.run(migrate.upgrade(None, revision))
    typer.echo(f"at {asyncio.run(migrate.current())}")


@migrate_app.command("downgrade")
def migrate_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Downgrade the database to REVISION (default: one step; "base" removes every table)."""
    asyncio.run(migrate.downgrade(None, revision))
    typer.echo(f"at {asyncio.run(migrate.current()) or 'base'}")


@migrate_app.command("current")
def migrate_current() -> None:
    """Print the database's current revision."""
    typer.echo(asyncio.run(migrate.current()) or "base (not migrated)")


@migrate_app.command("check")
def migrate_check() -> None:
    """Fail (exit 1) if the models and the migrated database differ."""
    diffs = asyncio.run(migrate.check())
    for diff in diffs:
        typer.echo(diff)
    if diffs:
        typer.echo("the models differ from the database: write a migration", err=True)
        raise typer.Exit(1)
    typer.echo("no differences between the models and the database")


@app.command("seed")
def seed_command(
    users: Annotated[int, typer.Option(help="number of users (each gets an account)")] = 200,
    seed: Annotated[int, typer.Option(help="random seed: same arguments, same data")] = 42,
    posts_per_user: Annotated[float, typer.Option(help="mean posts per user")] = 5.0,
    tags: Annotated[int, typer.Option(help="number of tags")] = 40,
    reset: Annotated[bool, typer.Option(help="empty the blog tables first")] = False,
) -> None:
    """Migrate the configured database and fill it with deterministic demo data."""
    from blogdata.seed import DEMO_PASSWORD  # numpy, pandas and Faker load only when seeding

    url = resolve_url()
    summary = asyncio.run(_seed(url, users, posts_per_user, tags, seed, reset))
    typer.echo(
        f"seeded {url.render_as_string(hide_password=True)}: {summary.users} users, "
        f"{summary.posts} posts, {summary.tags} tags, {summary.post_tags} post tags "
        f"(seed {summary.seed}; password of every user: {DEMO_PASSWORD!r})"
    )


async def _seed(
    url: URL, users: int, posts_per_user: float, tags: int, seed: int, reset: bool
) -> SeedSummary:
    from blogdata.seed import reset as reset_tables
    from blogdata.seed import seed as seed_tables

    await migrate.upgrade(url)
    engine = create_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            if reset:
                await reset_tables(conn)
            return await seed_tables(
                conn, users=users, posts_per_user=posts_per_user, tags=tags, seed=seed,
                progress=True,
            )  # fmt: skip
    finally:
        await engine.dispose()


@app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Option(help="folder for the PNG charts")] = Path("demo-output"),
    users: Annotated[int, typer.Option(help="number of users to seed")] = 200,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    database: Annotated[str, typer.Option(help="demo database (recreated)")] = "blogdata_demo",
) -> None:
    """Tour blogdata without a notebook: database, migrations, seed data, tables and charts."""
    from blogdata.demo import run_demo

    url = resolve_url()
    typer.echo(f"server: {url.render_as_string(hide_password=True)}")
    asyncio.run(
        run_demo(url, out, users=users, seed_value=seed, database=database, echo=typer.echo)
    )


@app.command("lab")
def lab(
    notebooks: Annotated[Path, typer.Option(help="folder to open")] = Path("notebooks"),
    port: Annotated[int, typer.Option(help="port for JupyterLab")] = 8888,
    no_browser: Annotated[bool, typer.Option(help="do not open a browser")] = False,
) -> None:
    """Start the database, migrate it, and open JupyterLab on the notebooks with it configured."""
    url = resolve_url()
    asyncio.run(migrate.upgrade(url))
    env = dict(os.environ)
    # Kernels inherit this, so every notebook's connect() uses the same server.
    env["BLOGDATA_DATABASE_URL"] = url.render_as_string(hide_password=False)
    typer.echo(f"database: {url.render_as_string(hide_password=True)} (migrated)")
    args = [sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={notebooks}", f"--port={port}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    if no_browser:
        args.append("--no-browser")
    raise typer.Exit(subprocess.call(args, env=env))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of exiting."""
    try:
        app(args=argv, prog_name="blogdata")
    except BlogdataError as exc:
        typer.echo(f"blogdata: error: {exc}", err=True)
        return 1
    except SystemExit as exc:  # usage errors, --help and typer.Exit end here
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    return 0
