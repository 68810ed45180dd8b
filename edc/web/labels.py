"""Labels for the codes pages show (statuses, states, kinds): one table, "中文 / English".
A page shows ``label(code)``, never the bare code; ``tests/edc/test_navigation.py`` fails on
a status the table does not name."""

from __future__ import annotations

LABELS: dict[str, str] = {
    # studies, forms, protocol
    "draft": "草稿 / draft", "active": "进行中 / active", "closed": "已关闭 / closed",
    "published": "已发布 / published", "retired": "已停用 / retired",
    "terminated": "已终止 / terminated", "completed": "已完成 / completed",
    "archived": "已归档 / archived",
    "prospective": "前瞻性 / prospective", "retrospective": "回顾性 / retrospective",
    "blinded": "盲法 / blinded", "post_market": "上市后研究 / post-market",
    "real_world_data": "真实世界数据 / real-world data",
    "public_interest": "公共利益研究 / public interest",
    # subjects, consent
    "enrolled": "已入组 / enrolled", "withdrawn": "已撤回 / withdrawn",
    "informed": "知情同意 / informed", "broad": "广泛知情同意 / broad",
    "waiver": "豁免 / waiver", "requested": "已申请 / requested",
    # records, queries, SDV
    "new": "未录入 / not started", "incomplete": "未完成 / incomplete",
    "complete": "完成 / complete", "verified": "已核查 / verified",
    "cleared": "核查后已修改 / changed after SDV", "open": "未关闭 / open",
    "query.open": "提出质疑 / opened", "query.answer": "回复 / answered",
    "query.close": "关闭 / closed", "query.reopen": "重新打开 / re-opened",
    "answered": "已回复 / answered", "answer": "回复 / answer", "close": "关闭 / close",
    "reopen": "重新打开 / re-open", "locked": "已锁定 / locked",
    "sdv.verified": "已核查 / verified", "sdv.cleared": "核查后已修改 / changed after SDV",
    # extracts, approvals, locks, unblinding
    "pending": "待审批 / pending", "approved": "已批准 / approved",
    "rejected": "已拒绝 / rejected", "held": "暂缓 / held", "built": "已生成 / built",
    "delivered": "已交付 / delivered", "none": "未生成 / not built",
    "queued": "排队中 / queued", "running": "生成中 / running", "done": "完成 / done",
    "failed": "失败 / failed", "destroyed": "已销毁 / destroyed", "blocked": "被拦截 / blocked",
    "relocked": "已重新锁定 / relocked", "effective": "已生效 / effective",
    "vote": "委员会投票 / committee vote", "officer": "数据安全官 / security officer",
    "ethics": "伦理委员会 / ethics committee", "dua": "数据使用协议 / data-use agreement",
    "approve": "批准 / approve", "reject": "拒绝 / reject", "hold": "暂缓 / hold",
    "study": "整个研究 / whole study", "site": "中心 / site", "form": "表单 / form",
    "subjects": "受试者 / subjects", "emergency": "紧急揭盲 / emergency",
}


# A form record's state in the entry grid, the charts and the form page: its icon and label
# ("saved" is never shown as "verified"; studies.entry.reading.record_state decides).
STATE_MARKS = {"new": "○", "incomplete": "◐", "complete": "●", "verified": "✔",
               "query": "！", "locked": "锁"}
STATE_LABELS = {"new": "未录入 / not started", "incomplete": "未完成 / incomplete",
                "complete": "已保存（完成，未核查）/ saved complete, not verified",
                "verified": "已核查 / verified (SDV)", "query": "有未关闭质疑 / open query",
                "locked": "已锁定（只读）/ locked (read-only)"}


def label(code: str | None) -> str:
    """The bilingual label of a code shown to people (the code itself if none is known)."""
    if code is None or code == "":
        return "—"
    return LABELS.get(code, code)
