"""run_command through its tool function: real bash, real process groups."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from coder.tools.base import ToolContext, ToolError
from coder.tools.run_command import TOOL
from sandbox.paths import PathDenied
from tests.conftest import assert_stopped, heartbeat, make_ctx


def call(ctx: ToolContext, command: str, **kw) -> str:
    return TOOL.run(ctx, TOOL.validate_args({"command": command, **kw})).text


def test_echo_and_exit_code(ctx: ToolContext) -> None:
    out = call(ctx, "echo hi")
    lines = out.split("\n")
    assert lines[0] == "Exit code: 0"
    assert lines[1].startswith("Wall time: ") and lines[1].endswith(" s")
    assert lines[2:] == ["Output:", "hi"]


def test_runs_in_workspace(ctx: ToolContext, workspace: Path) -> None:
    assert call(ctx, "pwd").endswith(f"Output:\n{workspace}")


def test_stderr_interleaved_in_order(ctx: ToolContext) -> None:
    assert call(ctx, "echo a; echo b >&2; echo c").endswith("Output:\na\nb\nc")


def test_nonzero_exit_is_a_normal_result(ctx: ToolContext) -> None:
    out = call(ctx, "echo failing >&2; exit 7")
    assert out.startswith("Exit code: 7\n") and out.endswith("Output:\nfailing")


def test_empty_output(ctx: ToolContext) -> None:
    out = call(ctx, "true")
    assert out.startswith("Exit code: 0\n") and out.endswith("\nOutput: (none)")


def test_empty_command_refused(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="command is empty"):
        call(ctx, "   ")


def test_timeout_kills_whole_group_and_is_clamped(ctx: ToolContext, workspace: Path) -> None:
    beat = workspace / "beat"
    out = call(ctx, f"{heartbeat(beat)} setsid sleep 300 & echo started; wait", timeout_seconds=0)
    lines = out.split("\n")
    assert lines[0] == "Command timed out after 1 s; its process group was killed."
    assert lines[1].startswith("Wall time: ")
    assert lines[2:] == ["Output (partial):", "started"]
    assert_stopped(beat)


def test_cancel_kills_it(ctx: ToolContext, workspace: Path) -> None:
    threading.Timer(0.3, ctx.cancel.set).start()
    beat = workspace / "beat"
    out = call(ctx, f"{heartbeat(beat)} wait")
    assert out.split("\n")[0] == "Command interrupted; its process group was killed."
    assert out.endswith("Output (partial): (none)")
    assert_stopped(beat)


def test_huge_output_bounded_tail_kept(ctx: ToolContext) -> None:
    out = call(ctx, "seq 1 300000; echo THE-END")
    assert out.split("\n")[3:6] == ["1", "2", "3"]
    assert out.endswith("299999\n300000\nTHE-END")
    assert "bytes omitted ...]" in out
    assert len(out) < 40_000


def test_stdin_closed(ctx: ToolContext) -> None:
    out = call(ctx, "cat; read x || echo no-input", timeout_seconds=10)
    assert out.startswith("Exit code: 0\n") and out.endswith("Output:\nno-input")


def test_pager_env_set(ctx: ToolContext) -> None:
    out = call(ctx, 'echo "$PAGER $GIT_PAGER $GIT_TERMINAL_PROMPT"')
    assert out.endswith("Output:\ncat cat 0")


def test_secret_env_not_visible(monkeypatch: pytest.MonkeyPatch, workspace: Path, tmp_path: Path) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-leak")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-should-not-leak")
    ctx = make_ctx(workspace, tmp_path)
    out = call(ctx, "env")
    assert "OPENAI_API_KEY" not in out and "sk-should-not-leak" not in out
    assert "GITHUB_TOKEN" not in out
    assert f"PATH={os.environ['PATH']}" in out


def test_workdir_relative(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "sub" / "dir").mkdir(parents=True)
    assert call(ctx, "pwd", workdir="sub/dir").endswith(f"Output:\n{workspace}/sub/dir")


def test_workdir_missing(ctx: ToolContext) -> None:
    with pytest.raises(ToolError, match="workdir nope does not exist; give an existing directory"):
        call(ctx, "pwd", workdir="nope")


def test_workdir_is_a_file(ctx: ToolContext, workspace: Path) -> None:
    (workspace / "f.txt").write_text("x")
    with pytest.raises(ToolError, match="is not a directory"):
        call(ctx, "pwd", workdir="f.txt")


def test_workdir_on_deny_list(ctx: ToolContext, secret_dir: Path) -> None:
    with pytest.raises(PathDenied, match="not allowed"):
        call(ctx, "cat id_rsa", workdir=str(secret_dir))


def test_schema_is_strict() -> None:
    schema = TOOL.schema()
    assert schema["parameters"]["required"] == ["command", "timeout_seconds", "workdir"]
    assert schema["parameters"]["properties"]["timeout_seconds"]["type"] == ["integer", "null"]
    assert TOOL.read_only is False and TOOL.key_arg == "command"


def test_colours_are_stripped(ctx: ToolContext) -> None:
    out = call(ctx, r"printf '\033[31mred\033[0m \033[1;32mgreen\033[m\n'; ls --color=always -d .")
    assert out.endswith("Output:\nred green\n.") and "\x1b" not in out and "[0m" not in out


def test_hyperlinks_keep_their_text(ctx: ToolContext) -> None:
    out = call(ctx, r"printf 'see \033]8;;https://example.com\033\\the docs\033]8;;\033\\ and \033]0;title\007done\n'")
    assert out.endswith("Output:\nsee the docs and done")


def test_progress_bar_leaves_its_last_frame(ctx: ToolContext) -> None:
    out = call(ctx, r"for i in $(seq 1 500); do printf '\rcopying %d/500' $i; done; echo; echo next")
    assert out.endswith("Output:\ncopying 500/500\nnext")


def test_crlf_lines_are_kept(ctx: ToolContext) -> None:
    out = call(ctx, r"printf 'one\r\ntwo\r\nthree\r\n'")
    assert out.endswith("Output:\none\r\ntwo\r\nthree")


def test_100k_progress_frames_stay_fast_and_short(ctx: ToolContext) -> None:
    script = ("import sys\nfor i in range(100001): "
              "sys.stdout.write('\\r%d/100000 [%-30s]' % (i, '=' * (i * 30 // 100000)))\nprint()")
    out = call(ctx, f"python3 -c \"{script}\"")
    assert out.endswith("Output:\n100000/100000 [==============================]")
    assert "omitted" not in out and float(out.split("\n")[1].split()[2]) < 10
