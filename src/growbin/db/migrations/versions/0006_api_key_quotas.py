"""api_keys.quotas: a key's own quotas (rate, route-family rates, tasks in flight, streams).

NULL: the settings' defaults (GROWBIN_API_QUOTA_*) apply. Set by `growbin apikey create
--rate ... --in-flight ... --streams ...`.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("quotas", _json(), nullable=True))


def downgrade() -> None:
    op.drop_column("api_keys", "quotas")
