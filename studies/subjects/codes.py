"""Subject codes: ``<site code>-<5 random characters><1 check character>``, e.g. ``S01-7Q4K2M``.

- The random part comes from :mod:`secrets` and is never derived from identity (§11.3.4.4 d).
- Alphabet: ``23456789ABCDEFGHJKMNPQRSTVWXYZ`` — 30 characters, without the look-alikes
  0/O, 1/I/L and without U (so that codes read aloud or copied by hand are not misread).
- Check character: Luhn mod N with N = 30 over the random part (Luhn mod N needs an even N to
  detect every single-character substitution; it also catches most adjacent transpositions).
  The site prefix is not covered: it is checked against the study's sites instead.
- 30^5 ≈ 24 million random parts per site; a collision with an existing code is retried.
"""

from __future__ import annotations

import re
import secrets

ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"
N = len(ALPHABET)
RANDOM_LENGTH = 5
_INDEX = {c: i for i, c in enumerate(ALPHABET)}
_CODE = re.compile(r"^(?P<site>[A-Z0-9]{1,10})-(?P<body>[" + ALPHABET + r"]{"
                   + str(RANDOM_LENGTH + 1) + r"})$")


def luhn_mod_n_check(body: str) -> str:
    """The Luhn mod N check character of ``body`` (characters of ALPHABET)."""
    factor, total = 2, 0
    for ch in reversed(body):
        addend = factor * _INDEX[ch]
        factor = 1 if factor == 2 else 2
        total += addend // N + addend % N
    return ALPHABET[(N - total % N) % N]


def is_valid_body(body: str) -> bool:
    """True if the random part plus its check character is well formed."""
    if len(body) != RANDOM_LENGTH + 1 or any(c not in _INDEX for c in body):
        return False
    return luhn_mod_n_check(body[:-1]) == body[-1]


def new_code(site_code: str) -> str:
    """A fresh random code for a subject of ``site_code`` (uniqueness is the caller's check)."""
    body = "".join(secrets.choice(ALPHABET) for _ in range(RANDOM_LENGTH))
    return f"{site_code}-{body}{luhn_mod_n_check(body)}"


def normalise_code(raw: str) -> str:
    return raw.strip().upper()


def is_valid_code(code: str) -> bool:
    """Shape and check character of a whole code (site prefix, hyphen, body)."""
    m = _CODE.match(code)
    return m is not None and is_valid_body(m.group("body"))
