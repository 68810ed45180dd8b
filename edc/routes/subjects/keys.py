"""The code-index keys the subjects routes (API and pages) pass to the domain."""

from __future__ import annotations

from edc import keyring
from edc.state import AppState
from studies.kernel.i18n import _
from studies.subjects.crypto import CodeIndexKeys
from studies.subjects.errors import CodeIndexKeyError


def index_keys(state: AppState) -> CodeIndexKeys:
    """The code-index keys, re-read if a rotation changed the key directory since start-up.
    A key directory that became unusable is refused like a wrong key (423), never a 500."""
    try:
        state.keys = keyring.refreshed(state.keys)
    except keyring.KeyringError as exc:
        raise CodeIndexKeyError(_("the key directory is not usable: {exc}").format(exc=exc),
                                clause="§11.3.4.6 a") from exc
    return state.keys.code_index_keys()
