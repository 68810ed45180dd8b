"""The errors of this domain (the kernel's typed errors cover the rest)."""

from __future__ import annotations

from studies.kernel.errors import Locked


class CodeIndexKeyError(Locked):
    """The key directory does not hold a key the code index needs (missing, wrong or
    corrupt key file). Nothing is decrypted or changed; the operator must restore the key."""

    code = "code_index_key_unavailable"
