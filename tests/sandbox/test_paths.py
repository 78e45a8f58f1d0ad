"""Path confinement: real files, real symlinks."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sandbox.paths import (PathDenied, atomic_write, display, open_file, read_bytes, remove_stale_temp_files,
                           resolve_read, resolve_write)
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


def test_atomic_write_keeps_mode_and_leaves_no_temp_file(policy: Policy, workspace: Path) -> None:
    target = workspace / "run.sh"
    target.write_text("old\n")
    target.chmod(0o750)
    atomic_write(policy, target, b"new\n", stat.S_IMODE(target.stat().st_mode))
    assert target.read_bytes() == b"new\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o750
    assert sorted(p.name for p in workspace.iterdir()) == ["run.sh"]


def test_atomic_write_creates_parents(policy: Policy, workspace: Path) -> None:
    atomic_write(policy, workspace / "a" / "b" / "c.txt", b"x")
    assert (workspace / "a" / "b" / "c.txt").read_bytes() == b"x"
    assert os.listdir(workspace / "a" / "b") == ["c.txt"]


def test_atomic_write_replaces_symlink_not_its_target(policy: Policy, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside.txt"
    outside.write_text("keep\n")
    link = workspace / "link.txt"
    link.symlink_to(outside)
    atomic_write(policy, link, b"new\n")
    assert outside.read_text() == "keep\n"
    assert not link.is_symlink() and link.read_bytes() == b"new\n"


@pytest.mark.parametrize("path", ["/proc/self/environ", "/proc/1/cmdline", "/sys/kernel/notes"])
def test_kernel_interfaces_refused(policy: Policy, path: str) -> None:
    with pytest.raises(PathDenied, match="kernel interface"):
        resolve_read(policy, path)


def test_symlink_swapped_in_between_check_and_write(policy: Policy, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (workspace / "sub").mkdir()
    real = resolve_write(policy, "sub/evil.txt")  # checked: inside the workspace
    (workspace / "sub").rmdir()
    (workspace / "sub").symlink_to(outside)  # the race: the folder becomes a link out
    with pytest.raises(PathDenied, match="became a symlink"):
        atomic_write(policy, real, b"pwned\n")
    assert list(outside.iterdir()) == []


def test_file_swapped_for_a_symlink_after_the_check(policy: Policy, workspace: Path, secret_dir: Path) -> None:
    (workspace / "notes.txt").write_text("mine\n")
    real = resolve_read(policy, "notes.txt")
    (workspace / "notes.txt").unlink()
    (workspace / "notes.txt").symlink_to(secret_dir / "id_rsa")
    with pytest.raises(PathDenied, match="became a symlink"):
        open_file(policy, real)
    # a write replaces the link itself, never the file it points to
    atomic_write(policy, resolve_write(policy, "other.txt"), b"x")
    atomic_write(policy, real, b"new\n")
    assert (secret_dir / "id_rsa").read_text() == "PRIVATE KEY\n"
    assert read_bytes(policy, real) == b"new\n"


def test_missing_parent_folders_are_created_without_following_links(policy: Policy, workspace: Path) -> None:
    atomic_write(policy, resolve_write(policy, "x/y/z.txt"), b"1")
    assert (workspace / "x" / "y" / "z.txt").read_bytes() == b"1"


ROOT = Path(__file__).resolve().parents[2]


def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=ROOT, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def _temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*.coder-tmp"))


def test_atomic_write_leaves_no_temp_file_when_the_write_fails(workspace: Path) -> None:
    """An ordinary error (here the file-size limit, as a full disk would be) removes the temp file."""
    (workspace / "f.txt").write_text("old\n")
    code = ("import resource, signal, sys\n"
            "from pathlib import Path\n"
            "from sandbox.paths import atomic_write\n"
            "from sandbox.policy import Policy\n"
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
            "resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))\n"
            "ws = Path(sys.argv[1])\n"
            "try:\n"
            "    atomic_write(Policy.for_workspace(ws, deny_read=()), ws / 'f.txt', b'x' * 100_000)\n"
            "except OSError as e:\n"
            "    print(e.strerror)\n")
    out, err = _python(code, str(workspace)).communicate(timeout=30)
    assert out.strip() == "File too large", err
    assert (workspace / "f.txt").read_text() == "old\n" and _temp_files(workspace) == []


def test_a_temp_file_left_by_kill_9_is_removed_at_the_next_start_once_stale(workspace: Path, tmp_path: Path) -> None:
    code = ("import os, sys, time\n"
            "from pathlib import Path\n"
            "from sandbox.paths import atomic_write\n"
            "from sandbox.policy import Policy\n"
            "def stall(*args, **kw):\n"  # hold the moment between writing and renaming
            "    print('written', flush=True)\n"
            "    time.sleep(60)\n"
            "os.rename = stall\n"
            "ws = Path(sys.argv[1])\n"
            "atomic_write(Policy.for_workspace(ws, deny_read=()), ws / 'sub' / 'f.txt', b'data')\n")
    proc = _python(code, str(workspace))
    assert proc.stdout.readline() == "written\n"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    [left] = (workspace / "sub").glob(".f.txt.*.coder-tmp")
    assert remove_stale_temp_files(workspace) == []  # fresh: another coder may be writing it right now
    old = time.time() - 120
    os.utime(left, (old, old))
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / ".g.txt.0123abcd.coder-tmp").write_text("not ours to remove\n")
    (workspace / "linked").symlink_to(outside)  # a folder link is never followed
    (workspace / ".h.txt.89abcdef.coder-tmp").symlink_to(outside / "keep.txt")  # a link is removed, not its target
    (outside / "keep.txt").write_text("keep\n")
    for name in (".x.coder-tmp", ".y.txt.ABCDEF01.coder-tmp", "z.txt.0123abcd.coder-tmp.bak"):  # not the pattern
        (workspace / name).write_text("user's\n")
    (workspace / ".d.0123abcd.coder-tmp").mkdir()  # never a folder
    for p in [*workspace.iterdir(), *outside.iterdir()]:
        os.utime(p, (old, old), follow_symlinks=False)

    removed = remove_stale_temp_files(workspace)
    assert sorted(removed) == sorted([left, workspace / ".h.txt.89abcdef.coder-tmp"])
    assert _temp_files(workspace / "sub") == [] and (outside / "keep.txt").read_text() == "keep\n"
    assert (outside / ".g.txt.0123abcd.coder-tmp").exists()
    assert sorted(p.name for p in workspace.iterdir()) == [
        ".d.0123abcd.coder-tmp", ".x.coder-tmp", ".y.txt.ABCDEF01.coder-tmp", "linked", "sub",
        "z.txt.0123abcd.coder-tmp.bak"]


def test_the_start_up_clean_up_is_bounded(workspace: Path) -> None:
    for i in range(30):
        d = workspace / f"d{i:02d}"
        d.mkdir()
        (d / f".f.{i:08x}.coder-tmp").write_text("x")
        os.utime(d / f".f.{i:08x}.coder-tmp", (0, 0))
    first = remove_stale_temp_files(workspace, max_entries=20)  # 20 entries: folders and files both count
    assert 0 < len(first) < 20 and len(_temp_files(workspace)) == 30 - len(first)
    rest = remove_stale_temp_files(workspace)  # a later start finishes the job
    assert len(rest) == 30 - len(first) and _temp_files(workspace) == []
    assert remove_stale_temp_files(workspace / "missing") == []
