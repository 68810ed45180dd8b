"""the job table (queued work claimed by runners) and the shared login throttle

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-02 04:10:00
"""
import datetime as dt
import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import audit_trail.base  # noqa: F401  (custom column types)

revision: str = '0019'
down_revision: str | None = '0024'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    job = op.create_table('job',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('created_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.Column('kind', sa.String(length=40), nullable=False),
    sa.Column('ref', sa.String(length=64), nullable=True),
    sa.Column('payload', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('max_attempts', sa.Integer(), nullable=False),
    sa.Column('claimed_by', sa.String(length=120), nullable=True),
    sa.Column('heartbeat_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('lease_expires_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('progress', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('finished_at', audit_trail.base.UTCDateTime(timezone=True), nullable=True),
    sa.Column('dedupe_key', sa.String(length=120), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_job')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_job_dedupe_key'))
    )
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_job_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_ref'), ['ref'], unique=False)
        batch_op.create_index(batch_op.f('ix_job_state'), ['state'], unique=False)
    op.create_table('login_throttle',
    sa.Column('key', sa.String(length=300), nullable=False),
    sa.Column('hits', sa.JSON(), nullable=False),
    sa.Column('updated_at', audit_trail.base.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_login_throttle'))
    )
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_login_throttle_updated_at'), ['updated_at'],
                              unique=False)
    # Builds queued (or interrupted) before the job table existed become jobs.
    conn = op.get_bind()
    pending = conn.execute(sa.text(
        "SELECT id FROM extract_request WHERE build_state IN ('queued', 'running') "
        "ORDER BY requested_at")).scalars().all()
    if pending:
        now = dt.datetime.now(dt.UTC)
        op.bulk_insert(job, [dict(
            id=str(uuid.uuid4()), created_at=now + dt.timedelta(microseconds=i),
            kind='extract.build', ref=rid, payload={'request_id': rid}, state='queued',
            attempts=0, max_attempts=3, progress=0) for i, rid in enumerate(pending)])
        conn.execute(sa.text("UPDATE extract_request SET build_state = 'queued' "
                             "WHERE build_state = 'running'"))


def downgrade() -> None:
    with op.batch_alter_table('login_throttle', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_login_throttle_updated_at'))
    op.drop_table('login_throttle')
    with op.batch_alter_table('job', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_job_state'))
        batch_op.drop_index(batch_op.f('ix_job_ref'))
        batch_op.drop_index(batch_op.f('ix_job_kind'))
    op.drop_table('job')
