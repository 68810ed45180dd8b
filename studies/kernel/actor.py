"""Who is acting and what they may do: the :class:`Actor` every domain function receives,
``require`` (deny by default) and the separation-of-duties check."""

from __future__ import annotations

from dataclasses import dataclass, field

from studies.kernel.errors import PermissionDenied
from studies.kernel.i18n import _
from studies.kernel.roles import PRIVILEGED, STUDY_WIDE, Perm, Role, permissions_of

# Why a session is restricted to a few pages until the user acts.
PENDING_PASSWORD = "password"        # must change the password (first login, reset, expiry)
PENDING_SECOND_FACTOR = "second_factor"  # must enrol TOTP (privileged role)


@dataclass(frozen=True)
class Actor:
    """Who is acting: the user, the roles they hold (by study and site), where they connect
    from, and how they authenticated."""

    user_id: str
    username: str
    display_name: str
    grants: tuple[tuple[Role, str | None], ...]
    client: str | None = None
    session_id: str | None = None
    must_change_password: bool = False
    perms: frozenset[Perm] = field(default=frozenset())
    # (role, study, site): site None means every site of the study.
    scopes: tuple[tuple[Role, str | None, str | None], ...] = ()
    pending: str | None = None
    second_factor: bool = False
    token_id: str | None = None

    @property
    def roles(self) -> set[Role]:
        return {r for r, _x in self.grants}

    def scope_triples(self) -> tuple[tuple[Role, str | None, str | None], ...]:
        return self.scopes or tuple((r, s, None) for r, s in self.grants)

    def can(self, perm: Perm, study: str | None = None, site: str | None = None, *,
            whole_study: bool = False) -> bool:
        """Deny by default; the union of the roles held for this study (and site). A grant
        limited to some sites counts for ``site`` None (a study page, a list the service then
        filters), never for a study-wide permission (``STUDY_WIDE``) nor when ``whole_study``
        is asked (a study-wide setting, a lock of the whole study). (A session with
        ``pending`` set is held to its password / enrolment pages by the web layer's
        policies, see ``refuse_pending``.)"""
        whole = whole_study or perm in STUDY_WIDE
        roles = {r for r, s, t in self.scope_triples()
                 if (s is None or study is None or s == study)
                 and (t is None or (not whole and (site is None or t == site)))}
        return perm in permissions_of(roles)

    def sites(self, perm: Perm, study: str) -> set[str] | None:
        """The sites of ``study`` where ``perm`` is held: None for every site, else a set
        (empty: none). For filtering lists by the hospital / department / group scope."""
        out: set[str] = set()
        for r, s, t in self.scope_triples():
            if (s is None or s == study) and perm in permissions_of({r}):
                if t is None:
                    return None
                if perm not in STUDY_WIDE:
                    out.add(t)
        return out

    @property
    def privileged(self) -> bool:
        return bool(self.roles & PRIVILEGED)


SYSTEM = Actor(user_id="system", username="system", display_name="System", grants=())


def refuse_pending(actor: Actor) -> None:
    """Refuse a session that must first change its password or enrol the second factor."""
    if actor.pending == PENDING_PASSWORD:
        raise PermissionDenied(_("please change your password first"),
                               clause="§11.3.4.1 a")
    if actor.pending == PENDING_SECOND_FACTOR:
        raise PermissionDenied(_("please enrol the second factor first"),
                               clause="§11.6.2.2 g")


def require(actor: Actor, perm: Perm, *, study: str | None = None,
            site: str | None = None, whole_study: bool = False) -> None:
    """Refuse (403) unless ``perm`` is held for ``study`` (and ``site``, when the target has
    one; for every site of the study when ``whole_study``)."""
    if not actor.can(perm, study, site, whole_study=whole_study):
        if whole_study or perm in STUDY_WIDE:
            raise PermissionDenied(
                _("permission {value} is required for the whole study, not one site").format(
                    value=perm.value), clause="§11.3.4.1 a")
        if site is not None and actor.can(perm, study):
            raise PermissionDenied(
                _("permission {value} is not held for site {site}").format(
                    value=perm.value, site=site), clause="§11.3.4.1 a")
        raise PermissionDenied(
            _("permission {value} is required").format(value=perm.value), clause="§11.3.4.1 a")


def require_sites(actor: Actor, perm: Perm, *, study: str, sites: set[str] | None) -> None:
    """Refuse (403) unless ``perm`` is held at every site of ``sites`` (None: the whole
    study) — for an action that reaches several sites at once (a lock, a report)."""
    if sites is None:
        require(actor, perm, study=study, whole_study=True)
        return
    for site in sorted(sites):
        require(actor, perm, study=study, site=site)


def require_different_person(actor: Actor, requester_user_id: str | None,
                             requester_username: str | None = None) -> None:
    """Separation of duties: nobody approves (or signs off) their own request."""
    if (requester_user_id and requester_user_id == actor.user_id) or (
            requester_username and requester_username == actor.username):
        raise PermissionDenied(
            _("you cannot approve your own request"),
            clause="§11.3.4.1 a")
