"""subject disclosures (§7 g): to whom each subject's data went

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-01 23:50:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from audit_trail.base import UTCDateTime

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_disclosure",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("subject_id", sa.String(36), sa.ForeignKey("subject.id"), nullable=False),
        sa.Column("request_id", sa.String(36), sa.ForeignKey("extract_request.id"),
                  nullable=False),
        sa.Column("study_code", sa.String(100), nullable=False),
        sa.Column("recipient_org", sa.String(200), nullable=False),
        sa.Column("tier", sa.String(3), nullable=False),
        sa.Column("fields", sa.JSON(), nullable=False),
        sa.Column("disclosed_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_subject_disclosure_subject_id", "subject_disclosure", ["subject_id"])
    op.create_index("ix_subject_disclosure_request_id", "subject_disclosure", ["request_id"])


def downgrade() -> None:
    op.drop_index("ix_subject_disclosure_request_id", "subject_disclosure")
    op.drop_index("ix_subject_disclosure_subject_id", "subject_disclosure")
    op.drop_table("subject_disclosure")
