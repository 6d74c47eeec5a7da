"""dead_letters: the dead-letter archive.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

TABLE = "dead_letters"
INDEXED = (
    ("task_name",),
    ("queue",),
    ("reason",),
    ("state",),
    ("dead_lettered_at",),
    ("vhost", "dead_letter_queue", "state"),
)


def upgrade() -> None:
    text = sa.Text()
    empty = sa.text("''")
    op.create_table(
        TABLE,
        sa.Column("dead_letter_id", text, nullable=False),
        sa.Column("vhost", text, nullable=False),
        sa.Column("dead_letter_queue", text, nullable=False),
        sa.Column("origin", text, nullable=False),
        sa.Column("task_id", text, nullable=False),
        sa.Column("task_name", text, nullable=False),
        sa.Column("reason", text, nullable=False),
        sa.Column("exchange", text, nullable=False),
        sa.Column("routing_key", text, nullable=False),
        sa.Column("queue", text, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("first_failure", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_failure", sa.DateTime(timezone=True), nullable=True),
        sa.Column("exception_type", text, server_default=empty, nullable=False),
        sa.Column("exception_message", text, server_default=empty, nullable=False),
        sa.Column("traceback", text, server_default=empty, nullable=False),
        sa.Column("retryable", sa.Boolean(), nullable=True),
        sa.Column("worker", text, server_default=empty, nullable=False),
        sa.Column("headers", postgresql.JSONB(), nullable=False),
        sa.Column("properties", postgresql.JSONB(), nullable=False),
        sa.Column("body", text, nullable=False),
        sa.Column("body_base64", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("content_type", text, server_default=empty, nullable=False),
        sa.Column("content_encoding", text, server_default=empty, nullable=False),
        sa.Column("state", text, server_default=sa.text("'queued'"), nullable=False),
        sa.Column("dead_lettered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_replayed_to", text, nullable=True),
        sa.CheckConstraint(
            "state IN ('queued', 'replayed', 'purged', 'dropped')",
            name=op.f("ck_dead_letters_state_known"),
        ),
        sa.PrimaryKeyConstraint("dead_letter_id", name=op.f("pk_dead_letters")),
    )
    for columns in INDEXED:
        op.create_index(op.f(f"ix_{TABLE}_{'_'.join(columns)}"), TABLE, list(columns))


def downgrade() -> None:
    op.drop_table(TABLE)
