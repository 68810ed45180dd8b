"""Scrub direct identifiers out of free text (§10.2 a, d; Table 6 "free-text fields scrubbed").

Finds and masks, each kind with its own bracketed placeholder and count:

* ``id_number`` - 18-character resident identity numbers (GB 11643-1999) whose check character
  is right and whose birth date is a real date (``stdnum.cn.ric``); 18-digit strings with a wrong
  check character (order numbers, sample barcodes) are left alone. Also Chinese passport numbers
  (``E``/``G`` + 8 digits, ``E`` + letter + 7 digits) standing alone;
* ``record_number`` - in-hospital numbers (Table 6 "医疗机构内部所用号码") written after their
  label: 住院号, 病案号, 病历号, 门诊号, 就诊卡号, 医保卡号, 社保卡号, 检查号, 标本号, MRN, ...;
* ``phone`` - mainland mobile numbers (``1[3-9]`` + 9 digits, optional ``+86``/``86`` prefix and
  ``-``/space separators as 3-4-4), landlines with an area code (``010-12345678``,
  ``0755 1234567``), landlines without one after a label (电话/座机/Tel), and foreign numbers in
  ``+CC`` form that ``phonenumbers`` finds valid;
* ``email`` - e-mail addresses;
* ``name`` - (a) every name passed in (the subject's own name, staff and study-team names) and
  its variants (see :func:`known_name_variants`), and (b) unless ``detect_names=False``, Chinese
  personal names in general and English names after a title (see :func:`find_person_names`).

The placeholders carry no part of what they replace, so the same text always gives the same
output whoever is named in it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import ahocorasick
import jieba
import phonenumbers
import polars as pl
import rjieba
from stdnum.cn import ric

from deid._util import require_columns
from deid.errors import ColumnTypeError, ParameterError

__all__ = [
    "CHINESE_SURNAMES",
    "COMPOUND_SURNAMES",
    "DEFAULT_MASKS",
    "KINDS",
    "ScrubResult",
    "Span",
    "find_identifiers",
    "find_person_names",
    "id_check_char",
    "is_valid_resident_id",
    "known_name_variants",
    "scrub_column",
    "scrub_text",
]

KINDS = ("id_number", "record_number", "phone", "email", "name")

DEFAULT_MASKS: Mapping[str, str] = {
    "id_number": "[身份证号]",
    "record_number": "[编号]",
    "phone": "[电话]",
    "email": "[邮箱]",
    "name": "[姓名]",
}

# ---------------------------------------------------------------------------------------------
# numbers, phones, e-mails

_ID_CANDIDATE = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx])(?![0-9A-Za-z])")
_PASSPORT = re.compile(r"(?<![0-9A-Za-z])(?:[EG]\d{8}|E[A-HJ-NP-Z]\d{7})(?![0-9A-Za-z])")
_RECORD = re.compile(
    r"(?:住院号|病案号|病历号|门诊号|就诊号|就诊卡号|医保卡号|医保号|社保卡号|社保号|检查号|检验号|"
    r"标本号|影像号|床号|ID号|MRN|MR\s?No\.?|[Mm]edical record(?: number| no\.?)?)"
    r"\s*[:：#]?\s*([A-Za-z]{0,4}-?\d[\d-]{3,19})(?![0-9])"
)
_MOBILE = re.compile(r"(?<![0-9])(?:(?:\+|00)?86[-\s]?)?1[3-9]\d(?:[-\s]?\d{4}){2}(?![0-9])")
_LANDLINE = re.compile(
    r"(?<![0-9])(?:(?:\+|00)?86[-\s]?)?(?:\(0\d{2,3}\)|0\d{2,3})[-\s]?[2-9]\d{6,7}(?:-\d{1,5})?"
    r"(?![0-9])"
)
_LABELLED_PHONE = re.compile(
    r"(?:电话|座机|固话|手机|联系方式|Tel\.?|Phone|phone|tel\.?)\s*[:：]?\s*([2-9]\d{6,7})(?![0-9])"
)
_INTL_PHONE = re.compile(r"(?<![0-9A-Za-z])\+(?!86)[1-9]\d{0,2}[-\s]?\d(?:[\d\s-]{5,15})\d")
_EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits of a resident ID number."""
    if len(first17) != 17 or not first17.isdigit():
        raise ValueError("need exactly 17 digits")
    return str(ric.calc_check_digit(first17 + "0"))  # python-stdnum cn.ric; ignores the last


def is_valid_resident_id(s: str) -> bool:
    """True if ``s`` is 18 characters with a correct GB 11643 check character and a real birth
    date (the birth place is not checked: retired county codes still identify a person)."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    if id_check_char(s[:17]) != s[17].upper():
        return False
    try:
        ric.get_birth_date(s)
    except ValueError:
        return False
    return True


@dataclass(frozen=True, order=True)
class Span:
    """A stretch ``text[start:end]`` found to be an identifier of ``kind``."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class ScrubResult:
    """Masked text and how many of each kind were masked."""

    text: str
    counts: dict[str, int] = field(default_factory=dict)


def _number_spans(text: str) -> Iterator[Span]:
    for m in _ID_CANDIDATE.finditer(text):
        if is_valid_resident_id(m.group(1)):
            yield Span(m.start(1), m.end(1), "id_number")
    for m in _PASSPORT.finditer(text):
        yield Span(m.start(), m.end(), "id_number")
    for m in _RECORD.finditer(text):
        yield Span(m.start(1), m.end(1), "record_number")
    for m in _EMAIL.finditer(text):
        yield Span(m.start(), m.end(), "email")
    for rx in (_MOBILE, _LANDLINE):
        for m in rx.finditer(text):
            yield Span(m.start(), m.end(), "phone")
    for m in _LABELLED_PHONE.finditer(text):
        yield Span(m.start(1), m.end(1), "phone")
    if "+" in text:
        for m in _INTL_PHONE.finditer(text):
            try:
                num = phonenumbers.parse(m.group(0), None)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                yield Span(m.start(), m.end(), "phone")


# ---------------------------------------------------------------------------------------------
# names: lexicons

# 百家姓 and the common surnames of today's population (Ministry of Public Security ranking),
# single-character ones first.
CHINESE_SURNAMES = frozenset(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕"
    "丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱江尹薛闫阎段雷侯龙史陶黎贺顾毛郝龚邵万钱"
    "严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关兰焦俞左柳甘祝包宁尚"
    "符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁蒲房滕屈饶解牟艾尤阳时穆农"
    "司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全佟应臧闵苟邬边卞姬师和仇栾隋商刁"
    "沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝封储钮井蔺粟鞠湛谈邴郁官闻帅归宦伏都荆洪"
)
COMPOUND_SURNAMES = (
    "欧阳",
    "司马",
    "上官",
    "诸葛",
    "东方",
    "皇甫",
    "尉迟",
    "公孙",
    "慕容",
    "令狐",
    "司徒",
    "夏侯",
    "长孙",
    "宇文",
    "轩辕",
    "端木",
    "独孤",
    "南宫",
    "西门",
    "呼延",
    "申屠",
    "澹台",
    "万俟",
    "闻人",
)
# surnames that are mostly function words in clinical prose (患者于..., 曾于..., 何时, 常感, 时有,
# 全身, 易疲劳, 向患者, 应按时, 和家属, 单侧): a name starting with one needs the segmenter's
# person-name tag or a title after it, not just a role word before it
_AMBIGUOUS_SURNAMES = frozenset("于曾何常时全易向应和单都能将经服那双明文安成")

# titles written after a surname (张医生, 王主任, 李护士长); longest first
_TITLES_ZH = tuple(
    sorted(
        (
            "医生 大夫 主任 副主任 医师 主治 教授 博士 院长 科长 护士长 护士 护师 "
            "药师 技师 老师 先生 女士 小姐 阿姨 师傅 同学 老先生 老太太 老伯 大爷 "
            "大妈 奶奶 爷爷 叔叔 伯伯 阿婆 总 经理 组长 队长 律师 主管 "
        ).split(),
        key=len,
        reverse=True,
    )
)
# words after which a person is named (患者张三, 家属：李四, 由王五, 联系人 赵六)
_ROLES_BEFORE = tuple(
    (
        "患者 病人 病患 受试者 家属 联系人 签字人 签名人 报告人 记录人 评估人 "
        "评估者 研究者 监查员 协调员 主管医生 主治医生 主治医师 管床医生 值班医生 "
        "责任护士 研究护士 研究医生 医生 医师 护士 主任 大夫 外院 儿子 女儿 "
        "妻子 丈夫 爱人 老伴 母亲 父亲 哥哥 姐姐 弟弟 妹妹 孙子 孙女 外孙 "
        "外孙女 儿媳 女婿 外甥 外甥女 侄子 侄女 亲属 家人 朋友 同事 邻居 本人 "
        "姓名 由 经 请 致电 通知 告知 联系 转诊至 协助 陪同 嘱 及 与 和 、 "
    ).split()
)
# words right after a name (张三诉头痛, 李四签字, 王五，男，62岁)
_AFTER = tuple(
    (
        "诉 主诉 自诉 称 说 表示 签字 签名 签署 来电 陪同 同意 拒绝 本人 "
        "讲解 评估 建议 报告 上报 开具 完成 发现 记录 参与 接听 要求 认为 "
        "协助 负责 转交 代为 询问 反映 出现 因 于 在 今日 昨日 的 等 （ ( "
        "，男 ，女 ,男 ,女 、 和 与 也 ： : "
    ).split()
)
_PUNCT_SKIP = " \t：:，,（(　"
# characters that end a given name early (张三诉..., 李四于...)
_STOP = frozenset(
    "的于因在诉称说等与和及也已是为将对向被把从自今昨次每该此其之并或而但即仍再又均都还就了着过"
    "男女岁医护患、，。；：！？,.;:!?()（）[]【】\"'“”‘’ \t\n"
)
_NR_TAGS = frozenset({"nr", "nrfg", "nrt"})
_SOFT_TAGS = _NR_TAGS | {"ns", "nz"}  # proper nouns: a person's name is often tagged a place
_COMMON_WORD_FREQ = 20  # a dictionary word at least this frequent is a word, not a name


def _latin_word_char(ch: str) -> bool:
    return ch.isascii() and ch.isalnum()


def _is_han(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff"


@lru_cache(maxsize=1)
def _clinical_words() -> frozenset[str]:
    text = (Path(__file__).parent / "data" / "clinical_words.txt").read_text("utf-8")
    return frozenset(w for line in text.splitlines() if (w := line.strip()) and w[0] != "#")


@lru_cache(maxsize=1)
def _freq() -> Mapping[str, int]:
    """Word frequencies of jieba's dictionary, with the clinical words added."""
    jieba.setLogLevel(60)
    jieba.initialize()
    freq = dict(jieba.dt.FREQ)
    for w in _clinical_words():
        freq[w] = max(freq.get(w, 0), 1000)
    return freq


@lru_cache(maxsize=1)
def _segmenter() -> rjieba.Jieba:
    """jieba's segmenter and part-of-speech tagger (Rust port), with the clinical words."""
    seg = rjieba.Jieba()
    for w in sorted(_clinical_words()):
        seg.add_word(w, 1000, "n")
    return seg


def _surname_at(text: str, i: int) -> int:
    """Length of the surname starting at ``text[i]`` (2 compound, 1 single, 0 none)."""
    if text[i : i + 2] in COMPOUND_SURNAMES:
        return 2
    return 1 if text[i] in CHINESE_SURNAMES else 0


def _title_after(text: str, i: int) -> bool:
    return text.startswith(_TITLES_ZH, i)


def _role_before(text: str, i: int) -> bool:
    j = i
    while j > 0 and text[j - 1] in _PUNCT_SKIP:
        j -= 1
    return text.endswith(_ROLES_BEFORE, 0, j)


# ---------------------------------------------------------------------------------------------
# names: general detection


def _nickname_spans(
    text: str, tokens: Sequence[tuple[str, str]], starts: Sequence[int], freq: Mapping[str, int]
) -> Iterator[Span]:
    """小/阿 + one character (小红, 阿强) that the tagger calls a person after a role word."""
    for (w, t), st in zip(tokens, starts, strict=True):
        if (
            len(w) == 2
            and w[0] in "小阿"
            and _is_han(w[1])
            and w[1] not in _STOP
            and t in _NR_TAGS
            and freq.get(w, 0) < _COMMON_WORD_FREQ
            and _role_before(text, st)
        ):
            yield Span(st, st + 2, "name")


@lru_cache(maxsize=1)
def _surname_re() -> re.Pattern[str]:
    chars = "".join(sorted(CHINESE_SURNAMES))
    return re.compile("|".join([*COMPOUND_SURNAMES, f"[{chars}]"]))


def _chinese_names(text: str) -> Iterator[Span]:
    if _surname_re().search(text) is None and "小" not in text and "阿" not in text:
        return
    freq = _freq()
    clinical = _clinical_words()
    tokens = _segmenter().tag(text)
    # token index per character, start of each token, whether the token is a name by the tagger
    starts: list[int] = []
    tok_of: list[int] = []
    pos = 0
    for k, (w, _t) in enumerate(tokens):
        starts.append(pos)
        tok_of.extend([k] * len(w))
        pos += len(w)
    if pos != len(text):  # the segmenter dropped or changed characters: fall back to nothing
        return

    yield from _nickname_spans(text, tokens, starts, freq)

    def solid(k: int) -> bool:
        """A dictionary word of 2+ characters that is not a proper noun (person, place)."""
        w, t = tokens[k]
        return w in clinical or (len(w) > 1 and t not in _SOFT_TAGS and freq.get(w, 0) > 0)

    def evidence(i: int, ls: int, g: int) -> bool:
        """Is text[i:g] (surname of length ls + given name) a name?"""
        cand = text[i:g]
        if freq.get(cand, 0) >= _COMMON_WORD_FREQ and tokens[tok_of[i]][1] not in _NR_TAGS:
            return False  # 高热, 金属, 方向, 何时
        last = tok_of[g - 1]
        if starts[last] + len(tokens[last][0]) > g and solid(last) and text[g] not in _STOP:
            return False  # the candidate cuts a dictionary word: 苏打|水, 邓国电|话
        given = range(tok_of[i + ls], last + 1)
        given_solid = any(solid(kk) for kk in given)
        # the tagger's person tag on a word it does not know (or a surname tagged nr followed
        # by a given name that is no dictionary word), a role before, a title or verb after
        tagged = any(
            tokens[kk][1] in _NR_TAGS and freq.get(tokens[kk][0], 0) == 0
            for kk in range(tok_of[i], last + 1)
        ) or (tokens[tok_of[i]][1] in _NR_TAGS and tok_of[i] < tok_of[i + ls] and not given_solid)
        strong = _role_before(text, i)
        after = _title_after(text, g) or text.startswith(_AFTER, g)
        if ls == 1 and text[i] in _AMBIGUOUS_SURNAMES:
            return tagged and (after or strong)
        return tagged or strong or after

    n = len(text)
    i = -1
    for m in _surname_re().finditer(text):
        if m.start() < i:
            continue
        i = m.start()
        ls = _surname_at(text, i)
        k = tok_of[i]
        w = tokens[k][0]
        # the surname sits inside a dictionary word: 值班医生, 全科, 高血压, 白细胞, 方案
        # (unless the word straddles a role word and the surname: 报告人|马欣才 read as 人马)
        if (starts[k] < i or len(w) > ls) and solid(k):
            if not (starts[k] < i and starts[k] + len(w) <= i + ls and _role_before(text, i)):
                continue
        if _title_after(text, i + ls):
            yield Span(i, i + ls, "name")
            i += ls
            continue
        # the given name: one or two Han characters, not a function word (张三|诉, 李四|于)
        g = i + ls
        while g < min(n, i + ls + 2) and _is_han(text[g]) and text[g] not in _STOP:
            g += 1
        for end in range(g, i + ls, -1):
            if evidence(i, ls, end):
                yield Span(i, end, "name")
                i = end
                break


_EN_TITLE = re.compile(
    r"\b(?:Dr|Mr|Mrs|Ms|Miss|Mx|Prof|Professor|Nurse|Sister|Doctor)\.?\s+"
    r"((?:[A-Z][a-z'\-]+)(?:\s+[A-Z][a-z'\-]+)?)"
)
_EN_ROLE = re.compile(
    r"\b(?:[Pp]atient|[Ss]ubject|[Ww]ife|[Hh]usband|[Ss]on|[Dd]aughter|[Mm]other|[Ff]ather|"
    r"[Bb]rother|[Ss]ister|[Cc]ontact|by)"
    r"\s+((?:[A-Z][a-z'\-]+)\s+[A-Z][a-z'\-]+)"
)
_EN_VERB = re.compile(
    r"\b([A-Z][a-z'\-]+\s+[A-Z][a-z'\-]+)\s+(?:says|said|reported|called|complained|refused|"
    r"agreed|withdrew|signed|denies|denied|was|is)\b"
)


def find_person_names(text: str) -> list[Span]:
    """Personal names found without a list: Chinese names by surname lexicon, jieba
    segmentation (``rjieba``; its ``nr`` person tag) and context rules, English names after a
    title or a role word.

    A Chinese candidate is a surname (single or compound) that does not sit inside a dictionary
    word, with one or two Han characters after it that are no function word and do not cut a
    dictionary word. It is taken when the segmenter tags it as a person name it does not know as
    a word, when a role word stands before it (患者, 家属, 妻子, 由, ...), or when a title or a
    typical verb follows (医生, 诉, 签字, ...). A surname followed by a title is masked alone
    (``王医生`` -> ``[姓名]医生``).

    >>> [("患者张建国诉头痛，王医生查房")[s.start:s.end] for s in find_person_names(
    ...     "患者张建国诉头痛，王医生查房")]
    ['张建国', '王']
    """
    spans: list[Span] = []
    if any(_is_han(c) for c in text):
        spans.extend(_chinese_names(text))
    if any("A" <= c <= "Z" for c in text):
        for rx in (_EN_TITLE, _EN_ROLE, _EN_VERB):
            spans.extend(Span(m.start(1), m.end(1), "name") for m in rx.finditer(text))
    return spans


# ---------------------------------------------------------------------------------------------
# names: the ones passed in


def _variants(name: str) -> tuple[list[tuple[str, int, int]], str]:
    """The literals of one known name (see :func:`known_name_variants`) other than
    surname + title, and the surname that is masked before a title ("" for none)."""
    n = " ".join(name.split())
    if not n:
        return [], ""
    if all(_is_han(c) for c in n):
        out = [(n, 0, len(n))]
        if len(n) < 2:
            return out, ""
        ls = 2 if (n[:2] in COMPOUND_SURNAMES and len(n) > 2) else 1
        sur, given = n[:ls], n[ls:]
        out.append((f"{sur} {given}", 0, len(n) + 1))  # typed with a space: 张 建国
        if len(given) >= 2:
            out.append((given, 0, len(given)))
        else:
            out += [("小" + given, 1, 1), ("阿" + given, 1, 1), (given * 2, 0, 2)]
        out += [("小" + sur, 1, ls), ("老" + sur, 1, ls)]
        return out, sur
    low = n.lower()
    out = [(low, 0, len(low))]
    if not n.isascii():
        return out, ""  # mixed scripts: the literal only
    words = low.split()
    if len(words) == 2:
        rev = f"{words[1]} {words[0]}"
        out.append((rev, 0, len(rev)))
    for wd in words:
        for t in _EN_TITLES_LOWER:
            out.append((t + wd, len(t), len(wd)))
    return out, ""


_EN_TITLES_LOWER = (
    "dr. ",
    "dr ",
    "mr. ",
    "mr ",
    "mrs. ",
    "mrs ",
    "ms. ",
    "ms ",
    "prof. ",
    "nurse ",
    "doctor ",
)


def known_name_variants(name: str) -> list[tuple[str, int, int]]:
    """The strings searched for one known name, each with the part of it that is masked
    (``(literal, offset, length)``); Latin literals are lower-case and matched as whole words.

    For a Chinese name (all Han characters): the full name, also with a space after the
    surname (张 建国); the given name alone when it has
    two characters (建国 for 张建国); 小/阿 + the given name and the given name doubled when it
    has one (小伟, 阿伟, 伟伟 for 张伟); 小/老 + surname (小张, 老张); the surname before a title
    (张医生, 张主任: the surname is masked, the title kept). A surname that forms a dictionary
    word with the character before it is not taken (责任护士 is no 任护士), nor a 小/老 form that
    is a word itself (小于, 老师). For a Latin name: the name, its two words in the other order
    (``Wei Li`` for ``Li Wei``), and each word after a title (``Dr. Li``).
    """
    out, sur = _variants(name)
    return out + [(sur + t, 0, len(sur)) for t in _TITLES_ZH] if sur else out


_FEW_LITERALS = 24


class _KnownNames:
    """The variants of a list of names, searched with an Aho-Corasick automaton."""

    def __init__(self, names: Iterable[str]) -> None:
        self.auto: ahocorasick.Automaton | None = None
        self.surnames: set[str] = set()
        freq = _freq()
        variants: dict[str, tuple[int, int]] = {}
        for raw in names:
            if not isinstance(raw, str):
                raise ParameterError(
                    f"a name must be text, got {type(raw).__name__}", rule="free-text"
                )
            lits, sur = _variants(raw)
            if sur:
                self.surnames.add(sur)
            for lit, off, ln in lits:
                if off and not lit.isascii() and freq.get(lit, 0) >= _COMMON_WORD_FREQ:
                    continue  # 小于, 小时, 老师: words, not 小 + a surname
                if len(lit) >= 2 or not _is_han(lit):
                    prev = variants.get(lit)
                    if prev is None or ln > prev[1]:
                        variants[lit] = (off, ln)
        self.latin = any(lit.isascii() for lit in variants)
        # a few names (one subject's) are searched one by one; more (the staff) at once
        self.few = [(lit, off, ln, lit.isascii()) for lit, (off, ln) in variants.items()]
        if len(self.few) > _FEW_LITERALS:
            auto = ahocorasick.Automaton()
            for lit, off, ln, ascii_ in self.few:
                auto.add_word(lit, (len(lit), off, ln, ascii_))
            auto.make_automaton()
            self.auto = auto
            self.few = []

    def _hits(self, hay: str) -> Iterator[tuple[int, int, int, int, bool]]:
        """(end index, literal length, mask offset, mask length, Latin) of every occurrence."""
        if self.auto is not None:
            for end, (length, off, ln, ascii_) in self.auto.iter(hay):
                yield end, length, off, ln, ascii_
            return
        for lit, off, ln, ascii_ in self.few:
            start = hay.find(lit)
            while start >= 0:
                yield start + len(lit) - 1, len(lit), off, ln, ascii_
                start = hay.find(lit, start + 1)

    def spans(self, text: str) -> Iterator[Span]:
        freq = _freq()
        for sur in self.surnames:
            start = text.find(sur)
            while start >= 0:
                if _title_after(text, start + len(sur)) and not (
                    start > 0 and freq.get(text[start - 1 : start + 1], 0) > 0
                ):  # 责任护士 is not 任护士, 值班医生 not 班医生
                    yield Span(start, start + len(sur), "name")
                start = text.find(sur, start + 1)
        hay = text.lower() if self.latin else text
        for end, length, off, ln, ascii_ in self._hits(hay):
            start = end - length + 1
            if ascii_ and (
                (start > 0 and _latin_word_char(hay[start - 1]))
                or (end + 1 < len(hay) and _latin_word_char(hay[end + 1]))
            ):
                continue  # whole words only: "li wei" is not in "oliver"
            yield Span(start + off, start + off + ln, "name")


@lru_cache(maxsize=4096)
def _known(names: tuple[str, ...]) -> _KnownNames:
    return _KnownNames(names)


def _as_names(names: Iterable[str] | None) -> tuple[str, ...]:
    if names is None:
        return ()
    if isinstance(names, str):
        return (names,)
    return tuple(names)


# ---------------------------------------------------------------------------------------------
# putting it together

_PRIORITY = {k: i for i, k in enumerate(KINDS)}


def _resolve(spans: Iterable[Span]) -> list[Span]:
    """Non-overlapping spans, left to right; where two overlap, numbers before names, then the
    longer one; overlapping names are merged."""
    ordered = sorted(spans, key=lambda s: (s.start, _PRIORITY[s.kind], -(s.end - s.start)))
    out: list[Span] = []
    for s in ordered:
        if out and s.start < out[-1].end:
            last = out[-1]
            if s.kind == last.kind == "name":
                out[-1] = Span(last.start, max(last.end, s.end), "name")
            elif s.kind != "name" and last.kind == "name" and _PRIORITY[s.kind] < 4:
                out[-1] = s  # a number that a name rule touched: the number wins
            continue
        out.append(s)
    return out


def _may_occur(name: str, text: str) -> bool:
    """False when no variant of ``name`` can be in ``text``: every variant of a Chinese name
    holds its first or its last character, every variant of a Latin name one of its words."""
    n = name.strip()
    if not n:
        return False
    if all(_is_han(c) for c in n):
        return n[0] in text or n[-1] in text
    low = text.lower()
    return any(w in low for w in n.lower().split())


def find_identifiers(
    text: str,
    names: Iterable[str] = (),
    *,
    row_names: Iterable[str] = (),
    detect_names: bool = True,
) -> list[Span]:
    """Every identifier :func:`scrub_text` would mask, as non-overlapping spans."""
    spans = list(_number_spans(text))
    spans.extend(_known(_as_names(names)).spans(text))
    rn = tuple(x for x in _as_names(row_names) if _may_occur(x, text))
    if rn:
        spans.extend(_known(rn).spans(text))
    if detect_names:
        spans.extend(find_person_names(text))
    return _resolve(spans)


def _apply(text: str, spans: Sequence[Span], masks: Mapping[str, str]) -> ScrubResult:
    counts = dict.fromkeys(KINDS, 0)
    parts: list[str] = []
    pos = 0
    for s in spans:
        parts.append(text[pos : s.start])
        parts.append(masks[s.kind])
        counts[s.kind] += 1
        pos = s.end
    parts.append(text[pos:])
    return ScrubResult("".join(parts), counts)


def _masks(masks: Mapping[str, str] | None) -> dict[str, str]:
    m = {**DEFAULT_MASKS, **(masks or {})}
    unknown = sorted(set(m) - set(KINDS))
    if unknown:
        raise ParameterError(
            f"unknown mask kind(s) {unknown}; kinds are {list(KINDS)}", rule="free-text"
        )
    return m


def scrub_text(
    text: str,
    names: Iterable[str] = (),
    *,
    masks: Mapping[str, str] | None = None,
    detect_names: bool = True,
) -> ScrubResult:
    """Mask ID and record numbers, phone numbers, e-mails, the given names and (with
    ``detect_names``, the default) personal names found in general.

    >>> r = scrub_text("患者张三，电话13812345678", names=["张三"])
    >>> r.text, r.counts["name"], r.counts["phone"]
    ('患者[姓名]，电话[电话]', 1, 1)
    """
    m = _masks(masks)
    return _apply(text, find_identifiers(text, names, detect_names=detect_names), m)


def scrub_column(
    df: pl.DataFrame,
    column: str,
    names: Iterable[str] = (),
    *,
    masks: Mapping[str, str] | None = None,
    row_names: Sequence[Iterable[str]] | None = None,
    detect_names: bool = True,
) -> tuple[pl.DataFrame, dict[str, int]]:
    """Scrub a free-text column; return the new table and the totals masked per kind.

    ``names`` are searched in every row (staff, study team); ``row_names[i]`` only in row ``i``
    (the subject's own name from the code index), so one subject's name is never searched in
    another's text. ``row_names`` must have one entry per row.
    """
    rule = "free-text"
    require_columns(df, [column], rule)
    if df.schema[column] != pl.String:
        raise ColumnTypeError(f"expected String, got {df.schema[column]}", column=column, rule=rule)
    if row_names is not None and len(row_names) != df.height:
        raise ParameterError(
            f"row_names has {len(row_names)} entries for {df.height} rows",
            column=column,
            rule=rule,
        )
    m = _masks(masks)
    shared = _as_names(names)
    _known(shared)  # build the shared automaton once, and refuse bad names before any work
    totals = dict.fromkeys(KINDS, 0)
    out: list[str | None] = []
    for i, v in enumerate(df.get_column(column).to_list()):
        if v is None:
            out.append(None)
            continue
        rn = () if row_names is None else _as_names(row_names[i])
        r = _apply(v, find_identifiers(v, shared, row_names=rn, detect_names=detect_names), m)
        out.append(r.text)
        for k, c in r.counts.items():
            totals[k] += c
    return df.with_columns(pl.Series(column, out, dtype=pl.String)), totals
