"""The bottom bar: model, sandbox, context and cost, shortened field by field to fit the terminal
rather than cut off at its end (where the figures people look for are)."""

from __future__ import annotations

from coder import fmt


def short_tokens(n: int) -> str:
    """12,345 -> 12.3k, 1,234,567 -> 1.2M: for a bar that has no room for the full figure."""
    if n < 1000:
        return str(n)
    if n < 1_000_000:
        return f"{n / 1000:.1f}k".replace(".0k", "k")
    return f"{n / 1_000_000:.1f}M".replace(".0M", "M")


def toolbar_text(width: int, *, model: str, mode: str, backend: str, network: bool, tokens: int,
                 window: int | None, cost: str = "") -> str:
    """The longest version of the bar that fits in `width` columns; only the last resort cuts it."""
    share = f"{tokens / window:.0%}" if window else ""
    of = f" of {window // 1000}k" if window else ""
    net = " · network on" if network else ""
    money = f" · {cost}" if cost else ""
    full = f" ({share}{of})" if share else ""
    brief = f" ({share})" if share else ""
    versions = [
        f" {model} · sandbox {mode} ({backend}){net} · context {fmt.tokens(tokens)} tokens{full}{money}",
        f" {model} · sandbox {mode}{net} · context {fmt.tokens(tokens)} tokens{brief}{money}",
        f" {model} · {mode}{' · net' if network else ''} · context {short_tokens(tokens)}{brief}{money}",
        f" {model} · {mode}{' · net' if network else ''} · {short_tokens(tokens)}{brief}{money}",  # keeps the cost
        f" {model} · {mode}{' · net' if network else ''} · context {short_tokens(tokens)}{brief}",
        f" {model} · {mode}{' · net' if network else ''} · {short_tokens(tokens)}{brief}",
        f" {model} · {short_tokens(tokens)}{brief}",
        f" {share or short_tokens(tokens)} · {model}",
    ]
    for text in versions:
        if len(text) <= width:
            return text
    return versions[-1][: max(0, width - 1)] + "…"
