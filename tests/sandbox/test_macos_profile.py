"""The macOS sandbox-exec profile, checked as text (it can only run on macOS)."""

from __future__ import annotations

from pathlib import Path

from sandbox.macos import profile, wrap
from sandbox.policy import Mode, Policy


def _policy(tmp_path: Path, **kw) -> Policy:
    ws = tmp_path / "ws"
    ws.mkdir()
    return Policy.for_workspace(ws, kw.pop("mode", Mode.WORKSPACE_WRITE), deny_read=(tmp_path / "ssh",), **kw)


def test_deny_by_default_with_reads_and_workspace_writes(tmp_path: Path):
    p = _policy(tmp_path)
    text = profile(p).splitlines()
    ws = str(p.workspace)
    assert text[:2] == ["(version 1)", "(deny default)"]
    assert "(allow file-read*)" in text
    deny_read = f'(deny file-read* (subpath "{tmp_path.resolve() / "ssh"}"))'
    assert text.index(deny_read) > text.index("(allow file-read*)")  # last match wins
    allow_ws = f'(allow file-write* (subpath "{ws}"))'
    protect_git = f'(deny file-write* (subpath "{ws}/.git"))'
    assert text.index(protect_git) > text.index(allow_ws)
    assert f'(deny file-write* (subpath "{ws}/.coder"))' in text
    assert not any(line.startswith("(allow network*)") for line in text)


def test_read_only_has_no_writable_root_and_network_can_be_allowed(tmp_path: Path):
    ro = profile(_policy(tmp_path, mode=Mode.READ_ONLY))
    assert "(allow file-write* (subpath" not in ro
    net = profile(Policy.for_workspace(tmp_path, Mode.WORKSPACE_WRITE, network=True, deny_read=()))
    assert "(allow network*)" in net


def test_paths_are_quoted(tmp_path: Path):
    odd = tmp_path / 'we"ird'
    odd.mkdir()
    p = Policy.for_workspace(odd, Mode.WORKSPACE_WRITE, deny_read=())
    assert f'(allow file-write* (subpath "{str(p.workspace).replace(chr(34), chr(92) + chr(34))}"))' in profile(p)
    argv = wrap(p, ["/bin/sh", "-c", "true"])
    assert argv[:2] == ["/usr/bin/sandbox-exec", "-p"] and argv[3:] == ["/bin/sh", "-c", "true"]
