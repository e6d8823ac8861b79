"""Notebook 12's exercise check: one new link shows on the standby as a count grown by one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from blogdata.errors import ExerciseError
from blogdata.notebook.exercises import check_exercise_12


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(1, id="int"),
        pytest.param(np.int64(1), id="numpy-int"),
        pytest.param(pd.Series([5, 6]).diff().astype("Int64").iloc[1], id="pandas-Int64"),
    ],
)
def test_check_12_accepts_the_solution(answer: object, capsys: pytest.CaptureFixture[str]) -> None:
    check_exercise_12(answer)
    assert capsys.readouterr().out.startswith("✓ the standby counts the new link")


@pytest.mark.parametrize(
    ("answer", "hint"),
    [
        pytest.param(0, "await wait_for_replica", id="read-before-replay"),
        pytest.param(2, "grew by 2", id="two-links"),
        pytest.param("1", "whole number", id="a-string"),
        pytest.param(1.5, "whole number", id="a-float"),
        pytest.param(True, "whole number", id="a-bool"),
    ],
)
def test_check_12_rejects_a_wrong_answer_with_a_hint(answer: object, hint: str) -> None:
    with pytest.raises(ExerciseError, match=hint):
        check_exercise_12(answer)
