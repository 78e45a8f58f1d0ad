"""What a run cost in dollars, for providers that report tokens but no price (OpenAI does not).

A cost the provider reports wins; otherwise the tokens are priced from the user's
`[prices."MODEL"]` config tables over the built-in table below; a model found in
neither costs `None` (unknown), never 0.0, so nobody mistakes "unknown" for "free".
"""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from coder.config import Config
    from coder.events import Usage

FIELDS = ("input", "cached_input", "output")  # USD per 1M tokens

# OpenAI's standard-tier list prices in USD per 1M tokens: (input, cached input, output), as published
# during 2026 (noted 2026-12-02; for models with a long-context tier, the price up to 272K input tokens).
# They are list prices: discounts, Batch/Flex/Priority tiers and price changes are not known here, so
# override them in your config: [prices."gpt-5.4"] input = 2.5, cached_input = 0.25, output = 15
PRICES: dict[str, tuple[float, float, float]] = {
    "gpt-5": (1.25, 0.125, 10.00),
    "gpt-5-mini": (0.25, 0.025, 2.00),
    "gpt-5-nano": (0.05, 0.005, 0.40),
    "gpt-5-pro": (15.00, 15.00, 120.00),  # no cached-input discount
    "gpt-5-codex": (1.25, 0.125, 10.00),
    "gpt-5-chat-latest": (1.25, 0.125, 10.00),
    "gpt-5.1": (1.25, 0.125, 10.00),
    "gpt-5.1-codex": (1.25, 0.125, 10.00),
    "gpt-5.1-codex-max": (1.25, 0.125, 10.00),
    "gpt-5.1-codex-mini": (0.25, 0.025, 2.00),
    "gpt-5.1-chat-latest": (1.25, 0.125, 10.00),
    "gpt-5.2": (1.75, 0.175, 14.00),
    "gpt-5.2-codex": (1.75, 0.175, 14.00),
    "gpt-5.2-pro": (21.00, 21.00, 168.00),
    "gpt-5.2-chat-latest": (1.75, 0.175, 14.00),
    "gpt-5.3-codex": (1.75, 0.175, 14.00),
    "gpt-5.4": (2.50, 0.25, 15.00),
    "gpt-5.4-mini": (0.75, 0.075, 4.50),
    "gpt-5.4-nano": (0.20, 0.02, 1.25),
    "codex-mini-latest": (1.50, 0.375, 6.00),
}

_SNAPSHOT = re.compile(r"-\d{4}-\d{2}-\d{2}$")  # gpt-5-2025-08-07 is priced as gpt-5


def _names(model: str) -> list[str]:
    """The names a model is priced under, most specific first: itself, then without its snapshot date."""
    name = model.strip().lower()
    base = _SNAPSHOT.sub("", name)
    return [name] if base == name else [name, base]


def _own_prices(config: "Config | None") -> dict[str, dict[str, float]]:
    return {k.strip().lower(): v for k, v in (getattr(config, "prices", None) or {}).items()}


def prices_for(model: str, config: "Config | None" = None) -> dict[str, float] | None:
    """The model's prices per 1M tokens: the config's table over the built-in one; None when unknown.

    A missing cached_input is charged as input (no discount assumed); without both input and
    output the price is unknown.
    """
    own = _own_prices(config)
    for name in _names(model):
        built_in = dict(zip(FIELDS, PRICES[name])) if name in PRICES else {}
        merged = {**built_in, **own.get(name, {})}
        if "input" in merged and "output" in merged:
            merged.setdefault("cached_input", merged["input"])
            return merged
    return None


def require_price(config: "Config") -> None:
    """A cost limit needs the model's price (a provider's own figure comes only after the first request):
    ConfigError (one line) when max_cost is set and the price is unknown."""
    if config.max_cost is not None and prices_for(config.model, config) is None:
        from coder.config import ConfigError

        raise ConfigError(f"max_cost needs {config.model}'s prices, which coder does not know: add them to your "
                          f"config ([prices.\"{config.model}\"] input = ..., cached_input = ..., output = ..., "
                          "USD per 1M tokens)")


def cost(model: str, usage: "Usage", config: "Config | None" = None) -> float | None:
    """The usage's cost in USD: the provider's own figure if it gave one, else priced; None if unknown.

    `usage` counts input tokens including the cached ones (as the Responses API does) and output
    tokens including reasoning. The core fills `Usage.cost` with this when the provider gave none, so
    a front end may call it again on any usage; a reported 0 is taken as no figure.
    """
    reported = getattr(usage, "cost", None)
    if isinstance(reported, (int, float)) and not isinstance(reported, bool) and reported > 0:
        return float(reported)
    prices = prices_for(model, config)
    if prices is None:
        return None
    cached = min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0))
    fresh = max(usage.input_tokens, 0) - cached
    total = fresh * prices["input"] + cached * prices["cached_input"] + max(usage.output_tokens, 0) * prices["output"]
    return total / 1_000_000


def check_prices(value: Any, source: str) -> dict[str, dict[str, float]]:
    """A `[prices]` table from a config, checked: one line naming the source and the key for a mistake."""
    out: dict[str, dict[str, float]] = {}
    for model, table in value.items():
        where = f'prices."{model}"'
        if not isinstance(table, dict):
            raise ValueError(f"{source}: {where} must be a table of input, cached_input and output "
                             f"(USD per 1M tokens), got {table!r}")
        for name, price in table.items():
            if name not in FIELDS:
                raise ValueError(f"{source}: {where}.{name} is not a price (choose from {', '.join(FIELDS)})")
            if isinstance(price, bool) or not isinstance(price, (int, float)) or not math.isfinite(price) \
                    or price < 0:
                raise ValueError(f"{source}: {where}.{name} must be a number of dollars per 1M tokens, "
                                 f"at least 0, got {price!r}")
        known = any(name in PRICES for name in _names(model))
        if not known and not {"input", "output"} <= set(table):
            raise ValueError(f"{source}: {where} needs input and output (USD per 1M tokens): "
                             "coder has no built-in price for this model")
        out[model] = {k: float(v) for k, v in table.items()}
    return out
