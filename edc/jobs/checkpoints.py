"""Checkpoints early and often, and their submission to the witnesses.

``checkpoint_now`` signs the current tree head if it is newer than the latest checkpoint (a
short transaction of its own); ``submit`` sends the latest checkpoint to each configured
witness with the consistency proof from the size that witness holds (c2sp.org/tlog-witness).
``CheckpointWorker`` runs both every ``EDC_CHECKPOINT_SECONDS`` inside ``edc serve``; the CLI
runs them at the end of every command that appended (``edc.cli.main``). Neither is on the
path of a save.
"""

from __future__ import annotations

import logging
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field

from sqlalchemy.orm import Session, sessionmaker

from audit_trail import note
from audit_trail import witness as wit
from audit_trail.models import LedgerCheckpoint
from audit_trail.service import Ledger, ledger_size

log = logging.getLogger(__name__)
TIMEOUT_SECONDS = 10


def checkpoint_now(sessions: sessionmaker[Session], ledger: Ledger, *,
                   reason: str) -> LedgerCheckpoint | None:
    """Sign a checkpoint of the current head unless the latest one already covers it;
    returns the new checkpoint, or None when there was nothing new."""
    with sessions() as s:
        size = ledger_size(s)
        latest = wit.latest_checkpoint(s)
    if latest is not None and latest.tree_size >= size:
        return None
    with sessions() as s, s.begin():
        cp = ledger.checkpoint(s, reason=reason)
        s.expunge(cp)
    return cp


@dataclass
class WitnessClient:
    """One configured witness: its submission URL, its verifier key, and the size it was last
    seen to hold (None until it answers)."""

    url: str
    vkey: str
    held: int | None = None
    last_error: str | None = field(default=None)

    @property
    def name(self) -> str:
        return self.vkey.split("+", 1)[0]

    def _post(self, body: bytes) -> tuple[int, str]:
        req = urllib.request.Request(f"{self.url}/add-checkpoint", data=body, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT_SECONDS) as resp:  # noqa: S310
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def submit(self, session: Session, cp: LedgerCheckpoint) -> str:
        """Have this witness cosign ``cp``; returns the checkpoint with its cosignature.
        Raises WitnessError when it refuses (409 with a larger size: the database is behind
        what the witness saw, i.e. it was rolled back)."""
        for _ in range(3):
            old = self.held if self.held is not None and self.held <= cp.tree_size else 0
            status, text = self._post(wit.submission(session, old_size=old, checkpoint=cp))
            if status == 200:
                cosigned = cp.note + "".join(ln + "\n" for ln in text.splitlines()
                                             if ln.startswith(note.SIG_PREFIX))
                note.open_cosignature(cosigned, self.vkey)
                self.held, self.last_error = cp.tree_size, None
                return cosigned
            if status == 409 and text.strip().isdigit():
                self.held = int(text.strip())
                if self.held == old:
                    raise wit.WitnessError(
                        409, f"witness {self.name} cosigned another tree of size {old}: the "
                        "ledger was rewritten (or the log forked)", size=old)
                if self.held > cp.tree_size:
                    raise wit.WitnessError(
                        409, f"witness {self.name} holds size {self.held} but the ledger has "
                        f"only {cp.tree_size} entries: the database was truncated or rolled "
                        "back", size=self.held)
                continue
            raise wit.WitnessError(status, f"witness {self.name} refused size {cp.tree_size}: "
                                   f"{status} {text.strip()[:300]}")
        raise wit.WitnessError(409, f"witness {self.name} keeps changing its size")


def submit(sessions: sessionmaker[Session], clients: list[WitnessClient]) -> list[str]:
    """Submit the latest checkpoint to every witness; returns one line per witness."""
    with sessions() as s:
        cp = wit.latest_checkpoint(s)
        if cp is None:
            return []
        lines = []
        for c in clients:
            try:
                c.submit(s, cp)
                lines.append(f"witness {c.name}: cosigned size {cp.tree_size}")
            except (wit.WitnessError, note.NoteError, OSError) as exc:
                c.last_error = str(exc)
                log.error("witness %s: %s", c.name, exc)
                lines.append(f"witness {c.name}: NOT COSIGNED: {exc}")
    return lines


class CheckpointWorker(threading.Thread):
    """Every ``interval`` seconds: a checkpoint if the ledger grew, then the witnesses."""

    def __init__(self, sessions: sessionmaker[Session], ledger: Ledger, *,
                 clients: list[WitnessClient], interval: float) -> None:
        super().__init__(name="checkpointer", daemon=True)
        self.sessions, self.ledger, self.clients = sessions, ledger, clients
        self.interval = interval
        self._halt = threading.Event()

    def stop(self) -> None:
        self._halt.set()

    def run_once(self) -> None:
        cp = checkpoint_now(self.sessions, self.ledger, reason="interval-time")
        pending = any(c.held is None or c.last_error is not None
                      or (cp is not None and c.held < cp.tree_size) for c in self.clients)
        if self.clients and (cp is not None or pending):
            submit(self.sessions, self.clients)

    def run(self) -> None:
        while not self._halt.wait(self.interval):
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - the worker outlives a failed round
                log.exception("checkpoint worker")
