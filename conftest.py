"""Run-wide environment for tests and notebooks (nbval kernels inherit it).

One server per run: ``BLOGDATA_TEST_DATABASE_URL`` when set (the notebooks use it too, through
``BLOGDATA_DATABASE_URL``), else an embedded PostgreSQL in a temporary ``BLOGDATA_HOME`` that is
stopped and deleted when the run ends. A developer's own settings never leak into a run.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

TEST_HOME = Path(tempfile.mkdtemp(prefix="blogdata-test-"))
TEST_HOME.chmod(0o755)  # our own folder: the embedded server's system user must traverse it
os.environ["BLOGDATA_HOME"] = str(TEST_HOME)
if os.environ.get("BLOGDATA_TEST_DATABASE_URL"):
    os.environ["BLOGDATA_DATABASE_URL"] = os.environ["BLOGDATA_TEST_DATABASE_URL"]
else:
    os.environ.pop("BLOGDATA_DATABASE_URL", None)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Stop the run's embedded server (if one was started) and delete its folder."""
    from blogdata import embedded

    embedded.stop(TEST_HOME)
    shutil.rmtree(TEST_HOME, ignore_errors=True)
