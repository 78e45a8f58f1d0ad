"""Values made fit to show: in errors, `--json`, the transcript, /status and `coder config`.

`scrub_url` is the one place a URL is cleaned before it is shown: a password in it (and a user name that
is itself a token) becomes `***`, and so does every query value and a fragment, which is where gateways
take keys (`?key=...`, `?api-key=...`). The scheme, host, port and path stay: they say where coder went.
`shown` hides a setting's value, or a table's entries, that look like credentials.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
HIDDEN = "(hidden)"


def scrub_url(url: str) -> str:
    """`url` with its password, query values and fragment replaced by ***: 'http://me:***@host/v1?key=***'."""
    if not url or not isinstance(url, str):
        return url
    try:
        parts = urlsplit(url)
    except ValueError:  # not a URL one can take apart (a stray bracket): cut where secrets would be
        return _scrub_unparsed(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        name, colon, _password = userinfo.partition(":")
        if colon:
            userinfo = f"{name}:{MASK}"
        elif _looks_secret(name):
            userinfo = MASK
        netloc = f"{userinfo}@{hostport}"
    query = "&".join(f"{p.partition('=')[0]}={MASK}" if "=" in p else MASK for p in parts.query.split("&") if p)
    return urlunsplit(parts._replace(netloc=netloc, query=query, fragment=MASK if parts.fragment else ""))


def _scrub_unparsed(url: str) -> str:
    url = re.sub(r"(://[^/@:?#\s]*):[^/@\s]*@", rf"\1:{MASK}@", url)
    return re.sub(r"[?#].*", f"?{MASK}", url)


def _looks_secret(value: str) -> bool:
    from sandbox.env import looks_secret

    return looks_secret(value)


def _secret_name(name: str, header: bool = False) -> bool:
    """A table entry (a header, a body field) whose name says it carries a credential."""
    from sandbox.env import is_secret_name

    return is_secret_name(name.replace("-", "_")) or header and bool(_HEADER_WORDS.search(name))


_HEADER_WORDS = re.compile(r"auth|key|token|secret|cookie|session|password|credential", re.I)


def shown(key: str, value: Any, entry: str | None = None) -> Any:
    """A setting's value (or its table entry `entry`) as it may be shown: URLs scrubbed, and values that
    look like credentials, or sit under a name that says so (extra_headers, extra_body), hidden.

    A name hides only text (`extra_body.max_output_tokens = 1000` is shown): numbers and switches are no
    credentials."""
    if key in ("base_url", "allowed_base_urls"):
        return _urls(value)
    table = key in ("extra_headers", "extra_body")
    if entry is not None:
        return HIDDEN if table and _named_secret(entry, value, key == "extra_headers") else _hide(value, table)
    return _hide(value, table, key == "extra_headers")


def _named_secret(name: str, value: Any, header: bool = False) -> bool:
    return _secret_name(str(name), header) and _holds_text(value)


def _holds_text(value: Any) -> bool:
    if isinstance(value, str):
        return bool(value)
    if isinstance(value, dict):
        return any(_holds_text(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_text(v) for v in value)
    return False


def _urls(value: Any) -> Any:
    if isinstance(value, str):
        return scrub_url(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_urls(v) for v in value)
    return value


def _hide(value: Any, names: bool, header: bool = False) -> Any:
    """`value` with every string that looks like a credential hidden; in a table whose names may say so
    (`names`), every entry under a secret-looking name too, however deep."""
    if isinstance(value, str):
        return HIDDEN if _looks_secret(value) else value
    if isinstance(value, dict):
        return {k: HIDDEN if names and _named_secret(k, v, header) else _hide(v, names) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_hide(v, names) for v in value)
    return value
