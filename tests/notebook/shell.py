"""A real IPython shell with ``%load_ext blogdata``, bound to one engine, for the magic's tests."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from IPython.core.async_helpers import get_asyncio_loop
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy.ext.asyncio import AsyncEngine

from blogdata.notebook import run as sync_run
from blogdata.notebook import use_engine


@contextmanager
def sql_shell(engine: AsyncEngine) -> Iterator[InteractiveShell]:
    """Yield IPython's shell with the magics loaded and ``%sql`` on ``engine``; dispose after."""
    ip = InteractiveShell.instance()
    ip.run_line_magic("load_ext", "blogdata")
    use_engine(engine)
    try:
        yield ip
    finally:
        use_engine(None)
        sync_run(engine.dispose())
        # Plain IPython keeps one event loop for its cells: close it, and the shell, with us.
        loop = get_asyncio_loop()  # type: ignore[no-untyped-call]
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
        InteractiveShell.clear_instance()
        gc.collect()


def run(ip: InteractiveShell, source: str) -> Any:
    """Run ``source`` as a cell; return its value, or raise what it raised."""
    result = ip.run_cell(source)  # type: ignore[no-untyped-call]
    if result.error_in_exec is not None or result.error_before_exec is not None:
        raise result.error_in_exec or result.error_before_exec
    return result.result
