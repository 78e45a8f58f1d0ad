"""Dollar cost for models whose provider reports none: the built-in table, the config's [prices], null when unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coder import pricing
from coder.config import Config
from coder.events import Usage
from tests.conftest import coder


def usage(inp: int, cached: int, out: int, cost: float = 0.0) -> Usage:
    return Usage(input_tokens=inp, cached_tokens=cached, output_tokens=out, total_tokens=inp + out, cost=cost)


def test_the_default_model_is_priced_with_cached_input_at_its_own_rate() -> None:
    # 600k fresh input at $1.75, 400k cached at $0.175, 100k output at $14 (per 1M tokens)
    assert pricing.cost("gpt-5.3-codex", usage(1_000_000, 400_000, 100_000)) == pytest.approx(1.05 + 0.07 + 1.4)
    assert pricing.cost(Config().model, usage(0, 0, 0)) == 0.0  # known and nothing used: free, not unknown


def test_a_dated_snapshot_is_priced_as_its_model_but_another_model_is_not() -> None:
    assert pricing.cost("gpt-5-2025-08-07", usage(1_000_000, 0, 0)) == pytest.approx(1.25)
    assert pricing.cost("GPT-5-mini", usage(0, 0, 1_000_000)) == pytest.approx(2.0)
    # gpt-5-pro costs twelve times gpt-5: an unknown variant must not borrow a cheaper model's price
    assert pricing.cost("gpt-5-ultra", usage(1000, 0, 1000)) is None
    assert pricing.cost("llama3:70b", usage(1000, 0, 1000)) is None


def test_the_configs_prices_override_and_extend_the_table() -> None:
    own = Config(prices={"gpt-5.3-codex": {"input": 1.0}, "local-model": {"input": 0.5, "output": 1.5}})
    # only input overridden: cached input and output stay the built-in list prices
    assert pricing.cost("gpt-5.3-codex", usage(1_000_000, 500_000, 1_000_000), own) == pytest.approx(0.5 + 0.0875 + 14)
    # a model of its own without cached_input: cached tokens cost full input price (no discount assumed)
    assert pricing.cost("local-model", usage(2_000_000, 1_000_000, 1_000_000), own) == pytest.approx(1.0 + 1.5)
    assert pricing.prices_for("local-model", own) == {"input": 0.5, "output": 1.5, "cached_input": 0.5}


def test_a_cost_the_provider_reports_wins() -> None:
    assert pricing.cost("gpt-5.3-codex", usage(1_000_000, 0, 0, cost=0.0123)) == 0.0123
    assert pricing.cost("unknown-model", usage(10, 0, 10, cost=0.5)) == 0.5


def test_prices_from_the_config_files_reach_coder_config(env, workspace: Path) -> None:
    user = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text('[prices."gpt-5.3-codex"]\ninput = 1.5\n[prices."my-proxy-model"]\ninput = 1\noutput = 2\n')
    r = coder("config", "--json", "-c", 'prices."gpt-5.3-codex".output=12', env=env, cwd=workspace)
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["settings"]["prices"] == {"gpt-5.3-codex": {"input": 1.5, "output": 12.0},
                                           "my-proxy-model": {"input": 1.0, "output": 2.0}}
    assert shown["sources"]["prices.my-proxy-model"] == {"kind": "user", "where": str(user)}
    assert shown["sources"]['prices."gpt-5.3-codex"']["kind"] == "-c"


@pytest.mark.parametrize("table, says", [
    ('[prices."gpt-5"]\ninput = "cheap"\n', 'prices."gpt-5".input must be a number of dollars per 1M tokens'),
    ('[prices."gpt-5"]\ninput = -1\n', 'prices."gpt-5".input must be a number of dollars per 1M tokens'),
    ('[prices."gpt-5"]\nin = 1\n', 'prices."gpt-5".in is not a price (choose from input, cached_input, output)'),
    ('[prices."my-model"]\ninput = 1\n', 'prices."my-model" needs input and output'),
    ('prices = { "gpt-5" = 3 }\n', 'prices."gpt-5" must be a table of input, cached_input and output'),
])
def test_a_wrong_price_is_one_line_naming_the_file_and_the_key(env, workspace: Path, table: str, says: str) -> None:
    user = Path(env["XDG_CONFIG_HOME"]) / "coder" / "config.toml"
    user.parent.mkdir(parents=True)
    user.write_text(table)
    r = coder("config", env=env, cwd=workspace)
    assert r.returncode == 2 and r.stderr.startswith(f"coder: error: {user}: {says}") and r.stderr.count("\n") == 1
