"""Choosing how commands are isolated, once, and saying so.

1. The built-in backend (sandbox.helper: namespaces + Landlock + seccomp) when
   the kernel offers all three.
2. bubblewrap, only from /usr/bin/bwrap (never PATH or the workspace), probed
   once: it provides the namespaces and mounts, and the helper runs inside it
   for resource limits, the seccomp filter and closing inherited descriptors.
3. On macOS, sandbox-exec with a profile generated from the policy (sandbox.macos).
4. Otherwise no backend, reported as such: callers refuse to run commands in a
   sandboxed mode rather than pretend. Full access runs commands as they are,
   by explicit choice.
"""

from __future__ import annotations

import functools
import marshal
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from sandbox import landlock, seccomp
from sandbox.policy import Mode, Policy

PACKAGE_ROOT = Path(__file__).resolve().parent.parent
BWRAP = "/usr/bin/bwrap"


@dataclass(frozen=True)
class Backend:
    name: str  # "landlock" (built in), "bwrap", "seatbelt" (macOS), "none", "unsandboxed" (full access)
    detail: str = ""

    @property
    def isolates(self) -> bool:
        return self.name not in ("none", "unsandboxed")


def _userns_allowed() -> tuple[bool, str]:
    def read(path: str) -> str | None:
        try:
            return Path(path).read_text().strip()
        except OSError:
            return None

    if read("/proc/sys/user/max_user_namespaces") == "0":
        return False, "user namespaces are disabled (user.max_user_namespaces = 0)"
    if os.geteuid() != 0:
        if read("/proc/sys/kernel/unprivileged_userns_clone") == "0":
            return False, "unprivileged user namespaces are disabled"
        if read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns") == "1":
            return False, "AppArmor restricts unprivileged user namespaces"
    return True, ""


@functools.cache
def _builtin_probe() -> tuple[bool, str]:
    if not sys.platform.startswith("linux"):
        return False, f"no built-in sandbox on {sys.platform}"
    abi = landlock.abi_version()
    if abi < 1:
        return False, "Landlock is not enabled in this kernel"
    if not seccomp.available():
        return False, "seccomp filter not supported on this architecture"
    ok, why = _userns_allowed()
    if not ok:
        return False, why
    return True, f"Landlock ABI {abi}, seccomp, user/pid/mount/net namespaces, {_connect_note()}"


@functools.cache
def _connect_supervised() -> bool:
    """Whether connect() can go to the supervisor (else, with the network off, it is refused)."""
    return seccomp.notifications_available()


def _connect_note() -> str:
    if _connect_supervised():
        return "with the network off, Unix sockets outside the writable roots refused"
    return "with the network off, every connect() refused (no seccomp user notifications)"


@functools.cache
def _bwrap_probe() -> tuple[bool, str]:
    if not os.access(BWRAP, os.X_OK):
        return False, f"{BWRAP} not found"
    try:
        r = subprocess.run(
            [BWRAP, "--ro-bind", "/", "/", "--unshare-pid", "--unshare-net", "--die-with-parent", "true"],
            capture_output=True, timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"bubblewrap does not start: {e}"
    if r.returncode != 0:
        return False, f"bubblewrap does not start: {r.stderr.decode(errors='replace').strip()[:200]}"
    return True, f"bubblewrap ({BWRAP}) with seccomp, {_connect_note()}"


def _seatbelt_probe() -> tuple[bool, str]:
    from sandbox import macos

    if sys.platform != "darwin":
        return False, "sandbox-exec is macOS only"
    if not os.access(macos.SANDBOX_EXEC, os.X_OK):
        return False, f"{macos.SANDBOX_EXEC} not found"
    return True, "macOS sandbox-exec (deny-by-default profile)"


PROBES = {"landlock": _builtin_probe, "bwrap": _bwrap_probe, "seatbelt": _seatbelt_probe}


def get(name: str) -> Backend | None:
    """A named backend if this machine can run it, else None."""
    ok, detail = PROBES[name]()
    return Backend(name, detail) if ok else None


def select(policy: Policy, choice: str = "auto") -> Backend:
    """The backend for `policy`: the first available one, or only `choice` when it names one."""
    if policy.mode is Mode.FULL_ACCESS:
        return Backend("unsandboxed", "full access: commands run without isolation")
    order = ("seatbelt",) if sys.platform == "darwin" else ("landlock", "bwrap")
    if choice != "auto":
        order = (choice,)
    for name in order:
        backend = get(name)
        if backend is not None:
            return backend
    return Backend("none", "; ".join(PROBES[name]()[1] for name in order))


def protected_paths(policy: Policy) -> list[str]:
    """What stays read-only inside the writable roots: the protected names under each directory root
    (a file scope's file roots hold nothing, so never `file/.git`), and the policy's own paths."""
    named = [root / name for root in policy.directory_roots for name in policy.protected_names]
    return [str(p) for p in named + list(policy.protected_paths)]


def writable_files(policy: Policy) -> list[str]:
    """A file scope's targets that may be granted to a command now: those still a regular file (not
    replaced by a symlink, a folder or a device since the policy checked them, which only something
    outside the sandbox can do); a target that is not is left read-only for this command.

    Such a target can be written in place (`>>`, `>`, open(..., "w")), but not replaced: its folder
    is read-only, so a tool that writes a temp file and renames it over the target (`sed -i`, some
    formatters) fails under a file scope. That is accepted; the file tools replace it themselves.
    """
    return [str(f) for f in policy.writable_files if os.path.isfile(f) and not os.path.islink(f)]


def _writable(policy: Policy) -> list[str]:
    files = set(writable_files(policy))
    return [str(r) for r in policy.writable_roots if r not in policy.writable_files or str(r) in files]


def wrap(
    backend: Backend, policy: Policy, argv: list[str], limits: dict[str, int], cgroup: Path | None = None
) -> list[str]:
    """The argv that runs `argv` under `backend` with `policy` (inside `cgroup` when given)."""
    if backend.name == "unsandboxed":
        return argv
    if backend.name == "seatbelt":
        from sandbox import macos

        return macos.wrap(policy, argv)
    if backend.name not in ("landlock", "bwrap"):
        raise RuntimeError(f"no sandbox backend: {backend.detail}")
    spec = {
        "read": ["/"],
        "write": _writable(policy),
        "files": writable_files(policy),  # which of "write" are files (no sockets there, nothing below them)
        "deny": [str(d) for d in policy.deny_read],
        "protected": protected_paths(policy),
        "network": policy.network,
        "limits": limits,
        "supervise": _connect_supervised(),
    }
    from sandbox import cgroups

    prefix: list[str] = cgroups.join_prefix(cgroup) if cgroup else []
    if backend.name == "bwrap":
        prefix += bwrap_args(policy)
        spec.update(namespaces=False, landlock=False)
    bootstrap = (
        "import sys; sys.path.insert(0, sys.argv.pop(1)); "
        "from sandbox.helper import main; main(sys.argv[1:])"
    )
    helper = [sys.executable, "-I", "-S", "-c", bootstrap, str(PACKAGE_ROOT), marshal.dumps(spec).hex(), "--"]
    return [*prefix, *helper, *argv]


def bwrap_args(policy: Policy) -> list[str]:
    """bubblewrap's view of the policy: / read-only, roots writable, protected and denied paths covered."""
    args = [BWRAP, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc",
            "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session"]
    if not policy.network:
        args.append("--unshare-net")
    if os.geteuid() == 0:
        args += ["--cap-drop", "ALL"]  # else root inside could remount / read-write
    for root in _writable(policy):  # a file root is bound alone: writable in place, its folder read-only
        args += ["--bind", root, root]
    for path in protected_paths(policy):
        if os.path.lexists(path) and not os.path.islink(path):
            args += ["--ro-bind", path, path]
    for denied in policy.deny_read:
        if denied.is_dir():
            args += ["--tmpfs", str(denied), "--remount-ro", str(denied)]
        elif denied.exists():
            args += ["--ro-bind", "/dev/null", str(denied)]
    return args


def guarded_paths(backend: Backend, policy: Policy) -> list[Path]:
    """Protected paths a command's run must hold (sandbox.placeholders): the absent ones, which a mount
    cannot cover until a placeholder stands there, and the directories, which may be another command's
    placeholders. sandbox-exec denies by path, existing or not, and needs none; nor does the private
    temp directory, which nothing reads after the session."""
    if backend.name not in ("landlock", "bwrap"):
        return []
    temp = str(policy.temp_dir) if policy.temp_dir else None
    return [Path(p) for p in protected_paths(policy)
            if (not os.path.lexists(p) or os.path.isdir(p) and not os.path.islink(p))
            and not (temp and (p == temp or p.startswith(temp + "/")))]
