"""The cost the core reports: the provider's figure, else priced from the table, else unknown (None, not 0)."""

from __future__ import annotations

import pytest

from tests.core.conftest import events_of, run
from tests.scripted_server import Reply, message, usage


def test_a_known_model_is_priced_and_an_unknown_one_is_null(server, make_agent):
    server.add(Reply([message("hi")], usage=usage(1_000_000, 100_000)), Reply([message("hi")]))
    known = run(make_agent(model="gpt-5.3-codex"), "hello")
    unknown = run(make_agent(model="house-model-7b"), "hello")

    [done] = events_of(known, "turn.done")
    assert done.usage.input_tokens > 0
    assert done.usage.cost == pytest.approx(1.75 + 1.40)  # 1M in at $1.75, 100k out at $14 per 1M (list prices)
    [report] = events_of(known, "usage")
    assert report.to_dict()["request"]["cost"] == done.usage.cost

    [done] = events_of(unknown, "turn.done")
    assert done.usage.cost is None and done.to_dict()["usage"]["cost"] is None


def test_a_cost_the_provider_reports_wins(server, make_agent):
    reply = Reply([message("hi")])
    reply.usage = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": 5,
                   "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": 105, "cost": 0.25}
    server.add(reply)
    [done] = events_of(run(make_agent(model="house-model-7b"), "hello"), "turn.done")
    assert done.usage.cost == 0.25
