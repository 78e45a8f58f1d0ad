"""The environment a command sees: the user's, minus anything that looks like a secret.

A variable is left out when a word of its name (split at `_`) says it holds a
secret (`OPENAI_API_KEY`, `GHTOKEN`, `DB_PASSWORD`, `PGPASS`, `GITHUB_PAT`,
`OPENAI_AUTH`, `SENTRY_DSN`, ...), or when its value looks like one whatever
the name: it contains a known secret
(the API key), a URL carrying a password, an `Authorization`-style value, a
private key, a JWT, or a token in the formats of the common providers. Search
paths (`PATH`, `PYTHONPATH`, ...) are not judged by their value: a folder name
is not a secret. A variable named in `passthrough` is kept anyway (the user's
explicit choice), except one holding a known secret.

`separate` then takes the starting program's own virtual environment off
PATH (unless the user activated it) and gives the command the tools folder.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

# How a name says it holds a secret, judged word by word (split at "_"):
_ANYWHERE = ("SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "APIKEY", "PRIVKEY", "ACCESSKEY")  # GH_CLIENTSECRET
_AT_THE_END = ("KEY", "KEYS", "TOKEN", "TOKENS", "PASS", "PWD", "AUTH", "DSN")  # SSHKEY, GHTOKEN, PGPASS
_WHOLE = ("PAT", "PRIVATE", "CREDS", "COOKIE", "JWT", "BEARER", "AUTHORIZATION")  # GITHUB_PAT, not COMPAT
# Names that match but hold no secret.
NOT_SECRET = frozenset({"PWD", "OLDPWD", "SSH_AUTH_SOCK", "GPG_TTY", "XAUTHORITY"})

# Values that are secrets whatever the variable is called: a URL with a password, a private key.
_CREDENTIAL_VALUE = re.compile(
    r"(?i:[a-z][a-z0-9+.-]*://)[^\s/@:]*:[^\s/@]+@"  # postgres://user:pass@host
    r"|-----BEGIN [A-Z ]*PRIVATE KEY-----"
)
# Values that look like a token: judged everywhere but in search paths, where a folder may be called so.
_TOKEN_VALUE = re.compile(
    r"\b(?i:bearer|basic|token)\s+[\w.~+/=-]{8,}"  # an Authorization header value
    r"|\beyJ[\w-]{8,}\.eyJ[\w-]{8,}\."  # a JWT
    r"|\b(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{40,}|glpat-[\w-]{20}|xox[abposr]-[\w-]{10,}"
    r"|sk-(?:proj-|ant-)?[A-Za-z0-9_-]{32,}|(?:AKIA|ASIA)[0-9A-Z]{16}|AIza[\w-]{35}|npm_[A-Za-z0-9]{36})\b"
)


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    if upper in NOT_SECRET:
        return False
    words = [w.rstrip("0123456789") for w in upper.split("_")]  # GITHUB_TOKEN2, API_KEY_1
    return any(word in _WHOLE or word.endswith(_AT_THE_END) or any(m in word for m in _ANYWHERE) for word in words)


def looks_secret(value: str, search_path: bool = False) -> bool:
    return bool(_CREDENTIAL_VALUE.search(value) or (not search_path and _TOKEN_VALUE.search(value)))


def is_secret(name: str, value: str) -> bool:
    return is_secret_name(name) or looks_secret(value, search_path=name.upper().endswith(("PATH", "DIRS")))


def scrub(env: Mapping[str, str], secret_values: Iterable[str] = (), passthrough: Iterable[str] = ()) -> dict[str, str]:
    """`env` without secrets: by name, by the look of the value, or holding one of `secret_values`."""
    known = [v for v in secret_values if v and len(v) >= 4]
    keep = set(passthrough)
    return {
        k: v for k, v in env.items()
        if not any(s in v for s in known) and (k in keep or not is_secret(k, v))
    }


def _same(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


def separate(env: Mapping[str, str], own_prefix: str | None = None, own_bin: str | None = None,
             tools: str | None = None) -> dict[str, str]:
    """`env` for a command, without the environment of the program that starts it.

    `own_prefix`, `own_bin`: that program's own virtual environment and its bin/ (None when it runs from
    a Python that is not a venv). A venv the user activated (VIRTUAL_ENV names it and its bin/ is on
    PATH) stays as they put it, even when the program runs from it (installed into the project's own
    venv). Otherwise the program's bin/ leaves PATH, since it holds a python3 and a pip the command must
    not take for the project's (pipx, uv, install.sh's venv, whose bin/ got onto PATH some other way),
    and a VIRTUAL_ENV naming it goes; no other entry is touched. `tools`: a folder holding only what
    the command is meant to get from the program (rg), put last on PATH, so the user's own tools win.
    """
    out = dict(env)
    out.pop("__PYVENV_LAUNCHER__", None)  # macOS: would make any python3 take itself for the venv's
    raw = out.get("PATH", os.defpath)
    parts = raw.split(os.pathsep) if raw else []
    if own_prefix and own_bin:
        on_path = any(p and _same(p, own_bin) for p in parts)
        named = bool(out.get("VIRTUAL_ENV")) and _same(out["VIRTUAL_ENV"], own_prefix)
        if not (named and on_path):  # not activated by the user: the program's own, to take away
            parts = [p for p in parts if not (p and _same(p, own_bin))]
            if named:
                out.pop("VIRTUAL_ENV")
                out.pop("VIRTUAL_ENV_PROMPT", None)
    if tools and not any(p and _same(p, tools) for p in parts):
        parts.append(tools)
    out["PATH"] = os.pathsep.join(parts)
    return out
