"""edit_file against what an attacker or a careless model sends: every call stays quick and its text short.

Repeated lines and very long lines are where string matching goes quadratic; each case here
once took from seconds to minutes, so each runs under a deadline that fails the test instead.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from coder.tools.base import MAX_OUTPUT_CHARS, ToolContext
from tests.tools.test_edit_file import call, refused


class _Late(Exception):
    pass


@contextmanager
def within(seconds: float) -> Iterator[None]:
    """Fail the test when the block runs longer than `seconds` (the block is interrupted)."""

    def late(*_: object) -> None:
        raise _Late

    previous = signal.signal(signal.SIGALRM, late)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    except _Late:
        pytest.fail(f"took more than {seconds} s", pytrace=False)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


ENDINGS = {"LF": "x\n" * 20_000, "CRLF": "x\r\n" * 20_000, "mixed": "x\r\n" * 20_000 + "x\n"}


# --- repeated lines ------------------------------------------------------------------------------------


@pytest.mark.parametrize("endings", ENDINGS)
def test_no_match_among_ten_thousand_identical_lines(ctx: ToolContext, workspace: Path, endings: str) -> None:
    f = workspace / "same.txt"
    f.write_bytes(ENDINGS[endings].encode())
    with within(3):
        msg = refused(ctx, f, "x\n" * 10_000 + "y", "z", "not found")
    assert "closest region is lines 1-" in msg and len(msg) <= MAX_OUTPUT_CHARS


def test_fuzzy_match_among_identical_lines(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "same.txt"
    f.write_text("  x\n" * 40_000)
    with within(2):
        msg = refused(ctx, f, "x\n" * 20_000, "y\n", "matches at least 1000 places")
    assert "starting at lines 1, 2, 3," in msg


def test_fuzzy_match_of_common_lines_found_in_one_pass(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "ab.txt"  # every line of old_string is everywhere; the four of them in a row, once
    f.write_text("  a\n  b\n" * 100_000 + "  b\n  a\n  b\n")
    with within(2):
        call(ctx, "ab.txt", "a\nb\nb\na\n", "a\nB\nB\na\n")
    assert f.read_text() == "  a\n  b\n" * 99_999 + "  a\n  B\n  B\n  a\n  b\n"


@pytest.mark.parametrize("indent", ["", " "])
@pytest.mark.parametrize("last", ["", "end\n"])  # all CRLF, or one LF line: each line's ending worked out
def test_crlf_ten_thousand_identical_lines_keep_their_endings(
    ctx: ToolContext, workspace: Path, indent: str, last: str
) -> None:
    f = workspace / "same.txt"
    f.write_bytes(f"{indent}x\r\n".encode() * 10_000 + last.encode())
    with within(2):
        call(ctx, "same.txt", "x\n" * 10_000, "y\n" + "x\n" * 10_000)
    assert f.read_bytes() == f"{indent}y\r\n".encode() + f"{indent}x\r\n".encode() * 10_000 + last.encode()


@pytest.mark.parametrize("quote, content", [("'", "x'\r\n"), ("\ufffd", "x\xe9\n")])
def test_diagnoses_among_identical_lines(ctx: ToolContext, workspace: Path, quote: str, content: str) -> None:
    f = workspace / "same.txt"
    f.write_bytes((content * 20_000).encode("latin-1"))
    with within(3):
        refused(ctx, f, f"x{quote}\n" * 10_000 + "y", "z", "not found")


def test_replace_all_on_every_line_of_a_big_file(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "xs.txt"
    f.write_text("x\n" * 1_000_000)
    with within(2):
        out = call(ctx, "xs.txt", "x", "y", replace_all=True)
    assert f.read_text() == "y\n" * 1_000_000
    assert out.startswith("Edited xs.txt: replaced 1000000 occurrences\n     1\ty\n")
    # 60 lines shown, the rest of the ~800 reported counted, and the replacements past them counted too
    assert out.endswith("\n    60\ty\n[... 741 more lines; read the file to see them]\n"
                        "[... and 999199 more replacements, not shown]")
    assert len(out) <= MAX_OUTPUT_CHARS


def test_replace_all_in_a_mixed_endings_file(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "xs.txt"
    f.write_bytes(b"a\r\nb\n" * 100_000)
    with within(2):
        out = call(ctx, "xs.txt", "a\nb\n", "b\na\n", replace_all=True)
    assert f.read_bytes() == b"b\na\r\n" * 100_000  # a line moved keeps its ending
    assert out.startswith("Edited xs.txt: replaced 100000 occurrences\n")


# --- long lines ----------------------------------------------------------------------------------------


def test_long_lines_of_a_crlf_file_are_paired_quickly(ctx: ToolContext, workspace: Path) -> None:
    a, b = "".join(f"a{i};" for i in range(40_000)), "".join(f"b{i};" for i in range(40_000))
    f = workspace / "long.txt"
    f.write_bytes(f"top\r\n{a}\r\n{b}\n".encode())
    with within(2):
        call(ctx, "long.txt", f"{a}\n{b}\n", f"{a},\nQ\n{b},\n")
    assert f.read_bytes() == f"top\r\n{a},\r\nQ\r\n{b},\n".encode()


def test_old_string_of_one_long_line_not_found(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "s.py"
    f.write_text("".join(f"v{i} = f({i})\n" for i in range(100)))
    with within(2):
        msg = refused(ctx, f, "".join(f"v{i}=f({i});" for i in range(80_000)), "z", "not found")
    assert len(msg) <= MAX_OUTPUT_CHARS


def test_file_of_one_long_line_and_an_old_string_not_in_it(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "min.js"
    f.write_text("".join(f"v{i}=f({i});" for i in range(80_000))[:900_000] + "\n")
    with within(2):
        msg = refused(ctx, f, "".join(f"w{i}=g({i});" for i in range(100)), "z", "not found")
    assert "closest region is lines 1-1" in msg and len(msg) <= MAX_OUTPUT_CHARS


# --- what the model reads stays within MAX_OUTPUT_CHARS ------------------------------------------------


def test_snippet_of_control_characters_is_within_the_limit(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "c.txt"
    f.write_text("start\nend\n")
    out = call(ctx, "c.txt", "start\n", ("\x01" * 1000 + "\n") * 100)
    assert len(out) <= MAX_OUTPUT_CHARS
    assert "     1\t\\x01\\x01" in out and "more characters]" in out


def test_closest_region_of_control_characters_is_within_the_limit(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "c.txt"
    f.write_text(("\x02" * 1000 + "\n") * 100)
    with within(2):
        msg = refused(ctx, f, ("\x02" * 999 + "\n") * 100, "z", "not found")
    assert "closest region is lines 1-60" in msg and len(msg) <= MAX_OUTPUT_CHARS


def test_unencodable_new_string_named_briefly(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "l.txt"
    f.write_bytes(b"caf\xe9\n")
    msg = refused(ctx, f, "café", "✓" * 100_000, "cannot store")
    assert "U+2713" in msg and len(msg) < 1000


def test_mixed_indentation_named_briefly(ctx: ToolContext, workspace: Path) -> None:
    f = workspace / "i.txt"
    f.write_text("  a\n  b\n")
    msg = refused(ctx, f, "a\nb", "\t" + " " * 100_000 + "c\n", "does not map onto the file's")
    assert len(msg) < 1000
