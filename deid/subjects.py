"""k-anonymity and l-diversity over every released row, with the *subject* as the unit.

A subject may appear in several released tables and, in a table of repeating visits, in many
rows; each row shows some of their quasi-identifiers. Checking k on one row per subject (say,
each quasi-identifier's first value) lets a follow-up row with a rare value single them out.
Here the unit is the subject's **whole released quasi-identifier record**: for each
quasi-identifier, the set of values it takes in any of the subject's rows. The search
(:func:`deid.anonymize`) runs on one row per subject whose cells are those sets, with a
hierarchy that generalises every member of a set to the same level (the sets of one level
nest in those of the next because the base levels do). A subject's class is therefore the
subjects with the same set of generalised values for every quasi-identifier.

That alone does not make every *table* k-anonymous row by row: two subjects with the same
sets may pair the values of one table's row differently. So after the search each table is
checked row by row — every combination of its quasi-identifier labels must be shown by at
least k distinct subjects — and the subjects of a smaller group are suppressed (all their
rows, in every table), then both checks are run again until both hold. If that would
suppress more than ``max_suppression`` of the subjects, :class:`InfeasibleError` names (as its
``column``) the quasi-identifier whose values split the subjects most.

Sensitive items are l-diverse the same way: within each class at least l distinct sets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import polars as pl

from deid.errors import InfeasibleError, ParameterError
from deid.hierarchy import Hierarchy
from deid.kanon import anonymize

Labels = Sequence[Callable[[str], str]]
NONE = "∅"
SEP = "|"
STAR = "*"


@dataclass(frozen=True)
class TableRows:
    """One released table: for each row, its subject and its quasi-identifiers' recorded
    values (``None`` where blank)."""

    name: str
    quasi_identifiers: Sequence[str]
    rows: Sequence[tuple[str, Sequence[str | None]]]


@dataclass
class SubjectResult:
    """What :func:`anonymize_subjects` found.

    ``levels`` — the level of each quasi-identifier, an index into its ``labels`` (the top,
    ``len(labels)``, means every value is ``*``); ``suppressed`` — subjects whose rows are
    withheld; ``achieved_k`` — the smallest number of distinct subjects sharing a record, over
    the subject-level table and every table's rows; ``l`` — the smallest distinct l of the
    sensitive items (None without any); ``information_loss`` — the engine's loss on the
    subject-level table; ``subject_table`` — the released subject-level records (one row per
    kept subject, the sets as ``a|b`` text), for checking with pycanon.
    """

    levels: dict[str, int]
    heights: dict[str, int]
    suppressed: set[str]
    achieved_k: int
    l: int | None  # noqa: E741 - the privacy model's own name
    information_loss: float
    subject_table: pl.DataFrame
    rounds: int = 1
    notes: list[str] = field(default_factory=list)


def label_at(labels: Labels, level: int, value: str | None) -> str | None:
    """A recorded value at a level (None stays None; the top is ``*``)."""
    if value is None:
        return None
    return STAR if level >= len(labels) else labels[level](value)


def _composite(labels: Labels, values: set[str], level: int) -> str:
    if not values:
        return NONE
    return SEP.join(sorted({label_at(labels, level, v) or STAR for v in values}))


def _hierarchy(labels: Labels, sets: list[set[str]]) -> Hierarchy:
    rows: dict[str, list[str]] = {}
    for s in sets:
        chain = [_composite(labels, s, lv) for lv in range(len(labels) + 1)]
        chain[-1] = STAR
        rows.setdefault(chain[0], chain)
    return Hierarchy.from_table(list(rows.values()))


def anonymize_subjects(
    tables: Sequence[TableRows],
    labels: Mapping[str, Labels],
    *,
    k: int,
    max_suppression: float,
    sensitive: Mapping[str, Mapping[str, set[str]]] | None = None,
    l: int | None = None,  # noqa: E741 - the privacy model's own name
) -> SubjectResult:
    """k-anonymity (and distinct l-diversity) with the subject's whole released
    quasi-identifier record as the unit; see the module docstring.

    :param tables: the released tables with their rows' quasi-identifier values.
    :param labels: per quasi-identifier, one function per level from the lowest releasable
        (level 0, e.g. the Table 6 floor) upwards; the level above the last is ``*``.
    :param sensitive: sensitive item -> subject -> the set of its values.
    """
    qis = list(labels)
    if not qis:
        raise ParameterError("at least one quasi-identifier is needed", rule="k-anonymity")
    subjects = sorted({s for t in tables for s, _ in t.rows})
    values: dict[str, dict[str, set[str]]] = {q: {s: set() for s in subjects} for q in qis}
    for t in tables:
        for s, vals in t.rows:
            for q, v in zip(t.quasi_identifiers, vals, strict=True):
                if v is not None:
                    values[q][s].add(v)
    sens = dict(sensitive or {})
    sens_cols = {f"__s{i}": name for i, name in enumerate(sens)}
    limit = int(max_suppression * len(subjects))
    withheld: set[str] = set()
    notes: list[str] = []
    rounds = 0
    while True:
        rounds += 1
        keep = [s for s in subjects if s not in withheld]
        if not keep:
            raise InfeasibleError("no subject left to release", rule="k-anonymity")
        frame = pl.DataFrame({
            "__subject": keep,
            **{q: [_composite(labels[q], values[q][s], 0) for s in keep] for q in qis},
            **{c: [SEP.join(sorted(sens[n].get(s, set()))) or NONE for s in keep]
               for c, n in sens_cols.items()}})
        hier = {q: _hierarchy(labels[q], [values[q][s] for s in keep]) for q in qis}
        budget = (limit - len(withheld)) / len(keep) if keep else 0.0
        try:
            res = anonymize(frame, hier, k=k, max_suppression=max(0.0, min(budget, 0.999)),
                            sensitive=list(sens_cols), l=l if sens_cols else None)
        except InfeasibleError:
            raise InfeasibleError(
                f"k={k} cannot be reached within {max_suppression:.0%} suppression",
                column=blocking(values, labels, keep), rule="k-anonymity") from None
        levels = dict(res.levels)
        dropped = {keep[i] for i in res.suppressed_rows.tolist()}
        small = _small_row_groups(tables, labels, levels, k, withheld | dropped)
        if not small:
            withheld |= dropped
            break
        notes.append(f"round {rounds}: {len(small)} subject(s) in row groups under k")
        withheld |= dropped | small
        if len(withheld) > limit:
            raise InfeasibleError(
                f"k={k} holds for the subjects but not row by row within "
                f"{max_suppression:.0%} suppression", column=blocking(values, labels, keep),
                rule="k-anonymity")
    kept = [s for s in subjects if s not in withheld]
    table = pl.DataFrame({
        "subject": kept,
        **{q: [_composite(labels[q], values[q][s], levels[q]) for s in kept] for q in qis}})
    sizes = Counter(table.select(qis).iter_rows())
    achieved = min(sizes.values()) if sizes else 0
    for t in tables:
        for n in _row_group_sizes(t, labels, levels, withheld).values():
            achieved = min(achieved, len(n))
    return SubjectResult(levels=levels, heights={q: len(labels[q]) for q in qis},
                         suppressed=withheld, achieved_k=achieved, l=res.l,
                         information_loss=float(res.information_loss), subject_table=table,
                         rounds=rounds, notes=notes)


def _row_group_sizes(t: TableRows, labels: Mapping[str, Labels], levels: Mapping[str, int],
                     withheld: set[str]) -> dict[tuple[str | None, ...], set[str]]:
    groups: dict[tuple[str | None, ...], set[str]] = {}
    for s, vals in t.rows:
        if s in withheld:
            continue
        key = tuple(label_at(labels[q], levels[q], v)
                    for q, v in zip(t.quasi_identifiers, vals, strict=True))
        groups.setdefault(key, set()).add(s)
    return groups


def _small_row_groups(tables: Sequence[TableRows], labels: Mapping[str, Labels],
                      levels: Mapping[str, int], k: int, withheld: set[str]) -> set[str]:
    out: set[str] = set()
    for t in tables:
        for members in _row_group_sizes(t, labels, levels, withheld).values():
            if len(members) < k:
                out |= members
    return out


def blocking(values: Mapping[str, Mapping[str, set[str]]], labels: Mapping[str, Labels],
             subjects: Sequence[str]) -> str:
    """The quasi-identifier whose released sets (at its lowest level) split ``subjects``
    into the most groups: the first to generalise further or leave out."""
    return max(values, key=lambda q: len({_composite(labels[q], values[q][s], 0)
                                          for s in subjects}))
