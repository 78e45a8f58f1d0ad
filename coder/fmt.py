"""Figures as people read them, the same in every front end (`coder exec`, the REPL).

Imports nothing heavy: the exec and REPL front ends both use it on their start-up path.
"""

from __future__ import annotations

from typing import Any


def tokens(n: int) -> str:
    """A token count with thousands separators: 1234567 -> '1,234,567'."""
    return f"{int(n):,}"


def cost(dollars: float | None) -> str:
    """Dollars, with enough digits for a cheap request: 0.01234 -> '$0.0123'; None -> '' (unknown)."""
    if dollars is None:
        return ""
    return f"${dollars:.4f}" if dollars < 10 else f"${dollars:,.2f}"


def dollars(amount: float) -> str:
    """An exact-enough amount for a limit and what was spent against it: 2.5 -> '$2.50', 0.00004 -> '$0.00004'
    (never '$0.0000', never '1e-05')."""
    if amount >= 1 or amount == 0:
        return f"${amount:,.2f}"
    digits = 2
    while round(amount, digits) == 0 or abs(round(amount, digits) - amount) / amount > 0.005:
        digits += 1
        if digits > 12:
            break
    return f"${amount:.{digits}f}".rstrip("0").rstrip(".") if digits > 2 else f"${amount:.2f}"


def seconds(s: float) -> str:
    """A duration: 0.123 -> '0.12s', 75.4 -> '1m15s'."""
    if s < 60:
        return f"{s:.2f}s" if s < 10 else f"{s:.1f}s"
    minutes, rest = divmod(int(round(s)), 60)
    return f"{minutes}m{rest:02d}s"


def usage(u: Any, dollars: float | None = None) -> str:
    """One run's usage: 'tokens in 1,234 (cached 1,000) · out 56 (reasoning 12)', then the cost when known.

    `u` is a coder.events.Usage; `dollars` defaults to the cost it carries (None or 0 when unknown: left out).
    """
    line = (f"tokens in {tokens(u.input_tokens)} (cached {tokens(u.cached_tokens)}) · "
            f"out {tokens(u.output_tokens)} (reasoning {tokens(u.reasoning_tokens)})")
    if dollars is None:
        dollars = getattr(u, "cost", None) or None
    return f"{line} · {cost(dollars)}" if dollars is not None else line
