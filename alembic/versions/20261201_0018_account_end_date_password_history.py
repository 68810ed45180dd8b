"""account end dates and password history

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-02 00:55:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)

revision: str = '0018'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('end_date', sa.Date(), nullable=True))
    op.create_table('password_history',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('password_hash', sa.String(length=255), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'],
                            name=op.f('fk_password_history_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_password_history'))
    )
    with op.batch_alter_table('password_history', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_password_history_user_id'), ['user_id'],
                              unique=False)


def downgrade() -> None:
    with op.batch_alter_table('password_history', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_password_history_user_id'))
    op.drop_table('password_history')
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('end_date')
