"""scans: one row per photo, its step progress and its sorting answer.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=100), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("hint", sa.String(length=100), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("source_format", sa.String(length=10), nullable=True),
        sa.Column("image_key", sa.String(length=255), nullable=True),
        sa.Column("thumbnail_key", sa.String(length=255), nullable=True),
        sa.Column("raw_key", sa.String(length=255), nullable=False),
        sa.Column("phash", sa.String(length=32), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("category", sa.String(length=40), nullable=True),
        sa.Column("item", sa.String(length=40), nullable=True),
        sa.Column("state", sa.String(length=40), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("disposal", _json(), nullable=True),
        sa.Column("guidance", sa.Text(), nullable=True),
        sa.Column("providers", _json(), nullable=True),
        sa.Column("steps", _json(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scans")),
    )
    op.create_index(op.f("ix_scans_created_at"), "scans", ["created_at"], unique=False)
    op.create_index(op.f("ix_scans_owner"), "scans", ["owner"], unique=False)
    op.create_index("ix_scans_owner_created_at", "scans", ["owner", "created_at"], unique=False)
    op.create_index(op.f("ix_scans_phash"), "scans", ["phash"], unique=False)


def downgrade() -> None:
    op.drop_table("scans")
