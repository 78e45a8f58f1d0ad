"""SequenceMatcher on a budget: it stops, rather than run for minutes, on inputs it is slow on.

SequenceMatcher (autojunk off, as these comparisons need) looks at every place in one side
where each element of the other occurs, again at each level of its recursion: nothing much
for code, but quadratic or worse for ten thousand identical lines or a line of one repeated
character. Matcher charges each of its searches to a Budget before making it and raises
OverBudget when the budget is spent; the callers then fall back to something cruder.
"""

from __future__ import annotations

import difflib
from collections.abc import Hashable, Sequence
from itertools import accumulate

BUDGET = 4_000_000  # steps of SequenceMatcher's inner loop (at most about 100 ns each) a comparison may take


class OverBudget(Exception):
    """The comparison would take more steps than its budget has left."""


class Budget:
    def __init__(self, steps: int = BUDGET) -> None:
        self.left = steps

    def spend(self, steps: int) -> None:
        self.left -= steps
        if self.left < 0:
            raise OverBudget


class Matcher(difflib.SequenceMatcher):
    """A SequenceMatcher, autojunk off, whose every search for a longest match is paid for first."""

    def __init__(self, budget: Budget, a: Sequence[Hashable] = "", b: Sequence[Hashable] = "") -> None:
        self.budget = budget
        self._steps: list[int] | None = None
        super().__init__(None, a, b, autojunk=False)

    def set_seq1(self, a: Sequence[Hashable]) -> None:
        super().set_seq1(a)
        self._steps = None

    def set_seq2(self, b: Sequence[Hashable]) -> None:
        super().set_seq2(b)
        self._steps = None

    def find_longest_match(self, alo: int = 0, ahi: int | None = None, blo: int = 0, bhi: int | None = None):
        if self._steps is None:  # _steps[i]: the most the search goes through for a[:i]
            where = self.b2j
            self._steps = [0, *accumulate(len(where.get(x, ())) + 1 for x in self.a)]
        ahi = len(self.a) if ahi is None else ahi
        self.budget.spend(self._steps[ahi] - self._steps[alo])
        return super().find_longest_match(alo, ahi, blo, bhi)
