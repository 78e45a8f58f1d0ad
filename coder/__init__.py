"""coder: a terminal coding agent over the OpenAI Responses API.

Kept import-light on purpose: `coder --version` must not pay for openai or rich.
The Python API names are loaded on first use.
"""

__version__ = "0.1.0"

__all__ = ["Agent", "Config", "Result", "batch", "load_config", "__version__"]


def __getattr__(name: str):
    if name == "Agent":
        from coder.agent import Agent

        return Agent
    if name == "Result":
        from coder.tasks import Result

        return Result
    if name == "batch":
        from coder.batching import batch

        return batch
    if name in ("Config", "load_config"):
        from coder import config

        return getattr(config, name)
    raise AttributeError(name)
