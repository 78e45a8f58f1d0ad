"""The environment a command sees: the user's, minus anything that looks like a secret."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Substrings of variable names that mark a secret (matched case-insensitively).
SECRET_MARKERS: tuple[str, ...] = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


def scrub(env: Mapping[str, str], secret_values: Iterable[str] = ()) -> dict[str, str]:
    """Drop secret-named variables and any variable holding a known secret value."""
    values = {v for v in secret_values if v}
    return {k: v for k, v in env.items() if not is_secret_name(k) and v not in values}
