"""data owner handovers (§11.3.4.4 a), signed by the outgoing and the incoming person; subject requests
(§7 f correction, §7 h restriction)

Revision ID: 0024
Revises: 0018
Create Date: 2026-12-02 04:33:06.622945
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel  # noqa: F401
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)


revision: str = '0024'
down_revision: str | None = '0023'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('owner_handover',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('from_username', sa.String(length=100), nullable=True),
    sa.Column('to_username', sa.String(length=100), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('proposed_by', sa.String(length=100), nullable=False),
    sa.Column('proposed_signature_id', sa.String(length=36), nullable=False),
    sa.Column('accepted_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('accepted_signature_id', sa.String(length=36), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_owner_handover_study_id_study')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_owner_handover'))
    )
    with op.batch_alter_table('owner_handover', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_owner_handover_study_id'), ['study_id'], unique=False)


    op.create_table('subject_request',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('reference', sa.String(length=20), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.String(length=100), nullable=False),
    sa.Column('status', sa.String(length=10), nullable=False),
    sa.Column('resolution', sa.Text(), nullable=True),
    sa.Column('resolved_by', sa.String(length=100), nullable=True),
    sa.Column('resolved_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('consent_id', sa.String(length=36), nullable=True),
    sa.Column('scopes', sa.JSON(), nullable=True),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_subject_request_study_id_study')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'], name=op.f('fk_subject_request_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_subject_request')),
    sa.UniqueConstraint('reference', name=op.f('uq_subject_request_reference'))
    )
    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_subject_request_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_subject_request_subject_id'), ['subject_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('subject_request', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_subject_request_subject_id'))
        batch_op.drop_index(batch_op.f('ix_subject_request_study_id'))

    op.drop_table('subject_request')

    with op.batch_alter_table('owner_handover', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_owner_handover_study_id'))

    op.drop_table('owner_handover')
