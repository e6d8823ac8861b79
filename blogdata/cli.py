"""The ``blogdata`` command: manage the embedded server, migrate, seed, and open the notebooks.

Each command runs one ``asyncio.run``. An expected failure (a BlogdataError, a database error, a
file that cannot be written) prints one line, ``blogdata: error: <what failed>; <the fix>``, to
stderr and exits 1; a usage error exits 2. ``--debug`` (or ``BLOGDATA_DEBUG=1``) also prints
the traceback.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import traceback
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
from sqlalchemy import text
from sqlalchemy.engine import URL

from blogdata import seed as seeding
from blogdata.config import get_settings
from blogdata.db import migrate
from blogdata.db.engine import one_off_engine, url_or_start_embedded
from blogdata.db.routing import read_url, replay_lag_bytes
from blogdata.demo import run_demo
from blogdata.errors import BlogdataError
from blogdata.seed import SeedSummary
from blogdata.servers import embedded, replica
from blogdata.translate import translate_db_error

__all__ = ["app", "main"]

app = typer.Typer(
    help="Explore a PostgreSQL blog database: server, migrations, seed data, notebooks.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold a URL with its password
)
db_app = typer.Typer(help="Manage the embedded PostgreSQL server.", no_args_is_help=True)
migrate_app = typer.Typer(help="Apply and inspect the Alembic migrations.", no_args_is_help=True)
replica_app = typer.Typer(
    help="Manage a hot standby of the embedded server (for read sessions).", no_args_is_help=True
)
app.add_typer(db_app, name="db")
db_app.add_typer(replica_app, name="replica")
app.add_typer(migrate_app, name="migrate")

_state = {"debug": False}


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"blogdata {version('blogdata')}")
        raise typer.Exit()


@app.callback()
def _options(
    debug: Annotated[
        bool,
        typer.Option(
            "--debug", envvar="BLOGDATA_DEBUG", help="show the traceback of a failure as well"
        ),
    ] = False,
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_show_version, is_eager=True, help="print the version and exit"
        ),
    ] = False,
) -> None:
    """Explore a PostgreSQL blog database: server, migrations, seed data, notebooks."""
    _state["debug"] = debug


async def _server_version(url: URL) -> str:
    async with one_off_engine(url) as engine, engine.connect() as conn:
        return f"PostgreSQL {await conn.scalar(text('SHOW server_version'))}"


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


def _answer(url: URL) -> str | None:
    """Return the server's version, or None after printing why it does not answer."""
    try:
        return asyncio.run(_server_version(url))
    except BlogdataError as exc:
        typer.echo(f"not answering: {exc}")
        return None


@db_app.command("status")
def db_status() -> None:
    """Say which server is configured and whether it answers (exit code 3 if it does not)."""
    configured = get_settings().url
    if configured is not None:
        shown = configured.render_as_string(hide_password=True)
        typer.echo(f"configured: {shown} (BLOGDATA_DATABASE_URL); ", nl=False)
        answer = _answer(configured)
        if answer is None:
            raise typer.Exit(3)
        typer.echo(f"answering: {answer}")
        return
    typer.echo("configured: the embedded server (BLOGDATA_DATABASE_URL is unset); ", nl=False)
    server = embedded.status()
    if server is None:
        typer.echo(
            f"not running (data directory {embedded.data_directory()}); "
            "start it with `blogdata db start`"
        )
        raise typer.Exit(3)
    typer.echo(f"running (pid {server.pid}), data in {server.pgdata}; ", nl=False)
    answer = _answer(server.url())
    if answer is None:
        raise typer.Exit(3)
    typer.echo(f"answering: {answer}")
    _replica_status_line(server)


@db_app.command("url")
def db_url(
    read: Annotated[bool, typer.Option("--read", help="print the read sessions' URL")] = False,
) -> None:
    """Print the database URL blogdata uses (starting the embedded server if needed)."""
    if read:
        configured = read_url()
        if configured is not None:
            typer.echo(configured.render_as_string(hide_password=True))
            return
    typer.echo(url_or_start_embedded().render_as_string(hide_password=True))


def _replica_status_line(primary: embedded.EmbeddedServer) -> None:
    """Print the embedded standby's state and its replay lag, if it exists."""
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
    async with one_off_engine(primary) as source, one_off_engine(standby) as copy:
        return await replay_lag_bytes(source, copy)


@replica_app.command("start")
def replica_start() -> None:
    """Make (first time) and start a hot standby of the embedded server; print its URL."""
    standby = replica.start()
    url = standby.url().render_as_string(hide_password=True)
    typer.echo(f"standby running (pid {standby.pid}), data in {standby.pgdata}")
    typer.echo(url)
    typer.echo(f"read from it: export BLOGDATA_READ_URL='{url}'")


@replica_app.command("stop")
def replica_stop() -> None:
    """Stop the embedded standby."""
    typer.echo("stopped" if replica.stop() else "not running")


@replica_app.command("status")
def replica_status() -> None:
    """Say whether the embedded standby is running, and its replay lag (exit code 3 if not)."""
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
    typer.echo(f"at {_revision(asyncio.run(migrate.current()))}")


@migrate_app.command("downgrade")
def migrate_downgrade(revision: Annotated[str, typer.Argument()] = "-1") -> None:
    """Downgrade the database to REVISION (default: one step; "base" removes every table)."""
    asyncio.run(migrate.downgrade(None, revision))
    typer.echo(f"at {_revision(asyncio.run(migrate.current()))}")


def _revision(current: str | None) -> str:
    """Describe ``current`` against the newest migration: ``abc123 (head)``."""
    newest = migrate.head()
    if current == newest:
        return f"{current} (head)"
    where = current or "base (not migrated)"
    return f"{where}; head is {newest}: run `blogdata migrate upgrade`"


@migrate_app.command("current")
def migrate_current() -> None:
    """Print the database's current revision, marked (head) when it is the newest."""
    typer.echo(_revision(asyncio.run(migrate.current())))


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
    reset: Annotated[
        bool,
        typer.Option(
            help="empty the blog tables first (refused if tables of yours reference them)"
        ),
    ] = False,
) -> None:
    """Migrate the configured database and fill it with deterministic demo data."""
    url = url_or_start_embedded()
    summary = asyncio.run(_seed(url, users, posts_per_user, tags, seed, reset))
    typer.echo(
        f"seeded {url.render_as_string(hide_password=True)}: {summary.users} users, "
        f"{summary.posts} posts, {summary.tags} tags, {summary.post_tags} post tags "
        f"(seed {summary.seed}; password of every user: {seeding.DEMO_PASSWORD!r})"
    )


async def _seed(
    url: URL, users: int, posts_per_user: float, tags: int, seed: int, reset: bool
) -> SeedSummary:
    await migrate.upgrade(url)
    async with one_off_engine(url) as engine, engine.begin() as conn:
        if reset:
            await seeding.reset(conn)
        return await seeding.seed(
            conn, users=users, posts_per_user=posts_per_user, tags=tags, random_seed=seed,
            progress=True,
        )  # fmt: skip


@app.command("demo")
def demo_command(
    out: Annotated[
        Path, typer.Option(help="folder for the PNG charts (never overwrites files of yours)")
    ] = Path("demo-output"),
    users: Annotated[int, typer.Option(help="number of users to seed")] = 200,
    seed: Annotated[int, typer.Option(help="random seed")] = 42,
    database: Annotated[
        str, typer.Option(help="demo database (recreated if blogdata made it, else refused)")
    ] = "blogdata_demo",
) -> None:
    """Tour blogdata without a notebook: database, migrations, seed data, tables and charts.

    The demo drops and recreates only a database blogdata made, and overwrites only charts it
    wrote itself: anything else of that name is refused, before any work.
    """
    url = url_or_start_embedded()
    typer.echo(f"server: {url.render_as_string(hide_password=True)}")
    asyncio.run(
        run_demo(url, out, users=users, random_seed=seed, database=database, echo=typer.echo)
    )


def _run_until_exit(args: list[str], env: dict[str, str]) -> int:
    """Run ``args`` until it exits by itself; Ctrl-C is its to handle, SIGTERM is passed on.

    Ctrl-C in a terminal reaches the whole foreground process group, so Jupyter gets it
    directly (and asks "Shut down this Jupyter server?"); this process only keeps waiting,
    however long Jupyter takes to shut its kernels down.
    """
    started: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGINT and started:
            started[0].send_signal(signum)

    # Installed before the start (handlers are not inherited), so no Ctrl-C slips between.
    stops = [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)]
    previous = {signum: signal.signal(signum, on_signal) for signum in stops}
    try:
        started.append(subprocess.Popen(args, env=env))
        return started[0].wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@app.command("lab", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def lab(
    ctx: typer.Context,
    notebooks: Annotated[Path, typer.Option(help="folder to open")] = Path("notebooks"),
    ip: Annotated[str, typer.Option(help="address JupyterLab listens on")] = "localhost",
    port: Annotated[int, typer.Option(help="port for JupyterLab (fails if it is taken)")] = 8888,
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="open a browser tab")
    ] = True,
) -> None:
    """Start the database, migrate it, and open JupyterLab on the notebooks with it configured.

    Extra arguments go to Jupyter; Ctrl-C is Jupyter's, and blogdata waits for it to exit.
    """
    url = url_or_start_embedded()
    asyncio.run(migrate.upgrade(url))
    env = dict(os.environ)
    # Kernels inherit this, so every notebook's connect() uses the same server.
    env["BLOGDATA_DATABASE_URL"] = url.render_as_string(hide_password=False)
    token = env.setdefault("JUPYTER_TOKEN", secrets.token_hex(24))
    typer.echo(f"database: {url.render_as_string(hide_password=True)} (migrated)")
    args = [
        sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={notebooks}",
        f"--ServerApp.ip={ip}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
    ]  # fmt: skip
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    if not browser:
        args.append("--no-browser")
    args.extend(ctx.args)
    host = "localhost" if ip in ("", "0.0.0.0", "*") else f"[{ip}]" if ":" in ip else ip
    typer.echo(f"JupyterLab: http://{host}:{port}/lab?token={token} (Ctrl-C to stop)")
    raise typer.Exit(_run_until_exit(args, env))


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, BlogdataError):
        return str(exc)
    if isinstance(exc, OSError):
        return f"{exc.strerror or exc}{f': {exc.filename}' if exc.filename else ''}; check the path"
    return str(translate_db_error(exc, doing="the command"))


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code instead of exiting."""
    _state["debug"] = False
    try:
        app(args=argv, prog_name="blogdata")
    except SystemExit as exc:  # usage errors, --help and typer.Exit end here
        return exc.code if isinstance(exc.code, int) else int(exc.code is not None)
    except Exception as exc:
        from sqlalchemy.exc import DBAPIError

        expected = isinstance(exc, BlogdataError | DBAPIError | OSError) or type(
            exc
        ).__module__.startswith("asyncpg")
        if not expected:
            raise  # a bug: the full traceback is the useful report
        if _state["debug"] or os.environ.get("BLOGDATA_DEBUG", "").lower() in ("1", "true"):
            traceback.print_exception(exc, file=sys.stderr)
        first = " ".join(_one_line(exc).split())  # one line, whatever the message holds
        typer.echo(f"blogdata: error: {first}", err=True)
        return 1
    return 0
