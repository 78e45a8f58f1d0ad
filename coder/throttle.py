"""A back-off shared by agents that use one endpoint at once (a batch's sessions).

When one of them is rate limited (HTTP 429), every one of them waits before its next request,
so a 429 storm slows the pool down instead of having each session spend its retries against the
same wall, and fail. Other faults (a 500, a dropped stream) stay each session's own business.
"""

from __future__ import annotations

import random
import threading
import time

FIRST_PAUSE = 1.0  # seconds, doubled for each 429 in a row (up to the cap the caller gives)


class Gate:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._strikes = 0  # 429s since the last request that got through
        self.limited_count = 0  # every 429 any session met (for the display)

    def wait(self, cancel: threading.Event) -> float:
        """Block until the pool may send again (or `cancel` is set: KeyboardInterrupt); the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return waited
            if cancel.wait(left):
                raise KeyboardInterrupt
            waited += left

    def limited(self, retry_after: float | None, cap: float) -> float:
        """A 429: pause the whole pool (the endpoint's Retry-After, else doubling); returns the pause."""
        with self._lock:
            now = time.monotonic()
            self.limited_count += 1
            if now >= self._until:  # a new wave: the sessions limited during a pause are one strike, not many
                self._strikes += 1
            pause = retry_after if retry_after is not None else \
                min(cap, FIRST_PAUSE * 2 ** min(self._strikes - 1, 10) * random.uniform(0.8, 1.2))
            self._until = max(self._until, now + pause)
            return max(0.0, self._until - now)

    def passed(self) -> None:
        """A request got through: the storm, if there was one, is over."""
        with self._lock:
            self._strikes = 0
