"""``%sql``'s memory guard in a real IPython shell: ``--max-bytes``, ``SqlMagics.max_bytes`` and
the default share of the available memory; and ``--arrow``/``--polars`` through ``load_arrow``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy import NullPool
from sqlalchemy.engine import URL

from blogdata import loaders
from blogdata.db.engine import create_engine
from blogdata.notebook import magic
from blogdata.notebook.magic import SqlMagics, available_memory
from tests.notebook.shell import run, sql_shell

#: About 1.2 MB of binary COPY: 10,000 rows of an int and 100 characters.
BIG = "SELECT g, repeat('x', 100) AS pad FROM generate_series(1, 10000) AS g"


@pytest.fixture(scope="module")
def shell(database_url: URL) -> Iterator[InteractiveShell]:
    engine = create_engine(database_url, poolclass=NullPool)
    with sql_shell(engine) as ip:
        yield ip


def error_of(shell: InteractiveShell, source: str) -> BaseException | None:
    """Run ``source`` as a cell; return what it raised (None if nothing)."""
    result = shell.run_cell(source)  # type: ignore[no-untyped-call]
    return result.error_in_exec or result.error_before_exec  # type: ignore[no-any-return]


def magics(shell: InteractiveShell) -> SqlMagics:
    found = shell.magics_manager.registry["SqlMagics"]
    assert isinstance(found, SqlMagics)
    return found


@pytest.mark.parametrize("output", ["--pandas", "--arrow"])
def test_max_bytes_stops_a_big_result_with_one_line_and_the_next_cell_works(
    shell: InteractiveShell, output: str
) -> None:
    err = error_of(shell, f"%sql {output} --max-bytes 100kB {BIG}")
    assert type(err).__name__ == "UsageError", err
    said = str(err)
    assert "\n" not in said and "past max_bytes=100,000" in said, said
    for way_out in ("LIMIT", "stream_frames", "larger max_bytes", "--max-bytes"):
        assert way_out in said, said
    assert run(shell, "%sql SELECT 1 AS after")["after"].tolist() == [1]
    assert len(run(shell, f"%sql {output} --max-bytes 10MB {BIG}")) == 10_000


def test_the_config_trait_sets_the_budget_and_zero_lifts_it(shell: InteractiveShell) -> None:
    run(shell, "%config SqlMagics.max_bytes = 50000")
    try:
        refused = error_of(shell, f"%sql {BIG}")
        assert "past max_bytes=50,000" in str(refused), refused
        assert len(run(shell, f"%sql --max-bytes 0 {BIG}")) == 10_000  # the option wins
        run(shell, "%config SqlMagics.max_bytes = 0")
        assert len(run(shell, f"%sql {BIG}")) == 10_000
    finally:
        run(shell, "%config SqlMagics.max_bytes = None")


def test_the_default_budget_is_a_quarter_of_the_memory_available(shell: InteractiveShell) -> None:
    available = available_memory()
    assert available is not None and available > 0  # Linux: /proc/meminfo's MemAvailable
    budget = magics(shell)._budget(None)
    assert budget is not None
    assert 0.2 * available <= budget <= 0.3 * available  # 25% of a number that moves
    assert magic.MEMORY_SHARE == 0.25 and magics(shell).memory_share == 0.25
    run(shell, "%config SqlMagics.memory_share = 1e-9")  # a few bytes: any result is too big
    try:
        refused = error_of(shell, f"%sql {BIG}")
        assert "past max_bytes=" in str(refused) and "0% of the memory" in str(refused)
    finally:
        run(shell, "%config SqlMagics.memory_share = 0.25")


@pytest.mark.parametrize("bad", ["lots", "-5", "5XB"])
def test_a_bad_max_bytes_is_one_usage_error(shell: InteractiveShell, bad: str) -> None:
    err = error_of(shell, f"%sql --max-bytes {bad} SELECT 1")
    assert type(err).__name__ == "UsageError" and "--max-bytes takes a size" in str(err)


def test_arrow_comes_from_load_arrow_with_its_types(shell: InteractiveShell) -> None:
    assert magic.load_arrow is loaders.load_arrow  # type: ignore[attr-defined]
    table = run(
        shell,
        "%sql --arrow SELECT 1.50::numeric AS n, '{\"a\": 1}'::jsonb AS j, "
        "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid AS u, current_date AS d",
    )
    assert isinstance(table, pa.Table)
    assert table.schema.types == [pa.string(), pa.string(), pa.uuid(), pa.date32()]
    assert table.column("n").to_pylist() == ["1.50"]
    assert table.schema.metadata[b"blogdata.route"] == b"binary"
