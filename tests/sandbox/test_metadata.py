"""A command cannot change the metadata (mode, owner, times, extended attributes) of what it may not write.

Landlock has no access right for chmod, chown, utimes or setxattr, so on the built-in backend only the
mount view stops them: everything is read-only there but the writable roots, as under bubblewrap. Each
test runs real commands through the real run_command tool under each Linux backend, tries every way
(the shell's chmod, touch -d, chown, setfattr, and the same system calls from Python), and then checks
the files' stat (mode, owner, mtime, ctime) and extended attributes from outside, not only the exit codes.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from coder.tools.base import ToolContext
from coder.tools.run_command import TOOL
from sandbox import backends
from sandbox.policy import Mode, Policy
from tests.conftest import require_backend, unavailable

OPS = r"""
import errno, os, sys
for path in sys.argv[2:]:
    for op in sys.argv[1].split(","):
        try:
            if op == "chmod0":
                os.chmod(path, 0)
            elif op == "chmodx":
                os.chmod(path, os.stat(path).st_mode | 0o111)
            elif op == "utime":
                os.utime(path, (946684800, 946684800))
            elif op == "chown":
                os.chown(path, os.getuid(), os.getgid())
            elif op == "xattr":
                os.setxattr(path, "user.coder-test", b"1")
            print(f"py {op} {path}: done")
        except OSError as e:
            print(f"py {op} {path}: {errno.errorcode.get(e.errno, e.errno)}")
"""
Y2000 = 946684800  # what `touch -d 2000-01-01 ...` and the Python utime set (near enough: a day, by the time zone)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    (h / ".bashrc").write_text("# user's bashrc\n")
    return h


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    d = tmp_path / "outside"
    d.mkdir()
    (d / "outside.txt").write_text("not yours\n")
    return d


@pytest.fixture
def ops(tmp_path: Path) -> Path:
    script = tmp_path / "tools" / "ops.py"
    script.parent.mkdir()
    script.write_text(OPS)
    return script


def context(policy: Policy, temp: Path, home: Path, tmp_path: Path, backend: backends.Backend) -> ToolContext:
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "TMPDIR": str(temp), "LANG": "C.UTF-8"}
    if "PYTHONPATH" in os.environ:  # the unprivileged re-run finds pytest this way
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    (tmp_path / "placeholders").mkdir(mode=0o700, exist_ok=True)  # now, not during a test's command
    return ToolContext(policy=policy, env=env, default_timeout=20, backend=backend,
                       registry=tmp_path / "placeholders")


@pytest.fixture
def ws_ctx(tree: Path, temp: Path, home: Path, tmp_path: Path, secret_dir: Path,
           backend: backends.Backend) -> ToolContext:
    policy = Policy.for_workspace(tree, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(secret_dir,),
                                  limits={"cpu": 10, "fsize": 1 << 20})
    return context(policy, temp, home, tmp_path, backend)


@pytest.fixture
def scope_ctx(tree: Path, temp: Path, home: Path, tmp_path: Path, secret_dir: Path,
              backend: backends.Backend) -> ToolContext:
    policy = Policy.for_workspace(tree, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(secret_dir,),
                                  limits={"cpu": 10, "fsize": 1 << 20}, writable_files=(Path("src/a.py"),))
    return context(policy, temp, home, tmp_path, backend)


def sh(ctx: ToolContext, command: str, workdir: str | None = None) -> str:
    return TOOL.run(ctx, TOOL.validate_args({"command": command, "timeout_seconds": None, "workdir": workdir})).text


def xattrs_work(folder: Path) -> bool:
    """Whether this file system takes user extended attributes at all (outside any sandbox)."""
    probe = folder / ".xattr-probe"
    probe.write_text("")
    try:
        os.setxattr(probe, "user.probe", b"1")
        return True
    except OSError:
        return False
    finally:
        probe.unlink()


def meta(path: Path) -> tuple:
    """Everything a metadata change would move: ctime moves with any chmod, chown (even to the same
    owner, which clears set-id bits), utimes or setxattr."""
    st = os.stat(path)
    try:
        attrs = sorted(os.listxattr(path))
    except OSError:
        attrs = []
    return st.st_mode, st.st_uid, st.st_gid, st.st_mtime_ns, st.st_ctime_ns, attrs


def attack(ops: Path, paths: list[Path], xattr: bool) -> str:
    """Every metadata change, by the shell's tools and by Python, on each of `paths`; `CHANGED` when one worked."""
    shell = []
    for p in paths:
        shell += [f"chmod 000 '{p}' && echo CHANGED chmod {p}",
                  f"chmod u+s '{p}' && echo CHANGED chmod-suid {p}",
                  f"touch -d 2000-01-01 '{p}' && echo CHANGED touch {p}",
                  f"touch -m '{p}' && echo CHANGED touch-now {p}",
                  f"chown \"$(id -u)\" '{p}' && echo CHANGED chown {p}",
                  f"chown \"$(id -u):$(id -g)\" '{p}' && echo CHANGED chown-group {p}"]
        if xattr:
            shell.append(f"if command -v setfattr >/dev/null; then setfattr -n user.coder-test -v 1 '{p}' "
                         f"&& echo CHANGED setfattr {p}; fi")
    py_ops = "chmod0,utime,chown" + (",xattr" if xattr else "")
    names = " ".join(f"'{p}'" for p in paths)
    return "; ".join(shell + [f"{sys.executable} -I {ops} {py_ops} {names}", "echo finished"])


def assert_refused(out: str, paths: list[Path]) -> None:
    assert "finished" in out, out
    assert "CHANGED" not in out, out
    assert not re.search(r"^py \w+ .*: done$", out, re.M), out
    refusals = re.findall(r"^py \w+ .*: (\w+)$", out, re.M)
    assert refusals and set(refusals) <= {"EROFS", "EPERM", "EACCES"}, out
    assert "may be changeable" not in out, out  # the view was made: no fallback note


class TestWorkspaceWrite:
    def test_files_outside_the_workspace_keep_their_metadata(self, ws_ctx: ToolContext, outside: Path,
                                                            home: Path, ops: Path, tree: Path):
        targets = [outside / "outside.txt", outside, home / ".bashrc", home, tree.parent]
        if xattr := xattrs_work(outside):
            os.setxattr(outside / "outside.txt", "user.kept", b"mine")
        before = {p: meta(p) for p in targets}
        out = sh(ws_ctx, attack(ops, targets, xattr))
        assert_refused(out, targets)
        for p in targets:
            assert meta(p) == before[p], f"{p} changed:\n{out}"
        assert (outside / "outside.txt").read_text() == "not yours\n"
        if xattr:
            assert os.getxattr(outside / "outside.txt", "user.kept") == b"mine"

    def test_a_file_outside_reached_through_a_symlink_keeps_its_metadata(self, ws_ctx: ToolContext,
                                                                         outside: Path, tree: Path):
        (tree / "link").symlink_to(outside / "outside.txt")
        before = meta(outside / "outside.txt")
        out = sh(ws_ctx, "chmod 000 link; touch -d 2000-01-01 link; chown \"$(id -u)\" link; echo finished")
        assert "finished" in out, out
        assert meta(outside / "outside.txt") == before, out

    def test_metadata_inside_the_workspace_and_the_temp_dir_can_change(self, ws_ctx: ToolContext, tree: Path,
                                                                       temp: Path, ops: Path):
        xattr = xattrs_work(tree)
        script = tree / "run.sh"
        script.write_text("#!/bin/sh\necho ran\n")
        scratch = temp / "s.txt"
        scratch.write_text("")
        out = sh(ws_ctx, f"chmod +x run.sh && ./run.sh && touch -d 2000-01-01 other.py && chown \"$(id -u)\" other.py "
                         f"&& chmod 600 src/b.py && chmod +x '{scratch}' && mkdir d && chmod 700 d && "
                         f"{sys.executable} -I {ops} utime{',xattr' if xattr else ''} src/a.py")
        assert "Exit code: 0" in out and "ran" in out, out
        assert script.stat().st_mode & 0o111 == 0o111
        assert abs((tree / "other.py").stat().st_mtime - Y2000) < 2 * 86400
        assert (tree / "src" / "b.py").stat().st_mode & 0o777 == 0o600
        assert scratch.stat().st_mode & 0o111 == 0o111
        assert (tree / "d").stat().st_mode & 0o777 == 0o700
        assert (tree / "src" / "a.py").stat().st_mtime == Y2000
        if xattr:
            assert os.getxattr(tree / "src" / "a.py", "user.coder-test") == b"1"

    def test_git_internals_keep_their_metadata_whatever_the_working_directory(
        self, ws_ctx: ToolContext, tree: Path, backend: backends.Backend
    ):
        """A command started inside a protected folder (workdir .git) is on its read-only mount too."""
        subprocess.run(["git", "init", "-q", str(tree)], check=True)
        config = tree / ".git" / "config"
        before, text = meta(config), config.read_text()
        out = sh(ws_ctx, "chmod 000 config; touch -d 2000-01-01 config; echo '[core]evil = 1' >> config; "
                         "mkdir hooks/x; echo evil > hooks/pre-commit; echo finished", workdir=".git")
        assert "finished" in out, out
        assert meta(config) == before and config.read_text() == text, out
        assert not (tree / ".git" / "hooks" / "pre-commit").exists() and not (tree / ".git" / "hooks" / "x").exists()
        out = sh(ws_ctx, "chmod 000 ../other.py && echo CHANGED; echo finished", workdir="src")
        assert "finished" in out and "CHANGED" in out, out  # from a subfolder, the workspace is still writable
        assert (tree / "other.py").stat().st_mode & 0o777 == 0


class TestFileScope:
    def test_other_workspace_files_keep_their_metadata(self, scope_ctx: ToolContext, tree: Path, ops: Path):
        targets = [tree / "other.py", tree / "src" / "b.py", tree / "src", tree]
        xattr = xattrs_work(tree)
        before = {p: meta(p) for p in targets}
        out = sh(scope_ctx, attack(ops, targets, xattr))
        assert_refused(out, targets)
        for p in targets:
            assert meta(p) == before[p], f"{p} changed:\n{out}"
        out = sh(scope_ctx, "cd src && chmod 000 b.py; touch -d 2000-01-01 b.py ../other.py; echo finished")
        assert "finished" in out, out
        for p in targets:
            assert meta(p) == before[p], f"{p} changed:\n{out}"

    def test_the_target_can_change(self, scope_ctx: ToolContext, tree: Path, ops: Path):
        target = tree / "src" / "a.py"
        xattr = xattrs_work(tree)
        out = sh(scope_ctx, f"chmod +x src/a.py && (cd src && touch -d 2000-01-01 a.py) && chown \"$(id -u)\" src/a.py "
                            f"&& echo '# more' >> src/a.py && {sys.executable} -I {ops} utime"
                            f"{',xattr' if xattr else ''} src/a.py")
        assert "Exit code: 0" in out and ": done" in out, out
        st = target.stat()
        assert st.st_mode & 0o111 == 0o111
        assert st.st_mtime == Y2000
        assert target.read_text() == "a = 1\n# more\n"
        if xattr:
            assert os.getxattr(target, "user.coder-test") == b"1"

    def test_the_temp_dir_stays_writable(self, scope_ctx: ToolContext, temp: Path):
        out = sh(scope_ctx, 'mkdir "$TMPDIR/d" && chmod 700 "$TMPDIR/d" && touch -d 2000-01-01 "$TMPDIR/d"')
        assert "Exit code: 0" in out, out
        assert (temp / "d").stat().st_mode & 0o777 == 0o700


def test_normal_commands_see_no_note(tree: Path, temp: Path, home: Path, tmp_path: Path, secret_dir: Path):
    """On a kernel that takes the read-only view (this one), commands run as before, without a note."""
    require_backend("landlock")
    policy = Policy.for_workspace(tree, Mode.WORKSPACE_WRITE, temp_dir=temp, deny_read=(secret_dir,))
    ctx = context(policy, temp, home, tmp_path, backends.get("landlock"))
    out = sh(ctx, "echo hi > new.txt && cat new.txt && python3 -c \"import os; m, s = os.openpty(); print('pty ok')\" "
                  "&& echo shm > /dev/shm/x && cat /dev/shm/x && echo x > /dev/null && echo ok")
    assert "Exit code: 0" in out and "pty ok" in out and "shm" in out and "\nok" in out, out
    assert "coder sandbox" not in out, out


NESTED = r"""
set -e
mount -t tmpfs -o nosuid,nodev,noexec tmpfs "$WS"
mkdir "$WS/.git" && echo a > "$WS/a.txt"
mount -t tmpfs -o nosuid,nodev,noexec tmpfs "$OUT"
echo o > "$OUT/o.txt"
mkdir -p "$HID/y" && mount -t tmpfs tmpfs "$HID/y" && echo h > "$HID/y/h.txt"
mount -t tmpfs tmpfs "$HID" && mkdir "$HID/y" && echo h > "$HID/y/h.txt"
cd "$WS"
set +e
"$@"
echo "rc=$?"
stat -c 'stat|%n|%a|%Y' "$OUT/o.txt" "$HID/y/h.txt" "$HID/y" "$WS/a.txt" "$WS/.git"
cat "$OUT/o.txt"
"""


def test_mounts_of_every_kind_are_made_read_only(tmp_path: Path):
    """Mounts as a host may have them, made in a mount namespace of the test's own: the workspace on a
    nosuid,nodev,noexec tmpfs (flags the helper's user namespace must keep: leaving one out of a remount
    is EPERM), a mount point with a space in its name (escaped in mountinfo), and a mount hidden under
    one mounted over its parent folder (its path names another folder: no remount, and no note)."""
    require_backend("landlock")
    if not shutil.which("unshare"):
        unavailable("unshare (util-linux) is not installed")
    ws, out, hid = tmp_path / "ws", tmp_path / "out side", tmp_path / "hid"
    for d in (ws, out, hid):
        d.mkdir()
    policy = Policy.for_workspace(ws, Mode.WORKSPACE_WRITE, deny_read=())
    command = (f"chmod 000 '{out}/o.txt'; touch -d 2000-01-01 '{out}/o.txt'; chmod 000 '{hid}/y'; "
               f"chmod 000 '{hid}/y/h.txt'; echo x >> '{out}/o.txt'; mkdir .git/x; chmod 000 .git; "
               "chmod 751 a.txt && echo a >> a.txt && echo workspace-ok")
    argv = backends.wrap(backends.get("landlock"), policy, ["bash", "-c", command], policy.limits)
    run = subprocess.run(["unshare", "-rm", "--propagation", "private", "bash", "-c", NESTED, "nested", *argv],
                         cwd=tmp_path, capture_output=True, text=True, timeout=60,
                         env={"PATH": "/usr/bin:/bin", "WS": str(ws), "OUT": str(out), "HID": str(hid)})
    report = run.stdout + run.stderr
    if run.returncode != 0 and "rc=" not in report:
        unavailable(f"this machine gives no mount namespace to a test: {report.strip()[-300:]}")
    assert "rc=0" in report and "workspace-ok" in report, report
    assert "coder sandbox" not in report, report  # no note: every remount was taken
    stats = {}
    for line in run.stdout.splitlines():
        if line.startswith("stat|"):
            _, name, mode, mtime = line.split("|")
            stats[name] = (mode, int(mtime) != Y2000)
    assert stats == {f"{out}/o.txt": ("644", True), f"{hid}/y/h.txt": ("644", True), f"{hid}/y": ("755", True),
                     f"{ws}/a.txt": ("751", True), f"{ws}/.git": ("755", True)}, report
    assert run.stdout.rstrip().endswith("\no"), report  # o.txt: its contents as they were
    assert "Read-only file system" in report, report


def test_which_mounts_a_path_leads_to():
    """The helper remounts by path, so only mounts a path reaches: not one under a mount over its folder."""
    from sandbox.helper import _reachable_mounts

    mountinfo = b"\n".join([
        b"1 0 8:1 / / rw,relatime - ext4 /dev/sda rw",
        b"2 1 0:5 / /a rw - tmpfs t rw",
        b"3 2 0:6 / /a/b rw,noexec - tmpfs t rw",  # under 5, mounted over its parent's /a
        b"4 1 0:7 / /a/b/c rw - tmpfs t rw",  # a child of / under /a: hidden
        b"5 2 0:8 / /a rw,nosuid - tmpfs t rw",  # stacked on /a
        b"7 5 0:9 / /a/with\\040space\\134 rw - tmpfs t rw",
        b"8 1 0:10 / /ab rw - tmpfs t rw",  # beside /a, not under it
    ])
    assert _reachable_mounts(mountinfo) == [
        (b"/", [b"rw", b"relatime"]), (b"/a", [b"rw"]), (b"/a", [b"rw", b"nosuid"]),
        (b"/a/with space\\", [b"rw"]), (b"/ab", [b"rw"])]
