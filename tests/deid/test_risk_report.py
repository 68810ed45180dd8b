"""§11.4.2.4 risk report: class-size histogram, smallest class, shares below 5/10/20, risks."""

import polars as pl
import pytest

from deid.errors import MissingColumnError
from deid.risk import risk_report


def test_report_on_known_classes():
    # classes of sizes 1, 4, 6, 12, 12 (35 records)
    sizes = [1, 4, 6, 12, 12]
    rows = []
    for i, s in enumerate(sizes):
        rows += [
            {"age": f"{20 + i}-{24 + i}", "sex": "F" if i % 2 else "M", "x": j} for j in range(s)
        ]
    df = pl.DataFrame(rows)
    r = risk_report(df, ["age", "sex"])
    assert r.n_records == 35 and r.n_classes == 5
    assert r.smallest_class == 1 and r.largest_class == 12
    assert r.class_size_histogram == {1: 1, 4: 1, 6: 1, 12: 2}
    assert r.share_records_below[5] == pytest.approx(5 / 35)
    assert r.share_records_below[10] == pytest.approx(11 / 35)
    assert r.share_records_below[20] == pytest.approx(1.0)
    assert r.max_prosecutor_risk == 1.0
    assert r.avg_prosecutor_risk == pytest.approx(5 / 35)
    assert r.records_at_max_risk == pytest.approx(1 / 35)
    assert r.as_dict()["n_classes"] == 5


def test_k_anonymous_table_has_max_risk_one_over_k():
    df = pl.DataFrame({"g": ["a"] * 5 + ["b"] * 7})
    r = risk_report(df, "g")
    assert r.max_prosecutor_risk == pytest.approx(0.2)
    assert r.share_records_below[5] == 0.0


def test_missing_qi_column_is_named():
    with pytest.raises(MissingColumnError, match="zip"):
        risk_report(pl.DataFrame({"a": [1]}), ["zip"])
