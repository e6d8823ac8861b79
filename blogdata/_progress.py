r"""Progress bars for long work: tqdm's widget in a notebook, its bar on a terminal, else nothing.

Where the output goes decides. In a Jupyter kernel a bar is tqdm's notebook widget, when
ipywidgets is installed; without it no bar, because tqdm's text fallback would write its frames
into the cell's stderr, which the saved notebook keeps (and nbval compares). On a terminal
(``sys.stderr`` is a TTY) it is tqdm's text bar on stderr. Anywhere else (a file, a pipe, CI's
log) there is no bar at all, so no ``\r`` frames end up in files. ``BLOGDATA_PROGRESS=0`` in the
environment turns every bar off. Bars appear only after ``DELAY`` seconds, so quick work shows
nothing. tqdm is imported when a bar is made, not with this module.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import warnings
from typing import Any

__all__ = ["DELAY", "SWITCH", "in_notebook", "make_bar", "where_shown"]

#: Seconds of work before a bar appears: short work shows nothing.
DELAY = 1.0


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (whose output is a notebook, not a terminal)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and getattr(shell, "kernel", None) is not None


#: The environment variable that turns every bar off (``0``, ``off``, ``false`` or ``no``).
SWITCH = "BLOGDATA_PROGRESS"


def where_shown() -> str | None:
    """Return ``"notebook"`` (with ipywidgets), ``"terminal"`` (a TTY), or None: no bar here."""
    if os.environ.get(SWITCH, "").strip().lower() in ("0", "off", "false", "no"):
        return None
    if in_notebook():
        return "notebook" if importlib.util.find_spec("ipywidgets") is not None else None
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
            warnings.simplefilter("ignore")  # tqdm's notebook module warns about old ipywidgets
            from tqdm.auto import tqdm as auto_tqdm

            return auto_tqdm(delay=delay, **options)
    from tqdm import tqdm

    return tqdm(delay=delay, disable=where is None, file=sys.stderr, **options)
