"""Forbid NaN balances: the accounts CHECK also requires ``balance <> 'NaN'``.

PostgreSQL's ``numeric`` admits ``'NaN'``, and ``'NaN' >= 0`` is true (NaN sorts above every
number), so ``CHECK (balance >= 0)`` let a NaN balance in; a transfer out of it then failed in
Python and a transfer into it made the money vanish. The constraint keeps its name.

Upgrade refuses, changing nothing, while a NaN balance exists: which number it should hold is a
decision for a person, not for a migration. Downgrade restores the old CHECK; rows are untouched.

Revision ID: a56526a06b53
Revises: a661c77fcce7
Create Date: 2026-12-01 23:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from blogdata.errors import QueryError

revision: str = "a56526a06b53"
down_revision: str | Sequence[str] | None = "a661c77fcce7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_NAME = "ck_accounts_balance_not_negative"


def _refuse_nan_rows() -> None:
    if op.get_context().as_sql:
        return  # `alembic upgrade --sql` renders the script; the server checks when it runs
    ids = (
        op.get_bind()
        .scalars(sa.text("SELECT id FROM accounts WHERE balance = 'NaN' ORDER BY id LIMIT 11"))
        .all()
    )
    if ids:
        shown = ", ".join(str(i) for i in ids[:10]) + (" …" if len(ids) > 10 else "")
        raise QueryError(
            f"cannot forbid NaN balances: NaN balances exist in accounts (id {shown}); set each "
            "to its real amount (UPDATE accounts SET balance = … WHERE id = …), then run "
            "`blogdata migrate upgrade` again. Nothing was changed.",
            sqlstate="23514",
        )


def upgrade() -> None:
    """Replace the accounts CHECK by one that also refuses NaN; refuse if NaN rows exist."""
    _refuse_nan_rows()
    op.drop_constraint(op.f(_NAME), "accounts", type_="check")
    op.create_check_constraint(op.f(_NAME), "accounts", "balance >= 0 AND balance <> 'NaN'")


def downgrade() -> None:
    """Restore the CHECK that only requires ``balance >= 0``; rows are untouched."""
    op.drop_constraint(op.f(_NAME), "accounts", type_="check")
    op.create_check_constraint(op.f(_NAME), "accounts", "balance >= 0")
