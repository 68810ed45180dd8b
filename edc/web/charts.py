"""Charts as server-rendered SVG: no JavaScript, no CDN, nothing the CSP refuses (colours are
SVG presentation attributes, not style), and the table behind each chart below it, so a screen
reader or a printout has the numbers. One kind is enough for the dashboard: horizontal bars,
stacked by series."""

from __future__ import annotations

from dataclasses import dataclass

import htpy as h

from studies.kernel.i18n import _

PALETTE = ("#0b4f6c", "#e0a400", "#137333", "#c5221f", "#444444", "#7b61ff", "#01baef")


@dataclass(frozen=True)
class Series:
    name: str
    values: tuple[int, ...]
    colour: str


def bar_chart(ident: str, title: str, rows: list[str], series: list[Series], *,
              unit: str = "") -> h.Element:
    """Stacked horizontal bars: one bar per row, one segment per series; a legend; the data
    as a table (in a ``details`` below)."""
    label_w, bar_w, row_h, top = 150, 420, 26, 10
    totals = [sum(s.values[i] for s in series) for i in range(len(rows))]
    peak = max(totals, default=0) or 1
    height = top + row_h * len(rows) + 40
    bars: list[h.Node] = []
    for i, row in enumerate(rows):
        y = top + i * row_h
        bars.append(h.text(x=str(label_w - 6), y=str(y + 16), text_anchor="end",
                           font_size="12", fill="#1b1f24")[row])
        x = float(label_w)
        for s in series:
            v = s.values[i]
            if not v:
                continue
            w = bar_w * v / peak
            bars.append(h.rect(x=f"{x:.1f}", y=str(y + 3), width=f"{w:.1f}",
                               height=str(row_h - 8), fill=s.colour)[
                h.title[f"{row} · {s.name}: {v}{unit}"]])
            x += w
        bars.append(h.text(x=f"{x + 4:.1f}", y=str(y + 16), font_size="12",
                           fill="#1b1f24")[str(totals[i])])
    legend_y = top + row_h * len(rows) + 20
    legend: list[h.Node] = []
    lx = label_w
    for s in series:
        legend += [h.rect(x=str(lx), y=str(legend_y - 10), width="12", height="12",
                          fill=s.colour),
                   h.text(x=str(lx + 16), y=str(legend_y), font_size="12",
                          fill="#1b1f24")[s.name]]
        lx += 24 + 8 * len(s.name)
    width = max(label_w + bar_w + 60, lx + 20)
    svg = h.svg(id=ident, xmlns="http://www.w3.org/2000/svg", role="img",
                viewBox=f"0 0 {width} {height}", width=str(width), height=str(height),
                aria_label=title)[h.title[title], bars, legend]
    table = h.table(".chart-data")[
        h.thead[h.tr[h.th[""], [h.th[s.name] for s in series], h.th[_("Total")]]],
        h.tbody[[h.tr[h.th[row], [h.td[str(s.values[i])] for s in series],
                      h.td[str(totals[i])]] for i, row in enumerate(rows)]]]
    return h.figure(".chart")[
        h.figcaption[title], svg if rows else h.p[_("No data yet")],
        h.details(".chart-table")[h.summary[_("The numbers")], table]]
