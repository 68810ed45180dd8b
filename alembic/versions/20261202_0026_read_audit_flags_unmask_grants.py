"""abnormal-access flags, level-5 unmask grants, a study's treating roles, study-less inbox
messages (issue 20: §11.3.4.9 d, §6.2 e)

Revision ID: 0026
Revises: 0018
Create Date: 2026-12-02 04:13:17.864822
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)

revision: str = '0026'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _inbox_triggers(*, create: bool) -> None:
    """inbox_message's append-only triggers, as migration 0009 made them."""
    pg = op.get_bind().dialect.name == "postgresql"
    for what in ("UPDATE", "DELETE"):
        name = f"inbox_message_no_{what.lower()}"
        if not create:
            op.execute(f"DROP TRIGGER IF EXISTS {name}" + (" ON inbox_message" if pg else ""))
        elif pg:
            op.execute(f"CREATE TRIGGER {name} BEFORE {what} ON inbox_message "
                       "FOR EACH ROW EXECUTE FUNCTION lock_append_only()")
        else:
            op.execute(f"CREATE TRIGGER {name} BEFORE {what} ON inbox_message "
                       "BEGIN SELECT RAISE(ABORT, 'inbox_message is append-only'); END")


def upgrade() -> None:
    op.create_table('access_flag',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('rule', sa.String(length=30), nullable=False),
    sa.Column('username', sa.String(length=100), nullable=False),
    sa.Column('study', sa.String(length=100), nullable=True),
    sa.Column('client', sa.String(length=100), nullable=True),
    sa.Column('seen_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('detail', sa.Text(), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=100), nullable=True),
    sa.Column('acknowledged_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_access_flag'))
    )
    with op.batch_alter_table('access_flag', schema=None) as batch_op:
        batch_op.create_index('ix_access_flag_user_rule', ['username', 'rule'], unique=False)

    op.create_table('unmask_grant',
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('study_id', sa.String(length=36), nullable=False),
    sa.Column('user_id', sa.String(length=36), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('granted_by', sa.String(length=100), nullable=False),
    sa.Column('expires_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['study_id'], ['study.id'], name=op.f('fk_unmask_grant_study_id_study')),
    sa.ForeignKeyConstraint(['user_id'], ['user_account.id'], name=op.f('fk_unmask_grant_user_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_unmask_grant'))
    )
    with op.batch_alter_table('unmask_grant', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_unmask_grant_study_id'), ['study_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_unmask_grant_user_id'), ['user_id'], unique=False)

    with op.batch_alter_table('entry_settings', schema=None) as batch_op:
        batch_op.add_column(sa.Column('treating_roles', sa.JSON(), nullable=True))

    # (SQLite rebuilds the table, dropping its append-only triggers: they are made again)
    _inbox_triggers(create=False)
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.alter_column('study_id',
               existing_type=sa.VARCHAR(length=36),
               nullable=True)
        batch_op.alter_column('study_code',
               existing_type=sa.VARCHAR(length=100),
               nullable=True)
    _inbox_triggers(create=True)



def downgrade() -> None:
    # the flags' messages about no one study cannot stay once a study is required again
    _inbox_triggers(create=False)
    op.execute("DELETE FROM inbox_message WHERE study_id IS NULL")
    with op.batch_alter_table('inbox_message', schema=None) as batch_op:
        batch_op.alter_column('study_code',
               existing_type=sa.VARCHAR(length=100),
               nullable=False)
        batch_op.alter_column('study_id',
               existing_type=sa.VARCHAR(length=36),
               nullable=False)
    _inbox_triggers(create=True)

    with op.batch_alter_table('entry_settings', schema=None) as batch_op:
        batch_op.drop_column('treating_roles')

    with op.batch_alter_table('unmask_grant', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_unmask_grant_user_id'))
        batch_op.drop_index(batch_op.f('ix_unmask_grant_study_id'))

    op.drop_table('unmask_grant')
    with op.batch_alter_table('access_flag', schema=None) as batch_op:
        batch_op.drop_index('ix_access_flag_user_rule')

    op.drop_table('access_flag')
