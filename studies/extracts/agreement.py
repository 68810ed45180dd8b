"""The data-use agreement (数据使用协议) a recipient signs for an LDS or a RIF: the terms of
GB/T 39725-2020 Appendix E.3, versioned, in Chinese and English — their one home.

The signing page and ``GET /api/v1/extracts/{id}/agreement`` show :func:`terms_text` in full
with its SHA-256 (:func:`terms_sha256`); every approval act of an extract signs the hash over
the request and these terms (:func:`studies.extracts.review.signed_content`), so a signature
names the exact terms it was given under. A built package's manifest copies :data:`DUA_TERMS`.
Changing a term means a new :data:`DUA_VERSION` (and so a new hash).

Imports nothing of ours.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from studies.kernel.i18n import _, _l

DUA_VERSION = "E.3/2026-12"
"""The version of the terms below; part of the text that is hashed."""


@dataclass(frozen=True)
class Term:
    key: str
    clause: str
    zh: str
    en: str

    def line(self) -> str:
        return f"{self.key}: {self.en} / {self.zh}"


TERMS: tuple[Term, ...] = (
    Term("purpose", "E.3 数据使用条款 1)",
         "数据接收方仅为申请所述目的（公共卫生研究、科学研究和/或医疗保健业务）使用数据，并遵循"
         "所适用法律、法规和独立审核小组的要求",
         "the recipient uses the data only for the purpose stated in the request (public-health "
         "research, scientific research and/or health-care operations) and follows the "
         "applicable laws, regulations and any independent review panel's requirements"),
    Term("deidentified_only", "E.3 数据使用条款 2)",
         "数据提供方在披露前按国家法律法规和标准对数据去标识化，去除姓名、工作单位、地址、手机号码、"
         "邮箱、各类账号、身份证号码、住院卡号、车牌号码、IP 地址、设备标识、生物识别信息和"
         "人脸照片等个人标识信息；参与去标识化的人员来自独立部门",
         "before disclosure the provider de-identifies the data under national law and "
         "standards, removing names, employers, addresses, phone numbers, e-mail addresses, "
         "accounts, ID numbers, hospital card numbers, licence plates, IP addresses, device "
         "ids, biometric data and face photographs; the people who de-identify come from an "
         "independent department"),
    Term("no_other_use", "E.3 数据使用条款 3)",
         "数据接收方不得将数据用于本协议以外的任何目的",
         "the recipient does not use the data for any purpose outside this agreement"),
    Term("no_reidentification", "E.3 数据使用条款 3) a)；保密条款 3)",
         "不得对数据集中的个体进行重标识，也不得尝试识别研究参与者、研究人员、参与者亲属或数据中"
         "其他可被识别的人",
         "no re-identification: no attempt to identify any individual in the data set, nor "
         "study participants, investigators, participants' relatives or anyone else who could "
         "be identified in the data"),
    Term("no_linkage", "E.3 数据使用条款 3) b)；保密条款 3)",
         "不得将数据与外部数据集或信息关联，不得以可能导致识别任何个人的方式与其他数据源结合",
         "no linkage: the data are not linked with outside data sets or information, nor "
         "combined with other sources in any way that could identify a person"),
    Term("no_contact", "E.3 保密条款 3)",
         "未经数据提供方事先书面同意，不得联系数据集中包含的主体",
         "no contact with subjects: the recipient does not contact any subject in the data "
         "without the provider's prior written consent"),
    Term("no_onward_disclosure", "E.3 保密条款 1)",
         "未经数据提供方事先书面允许，不得向任何第三方披露或转让数据；仅在数据提供方书面确认且处理者"
         "受同等保密约束时，方可交由代表接收方的处理者处理",
         "no onward disclosure: the data are not disclosed or passed to any third party "
         "without the provider's prior written permission; a processor acting for the "
         "recipient may receive them only with the provider's written confirmation and bound "
         "by confidentiality at least equal to this agreement"),
    Term("protective_measures", "E.3 保密条款 5)",
         "采取适当且必要的管理、物理和技术保护措施，保护数据的保密性、完整性和可用性；确保获得数据的"
         "使用者（含分包商、供应商）采取同等保护措施，并遵守法律法规和国家标准的其他要求",
         "protective measures: appropriate administrative, physical and technical safeguards "
         "protect the data's confidentiality, integrity and availability; everyone given the "
         "data (sub-contractors and suppliers included) takes equal safeguards, and any others "
         "that laws, regulations or national standards require"),
    Term("breach_notification", "E.3 保密条款 6)",
         "使用过程中发现任何数据泄露事件，立即通知数据提供方；数据提供方可对事件采取措施，包括通知"
         "监管机构或医疗服务提供者",
         "breach notification: any data breach found while the data are in use is reported to "
         "the provider at once; the provider may act on it, including notifying the regulator "
         "or health-care providers"),
    Term("liability", "E.3 保密条款 7)",
         "因违反本协议数据保护义务导致数据提供方遭受指控、处罚或其他不利后果的，数据接收方赔偿其全部"
         "损失、成本、支出（含合理法律费用）或责任",
         "liability: if a breach of these data-protection duties leads to claims, penalties or "
         "other harm to the provider, the recipient indemnifies its losses, costs, expenses "
         "(reasonable legal fees included) and liabilities"),
    Term("termination", "E.3 保密条款 8)、9)",
         "数据接收方违反本协议、因未采取保护措施导致数据泄露或被调查处罚、或发生数据泄露事件时，数据"
         "提供方可单方终止本协议；终止后不再提供数据，接收方停止使用",
         "termination: the provider may end this agreement alone if the recipient breaches "
         "it, if missing safeguards lead to a breach, an investigation or a penalty, or if a "
         "breach occurs; after termination no more data are provided and the recipient stops "
         "using them"),
    Term("destruction", "E.3 保密条款 9)；§11.4.2.6",
         "使用期满或协议终止后，及时返还或销毁全部数据（含已交给处理者的数据），并在使用期满后30日内"
         "提交销毁证明；无法返还或销毁的数据继续受本协议保护",
         "destruction: at the end of the period of use or on termination, every copy of the "
         "data (those given to processors included) is returned or destroyed, with a "
         "destruction certificate within 30 days after the period of use; data that cannot be "
         "returned or destroyed stay protected by this agreement"),
    Term("survival", "E.3 保密条款 3)、4)、9)",
         "保密义务在本协议终止后六年内有效（法律另有规定的从其规定）；不得重标识、不得联系主体的义务"
         "无限期有效",
         "survival of obligations: the confidentiality duties last six years after this "
         "agreement ends (longer where the law requires); the duties not to re-identify and "
         "not to contact subjects last without limit"),
)

DUA_TERMS: tuple[str, ...] = tuple(t.line() for t in TERMS)
_l('Each term as one line, "key: English')


def terms_text() -> str:
    """The full agreement as shown to the signer; its SHA-256 is what a signature binds."""
    head = (_("Data-use agreement (GB/T 39725-2020 Appendix E.3), version {DUA_VERSION}").format(
                DUA_VERSION=DUA_VERSION))
    body = [f"{n}. [{t.key}] ({t.clause})\n   {t.zh}\n   {t.en}"
            for n, t in enumerate(TERMS, 1)]
    return "\n".join([head, "", *body]) + "\n"


def terms_sha256() -> str:
    return hashlib.sha256(terms_text().encode()).hexdigest()
