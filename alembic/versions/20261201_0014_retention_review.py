"""retention review: when each study ended, and each signed five-yearly review decision

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 23:38:54.945658
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)


revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('retention_review',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('due_on', sa.Date(), nullable=False),
    sa.Column('decision', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=False),
    sa.Column('decided_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('signature_id', sa.String(length=36), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_retention_review_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_retention_review')),
    sa.UniqueConstraint('study_id', 'due_on', name='retention_review_due')
    )
    with op.batch_alter_table('retention_review', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_retention_review_study_id'), ['study_id'], unique=False)

    op.create_table('study_end',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('ended_on', sa.Date(), nullable=False),
    sa.Column('recorded_by', sa.String(length=200), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_study_end_study_id_study')),
    sa.PrimaryKeyConstraint('study_id', name=op.f('pk_study_end'))
    )


def downgrade() -> None:
    op.drop_table('study_end')
    with op.batch_alter_table('retention_review', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_retention_review_study_id'))

    op.drop_table('retention_review')
