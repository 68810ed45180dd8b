"""extract approvals: the committee roll frozen per request, what each decision signed, and
ethics approvals that cover identifiable use

- ``extract_request.committee_roll``: the user ids of the data security committee when the
  request opened (Appendix C). Backfilled for requests still pending or held with the
  committee's active members at migration time (for them the roll opens now); decided
  requests keep NULL (no vote is left to count).
- ``extract_decision.request_sha256`` / ``terms_sha256``: the request and the data-use
  agreement's terms a decision signed (NULL for decisions made before).
- ``ethics_approval.identifiable_use``: the committee approved identifiable use (a RIF,
  §11.3.4.2); false for every approval recorded before.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 23:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ethics_approval", schema=None) as batch_op:
        batch_op.add_column(sa.Column("identifiable_use", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
    with op.batch_alter_table("extract_decision", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_sha256", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("terms_sha256", sa.String(length=64), nullable=True))
    with op.batch_alter_table("extract_request", schema=None) as batch_op:
        batch_op.add_column(sa.Column("committee_roll", sa.JSON(), nullable=True))
    bind = op.get_bind()
    requests = sa.table("extract_request", sa.column("id", sa.String()),
                        sa.column("committee_roll", sa.JSON()))
    pending = bind.execute(sa.text(
        "SELECT id, study_code FROM extract_request WHERE status IN ('pending', 'held')")).all()
    for rid, study in pending:
        roll = sorted({row[0] for row in bind.execute(sa.text(
            "SELECT g.user_id FROM role_grant g JOIN user_account u ON u.id = g.user_id "
            "WHERE g.role = 'committee_member' AND u.is_active "
            "AND (g.study IS NULL OR g.study = :study)"), {"study": study})})
        bind.execute(requests.update().where(requests.c.id == rid)
                     .values(committee_roll=roll))


def downgrade() -> None:
    with op.batch_alter_table("extract_request", schema=None) as batch_op:
        batch_op.drop_column("committee_roll")
    with op.batch_alter_table("extract_decision", schema=None) as batch_op:
        batch_op.drop_column("terms_sha256")
        batch_op.drop_column("request_sha256")
    with op.batch_alter_table("ethics_approval", schema=None) as batch_op:
        batch_op.drop_column("identifiable_use")
