"""The jobs domain's own error."""

from __future__ import annotations

from studies.kernel.errors import Conflict


class LeaseLost(Conflict):
    """The runner no longer holds the job (its lease expired and another runner claimed it):
    whatever it wrote in the job's transaction must roll back."""
