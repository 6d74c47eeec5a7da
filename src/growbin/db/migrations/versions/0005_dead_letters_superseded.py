"""dead_letters: the superseded state (the task id succeeded after its dead letter).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dead_letters"
CHECK = "state_known"  # ck_dead_letters_state_known through the naming convention
OLD_STATES = "state IN ('queued', 'replayed', 'purged', 'dropped')"
NEW_STATES = "state IN ('queued', 'replayed', 'purged', 'dropped', 'superseded')"


def upgrade() -> None:
    op.add_column(TABLE, sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(TABLE, sa.Column("superseded_by", sa.Text(), nullable=True))
    op.drop_constraint(op.f(f"ck_{TABLE}_{CHECK}"), TABLE, type_="check")
    op.create_check_constraint(op.f(f"ck_{TABLE}_{CHECK}"), TABLE, NEW_STATES)


def downgrade() -> None:
    # a superseded record's message has left the queue: dropped is the older state that says so
    op.execute("UPDATE dead_letters SET state = 'dropped' WHERE state = 'superseded'")
    op.drop_constraint(op.f(f"ck_{TABLE}_{CHECK}"), TABLE, type_="check")
    op.create_check_constraint(op.f(f"ck_{TABLE}_{CHECK}"), TABLE, OLD_STATES)
    op.drop_column(TABLE, "superseded_by")
    op.drop_column(TABLE, "superseded_at")
