"""Build a static HTML copy of the executed notebooks, and fail on any broken internal link.

Usage (from the repository root; ``make docs`` runs it)::

    python notebooks/docs.py              # writes build/docs/*.html, index.html = 00-start-here

Each stored notebook (with its outputs, nothing is re-run) goes through nbconvert's ``lab``
template. Links between notebooks (``03-crud.ipynb#anchor``) become links between pages, links
to other files of the repository (``../README.md``) are rewritten to reach them from the build
folder, and then every relative link of every page is checked: the target page must exist and
so must the ``#anchor`` in it. Any broken link is printed and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
from nbconvert import HTMLExporter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DEFAULT_OUT = ROOT / "build" / "docs"
INDEX = "00-start-here"


class _Links(HTMLParser):
    """Collect a page's element ids and the targets of its links."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
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


def _rewrite_markdown(text: str, out: Path) -> str:
    """Rewrite ``](target)`` links: notebooks to pages, other repository files to real paths."""
    pieces = text.split("](")
    for i in range(1, len(pieces)):
        target, close, rest = pieces[i].partition(")")
        if not close or urlsplit(target).scheme or target.startswith("#"):
            continue
        path, hash_, anchor = target.partition("#")
        if path.endswith(".ipynb") and "/" not in path:
            path = path[: -len(".ipynb")] + ".html"
        else:
            path = os.path.relpath((HERE / path).resolve(), out.resolve())
        pieces[i] = f"{path}{hash_}{anchor}){rest}"
    return "](".join(pieces)


def build(out: Path) -> list[Path]:
    """Write one HTML page per stored notebook into ``out``; return the pages written."""
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in sorted(HERE.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                cell.source = _rewrite_markdown(cell.source, out)
        body, _ = exporter.from_notebook_node(nb, resources={"metadata": {"name": path.stem}})
        page = out / f"{path.stem}.html"
        page.write_text(body, encoding="utf-8")
        pages.append(page)
    shutil.copyfile(out / f"{INDEX}.html", out / "index.html")
    return pages


def main(argv: list[str] | None = None) -> int:
    """Build the pages, check their links, print what is broken; return 1 if anything is."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder")
    args = parser.parse_args(argv)
    pages = build(args.out)
    problems = broken_links(args.out)
    for line in problems:
        print(f"broken link: {line}")  # noqa: T201
    where = os.path.relpath(args.out, Path.cwd())
    print(f"wrote {len(pages)} pages to {where}; {len(problems)} broken links")  # noqa: T201
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
