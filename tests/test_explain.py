"""EXPLAIN plans, and the guide's indexed lookups using their indexes on 50,000 users."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from blogdata.bulk import insert_hashed_users
from blogdata.diagnostics import explain, plan_indexes, plan_nodes
from blogdata.errors import InvalidInputError
from blogdata.models import User

USERS = 50_000
START = datetime(2024, 1, 1, tzinfo=UTC)


async def _fill_users(db: AsyncSession) -> None:
    rows = [
        {
            "email": f"user{i:05d}@example.com",
            "username": f"user{i:05d}",
            "hashed_password": "x",
            "created_at": START + timedelta(minutes=15 * i),  # about 520 days in all
        }
        for i in range(USERS)
    ]
    # COPY inside the test's transaction (rolled back afterwards), then fresh statistics:
    # ANALYZE is allowed inside a transaction.
    await insert_hashed_users(db, rows, check_duplicates=False)
    await db.execute(text("ANALYZE users"))


# Each lookup, and the indexes that may serve it.
LOOKUPS: dict[str, tuple[Any, set[str]]] = {
    "email": (select(User).where(User.email == "user04242@example.com"), {"ix_users_email"}),
    "username": (select(User).where(User.username == "user31337"), {"ix_users_username"}),
    "created_at range": (
        select(User).where(
            User.created_at >= START + timedelta(days=100),
            User.created_at < START + timedelta(days=101),
        ),
        {"idx_user_created"},
    ),
    # Both columns are unique on their own: any of the three indexes finds the row.
    "email and username": (
        select(User).where(User.email == "user00007@example.com", User.username == "user00007"),
        {"ix_users_email", "ix_users_username", "idx_user_email_username"},
    ),
    # Sorted by both columns: an index delivers the order (email alone is unique, so either).
    "ordered by email, username": (
        select(User).order_by(User.email, User.username).limit(10),
        {"ix_users_email", "idx_user_email_username"},
    ),
}


async def test_the_guides_lookups_use_their_indexes_on_50_000_users(db: AsyncSession) -> None:
    await _fill_users(db)
    used = {name: plan_indexes(await explain(db, stmt)) for name, (stmt, _) in LOOKUPS.items()}
    for name, (_, allowed) in LOOKUPS.items():
        assert used[name], f"{name}: no index used"
        assert set(used[name]) <= allowed, f"{name}: {used[name]}"
    unindexed = await explain(db, select(User).where(User.full_name == "nobody"))
    assert plan_indexes(unindexed) == []
    assert "Seq Scan" in plan_nodes(unindexed)


async def test_explain_analyze_reports_actual_rows_and_changes_nothing(db: AsyncSession) -> None:
    await insert_hashed_users(
        db,
        [
            {"email": f"a{i}@example.com", "username": f"a{i}", "hashed_password": "x"}
            for i in range(3)
        ],
    )
    plan = await explain(db, update(User).values(is_active=False), analyze=True)
    assert plan["Plan"]["Node Type"] == "ModifyTable"
    assert plan["Plan"]["Plans"][0]["Actual Rows"] == 3
    assert "Execution Time" in plan
    assert await db.scalar(select(func.count()).where(User.is_active)) == 3


async def test_explain_without_analyze_has_no_actual_numbers(db: AsyncSession) -> None:
    plan = await explain(db, select(User.id).limit(5))
    assert plan_nodes(plan)[0] == "Limit"
    assert "Actual Rows" not in plan["Plan"]


async def test_explain_refuses_something_that_is_not_a_statement(db: AsyncSession) -> None:
    with pytest.raises(InvalidInputError, match="needs a SQLAlchemy statement"):
        await explain(db, "SELECT 1")  # type: ignore[arg-type]
