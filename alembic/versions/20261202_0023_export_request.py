"""export request: internal export requests and their signed approval (§11.3.4.1 c)

Revision ID: 0023
Revises: 0018
Create Date: 2026-12-02 04:08:49.331384
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)


revision: str = '0023'
down_revision: str | None = '0026'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('export_request',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('requester_id', sa.String(length=36), nullable=False),
    sa.Column('requested_by', sa.String(length=200), nullable=False),
    sa.Column('requester_role', sa.String(length=40), nullable=False),
    sa.Column('forms', sa.JSON(), nullable=True),
    sa.Column('raw_quasi_identifiers', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('purpose', sa.Text(), nullable=False),
    sa.Column('valid_days', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('decided_by', sa.String(length=200), nullable=True),
    sa.Column('decided_role', sa.String(length=40), nullable=True),
    sa.Column('decided_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('decision_note', sa.Text(), nullable=True),
    sa.Column('signature_id', sa.String(length=36), nullable=True),
    sa.Column('expires_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_export_request_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_export_request'))
    )
    with op.batch_alter_table('export_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_export_request_requester_id'), ['requester_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_export_request_study_id'), ['study_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('export_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_export_request_study_id'))
        batch_op.drop_index(batch_op.f('ix_export_request_requester_id'))

    op.drop_table('export_request')
