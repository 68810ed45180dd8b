"""k-anonymity (with optional distinct l-diversity) by a globally optimal lattice search.

§10.2 e and §11.4.2.4: every combination of quasi-identifier values must be shared by at least k
subjects (default 5), generalising further or suppressing records where needed; columns marked
sensitive must also be l-diverse inside each class.

Model
-----
Full-domain generalisation: each quasi-identifier (QI) is generalised to one level of its
:class:`~deid.hierarchy.Hierarchy`; a *node* of the lattice is the vector of levels. Records in
equivalence classes that violate the model (fewer than ``k`` records, or fewer than ``l``
distinct values of a sensitive column) are suppressed - removed from the release - provided at
most ``max_suppression`` of all records are; a node meeting this is *satisfying*.

Loss metric (what is minimised)
-------------------------------
Default ``metric="lm"``: Iyengar's loss metric (LM) over the hierarchy's domain, as ARX
("Loss") and the literature count it. A released cell whose label covers ``m`` of the ``M``
leaves of the hierarchy costs ``(m - 1) / (M - 1)``, a suppressed record costs 1 in every QI
cell, and the total is averaged over ``n x QIs`` cells (0 = raw data, 1 = nothing left). The
leaves are the hierarchy's raw values (all rows of a table / ARX CSV, present in the data or
not); a hierarchy built from functions knows only the values it encodes (see
:mod:`deid.hierarchy`). Why: it charges a label for the share of the domain it hides (a 5-year
band of the ARX age hierarchy over 1..100 costs 4/99), it charges suppression as much as full
generalisation so the search cannot win by deleting people, any tool's output can be scored
with it, and its generalisation part ``G`` (the loss if nothing were suppressed) is a per-node
constant that never decreases up the lattice and bounds the loss from below (``loss >= G``),
which makes pruning exact.

``metric="loss"`` is deid's earlier measure: the same formula with ``m`` and ``M`` counted over
the level-0 labels present in the data instead of the hierarchy's leaves.
``metric="precision"`` (Sweeney's Prec: ``level / height`` per cell) works the same way.
Whatever is optimised, :class:`AnonymizationResult` reports all three for the chosen node
(``lm``, ``losses``).

Search (Flash/OLA-style, exact)
-------------------------------
* Every QI is integer-coded once; per level a code -> generalised-code array is precomputed.
* A node's equivalence classes are computed by rolling the grouped (codes, count) table of an
  already evaluated *finer* node up through those arrays - never by re-scanning the records
  once the bottom table exists. Combined keys are mixed-radix packed into one ``int64`` and
  grouped by ``bincount`` (small key space) or sorting.
* Predictive tagging: the number of records in violating classes never increases when
  generalising (a class that is large and diverse enough stays so after merging), so a
  satisfying node makes all its generalisations satisfying and a failing node makes all its
  specialisations fail. Unknown nodes are classified by binary search along a chain to the top
  of the lattice, as Flash does.
* Nodes are visited in increasing order of ``G``; since ``loss >= G``, the search stops as soon
  as ``G`` reaches the best loss found. The returned node therefore has the least loss of all
  satisfying nodes (ties: the first in increasing ``G``, then node order). The tests compare it
  with an exhaustive search.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from deid._util import require_columns
from deid.errors import InfeasibleError, ParameterError
from deid.hierarchy import EncodedColumn, Hierarchy

__all__ = [
    "METRICS",
    "AnonymizationResult",
    "anonymize",
    "cell_loss",
    "node_loss",
    "precision_loss",
]

_MAX_KEY = 1 << 62
_EPS = 1e-12
METRICS = ("lm", "loss", "precision")


def cell_loss(col: EncodedColumn, level: int, metric: str) -> np.ndarray:
    """Loss of one released cell per level-``level`` code of ``col``, in [0, 1].

    ``"lm"`` (default, Iyengar's LM / ARX "Loss"): (domain leaves under the label - 1) /
    (domain leaves - 1), so a 5-year band of the ARX age hierarchy (1..100) costs 4/99.
    ``"loss"`` (deid's earlier measure): the same over the level-0 labels present in the data,
    so the same band over 72 ages present costs 4/71.
    ``"precision"`` (Sweeney's Prec): level / height for every code.
    A domain of a single leaf has nothing to hide and falls back to level / height.
    """
    card = col.cards[level]
    if metric == "lm":
        under, size = col.leaves[level], col.domain_size
    elif metric == "loss":
        under, size = col.present[level], col.present_size
    else:
        under, size = np.ones(card, dtype=np.int64), 1
    if size <= 1:
        return np.full(card, level / col.height)
    return (under - 1) / (size - 1)


def node_loss(
    cols: Sequence[EncodedColumn],
    levels: Sequence[int],
    codes: Sequence[np.ndarray],
    counts: np.ndarray,
    suppressed: np.ndarray,
    metric: str,
) -> float:
    """Loss of a full-domain result under ``metric``: the mean over all ``records x QIs`` cells.

    Rows are records or groups of records: ``codes[i]`` are the level-``levels[i]`` codes of QI
    ``i`` per row, ``counts`` the records per row, ``suppressed`` true where the row's records
    are suppressed (they cost 1 per QI).
    """
    n = int(counts.sum())
    if n == 0:
        return 0.0
    w = counts.astype(np.float64)
    total = 0.0
    for c, lv, x in zip(cols, levels, codes, strict=True):
        total += float(np.dot(w, np.where(suppressed, 1.0, cell_loss(c, lv, metric)[x])))
    return total / (n * len(cols))


def precision_loss(
    levels: Sequence[int], heights: Sequence[int], n_records: int, n_suppressed: int
) -> float:
    """Record-level precision loss of a full-domain result (``metric="precision"``)."""
    if n_records <= 0:
        return 0.0
    p = sum(lv / h for lv, h in zip(levels, heights, strict=True)) / len(levels)
    return ((n_records - n_suppressed) * p + n_suppressed) / n_records


@dataclass(frozen=True)
class AnonymizationResult:
    """What :func:`anonymize` returns.

    * ``table`` - the released records: QI columns replaced by their generalised labels
      (``String``), suppressed records removed, all other columns unchanged, input order kept;
    * ``levels`` - chosen generalisation level per QI; ``heights`` - maximum level per QI;
    * ``suppressed_rows`` - positions (0-based, in the input) of the suppressed records;
    * ``information_loss`` - the minimised loss of the result (``metric``, see :func:`cell_loss`),
      suppressed records counting 1 per cell; ``generalisation_loss`` - the same as if nothing
      were suppressed (the lower bound used for pruning);
    * ``lm`` - Iyengar's loss metric over the hierarchies' domains (``metric="lm"``) of the
      result, whatever metric was optimised; ``losses`` - the result's loss under every metric
      of :data:`METRICS`;
    * ``k``, ``l`` - the requested model; ``achieved_k`` - the smallest class in ``table``;
    * ``nodes_evaluated`` / ``lattice_size`` - search effort.
    """

    table: pl.DataFrame
    levels: dict[str, int]
    heights: dict[str, int]
    suppressed_rows: np.ndarray
    information_loss: float
    generalisation_loss: float
    metric: str
    k: int
    l: int | None  # noqa: E741 - the privacy model's own name
    sensitive: tuple[str, ...]
    achieved_k: int
    nodes_evaluated: int
    lattice_size: int
    stats: dict[str, float] = field(default_factory=dict)
    lm: float = math.nan
    losses: dict[str, float] = field(default_factory=dict)

    @property
    def n_suppressed(self) -> int:
        return int(self.suppressed_rows.size)


# ---------------------------------------------------------------------------------------------
# grouping helpers
# ---------------------------------------------------------------------------------------------


def _pack(codes: Sequence[np.ndarray], cards: Sequence[int]) -> tuple[np.ndarray, list[int], bool]:
    """Mixed-radix pack code columns into one int64 key. Returns (key, radices, exact).

    ``exact`` is False when the key space would overflow and the key had to be compressed to
    dense ranks (then it cannot be decoded by division).
    """
    n = len(codes[0]) if codes else 0
    key = np.zeros(n, dtype=np.int64)
    space = 1
    exact = True
    for c, card in zip(codes, cards, strict=True):
        if space * card >= _MAX_KEY:
            uniq, key = np.unique(key, return_inverse=True)
            key = key.astype(np.int64)
            space = len(uniq)
            exact = False
        key *= card
        key += c
        space *= card
    return key, [space], exact


class _Codes:
    """Distinct code columns of a grouped table, decoded from packed keys only when needed."""

    def __init__(
        self, key: np.ndarray | None, cards: Sequence[int], cols: list[np.ndarray] | None
    ) -> None:
        self._key = key
        self._cards = list(cards)
        self._cols = cols

    def columns(self) -> list[np.ndarray]:
        if self._cols is None:
            assert self._key is not None
            out: list[np.ndarray] = []
            rem = self._key
            for card in reversed(self._cards):
                out.append((rem % card).astype(np.int32))
                rem = rem // card
            out.reverse()
            self._cols = out
            self._key = None
        return self._cols

    def nbytes(self) -> int:
        if self._cols is not None:
            return sum(a.nbytes for a in self._cols)
        assert self._key is not None
        return int(self._key.nbytes)


def _group(
    codes: Sequence[np.ndarray], cards: Sequence[int], counts: np.ndarray
) -> tuple[_Codes, np.ndarray]:
    """Group rows by their code columns; return the distinct code columns and summed counts."""
    key, (space,), exact = _pack(codes, cards)
    n = key.size
    cbits = int(counts.max()).bit_length() if n else 1
    if exact and space <= max(1 << 21, 4 * n):
        summed = np.bincount(key, weights=counts, minlength=space)
        uk = np.flatnonzero(summed)
        cnt = summed[uk].astype(np.int64)
    elif exact and (space - 1).bit_length() + cbits <= 62:
        # carry the count in the low bits and use a plain (SIMD) sort instead of an argsort
        v = np.sort((key << cbits) | counts)
        k2 = v >> cbits
        starts = np.flatnonzero(np.concatenate(([True], k2[1:] != k2[:-1])))
        uk = k2[starts]
        cnt = np.add.reduceat(v & ((1 << cbits) - 1), starts)
    else:
        uk, inv = np.unique(key, return_inverse=True)
        cnt = np.bincount(inv, weights=counts, minlength=uk.size).astype(np.int64)
        if not exact:
            first = np.zeros(uk.size, dtype=np.int64)
            first[inv[::-1]] = np.arange(n - 1, -1, -1)
            return _Codes(None, cards, [c[first] for c in codes]), cnt
    return _Codes(uk, cards, None), cnt


class _Table:
    """Grouped (QI codes, sensitive codes) -> count table of one lattice node."""

    def __init__(self, node: tuple[int, ...], m: int, codes: _Codes, counts: np.ndarray) -> None:
        self.node = node
        self.m = m
        self.codes = codes
        self.counts = counts

    @property
    def qi(self) -> list[np.ndarray]:
        return self.codes.columns()[: self.m]

    @property
    def sens(self) -> list[np.ndarray]:
        return self.codes.columns()[self.m :]

    @property
    def rows(self) -> int:
        return int(self.counts.size)

    def nbytes(self) -> int:
        return self.codes.nbytes() + int(self.counts.nbytes)


class _Searcher:
    def __init__(
        self,
        cols: list[EncodedColumn],
        sens_codes: list[np.ndarray],
        sens_cards: list[int],
        k: int,
        l_div: int,
        limit: int,
        cache_bytes: int,
        metric: str,
    ) -> None:
        self.cols = cols
        self.m = len(cols)
        self.heights = np.array([c.height for c in cols], dtype=np.int64)
        self.k = k
        self.l_div = l_div
        self.limit = limit
        self.sens_cards = sens_cards
        self.n = len(cols[0].codes)
        self.cache_bytes = cache_bytes
        grids = np.indices(tuple(int(h) + 1 for h in self.heights)).reshape(self.m, -1).T
        self.nodes = grids.astype(np.int16)
        # cell loss per (column, level, code) and its mean over all records per (column, level)
        self.cell = [[cell_loss(c, lv, metric) for lv in range(c.height + 1)] for c in cols]
        per_code = [np.bincount(c.codes, minlength=c.cards[0]) / self.n for c in cols]
        avg = [
            np.array(
                [
                    float(np.dot(per_code[i], self.cell[i][lv][c.maps[lv]]))
                    for lv in range(c.height + 1)
                ]
            )
            for i, c in enumerate(cols)
        ]
        self.gen = np.zeros(self.nodes.shape[0])
        for i in range(self.m):
            self.gen += avg[i][self.nodes[:, i]]
        self.gen /= self.m
        size = self.nodes.shape[0]
        self.status = np.zeros(size, dtype=np.int8)  # 0 unknown, 1 satisfies, -1 fails
        self.supp = np.full(size, -1, dtype=np.int64)
        self.loss = np.full(size, np.nan)
        self.radix = np.cumprod([1, *[int(h) + 1 for h in self.heights[::-1]]])[:-1][::-1]
        self.evaluated = 0
        ones = np.ones(self.n, dtype=np.int64)
        qi0 = [c.codes for c in cols]
        cards0 = [c.cards[0] for c in cols] + sens_cards
        codes, cnt = _group(qi0 + sens_codes, cards0, ones)
        bottom = _Table(tuple([0] * self.m), self.m, codes, cnt)
        self.bottom = bottom
        self.cache: dict[tuple[int, ...], _Table] = {}
        self.cache_used = 0
        self.lru: list[tuple[int, ...]] = []

    def node_id(self, node: Sequence[int]) -> int:
        return int(np.dot(np.asarray(node, dtype=np.int64), self.radix))

    # -- evaluation ---------------------------------------------------------------------------

    def _source(self, node: tuple[int, ...]) -> _Table:
        best = self.bottom
        target = np.asarray(node)
        for key, t in self.cache.items():
            if t.rows < best.rows and np.all(np.asarray(key) <= target):
                best = t
        return best

    def table(self, node: tuple[int, ...]) -> _Table:
        if node in self.cache:
            return self.cache[node]
        if node == self.bottom.node:
            return self.bottom
        src = self._source(node)
        codes = [
            c.up[a][b][x] if a != b else x
            for c, a, b, x in zip(self.cols, src.node, node, src.qi, strict=True)
        ]
        cards = [c.cards[b] for c, b in zip(self.cols, node, strict=True)]
        grouped, cnt = _group(codes + src.sens, cards + self.sens_cards, src.counts)
        t = _Table(node, self.m, grouped, cnt)
        self._remember(t)
        return t

    def _remember(self, t: _Table) -> None:
        nb = t.nbytes()
        if nb > self.cache_bytes // 4:
            return
        self.cache[t.node] = t
        self.lru.append(t.node)
        self.cache_used += nb
        while self.cache_used > self.cache_bytes and self.lru:
            old = self.lru.pop(0)
            self.cache_used -= self.cache.pop(old).nbytes()

    def violating(self, t: _Table) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[int]]:
        """Per class: (class index of each table row, class sizes, bad flag, class cards)."""
        cards = [c.cards[b] for c, b in zip(self.cols, t.node, strict=True)]
        if not self.sens_cards:
            sizes = t.counts
            inv = np.arange(t.rows)
            bad = sizes < self.k
            return inv, sizes, bad, cards
        key, (space,), exact = _pack(t.qi, cards)
        uk, inv = np.unique(key, return_inverse=True)
        sizes = np.bincount(inv, weights=t.counts, minlength=uk.size).astype(np.int64)
        bad = sizes < self.k
        for sc, card in zip(t.sens, self.sens_cards, strict=True):
            pair = np.unique(inv.astype(np.int64) * card + sc)
            distinct = np.bincount(pair // card, minlength=uk.size)
            bad |= distinct < self.l_div
        return inv, sizes, bad, cards

    def evaluate(self, idx: int) -> None:
        node = tuple(int(x) for x in self.nodes[idx])
        t = self.table(node)
        inv, sizes, bad, _ = self.violating(t)
        s = int(sizes[bad].sum())
        self.evaluated += 1
        self.supp[idx] = s
        if s <= self.limit:
            # loss = generalisation loss of all records + what suppression adds on the bad ones
            rows = np.flatnonzero(bad[inv])
            extra = 0.0
            if rows.size:
                cnt = t.counts[rows]
                for i in range(self.m):
                    cl = self.cell[i][node[i]][t.qi[i][rows]]
                    extra += float(np.dot(cnt, 1.0 - cl))
            self.loss[idx] = self.gen[idx] + extra / (self.n * self.m)
            self.status[idx] = 1
            up = np.all(self.nodes >= self.nodes[idx], axis=1)
            self.status[up & (self.status == 0)] = 1
        else:
            self.status[idx] = -1
            down = np.all(self.nodes <= self.nodes[idx], axis=1)
            self.status[down] = -1

    def chain(self, idx: int) -> list[int]:
        """A path from node ``idx`` to the top, generalising the relatively least generalised
        attribute first (keeps the path near the lattice's diagonal)."""
        cur = self.nodes[idx].astype(np.int64).copy()
        path = [idx]
        while True:
            room = cur < self.heights
            if not room.any():
                return path
            rel = np.where(room, (cur + 1) / self.heights, np.inf)
            j = int(np.argmin(rel))
            cur[j] += 1
            path.append(self.node_id(cur))

    def classify(self, idx: int) -> None:
        path = self.chain(idx)
        st = self.status[path]
        lo = -1
        fails = np.flatnonzero(st == -1)
        if fails.size:
            lo = int(fails.max())
        sats = np.flatnonzero(st == 1)
        hi = int(sats.min()) if sats.size else len(path) - 1
        if not sats.size:
            self.evaluate(path[hi])
        while self.status[idx] == 0 and hi - lo > 1:
            mid = (lo + hi) // 2
            if self.status[path[mid]] == 0:
                self.evaluate(path[mid])
            if self.status[path[mid]] == 1:
                hi = mid
            else:
                lo = mid
        if self.status[idx] == 0:
            self.evaluate(idx)

    def search(self) -> int:
        top = self.nodes.shape[0] - 1
        self.evaluate(top)
        if self.status[top] != 1:
            raise InfeasibleError(
                f"even full generalisation leaves {self.supp[top]} records in violating classes "
                f"(limit {self.limit})",
                rule="k-anonymity",
            )
        order = np.lexsort((np.arange(self.nodes.shape[0]), self.gen))
        best = math.inf
        best_idx = top
        for raw in order:
            idx = int(raw)
            if self.gen[idx] >= best - _EPS:
                break  # loss >= generalisation loss >= best: nothing left can be better
            if self.status[idx] == -1:
                continue
            if self.status[idx] == 0:
                self.classify(idx)
            if self.status[idx] != 1:
                continue
            if self.supp[idx] < 0:
                self.evaluate(idx)
            if self.loss[idx] < best - _EPS:
                best, best_idx = float(self.loss[idx]), idx
        return best_idx


def _records_in(
    records: list[np.ndarray], classes: list[np.ndarray], cards: Sequence[int]
) -> np.ndarray:
    """Per record (code columns ``records``): is its code tuple one of ``classes``' rows?"""
    n = len(records[0])
    rec_key, (space,), exact = _pack(records, cards)
    if not classes[0].size:
        return np.zeros(n, dtype=bool)
    if exact:
        cls_key, _, _ = _pack(classes, cards)
        if space <= max(1 << 22, 4 * n):
            lookup = np.zeros(space, dtype=bool)
            lookup[cls_key] = True
            return lookup[rec_key]
        return np.isin(rec_key, cls_key)
    # compressed keys are ranks of one packing: pack classes and records together
    m = len(classes[0])
    both, _, _ = _pack(
        [np.concatenate([c, r]) for c, r in zip(classes, records, strict=True)], cards
    )
    return np.isin(both[m:], both[:m])


def _as_hierarchy(h: Hierarchy | str | Path) -> Hierarchy:
    return h if isinstance(h, Hierarchy) else Hierarchy.from_csv(h)


def anonymize(
    df: pl.DataFrame,
    quasi_identifiers: Mapping[str, Hierarchy | str | Path],
    *,
    k: int = 5,
    max_suppression: float = 0.01,
    sensitive: Sequence[str] = (),
    l: int | None = None,  # noqa: E741 - the privacy model's own name
    metric: str = "lm",
    cache_mb: int = 256,
) -> AnonymizationResult:
    """Find the least-loss full-domain generalisation meeting k-anonymity (and l-diversity).

    :param df: the records (one row per subject or per record, as the extract needs).
    :param quasi_identifiers: column -> :class:`Hierarchy` (or path of an ARX-style CSV).
    :param k: minimum class size (default 5, §10.2 e).
    :param max_suppression: largest share of records that may be suppressed, in [0, 1).
    :param sensitive: columns that must be distinct-l-diverse inside every class (§6.2 level 5
        data such as HIV or hepatitis results); ``l`` defaults to 2 when any is given.
    :param l: distinct l-diversity parameter.
    :param metric: ``"lm"`` (default, LM over the hierarchies' domains), ``"loss"`` (LM over
        the values present, deid's earlier default) or ``"precision"``; see :func:`cell_loss`.
    :param cache_mb: memory budget for cached intermediate class tables.
    :raises InfeasibleError: when no node satisfies the model within ``max_suppression``.
    """
    rule = "k-anonymity"
    if not quasi_identifiers:
        raise ParameterError("at least one quasi-identifier is needed", rule=rule)
    if not isinstance(k, int) or k < 1:
        raise ParameterError(f"k must be a positive integer, got {k!r}", rule=rule)
    if not 0.0 <= max_suppression < 1.0:
        raise ParameterError(f"max_suppression must be in [0, 1), got {max_suppression}", rule=rule)
    sens = list(sensitive)
    if l is not None and not sens:
        raise ParameterError("l-diversity needs at least one sensitive column", rule="l-diversity")
    l_div = (2 if l is None else l) if sens else 1
    if l_div < 1:
        raise ParameterError(f"l must be >= 1, got {l_div}", rule="l-diversity")
    qis = list(quasi_identifiers)
    require_columns(df, qis, rule)
    require_columns(df, sens, "l-diversity")
    if metric not in METRICS:
        raise ParameterError(f"metric must be one of {METRICS}, got {metric!r}", rule=rule)
    overlap = set(qis) & set(sens)
    if overlap:
        raise ParameterError(
            f"columns {sorted(overlap)} cannot be both quasi-identifier and sensitive", rule=rule
        )
    n = df.height
    if n == 0:
        raise ParameterError("the table has no records", rule=rule)

    cols = [_as_hierarchy(quasi_identifiers[q]).encode(df.get_column(q)) for q in qis]
    sens_codes: list[np.ndarray] = []
    sens_cards: list[int] = []
    for c in sens:
        sv = df.get_column(c).cast(pl.String).fill_null("\x00<null>")
        phys = sv.cast(pl.Categorical).to_physical().to_numpy().astype(np.int64)
        uniq, inv = np.unique(phys, return_inverse=True)
        sens_codes.append(inv.astype(np.int32))
        sens_cards.append(len(uniq))

    limit = int(math.floor(max_suppression * n + 1e-9))
    searcher = _Searcher(cols, sens_codes, sens_cards, k, l_div, limit, cache_mb << 20, metric)
    best = searcher.search()
    node = tuple(int(x) for x in searcher.nodes[best])

    # per-record suppression flags for the chosen node
    t = searcher.table(node)
    inv, sizes, bad, cards = searcher.violating(t)
    row_codes = [c.maps[b][c.codes] for c, b in zip(cols, node, strict=True)]
    table_bad = bad[inv]
    suppressed_mask = _records_in(row_codes, [x[table_bad] for x in t.qi], cards)
    suppressed_rows = np.flatnonzero(suppressed_mask)

    gen = [
        pl.Series(q, c.labels[b], dtype=pl.String).gather(pl.Series(rc))
        for q, c, b, rc in zip(qis, cols, node, row_codes, strict=True)
    ]
    out = df.with_columns(gen).filter(pl.Series(~suppressed_mask))
    heights = [c.height for c in cols]
    kept_sizes = sizes[~bad]
    losses = {m: node_loss(cols, node, t.qi, t.counts, table_bad, m) for m in METRICS}
    return AnonymizationResult(
        table=out,
        levels=dict(zip(qis, node, strict=True)),
        heights=dict(zip(qis, heights, strict=True)),
        suppressed_rows=suppressed_rows,
        information_loss=float(searcher.loss[best]),
        generalisation_loss=float(searcher.gen[best]),
        metric=metric,
        k=k,
        l=l_div if sens else None,
        sensitive=tuple(sens),
        achieved_k=int(kept_sizes.min()) if kept_sizes.size else 0,
        nodes_evaluated=searcher.evaluated,
        lattice_size=int(searcher.nodes.shape[0]),
        stats={"bottom_classes": float(searcher.bottom.rows)},
        lm=losses["lm"],
        losses=losses,
    )
