"""What a view of clinical data showed that its audit entry must name (the read entries are
written by the delivery layer, batched: edc/jobs/reads.py)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ReadNote:
    """Filled in by the reading functions: the level-5 items a view showed unmasked under an
    unmask grant (§6.2 e), so that its one read entry says so (``read.unmasked``)."""

    unmasked: set[str] = field(default_factory=set)
