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
from studies.oversight import conformance
from studies.oversight.selfcheck import RESULT_LABELS, Report, Result

TITLE = "健康医疗数据安全自查报告（GB/T 39725-2020 附录F） / Data security self-check (GB/T " \
        "39725-2020 Appendix F)"
CSS = ("body{font-family:sans-serif;max-width:60em;margin:2em auto}"
       "table{border-collapse:collapse;width:100%}td,th{border:1px solid #999;padding:.3em;"
       "vertical-align:top;text-align:left}.pass{color:#060}.fail{color:#a00;font-weight:bold}")


def summary_line(report: Report) -> str:
    c = report.counts()
    return (f"{c[Result.PASS]} 是 / pass, {c[Result.FAIL]} 否 / fail, {c[Result.NA]} 不适用 / "
            f"n/a")


def conformance_line() -> str:
    rows = conformance.all_rows()
    return " · ".join(f"{conformance.STATUS_LABELS[s]}: {sum(r.status == s for r in rows)}"
                      for s in conformance.Status)


def items_table(report: Report) -> h.Element:
    return h.table(".selfcheck")[
        h.thead[h.tr[h.th["检查项 / Item"], h.th["条款 / Clause"], h.th["结果 / Result"],
                     h.th["证据 / Evidence"]]],
        h.tbody[[h.tr(id=f"item-{i.key}")[
            h.td[i.question], h.td[i.clause],
            h.td(class_=f"result {'na' if i.result is Result.NA else i.result.value}")[
                RESULT_LABELS[i.result]],
            h.td[h.ul[[h.li[e] for e in i.evidence]]]] for i in report.items]]]


def render_html(report: Report, *, vkey: str) -> str:
    doc = h.html(lang="zh")[
        h.head[h.meta(charset="utf-8"), h.title[TITLE], h.style[CSS]],
        h.body[
            h.h1[TITLE],
            h.p[f"生成时间 / Generated: {report.generated_at:%Y-%m-%d %H:%M} UTC · "
                f"生成人 / By: {report.generated_by}"],
            h.p(".summary")[summary_line(report)],
            items_table(report),
            h.h2["条款对照 / Conformance table"],
            h.p[conformance_line(), " — docs/conformance.md"],
            h.p["本报告附有分离签名，用账本签名公钥验证 / The report carries a detached "
                "signature by the ledger's signing key: ",
                h.code["minisign -Vm FILE -p hospital.pub"],
                " (", h.code["edc keys export-signing-pub"], "); 验证公钥 / verifier key: ",
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

    data = [[p("检查项 / Item"), p("条款 / Clause"), p("结果 / Result"), p("证据 / Evidence")]]
    for i in report.items:
        data.append([p(i.question), p(i.clause), p(RESULT_LABELS[i.result]),
                     Paragraph("<br/>".join(escape(e) for e in i.evidence), body)])
    table = Table(data, colWidths=[55 * mm, 25 * mm, 22 * mm, 80 * mm], repeatRows=1)
    table.setStyle(TableStyle([("GRID", (0, 0), (-1, -1), 0.4, colors.grey),
                               ("VALIGN", (0, 0), (-1, -1), "TOP")]))
    out = io.BytesIO()
    doc = SimpleDocTemplate(out, pagesize=A4, title="GB/T 39725-2020 Appendix F self-check",
                            leftMargin=14 * mm, rightMargin=14 * mm)
    doc.build([p(TITLE, head), Spacer(1, 4 * mm),
               p(f"生成时间 / Generated: {report.generated_at:%Y-%m-%d %H:%M} UTC · 生成人 / By: "
                 f"{report.generated_by}"),
               p(summary_line(report)), Spacer(1, 3 * mm), table, Spacer(1, 3 * mm),
               p("条款对照 / Conformance table: " + conformance_line()),
               p("分离签名 / Detached signature: minisign -Vm FILE -p hospital.pub; "
                 f"verifier key {vkey}")])
    return out.getvalue()


def write_signed(path: Path, data: bytes, key: SigningKey, *, comment: str) -> Path:
    """Write ``data`` to ``path`` and its minisign signature beside it; returns the signature's
    path."""
    path.write_bytes(data)
    sig = path.with_name(path.name + ".minisig")
    sig.write_bytes(pkg.sign(data, key, trusted_comment=comment))
    return sig
