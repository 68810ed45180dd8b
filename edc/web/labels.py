"""What pages show for codes: the one table of code labels (``studies.kernel.labels``, which
messages of the domain use too) and a form record's state icons and labels."""

from __future__ import annotations

from studies.kernel.i18n import _l
from studies.kernel.labels import LABELS, label

__all__ = ["LABELS", "STATE_LABELS", "STATE_MARKS", "label"]


# A form record's state in the entry grid, the charts and the form page: its icon and label
# ("saved" is never shown as "verified"; studies.entry.reading.record_state decides).
STATE_MARKS = {"new": "○", "incomplete": "◐", "complete": "●", "verified": "✔",
               "query": "！", "locked": "⊠"}
STATE_LABELS = {"new": _l("not started"), "incomplete": _l("incomplete"),
                "complete": _l("saved complete, not verified"),
                "verified": _l("verified (SDV)"), "query": _l("open query"),
                "locked": _l("locked (read-only)")}
