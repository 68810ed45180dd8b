"""The language of what people read: Chinese (``zh``, the default) or English (``en``).

Every string shown to people is written in English in the code and marked for translation:

- ``_("Save")`` inside a function translates at once, in the language of the current request
  (or command);
- ``_l("Save")`` at module level (tables, constants) is a :class:`LazyText`, translated each
  time it is shown (``str()``, a format, htpy's rendering);
- ``Msg("… {name} …", name=…)`` is a message kept to be shown later (an inbox message): it is
  stored as JSON (:meth:`Msg.dumps`) and translated when read (:func:`render_stored`).

The Chinese catalogue is ``locale/zh/LC_MESSAGES/messages.po`` beside this module, read with
Babel when first needed; ``tests/test_i18n.py`` fails on a marked string it does not translate.
The language is a context variable: the web layer sets it per request (the ``edc_lang`` cookie,
then ``Accept-Language``, else Chinese), the CLI from ``EDC_LANG`` or ``LANG``.
"""

from __future__ import annotations

import contextvars
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations
from markupsafe import escape

LANGUAGES = ("zh", "en")
DEFAULT = "zh"
LANGUAGE_NAMES = {"zh": "中文", "en": "English"}
CATALOGUE = Path(__file__).parent / "locale" / "zh" / "LC_MESSAGES" / "messages.po"

_current: contextvars.ContextVar[str] = contextvars.ContextVar("edc_language")
_process = [DEFAULT]  # the language of a thread no request or command set (a background job)


def current() -> str:
    """The language of the current request or command: "zh" or "en"."""
    return _current.get(_process[0])


def process_language() -> str:
    return _process[0]


def set_process_language(lang: str) -> None:
    """The language of the process (the CLI sets it from the environment): what background
    jobs write, such as a failed build's error, and what a thread that set none reads."""
    _process[0] = lang if lang in LANGUAGES else DEFAULT


def set_language(lang: str) -> contextvars.Token[str]:
    return _current.set(lang if lang in LANGUAGES else DEFAULT)


def reset_language(token: contextvars.Token[str]) -> None:
    _current.reset(token)


@contextmanager
def language(lang: str) -> Iterator[None]:
    """Run a block in ``lang`` (a command's output, a test)."""
    token = set_language(lang)
    try:
        yield
    finally:
        _current.reset(token)


def choose(cookie: str | None, accept_language: str | None) -> str:
    """The language of a request: the ``edc_lang`` cookie if it names one, else the first
    ``Accept-Language`` entry (by q) that is Chinese or English, else Chinese."""
    if cookie in LANGUAGES:
        return cookie
    if accept_language:
        ranked: list[tuple[float, int, str]] = []
        for n, part in enumerate(accept_language.split(",")):
            tag, _sep, params = part.strip().partition(";")
            q = 1.0
            if params.strip().startswith("q="):
                try:
                    q = float(params.strip()[2:])
                except ValueError:
                    q = 0.0
            primary = tag.strip().lower().split("-")[0]
            if primary in LANGUAGES and q > 0:
                ranked.append((-q, n, primary))
        if ranked:
            return min(ranked)[2]
    return DEFAULT


def from_environment(env: dict[str, str]) -> str:
    """A command's language: ``EDC_LANG`` (zh or en), else Chinese when ``LC_ALL``,
    ``LC_MESSAGES`` or ``LANG`` names a Chinese locale, else English (a terminal's default)."""
    explicit = env.get("EDC_LANG", "").lower()
    if explicit in LANGUAGES:
        return explicit
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = env.get(name, "")
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@cache
def _translations(lang: str) -> NullTranslations:
    if lang != "zh":
        return NullTranslations()
    with CATALOGUE.open("rb") as f:
        catalog = read_po(f, locale="zh_Hans_CN")
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


def gettext(message: str) -> str:
    """``message`` in the current language."""
    return _translations(current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return _translations(current()).ngettext(singular, plural, n)


_ = gettext


def translate(message: str, lang: str) -> str:
    """``message`` in ``lang`` (whatever the current language is)."""
    return _translations(lang if lang in LANGUAGES else DEFAULT).gettext(message)


class LazyText:
    """A marked string translated each time it is shown (module-level tables). It is not a
    ``str``, so it cannot be stored or compared as its English source by mistake: ``str()``
    it where a plain string is needed."""

    __slots__ = ("message",)

    def __init__(self, message: str) -> None:
        self.message = message

    def __str__(self) -> str:
        return gettext(self.message)

    def __html__(self) -> str:
        return str(escape(str(self)))

    def __format__(self, spec: str) -> str:
        return format(str(self), spec)

    def format(self, *args: Any, **kwargs: Any) -> str:
        return str(self).format(*args, **kwargs)

    def __add__(self, other: object) -> str:
        return str(self) + str(other)

    def __radd__(self, other: object) -> str:
        return str(other) + str(self)

    def __repr__(self) -> str:
        return f"_l({self.message!r})"

    def __eq__(self, other: object) -> bool:
        """Equal to the same mark, and to the text it shows now (what a reader compares)."""
        if isinstance(other, LazyText):
            return other.message == self.message
        return isinstance(other, str) and other == str(self)

    def __hash__(self) -> int:
        return hash(self.message)


def _l(message: str) -> LazyText:
    return LazyText(message)


class Msg:
    """A message to show later, in the reader's language: a marked template and its values."""

    __slots__ = ("template", "values")

    def __init__(self, template: str | LazyText, /, **values: object) -> None:
        self.template = template.message if isinstance(template, LazyText) else template
        # a marked value (a label) is kept marked, to be shown in the reader's language
        self.values: dict[str, str | dict[str, str]] = {
            k: {"text": v.message} if isinstance(v, LazyText) else str(v)
            for k, v in values.items()}

    def __str__(self) -> str:
        return _render(self.template, self.values)

    def dumps(self) -> str:
        return json.dumps({"msg": self.template, "values": self.values}, ensure_ascii=False)


def _render(template: str, values: dict[str, Any]) -> str:
    shown = {k: gettext(str(v["text"])) if isinstance(v, dict) else str(v)
             for k, v in values.items()}
    return gettext(template).format(**shown)


def render_stored(text: str) -> str:
    """A stored message (:meth:`Msg.dumps`) in the current language; any other text as it is
    (messages stored before translation, free text)."""
    if text.startswith('{"msg": '):
        try:
            data = json.loads(text)
            return _render(str(data["msg"]), dict(data.get("values", {})))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            return text
    return text


def pick(zh: str | None, en: str | None) -> str:
    """Of a pair of texts a study wrote in both languages (form labels, help), the one in the
    current language, or the other when it is missing."""
    first, second = (zh, en) if current() == "zh" else (en, zh)
    return first or second or ""


Label = str | LazyText


def bilingual(message: str | LazyText, /, **values: object) -> str:
    """A marked message in both languages, "中文 / English", for what is recorded once and
    read by everyone in either language: a signature's meaning, a reason kept in the ledger,
    a lock's label. ``values`` fill its placeholders on both sides."""
    source = message.message if isinstance(message, LazyText) else message
    zh, en = translate(source, "zh").format(**values), source.format(**values)
    return en if zh == en else f"{zh} / {en}"
