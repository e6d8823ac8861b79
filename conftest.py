"""Run-wide environment for tests and notebooks (nbval kernels inherit it), and PgBouncer skips.

One server per run: ``BLOGDATA_TEST_DATABASE_URL`` when set (the notebooks use it too, through
``BLOGDATA_DATABASE_URL``), else an embedded PostgreSQL in a temporary ``BLOGDATA_HOME`` that is
stopped and deleted when the run ends. A developer's own settings never leak into a run.
nbval's kernels also get ``BLOGDATA_PROGRESS=0``: a progress bar would be a compared output.

The run owns every server started during it (``BLOGDATA_SERVERS_OWNER``, inherited by kernels and
subprocesses): if the run is killed, watchdogs stop them and delete the run's folder.

PgBouncer is optional: without it, the tests marked ``pgbouncer`` and the notebook cells tagged
``pgbouncer`` are skipped, and the summary says so in one line with how to install it. With
``BLOGDATA_REQUIRE_PGBOUNCER=1`` (CI) a missing PgBouncer fails the run instead.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

TEST_HOME = Path(tempfile.mkdtemp(prefix="blogdata-test-"))
TEST_HOME.chmod(0o755)  # our own folder: the embedded server's system user must traverse it
os.environ["BLOGDATA_HOME"] = str(TEST_HOME)
if os.environ.get("BLOGDATA_TEST_DATABASE_URL"):
    os.environ["BLOGDATA_DATABASE_URL"] = os.environ["BLOGDATA_TEST_DATABASE_URL"]
else:
    os.environ.pop("BLOGDATA_DATABASE_URL", None)

from blogdata import _progress  # noqa: E402  (after the environment is set)
from blogdata.servers import _reaper  # noqa: E402
from blogdata.servers.pooler import INSTALL_HINT, find_pgbouncer  # noqa: E402

_RUN = _reaper.this_process()
os.environ[_reaper.OWNER_ENV] = _reaper.token(_RUN)
_reaper.watch(None, owners=[_RUN], remove=[TEST_HOME])  # a killed run leaves no folder

PGBOUNCER_MISSING = f"PgBouncer is not installed ({INSTALL_HINT})"
REQUIRE_PGBOUNCER = "BLOGDATA_REQUIRE_PGBOUNCER"


def pytest_configure(config: pytest.Config) -> None:
    """Declare the ``pgbouncer`` marker; under BLOGDATA_REQUIRE_PGBOUNCER=1, demand PgBouncer."""
    config.addinivalue_line("markers", "pgbouncer: needs the pgbouncer program (skipped without)")
    if os.environ.get(REQUIRE_PGBOUNCER) == "1" and find_pgbouncer() is None:
        raise pytest.UsageError(
            f"{REQUIRE_PGBOUNCER}=1 but {PGBOUNCER_MISSING}: the PgBouncer tests and notebook "
            "cells are required here"
        )


def _needs_pgbouncer(item: pytest.Item) -> bool:
    cell = getattr(item, "cell", None)  # an nbval notebook cell
    tags = cell.metadata.get("tags", []) if cell is not None else []
    return "pgbouncer" in tags or item.get_closest_marker("pgbouncer") is not None


@pytest.hookimpl(wrapper=True)  # around every other setup: before any fixture is set up
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    """Skip what needs PgBouncer when it is missing; start nbval's kernels with no bars."""
    if _needs_pgbouncer(item) and find_pgbouncer() is None:
        pytest.skip(PGBOUNCER_MISSING)  # one location, so one ``-ra`` line
    if getattr(item, "cell", None) is None:  # not an nbval notebook cell
        return (yield)
    before = os.environ.get(_progress.SWITCH)
    os.environ[_progress.SWITCH] = "0"  # the kernel inherits this process's environment
    try:
        return (yield)
    finally:
        if before is None:
            del os.environ[_progress.SWITCH]
        else:
            os.environ[_progress.SWITCH] = before


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say in one line what was skipped for want of PgBouncer, and how to install it."""
    skipped = [
        report
        for report in terminalreporter.stats.get("skipped", [])
        if isinstance(report.longrepr, tuple) and PGBOUNCER_MISSING in report.longrepr[2]
    ]
    if not skipped:
        return
    cells = sum(1 for report in skipped if ".ipynb" in report.nodeid)
    tests = len(skipped) - cells
    terminalreporter.write_line(
        f"PgBouncer is not installed: skipped {tests} test{'s' * (tests != 1)} and {cells} "
        f"notebook cell{'s' * (cells != 1)} that need it; to run them, install it ({INSTALL_HINT})",
        yellow=True,
        bold=True,
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the run's embedded server (if one was started) and delete its folder."""
    from blogdata.servers import embedded

    embedded.stop(TEST_HOME)
    shutil.rmtree(TEST_HOME, ignore_errors=True)
