"""DDL for the triggers that keep the ledger append-only (and move its head), for SQLite and
PostgreSQL.

Used by the migrations (and by tests that drop them to simulate an attacker with direct SQL).
The single permitted UPDATE on ``ledger_entry`` is a redaction: ``redacted`` goes from false to
true, every hashed identity column and every hash stays as it was, and a ``ledger.redact`` entry
naming that sequence number already exists in the ledger.
"""

from __future__ import annotations

_KEPT = ("seq", "ts", "actor", "action", "entity_type", "entity_id", "study", "subject",
         "version", "outcome", "client", "leaf_hash", "prev_hash")


def _sqlite_redaction_ok() -> str:
    same = " AND ".join(f"NEW.{c} IS OLD.{c}" for c in _KEPT)
    return (
        f"OLD.redacted = 0 AND NEW.redacted = 1 AND {same} AND EXISTS (SELECT 1 FROM "
        "ledger_entry r WHERE r.action = 'ledger.redact' AND r.entity_type = 'ledger_entry' "
        "AND r.entity_id = CAST(OLD.seq AS TEXT))"
    )


def _pg_redaction_ok() -> str:
    same = " AND ".join(f"NEW.{c} IS NOT DISTINCT FROM OLD.{c}" for c in _KEPT)
    return (
        f"OLD.redacted = false AND NEW.redacted = true AND {same} AND EXISTS (SELECT 1 FROM "
        "ledger_entry r WHERE r.action = 'ledger.redact' AND r.entity_type = 'ledger_entry' "
        "AND r.entity_id = OLD.seq::text)"
    )


SQLITE_CREATE = [
    "CREATE TRIGGER ledger_entry_no_delete BEFORE DELETE ON ledger_entry "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: DELETE refused'); END",
    "CREATE TRIGGER ledger_entry_no_update BEFORE UPDATE ON ledger_entry "
    f"WHEN NOT ({_sqlite_redaction_ok()}) "
    "BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only: UPDATE refused'); END",
    "CREATE TRIGGER ledger_checkpoint_no_delete BEFORE DELETE ON ledger_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'ledger_checkpoint is append-only: DELETE refused'); END",
    "CREATE TRIGGER ledger_checkpoint_no_update BEFORE UPDATE ON ledger_checkpoint "
    "BEGIN SELECT RAISE(ABORT, 'ledger_checkpoint is append-only: UPDATE refused'); END",
    "CREATE TRIGGER ledger_head_no_delete BEFORE DELETE ON ledger_head "
    "BEGIN SELECT RAISE(ABORT, 'ledger_head cannot be deleted'); END",
    "CREATE TRIGGER ledger_entry_moves_head AFTER INSERT ON ledger_entry "
    "BEGIN UPDATE ledger_head SET seq = NEW.seq, hash = NEW.leaf_hash WHERE id = 1; END",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_no_delete",
    "DROP TRIGGER IF EXISTS ledger_entry_no_update",
    "DROP TRIGGER IF EXISTS ledger_checkpoint_no_delete",
    "DROP TRIGGER IF EXISTS ledger_checkpoint_no_update",
    "DROP TRIGGER IF EXISTS ledger_head_no_delete",
    "DROP TRIGGER IF EXISTS ledger_entry_moves_head",
]

# PostgreSQL moves the head at commit (a deferred trigger), not at each insert: a row updated
# again and again inside one transaction leaves a chain of versions that every later update
# walks, so a 100,000-entry import slowed down with every entry. At commit the first call moves
# the head to the newest entry and the others find it there and write nothing. It only moves
# forward, so a tail deleted behind the triggers' back stays visible to verify. (SQLite updates
# in place: its trigger moves the head at each insert.)
PG_MOVE_HEAD = [
    """CREATE OR REPLACE FUNCTION ledger_move_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_head h SET seq = e.seq, hash = e.leaf_hash
    FROM (SELECT seq, leaf_hash FROM ledger_entry ORDER BY seq DESC LIMIT 1) e
   WHERE h.id = 1 AND h.seq < e.seq;
  RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS ledger_entry_moves_head ON ledger_entry",
    "CREATE CONSTRAINT TRIGGER ledger_entry_moves_head AFTER INSERT ON ledger_entry "
    "DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_move_head()",
]
# What migrations before 0010 created (for 0010's downgrade).
PG_MOVE_HEAD_0001 = [
    """CREATE OR REPLACE FUNCTION ledger_move_head() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE ledger_head SET seq = NEW.seq, hash = NEW.leaf_hash WHERE id = 1;
  RETURN NULL;
END $$""",
    "DROP TRIGGER IF EXISTS ledger_entry_moves_head ON ledger_entry",
    "CREATE TRIGGER ledger_entry_moves_head AFTER INSERT ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION ledger_move_head()",
]

PG_CREATE = [
    """CREATE FUNCTION ledger_refuse() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$""",
    f"""CREATE FUNCTION ledger_entry_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' AND ({_pg_redaction_ok()}) THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'ledger_entry is append-only: % refused', TG_OP
    USING ERRCODE = 'insufficient_privilege';
END $$""",
    *PG_MOVE_HEAD,
    "CREATE TRIGGER ledger_entry_guard BEFORE UPDATE OR DELETE ON ledger_entry "
    "FOR EACH ROW EXECUTE FUNCTION ledger_entry_guard()",
    "CREATE TRIGGER ledger_entry_no_truncate BEFORE TRUNCATE ON ledger_entry "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()",
    "CREATE TRIGGER ledger_checkpoint_guard BEFORE UPDATE OR DELETE ON ledger_checkpoint "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse()",
    "CREATE TRIGGER ledger_checkpoint_no_truncate BEFORE TRUNCATE ON ledger_checkpoint "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()",
    "CREATE TRIGGER ledger_head_guard BEFORE DELETE ON ledger_head "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse()",
    "CREATE TRIGGER ledger_head_no_truncate BEFORE TRUNCATE ON ledger_head "
    "FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse()",
]
PG_DROP = [
    "DROP TRIGGER IF EXISTS ledger_entry_moves_head ON ledger_entry",
    "DROP FUNCTION IF EXISTS ledger_move_head()",
    "DROP TRIGGER IF EXISTS ledger_entry_guard ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_entry_no_truncate ON ledger_entry",
    "DROP TRIGGER IF EXISTS ledger_checkpoint_guard ON ledger_checkpoint",
    "DROP TRIGGER IF EXISTS ledger_checkpoint_no_truncate ON ledger_checkpoint",
    "DROP TRIGGER IF EXISTS ledger_head_guard ON ledger_head",
    "DROP TRIGGER IF EXISTS ledger_head_no_truncate ON ledger_head",
    "DROP FUNCTION IF EXISTS ledger_entry_guard()",
    "DROP FUNCTION IF EXISTS ledger_refuse()",
]


def create_statements(dialect: str) -> list[str]:
    return PG_CREATE if dialect == "postgresql" else SQLITE_CREATE


def drop_statements(dialect: str) -> list[str]:
    return PG_DROP if dialect == "postgresql" else SQLITE_DROP
