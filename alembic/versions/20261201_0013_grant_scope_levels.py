"""role grants name a scope level: the site, its department or its hospital (§11.3.4.1 a)

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 23:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("role_grant") as batch:
        batch.add_column(sa.Column("scope_level", sa.String(length=12), nullable=False,
                                   server_default="site"))


def downgrade() -> None:
    with op.batch_alter_table("role_grant") as batch:
        batch.drop_column("scope_level")
