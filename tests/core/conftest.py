"""Fixtures for the agent core: an in-process agent pointed at the scripted endpoint."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from coder.agent import Agent
from coder.config import Config
from coder.events import Event
from tests.conftest import API_KEY, assert_valid_history  # noqa: F401  (re-exported for the tests)
from tests.scripted_server import ScriptedServer

@pytest.fixture
def make_agent(server: ScriptedServer, workspace: Path, api_key: str):
    agents: list[Agent] = []

    def make(**settings: Any) -> Agent:
        settings.setdefault("model", "gpt-5.3-codex")
        settings.setdefault("max_retries", 3)
        cfg = Config(base_url=server.base_url, **settings)
        agent = Agent(cfg, workspace)
        agents.append(agent)
        return agent

    yield make
    for agent in agents:
        agent.close()


def run(agent: Agent, prompt: str | None) -> list[Event]:
    return list(agent.run(prompt))


def events_of(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e.type == kind]
