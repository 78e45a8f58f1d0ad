"""Which line ending each line of new_string gets: that of the old line it rewrites.

A CRLF file with a stray LF line must keep both, so new lines are paired with the old lines
they replace (equal lines first, then the most alike); a line with no counterpart gets the
file's usual ending. Only a file of mixed endings needs this: elsewhere every line ends alike.
"""

from __future__ import annotations

from coder.tools.editing import similarity

_PAIR_CHARS = 200  # of each line, compared when pairing old and new lines


def _pair_lines(a: list[str], b: list[str], budget: similarity.Budget) -> list[tuple[int, int]]:
    """Pairs (i, j), in order, of the old and new lines most alike: which new line rewrites which old one.
    Every pair counts a little beyond its similarity, and ties go to the first lines, so lines with
    nothing in common pair up in order (as do too many lines, or lines too costly to compare)."""
    in_order = list(zip(range(len(a)), range(len(b))))
    if len(a) * len(b) > 2500:
        return in_order
    sm = similarity.Matcher(budget)
    sim = []
    try:
        for x in a:
            sm.set_seq2(x[:_PAIR_CHARS].casefold()[:_PAIR_CHARS])
            row = []
            for y in b:
                sm.set_seq1(y[:_PAIR_CHARS].casefold()[:_PAIR_CHARS])
                row.append(sm.ratio() + 0.01)
            sim.append(row)
    except similarity.OverBudget:
        return in_order
    # best[i][j]: the best total for a[i:] and b[j:]
    best = [[0.0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            best[i][j] = max(best[i + 1][j], best[i][j + 1], best[i + 1][j + 1] + sim[i][j])
    pairs, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        if best[i][j] == best[i + 1][j + 1] + sim[i][j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif best[i][j] == best[i][j + 1]:
            j += 1
        else:
            i += 1
    return pairs


def _in_order(old: list[str], new: list[str]) -> list[int | None]:
    """The plan when lines are too many and too alike to diff: equal first and last lines keep
    their own endings, the ones between pair up in order."""
    plan: list[int | None] = [None] * len(new)
    most = min(len(old), len(new))
    head = 0
    while head < most and old[head] == new[head]:
        head += 1
    tail = 0
    while tail < most - head and old[-1 - tail] == new[-1 - tail]:
        tail += 1
    for k in range(head):
        plan[k] = k
    for k in range(1, tail + 1):
        plan[-k] = len(old) - k
    for k in range(min(len(old), len(new)) - head - tail):
        plan[head + k] = head + k
    return plan


def ending_plan(old_keys: list[str], new_keys: list[str]) -> list[int | None]:
    """For each new line, the old line whose ending it keeps (None: a new line, gets the file's usual one)."""
    budget = similarity.Budget()
    try:
        opcodes = similarity.Matcher(budget, old_keys, new_keys).get_opcodes()
    except similarity.OverBudget:
        return _in_order(old_keys, new_keys)
    plan: list[int | None] = [None] * len(new_keys)
    for tag, i1, i2, j1, j2 in opcodes:
        if tag == "equal":
            for k in range(i2 - i1):
                plan[j1 + k] = i1 + k
        elif tag == "replace":
            for i, j in _pair_lines(old_keys[i1:i2], new_keys[j1:j2], budget):
                plan[j1 + j] = i1 + i
    return plan
