"""Level-5 data (§6.2 e: only the treating clinicians, strictly controlled): the one rule every
reader of entered values applies.

A study names the roles it counts as treating clinicians (``entry_settings.treating_roles``,
default the principal investigator and the investigators; every role that enters data is one).
Anyone else sees a level-5 item's value as ``MASKED`` — on the form page and API, the field
history, the grids, the CSV, REDCap API and statistics exports — unless they hold an unmask
grant: time-limited, for one user on one study, given with a reason by a holder of
``unmask.grant`` (audited). Each view of an unmasked value is audited: the reading function
names the items in the view's ``ReadNote`` and the view's one read entry becomes
``read.unmasked``; an export under a grant names them in its export entry.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from audit_trail.service import Change, Ledger
from studies.accounts.models import User
from studies.entry.models import UnmaskGrant
from studies.entry.service import SettingsView, get_settings
from studies.kernel.actor import Actor, require
from studies.kernel.errors import InvalidInput, NotFound
from studies.kernel.events import Action
from studies.kernel.i18n import _
from studies.kernel.reads import ReadNote
from studies.kernel.roles import DEFAULT_TREATING_ROLES, GRANTS, Perm, Role
from studies.registry.models import Study

LEVEL = 5
# a marker in the data (API, exports, history), the same whatever the reader's language
MASKED = "[5级数据已遮蔽 / level-5 value masked]"
CLAUSE = "§6.2 e"


@dataclass(frozen=True)
class Level5:
    """What one actor may see of one study's level-5 values."""

    sees: bool
    grant: UnmaskGrant | None = None

    def show(self, values: dict[str, Any], level5: Iterable[str],
             note: ReadNote | None = None, masked: Any = MASKED) -> dict[str, Any]:
        """``values`` as this actor may see them: level-5 values replaced by ``masked``, or
        (under a grant) shown and named in ``note``."""
        names = [n for n in level5 if values.get(n) is not None]
        if not names:
            return values
        if not self.sees:
            return {**values, **{n: masked for n in names}}
        if self.grant is not None and note is not None:
            note.unmasked.update(names)
        return values

    def value(self, name: str, value: Any, level5: set[str],
              note: ReadNote | None = None) -> Any:
        return self.show({name: value}, level5 & {name}, note)[name]


def unmasked_change(note: ReadNote) -> list[Change]:
    """What an export's ledger entry says of the level-5 values it held unmasked under a
    grant (nothing when it held none)."""
    return [Change("level5_unmasked", None, sorted(note.unmasked))] if note.unmasked else []


def treating_roles(settings: Any) -> tuple[Role, ...]:
    """The study's treating roles from its settings (``EntrySettings`` or a row with its
    ``treating_roles``; None: the defaults)."""
    if settings is None or settings.treating_roles is None:
        return DEFAULT_TREATING_ROLES
    return tuple(Role(r) for r in settings.treating_roles)


def check_treating_roles(roles: list[str]) -> list[str]:
    """A study's treating roles: known roles, including every role that enters data (a role
    that writes a value sees it)."""
    try:
        chosen = {Role(r) for r in roles}
    except ValueError:
        raise InvalidInput(_("unknown role in treating_roles"), field="treating_roles",
                           clause=CLAUSE) from None
    writers = {r for r, perms in GRANTS.items() if Perm.ENTRY_WRITE in perms}
    if not writers <= chosen:
        raise InvalidInput(_("treating_roles must include every role that enters data: "
                             "{roles}").format(roles=", ".join(sorted(writers))),
                           field="treating_roles", clause=CLAUSE)
    return sorted(chosen)


def access(session: Session, *, actor: Actor, study: Study,
           now: dt.datetime | None = None, settings: SettingsView | None = None) -> Level5:
    """Whether ``actor`` sees ``study``'s level-5 values: a treating role held on the study,
    else a current unmask grant. ``settings``: the study's entry settings where the caller
    has read them already (``studies.entry.service.get_settings``); else they are read."""
    if settings is None:
        settings = get_settings(session, study.id)
    roles = set(treating_roles(settings))
    if any(r in roles and (s is None or s == study.code) for r, s, _t in actor.scope_triples()):
        return Level5(sees=True)
    now = now or dt.datetime.now(dt.UTC)
    grant = session.execute(select(UnmaskGrant).where(
        col(UnmaskGrant.study_id) == study.id, col(UnmaskGrant.user_id) == actor.user_id,
        col(UnmaskGrant.expires_at) > now).order_by(col(UnmaskGrant.expires_at).desc())
        .limit(1)).scalar_one_or_none()
    return Level5(sees=grant is not None, grant=grant)


def level5_items(items: Iterable[Any]) -> set[str]:
    return {i.name for i in items if i.level >= LEVEL}


def grant(session: Session, ledger: Ledger, *, actor: Actor, study: Study, username: str,
          reason: str, hours: int, max_hours: int, now: dt.datetime) -> UnmaskGrant:
    """Let ``username`` see ``study``'s level-5 values for ``hours`` (at most ``max_hours``),
    for ``reason``. Audited."""
    require(actor, Perm.UNMASK_GRANT, study=study.code, whole_study=True)
    reason = reason.strip()
    if not reason:
        raise InvalidInput(_("a reason is required"), field="reason", clause=CLAUSE)
    if not 1 <= hours <= max_hours:
        raise InvalidInput(_("hours must be 1–{max_hours}").format(max_hours=max_hours),
                           field="hours", clause=CLAUSE)
    user = session.execute(select(User).where(col(User.username) == username)
                           ).scalar_one_or_none()
    if user is None:
        raise NotFound(_("no user {username!r}").format(username=username), field="username")
    g = UnmaskGrant(study_id=study.id, user_id=user.id, reason=reason[:2000],
                    granted_by=actor.username, expires_at=now + dt.timedelta(hours=hours))
    session.add(g)
    session.flush()
    ledger.append(session, actor=actor.username, action=Action.UNMASK_GRANT,
                  entity_type="unmask_grant", entity_id=g.id, study=study.code,
                  client=actor.client, reason=f"{username} for {hours} h: {reason}"[:500])
    return g
