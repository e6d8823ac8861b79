"""Build and re-execute the notebooks, storing their outputs deterministically.

Usage (from the repository root)::

    python notebooks/execute.py               # every notebook
    python notebooks/execute.py 01 08         # by number, name or path
    python notebooks/execute.py --build-only 03   # write the .ipynb from its source, don't run

A notebook whose source ``notebooks/src/NN-name.py`` exists is first rebuilt from it. The source
is jupytext's "percent" format (``# %% [markdown]`` and ``# %%`` cells, optional ``tags=[...]``),
read by jupytext with the options in ``[tool.jupytext]`` of pyproject.toml; a notebook without a
source is executed as it is. Cell ids are stable (``cell-01`` …), timing metadata is dropped and
the kernel metadata has no version numbers, so a re-run changes only what changed. The kernel is
this Python (the venv with blogdata installed) and inherits the environment:
``BLOGDATA_DATABASE_URL`` if set, else the embedded server. It runs with ``BLOGDATA_PROGRESS=0``:
a progress bar (a widget in a kernel) would become a stored output.

Every notebook built from a source gets a generated navigation line as its first and last cell
(``← previous · Contents · Glossary · next →``, titles taken from each source's first heading),
and a cell tagged ``solution`` is stored collapsed (``jupyter.source_hidden``) but still runs.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from jupytext.config import load_jupytext_config
from nbclient import NotebookClient
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
NOTEBOOK = re.compile(r"\d\d-[a-z0-9-]+|glossary")
CONTENTS = "00-start-here"
KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
#: The kernels' environment on top of this process's: no progress bars in stored outputs.
KERNEL_ENV = {"BLOGDATA_PROGRESS": "0"}
# What a source may say about a cell: its type (code or markdown) and tags. jupytext also
# records ``lines_to_next_cell`` (blank lines to write back into a .py), which the built
# notebook does not keep: nothing writes the .ipynb back to its source.
_CELL_TYPES = ("code", "markdown")
_CELL_METADATA = {"tags"}
_JUPYTEXT_ONLY = {"lines_to_next_cell"}
_MARKER = re.compile(r"^# %%")


class SourceError(ValueError):
    """A notebook source that is not the percent format this folder uses."""


def _refuse(name: str, problem: str) -> SourceError:
    return SourceError(
        f"{name}: {problem}. A source is only '# %% [markdown]' and '# %%' cells, each marker "
        'optionally followed by tags=["..."] (see notebooks/CONVENTIONS.md)'
    )


def parse_source(text: str, name: str = "<source>") -> nbformat.NotebookNode:
    """Turn a percent-format script into a notebook without outputs (read by jupytext)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    if not _MARKER.match(first):
        raise _refuse(name, f"the first line must be a '# %%' cell marker, not {first!r}")
    try:
        read = jupytext.reads(text, fmt=_text_format())
    except Exception as exc:  # jupytext validates what it read (nbformat's schema: tags, ...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise _refuse(name, f"jupytext cannot read it ({reason})") from exc
    nb: nbformat.NotebookNode = new_notebook(
        metadata={"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}
    )
    for index, found in enumerate(read.cells, start=1):
        if found.cell_type not in _CELL_TYPES:
            raise _refuse(name, f"cell {index} is a {found.cell_type} cell")
        extra = sorted(found.metadata.keys() - _CELL_METADATA - _JUPYTEXT_ONLY)
        if extra:
            shown = ", ".join(f"{key}={found.metadata[key]!r}" for key in extra)
            raise _refuse(name, f"cell {index} has a marker jupytext reads as {shown}")
        tags = list(found.metadata.get("tags", []))
        if found.cell_type == "markdown":
            cell = new_markdown_cell(found.source)
        else:
            cell = new_code_cell(found.source)
        cell.id = f"cell-{index:02d}"
        if tags:
            cell.metadata["tags"] = tags
        if "solution" in tags:  # collapsed in JupyterLab until the learner opens it; still run
            cell.metadata["jupyter"] = {"source_hidden": True}
        nb.cells.append(cell)
    return nb


def _text_format() -> dict[str, Any]:
    """Return the percent format with the options of ``[tool.jupytext]`` in pyproject.toml."""
    config = load_jupytext_config(str(SOURCES))
    if config is None:  # jupytext's defaults read "# ## copy" as an escaped shell command
        raise SystemExit("no jupytext configuration found: pyproject.toml needs [tool.jupytext]")
    fmt: dict[str, Any] = {"extension": ".py", "format_name": "percent"}
    config.set_default_format_options(fmt, read=True)
    return fmt


def title(stem: str) -> str:
    """Return a notebook's title: the first heading of its source (``NN · Title``)."""
    source = SOURCES / f"{stem}.py"
    text = source.read_text() if source.exists() else ""
    found = re.search(r"^# # (.+)$", text, re.MULTILINE)
    return found[1].split(":")[0].strip() if found else stem


def navigation(stem: str) -> str:
    """Return the "← previous · contents · next →" line for notebook ``stem``."""
    chain = [s for s in _stems() if s != "glossary"]
    parts = []
    if stem in chain and (at := chain.index(stem)) > 0:
        previous = chain[at - 1]
        parts.append(f"[← {title(previous)}]({previous}.ipynb)")
    if stem != CONTENTS:
        parts.append(f"[Contents]({CONTENTS}.ipynb)")
    parts.append("[Glossary](glossary.ipynb)" if stem != "glossary" else "Glossary")
    if stem in chain and (at := chain.index(stem)) < len(chain) - 1:
        following = chain[at + 1]
        parts.append(f"[{title(following)} →]({following}.ipynb)")
    return " · ".join(parts)


def from_source(source: Path) -> nbformat.NotebookNode:
    """Build the notebook for a source file, with its navigation line first and last."""
    nb = parse_source(source.read_text(), source.name)
    line = navigation(source.stem)
    top, bottom = new_markdown_cell(line), new_markdown_cell(line)
    top.id, bottom.id = "nav-top", "nav-bottom"
    nb.cells = [top, *nb.cells, bottom]
    return nb


def _tidy(nb: nbformat.NotebookNode) -> None:
    """Drop volatile metadata (timings, versions) that nbval ignores but diffs would show."""
    nb.metadata["kernelspec"] = KERNELSPEC
    nb.metadata["language_info"] = {"name": "python"}
    for index, cell in enumerate(nb.cells, start=1):
        cell.metadata.pop("execution", None)
        cell.setdefault("id", f"cell-{index:02d}")
        for output in cell.get("outputs", []):
            if output.output_type == "error":
                # Full tracebacks hold kernel temp paths and colour codes; nbval ignores them.
                output.traceback = [f"{output.ename}: {output.evalue}"]


def _stderr_cells(nb: nbformat.NotebookNode) -> list[int]:
    return [
        index
        for index, cell in enumerate(nb.cells, start=1)
        if cell.cell_type == "code"
        and any(out.get("name") == "stderr" for out in cell.get("outputs", []))
    ]


def _stems() -> list[str]:
    known = {p.stem for p in HERE.glob("*.ipynb")} | {p.stem for p in SOURCES.glob("*.py")}
    return sorted(s for s in known if NOTEBOOK.fullmatch(s))


def find(names: list[str]) -> list[Path]:
    """Resolve notebook arguments (numbers, names, paths) to .ipynb paths in this folder."""
    stems = _stems()
    if not names:
        return [HERE / f"{stem}.ipynb" for stem in stems]
    chosen: list[Path] = []
    for name in names:
        key = Path(name).stem
        matches = [s for s in stems if s == key or s.startswith(f"{key}-")]
        if len(matches) != 1:
            raise SystemExit(f"no single notebook matches {name!r}; known: {', '.join(stems)}")
        chosen.append(HERE / f"{matches[0]}.ipynb")
    return chosen


def build(path: Path) -> nbformat.NotebookNode:
    """Return the notebook for ``path``: rebuilt from its source if it has one."""
    source = SOURCES / f"{path.stem}.py"
    if source.exists():
        return from_source(source)
    notebook: nbformat.NotebookNode = nbformat.read(path, as_version=4)
    return notebook


def execute(nb: nbformat.NotebookNode, *, timeout: int = 300) -> None:
    """Run every cell in a fresh kernel (this environment, no bars), in the notebooks folder."""
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(HERE)}},
    )
    client.execute(env={**os.environ, **KERNEL_ENV})  # given to the kernel manager


def main(argv: list[str] | None = None) -> int:
    """Build and execute the chosen notebooks; return 1 if any failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", help="numbers, names or paths (default: all)")
    parser.add_argument("--build-only", action="store_true", help="write without executing")
    args = parser.parse_args(argv)
    failed = 0
    for path in find(args.notebooks):
        started = time.perf_counter()
        try:
            nb = build(path)
            if not args.build_only:
                execute(nb)
        except Exception as exc:  # report and go on with the others; the file is not written
            failed += 1
            print(f"FAILED {path.name}: {type(exc).__name__}: {str(exc)[-2000:]}")  # noqa: T201
            continue
        _tidy(nb)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        note = " (built only, no outputs: execute it before committing)" if args.build_only else ""
        if stderr := _stderr_cells(nb):
            note = f"  (stderr output in cells {stderr}: nbval compares it; is it deterministic?)"
        seconds = time.perf_counter() - started
        print(f"wrote {path.name} in {seconds:.1f} s{note}")  # noqa: T201
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
