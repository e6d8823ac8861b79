"""The rendered copy of the notebooks (``make docs``) and its broken-link check."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType

from tests.helpers import notebook_script

NOTEBOOKS_DIR = Path(__file__).resolve().parents[2] / "notebooks"


def _docs() -> ModuleType:
    return notebook_script("docs")


def test_the_link_check_names_each_missing_page_and_anchor(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<h1 id="Top">A</h1><a href="b.html#there">ok</a> <a href="b.html#gone">anchor</a>'
        ' <a href="c.html">page</a> <a href="#Top">self</a> <a href="#nowhere">self</a>'
        ' <a href="https://example.org/x.html">external</a>'
    )
    (tmp_path / "b.html").write_text('<h2 id="there">B</h2><a href="a.html#Top">back</a>')
    assert _docs().broken_links(tmp_path) == [
        "a.html: b.html#gone: no anchor #gone in b.html",
        "a.html: c.html: no such page or file",
        "a.html: #nowhere: no anchor #nowhere in a.html",
    ]


def test_percent_encoded_heading_ids_match_their_links(tmp_path: Path) -> None:
    (tmp_path / "a.html").write_text(
        '<h1 id="03-%C2%B7-CRUD">03 · CRUD</h1><a href="#03-%C2%B7-CRUD">¶</a>'
        '<a href="#03-·-CRUD">¶</a>'
    )
    assert _docs().broken_links(tmp_path) == []


def test_links_to_repository_files_become_plain_links_that_reach_them(tmp_path: Path) -> None:
    out = NOTEBOOKS_DIR.parent / "build" / "docs"
    text = "See [03](03-crud.ipynb#Create), [the README](../README.md) and [x](#here)."
    assert _docs()._rewrite_markdown(text, out) == (
        'See [03](03-crud.ipynb#Create), <a href="../../README.md">the README</a> and [x](#here).'
    )


def test_heading_anchors_are_jupyters() -> None:
    assert _docs().heading_slug("unit of work") == "unit-of-work"
    assert _docs().heading_slug("join_transaction_mode") == "join_transaction_mode"
