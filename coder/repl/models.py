"""The models /model offers: what the endpoint's /models lists, if it answers quickly, else a
built-in list of the usual ones."""

from __future__ import annotations

import threading
from typing import Any

WAIT = 1.5  # seconds the list may take before the built-in one is shown
BUILT_IN = ("gpt-5.3-codex", "gpt-5.2-codex", "gpt-5.1-codex-max", "gpt-5.1-codex-mini", "gpt-5.4", "gpt-5.4-mini",
            "gpt-5.2", "gpt-5.1", "gpt-5-mini")
SHOWN = 20
NOT_FOR_CHAT = ("embedding", "tts", "whisper", "dall-e", "moderation", "transcribe", "realtime", "audio", "image",
                "davinci", "babbage", "sora", "search")


def endpoint_models(client: Any, wait: float = WAIT) -> list[str] | None:
    """The ids GET /models returns (not the audio, image or embedding ones), newest names first; None when
    it fails or takes longer than `wait`."""
    found: list[list[str]] = []

    def fetch() -> None:
        try:
            page = client.openai.models.list(timeout=wait)
            ids = {m.id for m in page.data if isinstance(getattr(m, "id", None), str)}
            found.append(sorted((i for i in ids if not any(w in i.lower() for w in NOT_FOR_CHAT)), reverse=True))
        except Exception:  # no such route, refused, not JSON: the built-in list will do
            pass

    worker = threading.Thread(target=fetch, name="coder-models", daemon=True)
    worker.start()
    worker.join(wait + 0.2)
    return found[0] if found and found[0] else None


def choices(client: Any, current: str) -> tuple[list[str], str]:
    """The models to pick from (the current one first) and where the list came from."""
    listed = endpoint_models(client)
    names, origin = (listed, "from the endpoint") if listed else (list(BUILT_IN), "built-in list")
    names = [current] + [n for n in names if n != current]
    return names[:SHOWN], origin
