"""Path confinement: real files, real symlinks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from sandbox.paths import PathDenied, atomic_write, display, resolve_read, resolve_write
from sandbox.policy import Mode, Policy


@pytest.fixture
def policy(workspace: Path, tmp_path: Path, secret_dir: Path) -> Policy:
    return Policy.for_workspace(workspace, deny_read=(secret_dir,))


def test_relative_paths_resolve_in_workspace(policy: Policy, workspace: Path) -> None:
    assert resolve_write(policy, "a/b.txt") == workspace / "a" / "b.txt"
    assert resolve_read(policy, "a/../c") == workspace / "c"
    assert display(policy, workspace / "a" / "b.txt") == "a/b.txt"
    assert display(policy, workspace) == "."


@pytest.mark.parametrize("path", ["../../etc/passwd", "/etc/passwd", "sub/../../x", "/proc/self/root/etc/x"])
def test_writes_outside_workspace_refused(policy: Policy, path: str) -> None:
    with pytest.raises(PathDenied, match="outside the writable roots"):
        resolve_write(policy, path)


def test_reads_outside_workspace_allowed(policy: Policy) -> None:
    assert resolve_read(policy, "/etc/passwd") == Path(os.path.realpath("/etc/passwd"))


def test_symlinked_folder_pointing_outside_refused_for_writes(policy: Policy, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "link").symlink_to(outside)
    with pytest.raises(PathDenied, match="outside the writable roots"):
        resolve_write(policy, "link/evil.txt")
    assert resolve_read(policy, "link/x") == outside.resolve() / "x"


def test_nul_byte_refused(policy: Policy) -> None:
    with pytest.raises(PathDenied, match="NUL"):
        resolve_read(policy, "a\x00b")


def test_empty_path_refused(policy: Policy) -> None:
    with pytest.raises(PathDenied, match="non-empty"):
        resolve_read(policy, "")


@pytest.mark.parametrize("path", [".git/hooks/pre-commit", ".coder/config.toml", "sub/.git/config"])
def test_protected_names_refused(policy: Policy, path: str) -> None:
    with pytest.raises(PathDenied, match="is protected"):
        resolve_write(policy, path)


def test_deny_list_refuses_reads(policy: Policy, secret_dir: Path, workspace: Path) -> None:
    with pytest.raises(PathDenied, match="not allowed"):
        resolve_read(policy, str(secret_dir / "id_rsa"))
    (workspace / "sneaky").symlink_to(secret_dir)
    with pytest.raises(PathDenied, match="not allowed"):
        resolve_read(policy, "sneaky/id_rsa")


def test_read_only_mode_refuses_writes(workspace: Path) -> None:
    ro = Policy.for_workspace(workspace, Mode.READ_ONLY, deny_read=())
    with pytest.raises(PathDenied, match="read-only"):
        resolve_write(ro, "a.txt")
    assert resolve_read(ro, "a.txt") == workspace / "a.txt"


def test_private_temp_dir_is_writable(workspace: Path, tmp_path: Path) -> None:
    tmp = tmp_path / "scratch"
    tmp.mkdir()
    policy = Policy.for_workspace(workspace, temp_dir=tmp, deny_read=())
    assert resolve_write(policy, str(tmp / "x")) == tmp.resolve() / "x"


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(workspace: Path) -> None:
    target = workspace / "run.sh"
    target.write_text("old\n")
    target.chmod(0o750)
    atomic_write(target, b"new\n", stat.S_IMODE(target.stat().st_mode))
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert sorted(p.name for p in workspace.iterdir()) == ["run.sh"]


def test_atomic_write_creates_parents(workspace: Path) -> None:
    atomic_write(workspace / "a" / "b" / "c.txt", b"x")
    assert (workspace / "a" / "b" / "c.txt").read_bytes() == b"x"
    assert os.listdir(workspace / "a" / "b") == ["c.txt"]


def test_atomic_write_replaces_symlink_not_its_target(workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    link = workspace / "link.txt"
    link.symlink_to(outside)
    atomic_write(link, b"new\n")
    assert outside.read_text() == "keep\n"
    assert not link.is_symlink() and link.read_bytes() == b"new\n"
