"""Re-identification risk report for a released table (§11.4.2.4 重标识检测).

Prosecutor model: the attacker knows the target is in the release and knows the target's
quasi-identifiers, so the chance of picking the right record is ``1 / size`` of the target's
equivalence class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import polars as pl

from deid._util import as_list, require_columns
from deid.errors import ParameterError

__all__ = ["RiskReport", "risk_report"]


@dataclass(frozen=True)
class RiskReport:
    """Risk figures of one table.

    * ``class_size_histogram`` - class size -> number of classes of that size;
    * ``share_records_below`` - threshold t -> share of records in classes smaller than t;
    * ``max_prosecutor_risk`` - ``1 / smallest_class``; ``avg_prosecutor_risk`` - mean over
      records of ``1 / class size`` (= classes / records);
    * ``records_at_max_risk`` - share of records in the smallest classes.
    """

    n_records: int
    n_classes: int
    smallest_class: int
    largest_class: int
    class_size_histogram: dict[int, int]
    share_records_below: dict[int, float]
    max_prosecutor_risk: float
    avg_prosecutor_risk: float
    records_at_max_risk: float

    def as_dict(self) -> dict[str, object]:
        """Plain dict, e.g. for the extract's metadata or the audit trail."""
        return asdict(self)


def risk_report(
    df: pl.DataFrame,
    quasi_identifiers: str | Sequence[str],
    *,
    thresholds: Sequence[int] = (5, 10, 20),
) -> RiskReport:
    """Equivalence-class statistics and prosecutor risk of ``df`` on ``quasi_identifiers``."""
    qis = as_list(quasi_identifiers)
    rule = "risk-report"
    if not qis:
        raise ParameterError("at least one quasi-identifier is needed", rule=rule)
    require_columns(df, qis, rule)
    if any(t < 1 for t in thresholds):
        raise ParameterError("thresholds must be >= 1", rule=rule)
    n = df.height
    if n == 0:
        return RiskReport(0, 0, 0, 0, {}, {int(t): 0.0 for t in thresholds}, 0.0, 0.0, 0.0)
    sizes = df.group_by(qis).len().get_column("len").to_numpy().astype(np.int64)
    hist_sizes, hist_counts = np.unique(sizes, return_counts=True)
    records_per_size = hist_sizes * hist_counts
    below = {int(t): float(records_per_size[hist_sizes < t].sum() / n) for t in thresholds}
    smallest = int(hist_sizes[0])
    return RiskReport(
        n_records=n,
        n_classes=int(sizes.size),
        smallest_class=smallest,
        largest_class=int(hist_sizes[-1]),
        class_size_histogram={int(s): int(c) for s, c in zip(hist_sizes, hist_counts, strict=True)},
        share_records_below=below,
        max_prosecutor_risk=1.0 / smallest,
        avg_prosecutor_risk=sizes.size / n,
        records_at_max_risk=float(records_per_size[0] / n),
    )
