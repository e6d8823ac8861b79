"""Build the notebooks' website (sidebar, search, Mermaid diagrams), and fail on any broken link.

Usage (from the repository root; ``make docs`` runs it)::

    python notebooks/docs.py              # writes build/docs/, open build/docs/index.html

The stored notebooks (with their outputs: nothing is re-run) are copied into a staging folder
with a contents page, and rendered by Sphinx with myst-nb, the book theme (sidebar and search)
and sphinxcontrib-mermaid (```mermaid blocks). Links between notebooks
(``03-crud.ipynb#anchor``) become links between pages; links to other files of the repository
(``../README.md``) are rewritten to reach them from the build folder. Any Sphinx warning (a
missing page or anchor among them) is an error, and then every relative link of every page is
checked again in the HTML: the target page must exist and so must the ``#anchor`` in it. Any
broken link is printed and the exit status is 1.

Mermaid's JavaScript is loaded by the reader's browser from the jsDelivr CDN (no PyPI package
ships it); set ``BLOGDATA_DOCS_MERMAID_JS`` to a folder holding ``mermaid.esm.min.mjs`` and its
``chunks/`` (the ``dist`` folder of the npm package ``mermaid``) to ship it in the site instead.
"""

from __future__ import annotations

import argparse
import io
import os
import re
import shutil
import sys
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "build" / "docs"
INDEX = "00-start-here"
STAGING = "_staging"
#: The contents page: the sidebar (and the site's first page) list the notebooks in this order.
CONTENTS = """# blogdata notebooks

Async SQLAlchemy and PostgreSQL, taught on a real blog database. Start with
[00 · Start here](00-start-here.ipynb); every page lists its prerequisites.

```{toctree}
:maxdepth: 1

{pages}
```
"""


class _Links(HTMLParser):
    """Collect a page's element ids and the targets of its links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        """Record the tag's id (or name) and, for a link, its target."""
        for name, value in attrs:
            if name in ("id", "name") and value:  # nbconvert percent-encodes heading ids
                self.ids |= {value, unquote(value)}
            if name == "href" and tag == "a" and value:
                self.hrefs.append(value)


def _parse(page: Path) -> _Links:
    links = _Links()
    links.feed(page.read_text(encoding="utf-8"))
    return links


def broken_links(folder: Path) -> list[str]:
    """Return one line per broken relative link in the HTML pages of ``folder``."""
    pages = {page.name: _parse(page) for page in sorted(folder.glob("*.html"))}
    pages.pop("genindex.html", None), pages.pop("search.html", None)  # Sphinx's own pages
    problems = []
    for name, links in pages.items():
        for href in links.hrefs:
            target = urlsplit(href)
            if target.scheme or target.netloc or href.startswith("mailto:"):
                continue  # external: not ours to check offline
            path, anchor = unquote(target.path), unquote(target.fragment)
            if not path:
                found = links
            elif path in pages:
                found = pages[path]
            else:
                if not (folder / path).exists():
                    problems.append(f"{name}: {href}: no such page or file")
                continue
            if anchor and anchor not in found.ids:
                problems.append(f"{name}: {href}: no anchor #{anchor} in {path or name}")
    return problems


def heading_slug(text: str) -> str:
    """Jupyter's anchor for a heading: its text with spaces as ``-`` (``glossary#unit-of-work``)."""
    return text.strip().replace(" ", "-")


_LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")


def _rewrite_markdown(text: str, out: Path) -> str:
    """Make links to repository files (not notebooks) plain HTML links that reach them from ``out``.

    Sphinx would look for such a target among its pages; a raw ``<a>`` keeps it a file link.
    """

    def rewrite(link: re.Match[str]) -> str:
        label, target = link[1], link[2]
        path, hash_, anchor = target.partition("#")
        if urlsplit(target).scheme or not path or (path.endswith(".ipynb") and "/" not in path):
            return link[0]  # external, same page, or another notebook (Sphinx links its page)
        path = os.path.relpath((HERE / path).resolve(), out.resolve())
        return f'<a href="{path}{hash_}{anchor}">{label}</a>'

    return _LINK.sub(rewrite, text)


def _config(mermaid_js: str | None) -> dict[str, object]:
    """Sphinx settings: no conf.py, so that the whole build is in this one file."""
    config: dict[str, object] = {
        "project": "blogdata notebooks",
        "extensions": ["myst_nb", "sphinxcontrib.mermaid"],
        "root_doc": "index",
        "exclude_patterns": ["_build", "**.ipynb_checkpoints"],
        "nb_execution_mode": "off",  # render the stored outputs; never run a cell
        "nb_merge_streams": True,
        "myst_heading_anchors": 4,
        "myst_heading_slug_func": heading_slug,
        "myst_fence_as_directive": ["mermaid"],
        # The slug function cannot be pickled (harmless: each build is fresh); a traceback's
        # "$1" that Pygments cannot lex falls back to plain text (harmless too).
        "suppress_warnings": ["config.cache", "misc.highlighting_failure"],
        "html_theme": "sphinx_book_theme",
        "html_title": "blogdata notebooks",
        "html_theme_options": {"show_toc_level": 2, "home_page_in_toc": True},
        "html_copy_source": False,
        "html_show_sourcelink": False,
        "mermaid_d3_zoom": False,
    }
    if mermaid_js:  # a folder of Mermaid's own files, copied into the site by _stage
        config["html_static_path"] = ["_mermaid"]
        config["mermaid_use_local"] = "mermaid.esm.min.mjs"
    return config


def _copy_mermaid(dist: Path, static: Path) -> None:
    """Copy Mermaid's minified ES module and its chunks (not all of ``dist``) into ``static``."""
    main = dist / "mermaid.esm.min.mjs"
    if not main.is_file():
        raise SystemExit(f"BLOGDATA_DOCS_MERMAID_JS={dist}: no mermaid.esm.min.mjs in that folder")
    static.mkdir(parents=True)
    shutil.copyfile(main, static / main.name)
    shutil.copytree(dist / "chunks" / "mermaid.esm.min", static / "chunks" / "mermaid.esm.min")


def _stage(staging: Path, out: Path) -> list[str]:
    """Copy the notebooks (their links rewritten) and a contents page; return the page names."""
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir(parents=True)
    names = []
    for path in sorted(HERE.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _rewrite_markdown(cell.source, out)
        nbformat.write(nb, staging / path.name)
        names.append(path.stem)
    names.sort(key=lambda name: (name == "glossary", name))
    (staging / "index.md").write_text(CONTENTS.replace("{pages}", "\n".join(names)))
    return names


def build(out: Path, mermaid_js: str | None = None) -> tuple[list[Path], list[str]]:
    """Render the site into ``out``; return its notebook pages and Sphinx's warnings."""
    from sphinx.application import Sphinx  # the docs extra: only this command needs Sphinx

    if out.exists():
        shutil.rmtree(out)
    staging = out.parent / f"{out.name}{STAGING}"
    names = _stage(staging, out)
    if mermaid_js:
        _copy_mermaid(Path(mermaid_js), staging / "_mermaid")
    warnings = io.StringIO()
    app = Sphinx(
        srcdir=staging,
        confdir=None,
        outdir=out,
        doctreedir=staging / "_doctrees",
        buildername="html",
        confoverrides=_config(mermaid_js),
        status=None,
        warning=warnings,
        freshenv=True,
    )
    app.build()
    shutil.rmtree(staging)
    lines = [line for line in warnings.getvalue().splitlines() if line.strip()]
    return [out / f"{name}.html" for name in names], lines


def main(argv: list[str] | None = None) -> int:
    """Build the site, check its links, print what is broken; return 1 if anything is."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    pages, warnings = build(args.out, os.environ.get("BLOGDATA_DOCS_MERMAID_JS"))
    problems = [f"sphinx: {line}" for line in warnings] + broken_links(args.out)
    for line in problems:
        print(f"broken: {line}")  # noqa: T201
    where = os.path.relpath(args.out, Path.cwd())
    seconds = time.perf_counter() - started
    print(  # noqa: T201
        f"wrote {len(pages)} pages to {where} in {seconds:.0f} s; {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
