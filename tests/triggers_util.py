"""Drop the ledger's triggers: what an attacker with direct SQL access could do."""

from __future__ import annotations

from sqlalchemy import Connection, text

from audit_trail.triggers import drop_statements


def drop_ledger_triggers(conn: Connection) -> None:
    for stmt in drop_statements(conn.dialect.name):
        conn.execute(text(stmt))
