"""crf_item.matrix_group: REDCap's matrix group name, kept on import (issue 19)

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-02 00:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("crf_item") as batch:
        batch.add_column(sa.Column("matrix_group", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("crf_item") as batch:
        batch.drop_column("matrix_group")
