"""The registry of recipient organisations (§11.3.4.6, §7 p) and the accounts that belong to
them.

An organisation has a code (what a request names), a name in Chinese and English, a kind and a
registered country (ISO 3166-1 alpha-2, checked against ``pycountry``). The kind decides which
tiers it may receive (:data:`studies.extracts.tiers.TIER_RULES`, ``inside_hospital_only``), the
country whether data sent to it leave the country: the home country is the registered
country of the hospital itself (the one organisation of kind :attr:`OrgKind.HOSPITAL`), China
(``CN``) until it is registered. An account belongs to at most one organisation (a sponsor's
account to its company). The administrator registers organisations and affiliates accounts;
each is a ledger entry.
"""

from __future__ import annotations

import gettext
import re
from enum import StrEnum
from functools import cache
from typing import Any

import pycountry
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts.models import Organisation, User
from studies.accounts.service import find_user
from studies.kernel.actor import SYSTEM, Actor, require
from studies.kernel.errors import Conflict, InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import LazyText, _, _l, current
from studies.kernel.roles import Perm

DEFAULT_HOME_COUNTRY = "CN"
CODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,39}$")


class OrgKind(StrEnum):
    HOSPITAL = "hospital"
    """The hospital itself (本院): the only recipient of a RIF (§11.3.4.6)."""
    INSTITUTION = "institution"
    """Another hospital or a research institution."""
    COMPANY = "company"
    """An enterprise, e.g. a pharmaceutical sponsor: PUF or LDS only (§11.3.4.6)."""
    GOVERNMENT = "government"
    """A government body or regulator."""


KIND_LABELS: dict[OrgKind, LazyText] = {
    OrgKind.HOSPITAL: _l("The hospital itself"),
    OrgKind.INSTITUTION: _l("Another hospital or research institution"),
    OrgKind.COMPANY: _l("Company (e.g. a pharmaceutical sponsor)"),
    OrgKind.GOVERNMENT: _l("Government or regulator"),
}


@cache
def _zh() -> gettext.NullTranslations:
    return gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["zh_CN"],
                               fallback=True)


def country_label(alpha_2: str) -> str:
    """"中国" (or "China" in English) for ``CN`` (names from ``pycountry``'s ISO 3166-1
    list)."""
    c = pycountry.countries.get(alpha_2=alpha_2)
    if c is None:
        return alpha_2
    return _zh().gettext(c.name) if current() == "zh" else c.name


def countries() -> list[tuple[str, str]]:
    """Every ISO 3166-1 country as (alpha-2, label), by code."""
    return sorted((c.alpha_2, country_label(c.alpha_2)) for c in pycountry.countries)


def _country(value: str) -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise InvalidInput(_("country: an ISO 3166-1 alpha-2 code such as CN or US"),
                           field="country")
    return code


def _kind(value: str) -> OrgKind:
    try:
        return OrgKind(value)
    except ValueError:
        raise InvalidInput(_("kind must be one of {kinds}").format(
            kinds=", ".join(k.value for k in OrgKind)), field="kind") from None


def _name(value: str, field: str) -> str:
    name = " ".join(value.split())
    if not name or len(name) > 200:
        raise InvalidInput(_("{field}: 1 to 200 characters").format(field=field), field=field)
    return name


def _admin(actor: Actor) -> None:
    if actor is not SYSTEM:
        require(actor, Perm.ACCOUNT_MANAGE)


def register_organisation(session: Session, ledger: Ledger, *, actor: Actor, code: str,
                          name_zh: str, name_en: str, kind: str,
                          country: str) -> Organisation:
    """Register a recipient organisation (administrator). One organisation only may be the
    hospital itself; codes and English names are unique."""
    _admin(actor)
    code = code.strip()
    if not CODE_RE.match(code):
        raise InvalidInput(_("code: 2 to 40 letters, digits, '.', '_' or '-'"), field="code")
    zh, en = _name(name_zh, "name_zh"), _name(name_en, "name_en")
    k, cc = _kind(kind), _country(country)
    if session.execute(select(col(Organisation.id)).where(
            col(Organisation.code) == code)).first():
        raise Conflict(_("an organisation with code {code!r} exists").format(code=code),
                       field="code")
    if session.execute(select(col(Organisation.id)).where(
            func.lower(col(Organisation.name_en)) == en.lower())).first():
        raise Conflict(_("an organisation of this name exists"), field="name_en")
    if k is OrgKind.HOSPITAL and hospital(session) is not None:
        raise Conflict(_("the hospital itself is already registered"), field="kind")
    org = Organisation(code=code, name_zh=zh, name_en=en, kind=k.value, country=cc)
    session.add(org)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.ORGANISATION_REGISTER,
                  entity_type="organisation", entity_id=org.id, client=actor.client,
                  changes=[Change("code", None, code), Change("name_zh", None, zh),
                           Change("name_en", None, en), Change("kind", None, k.value),
                           Change("country", None, cc)])
    return org


def list_organisations(session: Session) -> list[Organisation]:
    """Every registered organisation, by code (names, kinds and countries are not secret:
    the request form lists them)."""
    return list(session.execute(select(Organisation).order_by(
        col(Organisation.code))).scalars())


def find_organisation(session: Session, ref: str, *, field: str = "organisation",
                      in_path: bool = False) -> Organisation:
    """The organisation named by its id or code; :class:`InvalidInput` naming ``field``
    otherwise (an input that names something that does not exist), :class:`NotFound` when
    the name is the URL's (``in_path``)."""
    ref = ref.strip()
    org = None
    if 0 < len(ref) <= 40:
        org = session.execute(select(Organisation).where(
            (col(Organisation.code) == ref) | (col(Organisation.id) == ref))).scalars().first()
    if org is None:
        error = NotFound if in_path else InvalidInput
        raise error(_("{field}: no registered organisation {value!r}").format(
                        field=field, value=ref[:40]),
                    field=field)
    return org


def hospital(session: Session) -> Organisation | None:
    """The hospital itself, once registered."""
    return session.execute(select(Organisation).where(
        col(Organisation.kind) == OrgKind.HOSPITAL.value)).scalars().first()


def home_country(session: Session) -> str:
    """The country data must not leave without the §7 p rules: the hospital's registered
    country, :data:`DEFAULT_HOME_COUNTRY` until the hospital is registered."""
    h = hospital(session)
    return h.country if h is not None else DEFAULT_HOME_COUNTRY


def is_abroad(session: Session, org: Organisation) -> bool:
    """Whether data sent to ``org`` leave the country (§7 p): decided by its registered
    country, never by the requester."""
    return org.country != home_country(session)


def organisation_of(session: Session, user_id: str) -> Organisation | None:
    """The organisation an account belongs to, if any."""
    return session.execute(select(Organisation).join(
        User, col(User.organisation_id) == Organisation.id).where(
        col(User.id) == user_id)).scalars().first()


def affiliate(session: Session, ledger: Ledger, *, actor: Actor, username: str,
              organisation: str | None) -> User:
    """Make an account belong to an organisation (by id or code), or to none
    (``organisation=None``); an account belongs to at most one (administrator)."""
    _admin(actor)
    user = find_user(session, username)
    if user is None:
        raise NotFound(_("no account named {username!r}").format(username=username),
                       field="username")
    org = find_organisation(session, organisation) if organisation else None
    before = organisation_of(session, user.id)
    user.organisation_id = org.id if org else None
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.ACCOUNT_AFFILIATE,
                  entity_type="user", entity_id=user.id, client=actor.client,
                  changes=[Change("organisation", before.code if before else None,
                                  org.code if org else None)])
    return user


def members_of(session: Session, org_id: str) -> list[str]:
    """Usernames of the accounts that belong to an organisation."""
    return list(session.execute(select(col(User.username)).where(
        col(User.organisation_id) == org_id).order_by(col(User.username))).scalars())


def organisation_view(session: Session, org: Organisation, *,
                      with_members: bool = False) -> dict[str, Any]:
    """An organisation as the API and pages show it (member accounts only when asked)."""
    return {"id": org.id, "code": org.code, "name_zh": org.name_zh, "name_en": org.name_en,
            "label": org.label, "kind": org.kind, "country": org.country,
            "country_label": country_label(org.country), "abroad": is_abroad(session, org),
            "members": members_of(session, org.id) if with_members else None}


def organisations_view(session: Session, *, actor: Actor) -> list[dict[str, Any]]:
    """Every organisation, for any signed-in account; members for the administrator."""
    admin = actor is SYSTEM or actor.can(Perm.ACCOUNT_MANAGE)
    return [organisation_view(session, o, with_members=admin)
            for o in list_organisations(session)]
