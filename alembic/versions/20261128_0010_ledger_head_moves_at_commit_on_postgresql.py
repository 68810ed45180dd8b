"""ledger head moves at commit on PostgreSQL (a deferred trigger)

A long transaction (a 100,000-row import) updated the one head row once per entry; each update
walked the versions the earlier ones left, so the import slowed with every entry. The head now
moves once, at commit. SQLite is unchanged (it updates in place).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-28 17:00:00
"""
from collections.abc import Sequence

from alembic import op

from audit_trail.triggers import PG_MOVE_HEAD, PG_MOVE_HEAD_0001

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_MOVE_HEAD:
            op.execute(stmt)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for stmt in PG_MOVE_HEAD_0001:
            op.execute(stmt)
