"""%sqlplot: charts whose numbers PostgreSQL computes, through a real IPython shell."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import matplotlib
import pytest
from IPython.core.interactiveshell import InteractiveShell
from sqlalchemy import NullPool
from sqlalchemy.engine import URL

from blogdata import charts
from blogdata.db.engine import create_engine
from blogdata.notebook import run as sync_run
from tests.notebook.shell import run, sql_shell

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402 (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.patches import Rectangle, StepPatch  # noqa: E402


@pytest.fixture(scope="module")
def shell(seeded_url: URL) -> Iterator[InteractiveShell]:
    engine = create_engine(seeded_url, poolclass=NullPool)
    with sql_shell(engine) as ip:
        try:
            yield ip
        finally:
            plt.close("all")


def error(ip: InteractiveShell, source: str) -> BaseException:
    result = ip.run_cell(source)
    assert isinstance(result.error_in_exec, BaseException)
    return result.error_in_exec


async def counted(seeded_url: URL, what: str, **options: Any) -> Any:
    engine = create_engine(seeded_url, poolclass=NullPool)
    try:
        async with engine.connect() as conn:
            if what == "histogram":
                return await charts.histogram_counts(conn, "posts.views", **options)
            return await charts.count_by(conn, "posts.author_id", **options)
    finally:
        await engine.dispose()


def test_a_histogram_has_the_bins_postgresql_counted(
    shell: InteractiveShell, seeded_url: URL
) -> None:
    ax = run(shell, "%sqlplot histogram posts.views --bins 7 --unit views")
    assert isinstance(ax, Axes)
    (steps,) = [p for p in ax.patches if isinstance(p, StepPatch)]
    heights, edges, _ = steps.get_data()
    expected = sync_run(counted(seeded_url, "histogram", bins=7))
    assert heights.tolist() == expected["count"].astype("int64").tolist()
    assert edges.tolist() == [*expected["left"].astype(float), float(expected["right"].iloc[-1])]
    assert ax.get_xlabel() == "posts.views (views)" and ax.get_title()
    plt.close("all")


def test_options_may_come_first_and_bars_are_the_largest_groups(
    shell: InteractiveShell, seeded_url: URL
) -> None:
    ax = run(shell, '%sqlplot --n 3 --title "Busiest authors" bar posts.author_id')
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    expected = sync_run(counted(seeded_url, "bar", n=3))
    assert [b.get_height() for b in bars] == expected["count"].astype("int64").tolist()
    assert ax.get_title() == "Busiest authors"
    plt.close("all")


def test_a_boxplot_by_group(shell: InteractiveShell) -> None:
    ax = run(shell, "%sqlplot boxplot posts.views --by posts.author_id --whis 2")
    assert isinstance(ax, Axes) and "posts.author_id" in ax.get_xlabel()
    plt.close("all")


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ("", "needs a chart and a column"),
        ("pie posts.views", "unknown chart 'pie'"),
        ("histogram", "takes one column"),
        ("histogram posts.views posts.id", "takes one column"),
        ("histogram posts.views --bins many", "--bins takes a whole number, not 'many'"),
        ("histogram posts.views --bins", "--bins needs a value"),
        ("histogram posts.views --by posts.author_id", "--by does not apply to a histogram"),
        ("bar posts.author_id --bins 3", "--bins does not apply to a bar"),
        ("histogram posts.views --colour red", "unknown option '--colour'"),
        ("histogram posts.veiws", 'did you mean "posts.views"'),
        ("histogram posts.views --bins 0", "bins"),
        ('histogram "posts.views', "No closing quotation"),
    ],
)
def test_mistakes_are_one_clear_usage_error(shell: InteractiveShell, line: str, says: str) -> None:
    err = error(shell, f"%sqlplot {line}")
    assert type(err).__name__ == "UsageError" and says in str(err) and "\n" not in str(err)
    plt.close("all")
