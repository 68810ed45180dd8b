"""Authentication policy: what the deployment decided (passed in by the web layer, never read
from settings here) and the password rules.

Defaults follow OWASP ASVS 5.0 (V6.2): at least 12 characters, at least 64 accepted, not the
username or contain it, not a common password, not one of the last
few (``PASSWORD_HISTORY``); no composition rules and no periodic expiry. Both are
settings for deployments whose 等级保护 (GB/T 22239) assessment requires them; see
docs/administrators.md.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass, field
from functools import lru_cache

from studies.kernel.errors import InvalidInput
from studies.kernel.i18n import _

MAX_PASSWORD = 256
MIN_CONTAINED = 4  # usernames of 4+ characters may not appear inside the password
PASSWORD_HISTORY = 5  # a new password may not be any of the last 5 of the account
IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class AuthConfig:
    password_min_length: int = 12
    password_require_classes: bool = False
    password_max_age_days: int = 0  # 0: passwords do not expire
    lockout_threshold: int = 5
    lockout_window: dt.timedelta = dt.timedelta(minutes=15)
    lockout_duration: dt.timedelta = dt.timedelta(minutes=15)
    hospital_networks: tuple[IpNetwork, ...] = field(
        default_factory=lambda: parse_networks("127.0.0.0/8,::1/128"))
    second_factor_enforced: bool = True
    totp_key: bytes = b"\x00" * 32  # encrypts TOTP secrets at rest; from the key directory
    idle_timeout: dt.timedelta = dt.timedelta(minutes=10)
    # A session's last use is written at most this often (0: at every request).
    session_refresh: dt.timedelta = dt.timedelta(seconds=30)
    session_lifetime: dt.timedelta = dt.timedelta(hours=12)
    api_token_max_days: int = 90

    def inside_hospital(self, client: str | None) -> bool:
        """Whether a client address is in one of the configured hospital networks. An address
        that is missing or not an IP address counts as outside."""
        return in_networks(client, self.hospital_networks)


def in_networks(client: str | None, networks: tuple[IpNetwork, ...]) -> bool:
    """Whether ``client`` is an IP address inside one of ``networks`` (missing: outside)."""
    if not client:
        return False
    try:
        addr = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(addr in net for net in networks)


def parse_networks(text: str) -> tuple[IpNetwork, ...]:
    """A comma-separated CIDR list; raises ValueError naming the bad entry."""
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ValueError(f"not a CIDR network: {part!r}") from exc
    return tuple(out)


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The 30,000 most common passwords of the zxcvbn package's list (lower-cased)."""
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def guessable(password: str, username: str) -> bool:
    """zxcvbn's estimate (the maintained estimator the common-password list comes from) puts
    the password under 10^8 guesses (score 0–2): repeats such as ``aaaaaaaaaaaa``, sequences
    such as ``123456789012``, keyboard walks, common words and names (NIST SP 800-63B 3.1.1.2:
    refuse repetitive or sequential characters). The first 72 characters are scored (the
    estimator's own limit)."""
    from zxcvbn import zxcvbn

    return int(zxcvbn(password[:72], user_inputs=[username])["score"]) < 3


def check_password_policy(password: str, username: str, config: AuthConfig) -> None:
    """Refuse a password that breaks the policy; the message names the rule."""
    n = config.password_min_length
    if len(password) < n:
        raise InvalidInput(_("password must have at least {n} characters").format(n=n),
                           field="password", clause="§11.3.4.1 a")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(_("password is longer than {MAX_PASSWORD} characters").format(
                               MAX_PASSWORD=MAX_PASSWORD),
                           field="password")
    name, low = username.lower(), password.lower()
    # a username this short appears inside ordinary words by chance: only the whole is refused
    if name and (name in low if len(name) >= MIN_CONTAINED else low.strip() == name):
        raise InvalidInput(_("password must not contain the username"),
                           field="password")
    if password.lower() in common_passwords():
        raise InvalidInput(_("this password is among the most common passwords; choose another"),
                           field="password")
    if guessable(password, username):
        raise InvalidInput(
            _("this password is easy to guess: repeated or sequential characters, a keyboard "
              "pattern or a few common words; choose a longer or less regular one"),
                           field="password")
    if config.password_require_classes:
        classes = sum([any(c.islower() for c in password), any(c.isupper() for c in password),
                       any(c.isdigit() for c in password),
                       any(not c.isalnum() for c in password)])
        if classes < 3:
            raise InvalidInput(
                _("password must mix at least three of: lower case, upper case, digits, symbols"),
                               field="password")
