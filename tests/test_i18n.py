"""The language switch (issue 18 item 3): Chinese by default, English on request; every marked
string has its Chinese in the catalogue; no page mixes the languages; stored messages are shown
in each reader's language."""

from __future__ import annotations

import ast
import json
import re
import string
from pathlib import Path
from typing import Any

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po
from factories import login_as, make_entry_study
from fastapi.testclient import TestClient
from pages_util import login, soup, walk
from sqlalchemy.orm import Session

from audit_trail.service import Ledger
from studies.kernel import i18n
from studies.kernel.roles import Role
from studies.registry import service as registry
from studies.signoff import service as sign_off

ROOT = Path(__file__).resolve().parents[1]
HAN = re.compile(r"[\u4e00-\u9fff]")
KEYWORDS = {"_": None, "_l": None, "Msg": None, "bilingual": None, "gettext": None}
STUDY = "ENT-2026-01"


def marked() -> dict[str, list[str]]:
    """Every marked message in the product's code, with where it is."""
    found: dict[str, list[str]] = {}
    for top in ("edc", "studies"):
        for filename, lineno, message, _c, _ctx in extract_from_dir(
                ROOT / top, method_map=[("**.py", "python")], keywords=KEYWORDS,
                comment_tags=()):
            text = message if isinstance(message, str) else message[0]
            if text:
                found.setdefault(text, []).append(f"{top}/{filename}:{lineno}")
    return found


def fields(template: str) -> set[str]:
    return {f for _t, f, _s, _c in string.Formatter().parse(template) if f is not None}


def test_every_marked_string_has_its_chinese_and_the_same_placeholders() -> None:
    with i18n.CATALOGUE.open("rb") as f:
        catalog = read_po(f)
    messages = marked()
    assert len(messages) > 1000
    untranslated = {m: w[0] for m, w in messages.items()
                    if m not in catalog or not catalog[m].string or
                    not HAN.search(str(catalog[m].string))}
    assert untranslated == {}, f"{len(untranslated)} strings have no Chinese in {i18n.CATALOGUE}"
    wrong = {}
    for m in messages:
        zh = str(catalog[m].string)
        try:
            if fields(m) != fields(zh):
                wrong[m] = zh
        except ValueError:
            wrong[m] = zh
    assert wrong == {}, "the Chinese names other placeholders than the English"
    unused = [m.id for m in catalog if m.id and m.id not in messages]
    assert unused == [], "entries no code marks any more: delete them from the catalogue"
    bilingual = [m for m in messages if HAN.search(m)]
    assert bilingual == [], "a marked message is written in English, its Chinese in the catalogue"


def _translated_at_import(tree: ast.AST, in_function: bool = False) -> list[int]:
    """Lines where ``_()`` runs outside any function body (module or class level, a default
    argument): it would freeze the language of whoever imported the module first."""
    found: list[int] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            args = node.args
            outside = [*args.defaults, *(d for d in args.kw_defaults if d),
                       *getattr(node, "decorator_list", [])]
            for d in outside:
                found += _translated_at_import(ast.Expression(d), in_function)
            body = node.body if isinstance(node.body, list) else [node.body]
            for b in body:
                found += _translated_at_import(ast.Module([b], []), True)
            continue
        if (not in_function and isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id in ("_", "gettext")):
            found.append(node.lineno)
        found += _translated_at_import(node, in_function)
    return found


def test_nothing_is_translated_when_a_module_is_imported() -> None:
    found = [f"{p.relative_to(ROOT)}:{line}"
             for p in sorted([*(ROOT / "studies").rglob("*.py"), *(ROOT / "edc").rglob("*.py")])
             for line in _translated_at_import(ast.parse(p.read_text("utf-8")))]
    assert found == [], "use _l() for a module-level text, or pass None and _() inside"
    assert _translated_at_import(ast.parse('X = _("a")\ndef f(m=_("b")):\n    return _("c")'))\
        == [1, 2]


# The errors people read: each is raised with a marked message, never a bare literal.
REFUSALS = {"InvalidInput", "RuleViolation", "Conflict", "PermissionDenied", "NotFound",
            "Locked", "NotAuthenticated", "SignatureRefused", "TooManyRequests"}


def _literal(node: ast.AST) -> bool:
    """A string written in place, holding words (not a separator such as " " or ": ")."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and any(c.isalpha() for c in node.value)
    if isinstance(node, ast.JoinedStr):
        return any(_literal(v) for v in node.values)
    return isinstance(node, ast.BinOp) and (_literal(node.left) or _literal(node.right))


def _unmarked_refusals(tree: ast.AST) -> list[int]:
    return [n.lineno for n in ast.walk(tree)
            if isinstance(n, ast.Raise) and isinstance(n.exc, ast.Call) and n.exc.args
            and getattr(n.exc.func, "id", getattr(n.exc.func, "attr", None)) in REFUSALS
            and _literal(n.exc.args[0])]


def test_every_refusal_is_a_marked_message() -> None:
    """A refusal raised with a plain string would reach a Chinese page in English (the ledger
    library, audit_trail/, sits beneath the language and keeps its own bilingual messages)."""
    found = [f"{p.relative_to(ROOT)}:{line}"
             for p in sorted([*(ROOT / "studies").rglob("*.py"), *(ROOT / "edc").rglob("*.py")])
             for line in _unmarked_refusals(ast.parse(p.read_text("utf-8")))]
    assert found == [], "raise it with _(\"…\") and add its Chinese to the catalogue"
    assert _unmarked_refusals(ast.parse('raise InvalidInput(f"x {y}", field="y")')) == [1]
    assert _unmarked_refusals(ast.parse('raise InvalidInput(_("x {y}").format(y=1))')) == []


def test_the_language_of_a_request() -> None:
    assert i18n.choose(None, None) == "zh"
    assert i18n.choose(None, "en-US,en;q=0.9") == "en"
    assert i18n.choose(None, "fr-FR, en;q=0.5, zh-CN;q=0.8") == "zh"
    assert i18n.choose(None, "de-DE") == "zh"
    assert i18n.choose("en", "zh-CN") == "en"
    assert i18n.choose("xx", "en") == "en"
    assert i18n.from_environment({"LANG": "zh_CN.UTF-8"}) == "zh"
    assert i18n.from_environment({"LANG": "C.UTF-8"}) == "en"
    assert i18n.from_environment({"LANG": "zh_CN.UTF-8", "EDC_LANG": "en"}) == "en"


def test_pages_are_chinese_by_default_and_switch_to_english(app_client: TestClient) -> None:
    app_client.headers.pop("Accept-Language")
    page = soup(app_client.get("/login").text)
    assert page.html["lang"] == "zh-CN"
    assert page.select_one("button[type=submit]").get_text() == "登录"
    assert page.select_one("label[for=username]").get_text() == "用户名"
    switch = page.select_one("a.lang")
    assert switch.get_text() == "English" and switch["href"] == "/language/en?next=%2Flogin"

    r = app_client.get(switch["href"], follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert "edc_lang=en" in r.headers["set-cookie"]
    assert f"Max-Age={365 * 24 * 3600}" in r.headers["set-cookie"]  # kept for a year
    page = soup(app_client.get("/login").text)
    assert page.html["lang"] == "en"
    assert page.select_one("button[type=submit]").get_text() == "Log in"
    assert not HAN.search(page.select_one("main").get_text())
    assert page.select_one("a.lang").get_text() == "中文"

    app_client.get("/language/zh?next=/login")
    assert soup(app_client.get("/login").text).select_one("button[type=submit]").get_text() \
        == "登录"


def test_the_switch_goes_back_only_to_this_site(app_client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        r = app_client.get("/language/en", params={"next": target}, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/", target
    r = app_client.get("/language/fr?next=/login")
    assert r.status_code == 404
    assert "zh or en" in soup(r.text).select_one(".error").get_text()


def test_errors_of_the_api_follow_the_language(app_client: TestClient) -> None:
    r = app_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 12},
                        headers={"Accept-Language": "zh-CN"})
    assert r.status_code == 401 and r.json()["error"]["message"] == "用户名或密码错误"
    r = app_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "x" * 12})
    assert r.json()["error"]["message"] == "wrong username or password"


# Text on an English page that may hold Chinese: the switch to Chinese, and what people wrote
# (study titles in Chinese are shown in both languages only where no English one exists).
def _english_leaks(html: str) -> list[str]:
    page = soup(html)
    for a in page.select("a.lang"):
        a.decompose()
    for el in page.select("[lang|=zh], script, style, textarea, input"):
        el.decompose()
    return [t.strip() for t in page.find_all(string=HAN) if t.strip()]


def _untranslated(html: str, english: set[str]) -> list[str]:
    page = soup(html)
    for el in page.select("[lang|=en], a.lang"):  # text marked as English (a consent's own)
        el.decompose()
    return [t.strip() for t in page.find_all(string=True) if t.strip() in english]


@pytest.mark.parametrize("who", ["inv", "mon", "dm", "pi", "stat", "sponsor", "committee",
                                 "custodian", "auditor", "admin"])
def test_no_page_mixes_the_languages(app_client: TestClient, everyone: dict[str, Any],
                                     who: str) -> None:
    """Every page each role reaches from the home page: in English, no Chinese but what people
    wrote; in Chinese, no English message the catalogue translates."""
    with i18n.CATALOGUE.open("rb") as f:
        catalog = read_po(f)
    names = {u.title() for u in ("sponsor", "committee", "custodian", "auditor", "admin")}
    english = {m.id for m in catalog if m.id and isinstance(m.id, str) and len(m.id) > 3
               and m.string and "{" not in m.id and not m.id.isupper()} - names
    login(app_client, who)
    urls = [u for u, code in walk(app_client).items() if code == 200]
    assert len(urls) >= 3
    leaks = {}
    for url in urls:
        r = app_client.get(url)
        if "text/html" in r.headers.get("content-type", "") and (found := _english_leaks(r.text)):
            leaks[url] = found
    assert leaks == {}, "Chinese on English pages:\n" + json.dumps(leaks, ensure_ascii=False,
                                                                   indent=1)
    app_client.headers["Accept-Language"] = "zh-CN"
    left = {}
    for url in urls:
        r = app_client.get(url)
        if "text/html" in r.headers.get("content-type", "") and \
                (found := _untranslated(r.text, english)):
            left[url] = found
    assert left == {}, "English on Chinese pages:\n" + json.dumps(left, ensure_ascii=False,
                                                                  indent=1)


def test_a_stored_message_is_shown_in_each_readers_language(session: Session,
                                                            ledger: Ledger) -> None:
    make_entry_study(session, ledger)
    reader = login_as(session, ledger, "dm2", Role.DATA_MANAGER, study=STUDY)
    study = registry.get_study(session, STUDY)
    with i18n.language("en"):
        sign_off.notify(session, study=study, kind="unblinding.effective", by="dm",
                        audience=(Role.DATA_MANAGER,),
                        text=i18n.Msg("study {code} is unblinded", code=STUDY))
    with i18n.language("zh"):
        assert [m.text for m in sign_off.inbox_for(session, actor=reader)] == \
            [f"研究 {STUDY} 已揭盲"]
    with i18n.language("en"):
        assert [m.text for m in sign_off.inbox_for(session, actor=reader)] == \
            [f"study {STUDY} is unblinded"]


def test_what_is_signed_reads_the_same_in_both_languages() -> None:
    from studies.registry.owner import ACCEPT_MEANING

    assert ACCEPT_MEANING == "接任数据责任人 / Accept the data ownership"
    with i18n.language("en"):
        assert i18n.bilingual("Save") == i18n.bilingual(i18n._l("Save"))
