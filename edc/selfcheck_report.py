"""The Appendix F self-check report as files an assessor is handed: a standalone bilingual HTML
document and a PDF (reportlab, CJK through its built-in ``STSong-Light`` CID font, so no font
file is needed), each with a detached minisign signature by the ledger's signing key — the key
that signs checkpoints — so ``minisign -Vm FILE -p hospital.pub`` verifies it (the public key:
``edc keys export-signing-pub``)."""

from __future__ import annotations

import io
from pathlib import Path

import htpy as h
from nacl.signing import SigningKey

from studies.extracts import package as pkg
from studies.kernel.i18n import _, _l, current
from studies.oversight import conformance
from studies.oversight.selfcheck import RESULT_LABELS, Report, Result

TITLE = _l("Data security self-check (GB/T 39725-2020 Appendix F)")
CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
       "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3em;"
       "vertical-align:top;text-align:left}.pass{color:#060}.fail{color:#a00;font-weight:bold}")


def summary_line(report: Report) -> str:
    c = report.counts()
    return _("{passed} pass, {failed} fail, {na} n/a").format(
        passed=c[Result.PASS], failed=c[Result.FAIL], na=c[Result.NA])


def conformance_line() -> str:
    rows = conformance.all_rows()
    return " · ".join(f"{conformance.STATUS_LABELS[s]}: {sum(r.status == s for r in rows)}"
                      for s in conformance.Status)


def items_table(report: Report) -> h.Element:
    return h.table(".selfcheck")[
        h.thead[h.tr[h.th[_("Item")], h.th[_("Clause")], h.th[_("Result")],
                     h.th[_("Evidence")]]],
        h.tbody[[h.tr(id=f"item-{i.key}")[
            h.td[i.question], h.td[i.clause],
            h.td(class_=f"result {'na' if i.result is Result.NA else i.result.value}")[
                RESULT_LABELS[i.result]],
            h.td[h.ul[[h.li[e] for e in i.evidence]]]] for i in report.items]]]


def render_html(report: Report, *, vkey: str) -> str:
    doc = h.html(lang="zh-CN" if current() == "zh" else "en")[
        h.head[h.meta(charset="utf-8"), h.title[TITLE], h.style[CSS]],
        h.body[
            h.h1[TITLE],
            h.p[_("Generated: {at} UTC · by {by}").format(
                at=f"{report.generated_at:%Y-%m-%d %H:%M}", by=report.generated_by)],
            h.p(".summary")[summary_line(report)],
            items_table(report),
            h.h2[_("Conformance table")],
            h.p[conformance_line(), " — docs/conformance.md"],
            h.p[_("The report carries a detached signature by the ledger's signing key:") + " ",
                h.code["minisign -Vm FILE -p hospital.pub"],
                " (", h.code["edc keys export-signing-pub"], _("); verifier key:") + " ",
                h.code[vkey]]]]
    return "<!DOCTYPE html>\n" + str(doc) + "\n"


def render_pdf(report: Report, *, vkey: str) -> bytes:
    from xml.sax.saxutils import escape

    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import ParagraphStyle
    from reportlab.lib.units import mm
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    body = ParagraphStyle("b", fontName="STSong-Light", fontSize=8.5, leading=11,
                          wordWrap="CJK")
    head = ParagraphStyle("h", parent=body, fontSize=13, leading=17)

    def p(text: str, style: ParagraphStyle = body) -> Paragraph:
        return Paragraph(escape(text), style)

    data = [[p(_("Item")), p(_("Clause")), p(_("Result")), p(_("Evidence"))]]
    for i in report.items:
        data.append([p(i.question), p(i.clause), p(str(RESULT_LABELS[i.result])),
                     Paragraph("<br/>".join(escape(e) for e in i.evidence), body)])
    table = Table(data, colWidths=[55 * mm, 25 * mm, 22 * mm, 80 * mm], repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title="GB/T 39725-2020 Appendix F self-check",
                            leftMargin=14 * mm, rightMargin=14 * mm)
    doc.build([p(str(TITLE), head), Spacer(1, 4 * mm),
               p(_("Generated: {at} UTC · by {by}").format(
                   at=f"{report.generated_at:%Y-%m-%d %H:%M}", by=report.generated_by)),
               p(summary_line(report)), Spacer(1, 3 * mm), table, Spacer(1, 3 * mm),
               p(_("Conformance table:") + " " + conformance_line()),
               p(_("Detached signature: minisign -Vm FILE -p hospital.pub; verifier key "
                   "{vkey}").format(vkey=vkey))])
    return out.getvalue()


def write_signed(path: Path, data: bytes, key: SigningKey, *, comment: str) -> Path:
    """Write ``data`` to ``path`` and its minisign signature beside it; returns the signature's
    path."""
    path.write_bytes(data)
    sig = path.with_name(path.name + ".minisig")
    sig.write_bytes(pkg.sign(data, key, trusted_comment=comment))
    return sig
