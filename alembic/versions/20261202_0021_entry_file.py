"""uploaded files of file fields

Revision ID: 0021
Revises: 0018
Create Date: 2026-12-02 04:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)

revision: str = '0021'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('entry_file',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('subject_id', sa.String(length=36), nullable=False),
    sa.Column('item_name', sa.String(length=64), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('media_type', sa.String(length=100), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('uploaded_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'],
                            name=op.f('fk_entry_file_study_id_study')),
    sa.ForeignKeyConstraint(['subject_id'], ['subject.id'],
                            name=op.f('fk_entry_file_subject_id_subject')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_entry_file'))
    )
    with op.batch_alter_table('entry_file', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_entry_file_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_entry_file_subject_id'), ['subject_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('entry_file', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_entry_file_subject_id'))
        batch_op.drop_index(batch_op.f('ix_entry_file_study_id'))
    op.drop_table('entry_file')
