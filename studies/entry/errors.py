"""The errors of this domain (the kernel's typed errors cover the rest)."""

from __future__ import annotations

from typing import Any

from studies.kernel.errors import Conflict, InvalidInput
from studies.kernel.i18n import _

CLAUSE_ENTRY = "§11.3.4.7 b"


class EntryInvalid(InvalidInput):
    """Edit checks failed; ``errors`` maps each field to its message (zh/en)."""

    def __init__(self, message: str, *, errors: dict[str, str],
                 changed: list[str] | None = None, **kw: Any) -> None:
        first = next(iter(errors), None)
        super().__init__(message, field=kw.pop("field", first), **kw)
        self.errors = errors
        self.changed = list(changed or [])
        self.details = {"errors": errors, "changed": self.changed}


class StaleVersion(Conflict):
    """The save edits a version that is no longer the newest and cannot be merged;
    ``changes`` lists what changed since (per field: version, who, when, before, after,
    reason). ``conflicts`` are the fields both this save and another changed, each with the
    value at the base version, theirs (now saved) and yours; ``kept`` is the form as the page
    shows it again (theirs where only they changed a field, yours where you did) and
    ``changed`` the fields this save changes."""

    def __init__(self, message: str, *, current_version: int,
                 changes: list[dict[str, Any]], conflicts: list[dict[str, Any]] | None = None,
                 kept: dict[str, Any] | None = None, changed: list[str] | None = None) -> None:
        field = next((c["field"] for c in conflicts or []), "base_version")
        super().__init__(message, field=field, clause=CLAUSE_ENTRY)
        self.current_version = current_version
        self.changes = changes
        self.conflicts = list(conflicts or [])
        self.kept = dict(kept or {})
        self.changed = list(changed or [])
        self.details = {"current_version": current_version, "changes_since": changes,
                        "conflicts": self.conflicts}


class ImportRefused(InvalidInput):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        head = "; ".join(f"row {e['row']}, column {e['column']} ({e['field']}): {e['message']}"
                         for e in errors[:10])
        super().__init__(_("the import was refused, nothing was written ({n_errors} error(s)): "
                           "{head}").format(n_errors=len(errors), head=head),
                         field=errors[0]["field"] if errors else "file",
                         clause="§11.3.1 a")
        self.errors = errors
        self.details = {"errors": errors}
