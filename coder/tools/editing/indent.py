"""new_string indented in the file's style when old_string matched only ignoring indentation.

Models lose or change indentation (two spaces for four, spaces for tabs). Each indentation
old_string uses is mapped to what the file has on the same lines, and others are that plus or
minus whole levels, one model step to one file step. Where that would be a guess (one model
indentation at two file ones, a step that is not whole, tabs and spaces mixed where the file
does not mix them) IndentError says why, and nothing is written.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from typing import Any

_INDENT = re.compile(r"[ \t]*")


class IndentError(Exception):
    """new_string's indentation cannot be mapped to the file's without guessing."""


def indentation(line: str) -> str:
    m = _INDENT.match(line)
    return m.group() if m else ""


def _kind_width(ind: str) -> tuple[str, int] | None:
    """(" " or "\\t", how many) for an indentation of one kind; None when it mixes tabs and spaces."""
    kinds = set(ind)
    if len(kinds) > 1:
        return None
    return (kinds.pop() if kinds else "", len(ind))


def _mixes(ind: str) -> bool:
    return " " in ind and "\t" in ind


def _show(ind: str) -> str:
    if not ind:
        return "no indentation"
    kw = _kind_width(ind)
    if kw is None:
        return repr(ind) if len(ind) <= 40 else f"{ind[:40]!r}... ({len(ind)} characters)"
    name = "tab" if kw[0] == "\t" else "space"
    return f"{kw[1]} {name}{'s' if kw[1] > 1 else ''}"


def _model_unit(blocks: list[list[str]]) -> tuple[str, int]:
    """The model's indentation kind and step: the most common increase from one line to the next."""
    kinds: set[str] = set()
    steps: Counter[int] = Counter()
    widths: set[int] = set()
    for block in blocks:
        prev = None
        for ind in block:
            kw = _kind_width(ind)
            if kw is None:
                raise IndentError(f"old_string or new_string indents a line with tabs and spaces mixed ({_show(ind)})")
            if kw[0]:
                kinds.add(kw[0])
            widths.add(kw[1])
            if prev is not None and kw[1] > prev:
                steps[kw[1] - prev] += 1
            prev = kw[1]
    if len(kinds) > 1:
        raise IndentError("old_string and new_string indent some lines with tabs and others with spaces")
    kind = kinds.pop() if kinds else " "
    if steps:
        return kind, max(steps, key=lambda d: (steps[d], -d))
    ordered = sorted(widths)
    diffs = [b - a for a, b in zip(ordered, ordered[1:])]
    return kind, min(diffs) if diffs else 0


def _file_unit(sample: str) -> str | None:
    """The file's indentation step near the edit: a tab, or the most common increase in spaces."""
    tabs = spaces = 0
    steps: Counter[int] = Counter()
    prev = None
    for line in sample.split("\n")[1:-1]:  # the first and last may be cut
        if not line.strip():
            continue
        ind = indentation(line)
        if ind.startswith("\t"):
            tabs += 1
        elif ind:
            spaces += 1
        if set(ind) <= {" "}:
            if prev is not None and len(ind) > prev:
                steps[len(ind) - prev] += 1
            prev = len(ind)
        else:
            prev = None
    if tabs > spaces:
        return "\t"
    if steps:
        return " " * max(steps, key=lambda d: (steps[d], -d))
    return None


def reindent(old_lines: list[str], window: list[str], new_lines: list[str], sample: Callable[[], str]) -> list[str]:
    """new_lines indented in the file's style: each indentation old_string uses maps to the file's for
    the same lines; others are that plus or minus whole levels (model's step -> file's step)."""
    table: dict[str, tuple[str, int]] = {}  # model indentation -> (file indentation, old line index)
    for i, (o, f) in enumerate(zip(old_lines, window)):
        if not o.strip():
            continue
        mi, fi = indentation(o), indentation(f)
        known = table.setdefault(mi, (fi, i))
        if known[0] != fi:
            raise IndentError(
                f"lines {known[1] + 1} and {i + 1} of old_string have the same indentation ({_show(mi)}) "
                f"but in the file one has {_show(known[0])} and the other {_show(fi)}"
            )
    file_indents = [indentation(f) for f in window if f.strip()]
    file_kinds = {c for ind in file_indents for c in ind}
    file_mixes = any(_mixes(ind) for ind in file_indents)
    unit: list[Any] = []  # computed once, when a new indentation needs it

    def units() -> tuple[int, str]:
        if not unit:
            old_inds = [indentation(o) for o in old_lines if o.strip()]
            new_inds = [indentation(n) for n in new_lines if n.strip()]
            kind, step = _model_unit([old_inds, new_inds])
            found: Counter[str] = Counter()
            keyed = sorted(((_kind_width(k) or ("", -1))[1], v[0]) for k, v in table.items())
            for (wa, fa), (wb, fb) in zip(keyed, keyed[1:]):
                if step and wa >= 0 and (wb - wa) % step == 0 and fb.startswith(fa):
                    k, extra = (wb - wa) // step, fb[len(fa) :]
                    u = extra[: len(extra) // k] if k else ""
                    if u and u * k == extra:
                        found[u] += 1
            fu = found.most_common(1)[0][0] if found else _file_unit(sample())
            if fu is None:
                fu = kind * (step if kind == " " else 1)  # a file without indentation: the model's own step
            unit.extend([step, fu])
        return unit[0], unit[1]

    def mapped(ind: str) -> str:
        if ind in table:
            return table[ind][0]
        kw = _kind_width(ind)
        step, fu = units()
        if kw is None or not step or not fu:
            raise IndentError(f"new_string uses an indentation ({_show(ind)}) old_string does not")
        w = kw[1]
        keyed = [(kw2[1], v[0]) for k, v in table.items() if (kw2 := _kind_width(k))]  # one kind: _model_unit
        below = [(wk, f) for wk, f in keyed if wk < w and (w - wk) % step == 0]
        if below:
            wk, f = max(below)
            return f + fu * ((w - wk) // step)
        above = [(wk, f) for wk, f in keyed if wk > w and (wk - w) % step == 0]
        if above:
            wk, f = min(above)
            cut = fu * ((wk - w) // step)
            if f.endswith(cut):
                return f[: len(f) - len(cut)]
        raise IndentError(
            f"new_string indents a line with {_show(ind)}, which is not a whole number of levels "
            f"({step}) from any indentation old_string uses"
        )

    out = []
    for line in new_lines:
        if not line.strip():
            out.append("")
            continue
        ind = indentation(line)
        f = mapped(ind)
        if file_kinds and not set(f) <= file_kinds:
            raise IndentError(
                f"mapping {_show(ind)} would indent with {_show(f)} where the file's lines use "
                + ("tabs" if file_kinds == {"\t"} else "spaces")
            )
        if _mixes(f) and not file_mixes:
            raise IndentError(
                f"mapping {_show(ind)} would indent with {_show(f)}, tabs and spaces mixed, where each of "
                "the file's lines uses one or the other"
            )
        out.append(f + line[len(ind) :])
    return out
