"""The environment a command sees: the user's, minus anything that looks like a secret.

A variable is left out when its name says it holds a secret (`*KEY*`, `*TOKEN*`,
`*SECRET*`, `*PASSWORD*`, `*CREDENTIAL*`, `*PRIVATE*`, or a word such as `PAT`,
`AUTH`, `PASS`, `DSN` between underscores), or when its value looks like one
whatever the name: it contains a known secret (the API key), a URL carrying a
password, an `Authorization`-style value, a private key, a JWT, or a token in
the formats of the common providers. A variable named in `passthrough` is kept
anyway (the user's explicit choice), except one holding a known secret.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

# Substrings of variable names that mark a secret (matched case-insensitively).
SECRET_MARKERS: tuple[str, ...] = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "PRIVATE")
# Whole words of a name (split on "_") that mark a secret: GITHUB_PAT, OPENAI_AUTH, PGPASS, SENTRY_DSN.
SECRET_WORDS = frozenset({"PAT", "AUTH", "AUTHORIZATION", "PASS", "PGPASS", "DSN", "COOKIE", "JWT", "BEARER"})
# Names that match a marker but hold no secret.
NOT_SECRET = frozenset({"SSH_AUTH_SOCK", "KEYTIMEOUT"})

_SECRET_VALUE = re.compile(
    r"[a-z][a-z0-9+.-]*://[^\s/@:]*:[^\s/@]+@"  # a URL with a password: postgres://user:pass@host
    r"|\b(?:bearer|basic|token)\s+[\w.~+/=-]{8,}"  # an Authorization header value
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
    r"|\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\."  # a JWT
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{30,}|github_pat_\w{20,}|glpat-[\w-]{20,}|xox[abposr]-[\w-]{10,}"
    r"|sk-[\w-]{20,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[\w-]{35}|npm_[A-Za-z0-9]{36})",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper in NOT_SECRET:
        return False
    return any(marker in upper for marker in SECRET_MARKERS) or not SECRET_WORDS.isdisjoint(upper.split("_"))


def looks_secret(value: str) -> bool:
    return bool(_SECRET_VALUE.search(value))


def is_secret(name: str, value: str) -> bool:
    return is_secret_name(name) or looks_secret(value)


def scrub(env: Mapping[str, str], secret_values: Iterable[str] = (), passthrough: Iterable[str] = ()) -> dict[str, str]:
    """`env` without secrets: by name, by the look of the value, or holding one of `secret_values`."""
    known = [v for v in secret_values if v and len(v) >= 4]
    keep = set(passthrough)
    return {
        k: v for k, v in env.items()
        if not any(s in v for s in known) and (k in keep or not is_secret(k, v))
    }
