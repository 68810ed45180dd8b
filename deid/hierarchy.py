"""Generalisation hierarchies for quasi-identifiers.

A :class:`Hierarchy` maps each raw value (level 0) to a label at every level ``1..height``; the
last level is usually ``*``. It can be given as a CSV in the ARX layout (``;``-separated, no
header, column 0 = raw value, column i = level i, e.g. ``tests/data/adult/``), as a table,
or as one function per level. Levels must nest (every label of level i generalises to exactly
one label of level i+1), which is what makes the k-anonymity search monotone and lets it roll
class counts up from finer to coarser levels.

Ready-made hierarchies: :func:`age_hierarchy` (Table 6 bands), :func:`postcode_hierarchy`
(one digit masked per level), :func:`date_hierarchy` (day -> month -> year -> ``*``).

Domain (the leaves the loss metric counts)
------------------------------------------
Iyengar's loss metric charges a label for the share of the hierarchy's *domain* it covers:
``(m - 1) / (M - 1)`` for a label covering ``m`` of the ``M`` leaves. The leaves are

* for a table or CSV hierarchy, every raw value (column 0) of the table, whether or not it
  occurs in the data (the ARX hierarchy of age lists 1..100, so ``M = 100`` even when the data
  hold 72 distinct ages);
* for a hierarchy built from functions, which has no leaf list, the distinct raw values it was
  given to encode (the values present in the column). A ``level0`` function that merges raw
  values (ages above 89 shown as ``>89``) makes that level-0 label cover all of them.

:attr:`EncodedColumn.leaves` holds ``m`` per label and level, :attr:`EncodedColumn.domain_size`
holds ``M``. The counts over the level-0 labels present in the data only (deid's earlier
measure, ``metric="loss"``) are kept in :attr:`EncodedColumn.present`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from deid.errors import HierarchyError
from deid.transforms import AGE_BAND_LEVELS, age_band_label

__all__ = [
    "EncodedColumn",
    "Hierarchy",
    "age_hierarchy",
    "date_hierarchy",
    "postcode_hierarchy",
]


@dataclass(frozen=True)
class EncodedColumn:
    """A column integer-coded once for the lattice search (internal, but documented).

    ``codes`` are level-0 codes of every row (0..card[0]-1); ``maps[l][c0]`` is the level-l code
    of level-0 code ``c0``; ``up[a][b][ca]`` maps a level-a code to its level-b code (a <= b);
    ``labels[l][c]`` is the text label of level-l code ``c``. ``leaves[l][c]`` is the number of
    leaves of the hierarchy's domain under label ``c`` of level ``l`` and ``domain_size`` the
    number of leaves (see the module docstring); ``present[l][c]`` and ``present_size`` count
    the distinct level-0 labels of the encoded column only (deid's earlier measure).
    """

    name: str
    codes: np.ndarray
    maps: list[np.ndarray]
    up: list[list[np.ndarray]]
    labels: list[list[str]]
    leaves: list[np.ndarray]
    domain_size: int
    present: list[np.ndarray]
    present_size: int

    @property
    def height(self) -> int:
        return len(self.maps) - 1

    @property
    def cards(self) -> list[int]:
        return [len(x) for x in self.labels]


class Hierarchy:
    """Generalisation hierarchy of one quasi-identifier. Build it with a ``from_*`` constructor."""

    def __init__(
        self,
        *,
        table: dict[str, tuple[str, ...]] | None = None,
        functions: Sequence[Callable[[str], str]] | None = None,
        level0: Callable[[str], str] | None = None,
        height: int,
    ) -> None:
        if height < 1:
            raise HierarchyError("a hierarchy needs at least one level above the raw values")
        self._table = table
        self._functions = tuple(functions) if functions is not None else None
        self._level0 = level0
        self.height = height

    # -- constructors -----------------------------------------------------------------------

    @classmethod
    def from_table(cls, rows: Sequence[Sequence[object]]) -> Hierarchy:
        """Rows ``[raw, level1, level2, ..., top]``; all rows must have the same length."""
        if not rows:
            raise HierarchyError("empty hierarchy table")
        width = len(rows[0])
        table: dict[str, tuple[str, ...]] = {}
        for r in rows:
            if len(r) != width:
                raise HierarchyError(f"row {list(r)!r} has {len(r)} columns, expected {width}")
            raw = str(r[0])
            labels = tuple(str(x) for x in r[1:])
            if raw in table and table[raw] != labels:
                raise HierarchyError(f"value {raw!r} appears twice with different labels")
            table[raw] = labels
        return cls(table=table, height=width - 1)

    @classmethod
    def from_csv(cls, path: str | Path, *, sep: str = ";", encoding: str = "utf-8") -> Hierarchy:
        """Read an ARX-style hierarchy CSV (no header, column 0 = raw value)."""
        p = Path(path)
        with p.open(newline="", encoding=encoding) as fh:
            rows = [r for r in csv.reader(fh, delimiter=sep) if r and any(x.strip() for x in r)]
        try:
            return cls.from_table(rows)
        except HierarchyError as e:
            raise HierarchyError(f"{p.name}: {e}") from None

    @classmethod
    def from_functions(
        cls,
        functions: Sequence[Callable[[str], str]],
        *,
        level0: Callable[[str], str] | None = None,
    ) -> Hierarchy:
        """One function per level 1..h, each mapping the raw value (as text) to its label.

        The domain is taken from the data when the hierarchy is used. ``level0`` optionally
        relabels the raw values themselves (e.g. ages above 89 shown as ``>89`` even at level 0).
        """
        fs = list(functions)
        return cls(functions=fs, level0=level0, height=len(fs))

    # -- use ------------------------------------------------------------------------------

    def labels_of(self, value: str) -> list[str]:
        """Labels of ``value`` at levels 0..height."""
        if self._table is not None:
            try:
                return [value, *self._table[value]]
            except KeyError:
                raise HierarchyError(f"value {value!r} is not covered by the hierarchy") from None
        assert self._functions is not None
        first = self._level0(value) if self._level0 is not None else value
        return [first, *(str(f(value)) for f in self._functions)]

    def domain(self) -> list[str] | None:
        """The leaves of a table hierarchy (its raw values); ``None`` for functions."""
        return list(self._table) if self._table is not None else None

    def _domain_counts(self, rows: list[list[str]]) -> list[dict[str, int]]:
        """Per level: label -> number of domain leaves under it (``rows`` = encoded values)."""
        if self._table is not None:
            rows = [[raw, *labels] for raw, labels in self._table.items()]
        counts: list[dict[str, int]] = [{} for _ in range(self.height + 1)]
        for r in rows:
            for lvl, x in enumerate(r):
                counts[lvl][x] = counts[lvl].get(x, 0) + 1
        return counts

    def encode(self, series: pl.Series) -> EncodedColumn:
        """Integer-code a column and precompute the level maps; checks coverage and nesting."""
        name = series.name
        s = series.cast(pl.String)
        if s.null_count():
            raise HierarchyError(
                "quasi-identifier has missing values; map them to an explicit value first",
                column=name,
                rule="hierarchy",
            )
        values, codes = _dictionary_codes(s)
        rows = []
        for v in values:
            try:
                rows.append(self.labels_of(v))
            except HierarchyError as e:
                raise HierarchyError(str(e), column=name, rule="hierarchy") from None
            except Exception as e:  # a user-supplied level function failed
                raise HierarchyError(
                    f"level function failed on value {v!r}: {e}", column=name, rule="hierarchy"
                ) from None
        maps: list[np.ndarray] = []
        labels: list[list[str]] = []
        for lvl in range(self.height + 1):
            col = [r[lvl] for r in rows]
            lab = sorted(set(col))
            index = {x: i for i, x in enumerate(lab)}
            maps.append(np.fromiter((index[x] for x in col), dtype=np.int32, count=len(col)))
            labels.append(lab)
        up: list[list[np.ndarray]] = []
        for a in range(self.height + 1):
            rep = np.zeros(len(labels[a]), dtype=np.int64)
            rep[maps[a]] = np.arange(len(values))
            row = []
            for b in range(self.height + 1):
                if b < a:
                    row.append(np.empty(0, dtype=np.int32))
                    continue
                m = maps[b][rep]
                if not np.array_equal(m[maps[a]], maps[b]):
                    bad = int(np.flatnonzero(m[maps[a]] != maps[b])[0])
                    fine = labels[a][maps[a][bad]]
                    raise HierarchyError(
                        f"levels do not nest: level-{a} label {fine!r} generalises to more than "
                        f"one level-{b} label",
                        column=name,
                        rule="hierarchy",
                    )
                row.append(m.astype(np.int32))
            up.append(row)
        domain = self._domain_counts(rows)
        leaves = [
            np.array([domain[lvl][x] for x in labels[lvl]], dtype=np.int64)
            for lvl in range(self.height + 1)
        ]
        present = [
            np.bincount(up[0][lvl], minlength=len(labels[lvl])).astype(np.int64)
            for lvl in range(self.height + 1)
        ]
        # rows are coded by their level-0 *label* (several raw values may share one, e.g. >89)
        return EncodedColumn(
            name=name,
            codes=maps[0][codes],
            maps=[up[0][b] for b in range(self.height + 1)],
            up=up,
            labels=labels,
            leaves=leaves,
            domain_size=len(self._table) if self._table is not None else len(values),
            present=present,
            present_size=len(labels[0]),
        )


def _dictionary_codes(s: pl.Series) -> tuple[list[str], np.ndarray]:
    """Sorted distinct values of a string column and each row's index among them.

    Dictionary-encodes once (Categorical) and ranks only the distinct values, which is several
    times faster on large columns than a lookup of every row in the sorted distinct values.
    """
    cat = s.cast(pl.Categorical)
    phys = cat.to_physical().to_numpy().astype(np.int64, copy=False)
    distinct = cat.unique()
    ids = distinct.to_physical().to_numpy().astype(np.int64)
    labels = distinct.cast(pl.String).to_list()
    order = sorted(range(len(labels)), key=labels.__getitem__)
    remap = np.zeros(int(ids.max()) + 1 if ids.size else 0, dtype=np.int32)
    remap[ids[order]] = np.arange(len(order), dtype=np.int32)
    return [labels[i] for i in order], remap[phys]


def age_hierarchy() -> Hierarchy:
    """Exact age -> Table 6 bands -> 10-year -> 20-year -> ``<=89``/``>89`` -> ``*``.

    See :func:`deid.transforms.age_band_label`; ages above 89 are ``>89`` at every level.
    """

    def level(i: int) -> Callable[[str], str]:
        return lambda v: age_band_label(int(v), i)

    # >89 is never finer, not even at level 0
    return Hierarchy.from_functions(
        [level(i) for i in range(1, AGE_BAND_LEVELS + 1)], level0=level(0)
    )


def postcode_hierarchy(digits: int = 6) -> Hierarchy:
    """Postcode truncated one digit per level: ``100080 -> 10008* -> 1000** -> ... -> ******``."""

    def level(i: int) -> Callable[[str], str]:
        def f(v: str) -> str:
            if len(v) != digits or not v.isdigit():
                raise ValueError(f"not a {digits}-digit postcode")
            return v[: digits - i] + "*" * i

        return f

    return Hierarchy.from_functions([level(i) for i in range(1, digits + 1)])


def date_hierarchy() -> Hierarchy:
    """ISO date ``YYYY-MM-DD`` -> ``YYYY-MM`` -> ``YYYY`` -> ``*`` (Table 6 日期)."""
    return Hierarchy.from_functions([lambda v: v[:7], lambda v: v[:4], lambda v: "*"])
