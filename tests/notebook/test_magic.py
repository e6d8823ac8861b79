"""The %sql magics in a real IPython shell, against the run's migrated database."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator

import pandas as pd
import pyarrow as pa  # type: ignore[import-untyped]
import pytest
from IPython.core.formatters import DisplayFormatter
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy import NullPool, text
from sqlalchemy.engine import URL

from blogdata.db.engine import create_engine
from blogdata.notebook import current_engine
from blogdata.notebook import run as sync_run
from blogdata.notebook.magic import SqlFrame
from tests.notebook.shell import run, sql_shell


@pytest.fixture(scope="module")
def shell(database_url: URL) -> Iterator[InteractiveShell]:
    engine = create_engine(database_url, poolclass=NullPool)
    with sql_shell(engine) as ip:
        yield ip


def formatter(shell: InteractiveShell) -> DisplayFormatter:
    """The shell's display formatter (IPython types it as optional)."""
    assert shell.display_formatter is not None
    return shell.display_formatter


def test_a_line_returns_the_whole_frame_with_a_capped_display(shell: InteractiveShell) -> None:
    run(shell, "df = %sql SELECT g, g * 2 AS twice FROM generate_series(1, 25) AS g ORDER BY g")
    df = shell.user_ns["df"]
    assert isinstance(df, pd.DataFrame) and isinstance(df, SqlFrame)
    assert len(df) == 25 and df["twice"].tolist() == [2 * g for g in range(1, 26)]
    assert df["g"].dtype == pd.Int64Dtype()
    shown = repr(df)
    assert "10 of 25 rows shown" in shown and " 24 " not in shown
    assert "10 of 25 rows shown" in (df._repr_html_() or "")
    assert type(df.head(3)) is pd.DataFrame  # derived frames are plain frames again


def test_a_bound_variable_is_a_parameter_never_sql(shell: InteractiveShell) -> None:
    shell.user_ns["hostile"] = "x'); DROP TABLE posts; -- $1 $$"
    frame = run(shell, "%sql SELECT :hostile AS value, '$1' AS dollar")
    assert frame["value"].tolist() == ["x'); DROP TABLE posts; -- $1 $$"]
    assert frame["dollar"].tolist() == ["$1"]
    assert run(shell, "%sql SELECT to_regclass('posts') IS NOT NULL AS still_there").iloc[0, 0]


def test_a_missing_variable_is_one_clear_line(shell: InteractiveShell) -> None:
    result = shell.run_cell("%sql SELECT :nowhere_defined")
    assert "there is no variable 'nowhere_defined'" in str(result.error_in_exec)


def test_a_sqlalchemy_statement_in_a_variable_runs(shell: InteractiveShell) -> None:
    shell.user_ns["stmt"] = text("SELECT 7 AS seven")
    assert run(shell, "%sql stmt")["seven"].tolist() == [7]


def test_cells_assign_with_o_or_arrows_and_display_options_apply(shell: InteractiveShell) -> None:
    run(shell, "%%sql -o first --display 2\nSELECT g FROM generate_series(1, 5) AS g")
    run(shell, "%%sql second <<\nSELECT 'b' AS letter")
    assert len(shell.user_ns["first"]) == 5 and "2 of 5 rows shown" in repr(shell.user_ns["first"])
    assert shell.user_ns["second"]["letter"].tolist() == ["b"]


def test_a_server_error_is_one_line_with_its_sqlstate(shell: InteractiveShell) -> None:
    result = shell.run_cell("%sql SELECT nope FROM posts")
    message = str(result.error_in_exec)
    assert type(result.error_in_exec).__name__ == "UsageError"
    assert "SQLSTATE 42703" in message and "nope" in message and "\n" not in message
    assert run(shell, "%sql SELECT 1 AS ok")["ok"].tolist() == [1]  # and the next cell works


def test_explain_and_describe_answer_too(shell: InteractiveShell) -> None:
    plan = run(shell, "%sql --explain SELECT * FROM posts WHERE id = 1")
    assert "posts" in str(plan) and "Scan" in str(plan)
    tables = run(shell, "%sql --describe")
    assert {"posts", "users", "tags", "post_tags", "accounts"} <= set(tables["name"])
    posts = run(shell, "%sql --describe posts")
    assert "author_id" in posts.columns["name"].tolist()


def test_the_magic_works_inside_a_cell_that_awaits(database_url: URL) -> None:
    # In its own process: a running loop makes the magic apply nest-asyncio2, which patches
    # asyncio for the whole interpreter (asyncio.run then leaves its loops open).
    script = textwrap.dedent(
        f"""
        from IPython.core.interactiveshell import InteractiveShell
        from blogdata.notebook import use_engine
        from blogdata.db.engine import create_engine
        ip = InteractiveShell.instance()
        ip.run_line_magic("load_ext", "blogdata")
        use_engine(create_engine({database_url.render_as_string(hide_password=False)!r}))
        cell = "import asyncio\\nawait asyncio.sleep(0)\\nawaited = %sql SELECT 3 AS three"
        result = ip.run_cell(cell)
        assert result.error_in_exec is None, result.error_in_exec
        print(ip.user_ns["awaited"]["three"].tolist())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[3]"


def test_an_interrupt_cancels_the_query_on_the_server(shell: InteractiveShell) -> None:
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    result = shell.run_cell("%sql SELECT pg_sleep(30), 'slow-magic-query' AS tag")
    timer.join()
    assert isinstance(result.error_in_exec, KeyboardInterrupt)

    async def still_running() -> int:
        probe = create_engine(current_engine().url, poolclass=NullPool)
        try:
            async with probe.connect() as conn:
                for _ in range(50):
                    count = await conn.scalar(
                        text(
                            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active'"
                            " AND query LIKE '%slow-magic-query%' AND pid <> pg_backend_pid()"
                        )
                    )
                    if not count:
                        return 0
                    await asyncio.sleep(0.1)
                return int(count)
        finally:
            await probe.dispose()

    assert sync_run(still_running()) == 0
    assert run(shell, "%sql SELECT 1 AS after")["after"].tolist() == [1]


def test_arrow_returns_a_pyarrow_table_with_the_columns_types(shell: InteractiveShell) -> None:
    sql = (
        "SELECT g::int4 AS i, g::int8 * 3 AS big, g % 2 = 0 AS even, NULL::int2 AS nothing, "
        "'v' || g AS label FROM generate_series(1, 25) AS g ORDER BY g"
    )
    table = run(shell, f"%sql --arrow -o kept {sql}")
    assert isinstance(table, pa.Table) and shell.user_ns["kept"] is table
    assert table.num_rows == 25
    types = dict(zip(table.schema.names, table.schema.types, strict=True))
    # load_frame's types (its module docstring): every integer type is int64.
    assert types["i"] == pa.int64() and types["big"] == pa.int64() and types["even"] == pa.bool_()
    assert types["nothing"] == pa.int64() and table.column("nothing").null_count == 25
    assert types["label"] == pa.string()
    assert table.column("big").to_pylist() == [3 * g for g in range(1, 26)]
    # The display is capped and says so; a table made elsewhere displays as pyarrow's own.
    shown, _ = formatter(shell).format(table)
    assert "10 of 25 rows shown (the table holds all of them)" in shown["text/html"]
    assert "10 of 25 rows shown" in shown["text/plain"] and "v11" not in shown["text/plain"]
    small = run(shell, "%sql --arrow --display 30 SELECT 1 AS one")
    assert "rows shown" not in formatter(shell).format(small)[0]["text/plain"]
    other, _ = formatter(shell).format(pa.table({"x": list(range(25))}))
    assert "rows shown" not in other["text/plain"] and "text/html" not in other


def test_the_output_default_is_a_config_trait(shell: InteractiveShell) -> None:
    run(shell, '%config SqlMagics.output = "arrow"')
    try:
        assert isinstance(run(shell, "%sql SELECT 1 AS one"), pa.Table)
        assert isinstance(run(shell, "%sql --pandas SELECT 1 AS one"), SqlFrame)
    finally:
        run(shell, '%config SqlMagics.output = "pandas"')
    assert isinstance(run(shell, "%sql SELECT 1 AS one"), SqlFrame)
    shell.run_cell('%config SqlMagics.output = "excel"')  # IPython logs the trait's error
    assert shell.magics_manager.registry["SqlMagics"].output == "pandas"


def test_polars_gives_a_polars_frame_or_says_how_to_install_it(shell: InteractiveShell) -> None:
    result = shell.run_cell("%sql --polars SELECT g FROM generate_series(1, 25) AS g")
    if importlib.util.find_spec("polars") is None:
        err = result.error_in_exec
        assert type(err).__name__ == "UsageError" and "pip install polars" in str(err)
    else:
        frame = result.result
        assert type(frame).__module__.startswith("polars") and frame.height == 25
        shown, _ = formatter(shell).format(frame)
        assert "10 of 25 rows shown (the frame holds all of them)" in shown["text/plain"]
    both = shell.run_cell("%sql --arrow --polars SELECT 1")
    assert "choose one" in str(both.error_in_exec)
