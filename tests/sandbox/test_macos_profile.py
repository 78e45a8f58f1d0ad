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


def test_a_file_scope_allows_its_files_as_literals(tmp_path: Path):
    """batch --scope file: the target itself (literal), nothing beside or below it; the workspace stays read-only."""
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "a.py").write_text("a = 1\n")
    temp = tmp_path / "tmp"
    temp.mkdir()
    p = Policy.for_workspace(ws, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(),
                             writable_files=(Path("src/a.py"),))
    text = profile(p).splitlines()
    target, real_ws = p.workspace / "src" / "a.py", p.workspace
    assert f'(allow file-write* (literal "{target}"))' in text
    assert f'(allow file-write* (subpath "{target}"))' not in text
    assert f'(allow file-write* (subpath "{real_ws}"))' not in text
    assert not any(f'"{target}/' in line for line in text)  # no protected names under a file
    assert f'(allow file-write* (subpath "{temp.resolve()}"))' in text
    assert f'(deny file-write* (subpath "{temp.resolve()}/.git"))' in text
