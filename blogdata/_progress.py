r"""Progress bars for long work: tqdm's widget in a notebook, its bar on a terminal, else nothing.

Where the output goes decides: in a Jupyter kernel a bar is tqdm's auto frontend (a widget
where ipywidgets is installed, its text bar otherwise); on a terminal (``sys.stderr`` is a TTY)
tqdm's text bar on stderr; anywhere else (a file, a pipe, CI's log) no bar at all, so no ``\r``
frames end up in files. Bars appear only after ``DELAY`` seconds, so quick work shows nothing.
tqdm is imported when a bar is made, not with this module.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

__all__ = ["DELAY", "in_notebook", "make_bar", "where_shown"]

#: Seconds of work before a bar appears: short work shows nothing.
DELAY = 1.0


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (whose output is a notebook, not a terminal)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


def where_shown() -> str | None:
    """Return ``"notebook"``, ``"terminal"`` (stderr is a TTY), or None: no bar belongs here."""
    if in_notebook():
        return "notebook"
    stream = sys.stderr
    isatty = getattr(stream, "isatty", None)
    return "terminal" if stream is not None and isatty is not None and isatty() else None


def make_bar(*, wanted: bool = True, delay: float = DELAY, **options: Any) -> Any:
    """Return a tqdm bar for the place the output goes (disabled where no bar belongs).

    ``options`` go to tqdm (``total``, ``unit``, ``desc``, ``initial``...).
    """
    where = where_shown() if wanted else None
    if where == "notebook":
        with warnings.catch_warnings():
            # tqdm.auto warns when ipywidgets is missing, and falls back to the text bar.
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm as auto_tqdm

            return auto_tqdm(delay=delay, **options)
    from tqdm import tqdm

    return tqdm(delay=delay, disable=where is None, file=sys.stderr, **options)
