"""The notebooks' website (``make docs``) as a reader's browser shows it: headless Chromium.

The site is built, served on a localhost port, and read back with ``chromium --dump-dom``
after its JavaScript ran: the sidebar lists every notebook, the search page finds a page for a
term, and a Mermaid block has become an SVG diagram.

Without ``/usr/bin/chromium`` these tests are skipped (``apt-get install chromium``);
``BLOGDATA_REQUIRE_CHROMIUM=1`` (set in CI) makes a missing browser a failure. Mermaid's
JavaScript comes from a CDN unless ``BLOGDATA_DOCS_MERMAID_JS`` names a local copy (see
``notebooks/docs.py``); the diagram test needs one of the two, and CI provides the local copy.
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import notebook_script

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--virtual-time-budget=15000",  # let the page's scripts (search, Mermaid) finish first
]
NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"

if not Path(CHROMIUM).exists():
    if os.environ.get("BLOGDATA_REQUIRE_CHROMIUM") == "1":
        raise RuntimeError("BLOGDATA_REQUIRE_CHROMIUM=1 but chromium is not installed")
    pytest.skip(
        "chromium is not installed (apt-get install chromium): the site is not checked in a"
        " browser",
        allow_module_level=True,
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Build the site into a temporary folder and serve it; yield its base URL."""
    out = tmp_path_factory.mktemp("site") / "docs"
    docs = notebook_script("docs")
    sys.modules.setdefault(docs.__name__, docs)  # Sphinx pickles the heading-slug function
    with warnings.catch_warnings():  # the book theme uses APIs Sphinx 9 deprecates
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        _, problems = docs.build(out, os.environ.get("BLOGDATA_DOCS_MERMAID_JS"))
    assert problems == []
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(out))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def dom(url: str, profile: Path) -> str:
    """The page's DOM after its scripts ran, as headless Chromium sees it."""
    done = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", url],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


def test_the_sidebar_lists_every_notebook(site: str, tmp_path: Path) -> None:
    page = dom(f"{site}/index.html", tmp_path)
    sidebar = page[page.index("bd-sidebar-primary") :]
    missing = [
        path.stem
        for path in sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
        if f'href="{path.stem}.html"' not in sidebar
    ]
    assert missing == []


def test_the_search_finds_the_page_that_defines_a_term(site: str, tmp_path: Path) -> None:
    page = dom(f"{site}/search.html?q=join_transaction_mode", tmp_path)
    results = page[page.index('id="search-results"') :]
    assert "10-testing.html" in results
    assert "glossary.html" in results


def test_a_mermaid_block_becomes_a_diagram(site: str, tmp_path: Path) -> None:
    if not os.environ.get("BLOGDATA_DOCS_MERMAID_JS"):
        assert os.environ.get("BLOGDATA_REQUIRE_CHROMIUM") != "1", "no BLOGDATA_DOCS_MERMAID_JS"
        pytest.skip("Mermaid's JS would come from a CDN: set BLOGDATA_DOCS_MERMAID_JS (docs.py)")
    page = dom(f"{site}/10-testing.html", tmp_path)
    block = page[page.index('class="mermaid"') :]
    block = block[: block.index("</pre>")]
    assert "<svg" in block
    assert "outer transaction" in block
