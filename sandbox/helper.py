"""The built-in sandbox: `python -m sandbox.helper SPEC -- ARGV...` confines itself, then execs ARGV.

In order, before the exec:
1. resource limits (CPU seconds, file size, data memory, processes, where the
   kernel applies them);
2. fresh user, mount and PID namespaces (and a network namespace when the
   network is off), so the mount view can match the policy, the helper's
   child is PID 1 of its own namespace (when it ends, everything in the
   namespace ends too, `setsid` or not), and capabilities held are only
   namespace ones. In that mount namespace every mount is read-only but the
   writable roots (each bound onto itself first, a file root alone), as under
   bubblewrap: Landlock has no right for chmod, chown, utimes or xattrs, so
   without this a command could change the mode, owner or times of any file
   it owns outside the roots (`chmod 000 ~/.bashrc`). Protected paths inside
   the roots are then re-mounted read-only too. Where the kernel refuses a
   remount, the command still runs (Landlock still guards every file's data)
   and its output says so;
3. a private /dev/pts (its own pseudo-terminals, none of the host's) and
   /dev/shm, and, in the command's own PID namespace, a fresh /proc that shows
   only the sandbox's processes;
4. every capability dropped, bounding set included, and no_new_privs;
5. Landlock: read everywhere but the deny list and /dev (where only null,
   zero, full, random, urandom, tty and the private pts and shm are allowed:
   no terminal of the host, so no keystrokes), write only to the writable
   roots (a file root: that file, in place), TCP refused when the network is
   off, no signals or abstract sockets beyond the sandbox;
6. a seccomp filter (sandbox.seccomp);
7. every inherited file descriptor above stderr closed;
8. with namespaces of its own, PID 1 stays behind as the namespace's init
   (`_init`): it forks the command, reaps every orphan, and exits as the
   command exits (a signal death as 128 + the signal, as bash reports it).
   The command is not PID 1, so the kernel gives it the signals a host
   process gets (PID 1 is immune to those it has no handler for: `kill -TERM
   $$` would do nothing), and an orphan whose parent never waits is still
   reaped. The init handles no signal, so the kernel drops every one sent to
   it from inside (`kill 1` does nothing), as with bubblewrap, whose own init
   is PID 1 there and does the same. It is confined exactly like the command,
   holds no descriptor beyond 0-2, and is not dumpable (the command cannot
   write its memory through /proc/1/mem).
Before the exec, the signals Python ignores (SIGPIPE, SIGXFSZ) get their default
action back, as for a command started by a shell on the host.

SPEC is a hex-encoded marshal of {"read": [...], "write": [...], "files": [...], "deny": [...],
"protected": [...], "network": bool, "limits": {"cpu": s, "fsize": bytes, "memory": bytes, "nproc": n},
"supervise": bool}. "files" are the entries of "write" that are single files (a file scope's targets):
Landlock grants them only the file rights (write in place, truncate; no create, remove or rename,
which are rights of their folder), and the supervisor lets no socket connect through them.
(marshal, not JSON: importing json costs the helper 5 ms before every command). Any
failure to confine is fatal (exit 126 with a message): the command never runs
unconfined by accident.
"""

from __future__ import annotations

import _signal  # the C half of `signal`, loaded at interpreter start-up: `signal` pulls in enum
import ctypes
import errno
import marshal
import os
import resource
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x00020000, 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
MS_REC, MS_PRIVATE, MS_NOSYMFOLLOW = 16384, 1 << 18, 256
ST_NOSYMFOLLOW = 8192  # statvfs's f_flag numbers nosymfollow differently from mount(2)
_UNREACHABLE = (errno.ENOENT, errno.EACCES, errno.ENOTDIR)  # a path the helper, so the command, cannot reach
_MOUNT_OPTIONS = {b"nosuid": MS_NOSUID, b"nodev": MS_NODEV, b"noexec": MS_NOEXEC, b"nosymfollow": MS_NOSYMFOLLOW}
PR_SET_PDEATHSIG, PR_SET_DUMPABLE, PR_SET_NO_NEW_PRIVS, PR_CAPBSET_DROP = 1, 4, 38, 24
EXIT_SETUP_FAILED = 126
SIGKILL = 9  # a constant, not the signal module: that import alone costs the helper ~4 ms
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty")
PRIVATE_PTS = ("/dev/pts", "/dev/ptmx")  # usable once a private devpts instance covers the host's
RLIMIT_DATA = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    sys.stderr.write(f"coder sandbox: {what} failed: {os.strerror(err) if err else 'error'}\n")
    os._exit(EXIT_SETUP_FAILED)


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def _limits(limits: dict) -> None:
    # RLIMIT_DATA counts what a program really allocates (heap, private writable mappings), not the
    # address space it reserves, so runtimes that reserve big ranges (V8, Go, the JVM) still start.
    for key, which in (("cpu", resource.RLIMIT_CPU), ("fsize", resource.RLIMIT_FSIZE), ("nproc", resource.RLIMIT_NPROC),
                       ("memory", RLIMIT_DATA)):
        value = limits.get(key)
        if value:
            soft, hard = resource.getrlimit(which)
            value = int(value) if hard == resource.RLIM_INFINITY else min(int(value), hard)
            resource.setrlimit(which, (value, value))


def _namespaces(network: bool) -> None:
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | (0 if network else CLONE_NEWNET)
    if _libc.unshare(flags) != 0:
        _fail("unshare (user namespaces)")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")


def _mount(src: str | None, target: str, flags: int, fstype: str | None = None, data: str | None = None) -> None:
    if _libc.mount(src.encode() if src else None, target.encode(), fstype.encode() if fstype else None, flags,
                   data.encode() if data else None) != 0:
        _fail(f"mount {target}")


def _private_dev(memory: int) -> list[str]:
    """A devpts instance and a tmpfs of the sandbox's own over /dev/pts and /dev/shm; what they allow.

    /dev/shm holds no more than the memory limit. Not fatal if the kernel refuses: Landlock then
    simply grants neither (no pseudo-terminal, no shared memory files).
    """
    granted = []
    if os.path.isdir("/dev/pts") and _libc.mount(b"devpts", b"/dev/pts", b"devpts", MS_NOSUID | MS_NOEXEC,
                                                  b"newinstance,ptmxmode=0666,mode=0620") == 0:
        granted += PRIVATE_PTS
    size = f"size={memory}" if memory else "size=50%"
    if os.path.isdir("/dev/shm") and _libc.mount(b"tmpfs", b"/dev/shm", b"tmpfs", MS_NOSUID | MS_NODEV,
                                                  f"mode=1777,{size}".encode()) == 0:
        granted.append("/dev/shm")
    return granted


def _fresh_proc() -> None:
    """A /proc of the command's own PID namespace, in a mount namespace of its own: the helper's
    parent keeps the host's /proc, which it needs to answer connect() calls."""
    if _libc.unshare(CLONE_NEWNS) != 0:
        _fail("unshare (mount namespace)")
    if _libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        # Some containers mask parts of /proc, and then the kernel refuses a fresh one. The command
        # still cannot signal, trace or read the memory of anything outside; say what it can see.
        sys.stderr.write("coder sandbox: note: the host's /proc stays visible (this kernel refused a fresh one)\n")


def _locked(flags: int) -> int:
    """The mount flags of a statvfs() f_flag a remount must repeat: in a user namespace, nosuid, nodev
    and noexec inherited from the parent namespace are locked (leaving one out is EPERM), and
    nosymfollow would be lost. The atime flags a remount keeps by itself."""
    return (flags & (MS_NOSUID | MS_NODEV | MS_NOEXEC)) | (MS_NOSYMFOLLOW if flags & ST_NOSYMFOLLOW else 0)


def _unescape(path: bytes) -> bytes:
    """A mount point as /proc/self/mountinfo writes it: space, tab, newline and backslash as \\ooo."""
    if b"\\" not in path:
        return path
    parts = path.split(b"\\")
    out = [parts[0]]
    for part in parts[1:]:
        out.append(bytes([int(part[:3], 8)]) + part[3:])
    return b"".join(out)


def _under(path: bytes, top: bytes) -> bool:
    """Whether `path` is `top` or lies below it."""
    return path == top or top == b"/" or path.startswith(top + b"/")


def _above(path: bytes):
    """The folders `path` lies in, nearest first: /a/b/c -> /a/b, /a, /."""
    while path != b"/":
        path = path.rsplit(b"/", 1)[0] or b"/"
        yield path


def _reachable_mounts(mountinfo: bytes) -> list[tuple[bytes, list[bytes]]]:
    """(mount point, options) of each mount in `mountinfo` that a path leads to.

    A mount is out of reach when another one was mounted over a folder on its way (its parent's child
    at a shorter path, or one stacked on its parent): its mount point then names something else, which
    a remount would refuse (EINVAL) or miss. Mounts stacked at one path all lead to the top one. Linear
    in the number of mounts (a host may have hundreds: containers, snaps, a kubelet's volumes)."""
    mounts: dict[bytes, tuple[bytes, bytes, list[bytes]]] = {}
    children: dict[bytes, set[bytes]] = {}
    for line in mountinfo.splitlines():
        fields = line.split(b" ")
        point = _unescape(fields[4])
        mounts[fields[0]] = (fields[1], point, fields[5].split(b","))
        children.setdefault(fields[1], set()).add(point)
    known: dict[bytes, bool] = {}

    def reachable(mount: bytes) -> bool:
        if mount not in known:
            parent, point, _ = mounts[mount]
            known[mount] = True  # a loop cannot happen, but must not recurse forever if it did
            known[mount] = parent not in mounts or (reachable(parent) and not any(
                folder in children[parent] for folder in _above(point)))
        return known[mount]

    return [(point, options) for mount, (_, point, options) in mounts.items() if reachable(mount)]


def _read_only_view(roots: list[str]) -> str | None:
    """Make every mount read-only but the writable roots; None, or what the kernel refused.

    Each root is bound onto itself (with what is mounted below it), so it is a mount of its own
    that stays writable; then every other mount in /proc/self/mountinfo (/, /proc, /sys, /dev, /tmp,
    whatever the host has) is re-mounted read-only, keeping its locked flags. A mount the helper
    cannot reach (a folder it may not search, a mount point deleted since) the command cannot reach
    either. Device nodes still work on a read-only mount (/dev/null, /dev/tty); the private /dev/pts
    and /dev/shm are mounted afterwards, writable. Called right after the mount namespace is made
    private, before the protected paths are covered."""
    bound: list[bytes] = []
    for root in roots:
        if not os.path.lexists(root) or os.path.islink(root):
            continue  # vanished (nothing to write), or replaced by a link since: not followed, left read-only
        target = os.fsencode(root)
        if _libc.mount(target, target, None, MS_BIND | MS_REC, None) != 0:
            err = ctypes.get_errno()
            if err in _UNREACHABLE:
                continue  # the command cannot reach it either (Landlock grants it nothing then)
            return f"bind {root}: {os.strerror(err)}"
        bound.append(target.rstrip(b"/") or b"/")
    with open("/proc/self/mountinfo", "rb") as f:
        mountinfo = f.read()
    done: set[bytes] = set()
    refused = None
    for point, options in _reachable_mounts(mountinfo):
        if b"ro" in options or point in done or any(_under(point, root) for root in bound):
            continue
        done.add(point)
        flags = MS_BIND | MS_REMOUNT | MS_RDONLY
        for option in options:
            flags |= _MOUNT_OPTIONS.get(option, 0)
        if _libc.mount(None, point, None, flags, None) != 0:
            err = ctypes.get_errno()
            if err not in _UNREACHABLE and refused is None:
                refused = f"read-only remount of {os.fsdecode(point)}: {os.strerror(err)}"
    return refused


def _protect(paths: list[str]) -> None:
    """Re-mount protected paths (inside the writable roots) read-only."""
    for path in paths:
        if os.path.lexists(path) and not os.path.islink(path):
            _mount(path, path, MS_BIND | MS_REC)
            flags = MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | _locked(os.statvfs(path).f_flag)
            _mount(None, path, flags)


def _enter_cwd_again() -> None:
    """Take the working directory again by its path, so it is on the mounts just made. The one
    inherited is still on the mount beneath them: inside a writable root it would be read-only (and in
    a protected path's folder, writable)."""
    try:
        os.chdir(os.getcwd())
    except OSError:
        pass  # deleted, or no longer reachable: the command starts where it was, read-only


def _drop_capabilities() -> None:
    last = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last + 1):
        _libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = Header(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (Data * 2)()
    if _libc.capset(ctypes.byref(header), data) != 0:
        _fail("capset")


def confine(spec: dict, supervised: bool = False, dev: list[str] = ()) -> int | None:
    """Landlock and seccomp for this process; the seccomp listener fd when `supervised`.

    `dev`: what of the private /dev (see _private_dev) the command may use."""
    from sandbox import landlock, seccomp

    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        _fail("no_new_privs")
    if spec.get("landlock", True):
        shm = [d for d in dev if d == "/dev/shm"]
        landlock.restrict_self(
            read=spec["read"], write=[*spec["write"], *shm], deny=[*spec.get("deny", []), "/dev"],
            devices=[*DEVICES, *(d for d in dev if d not in shm)], network=spec.get("network", False),
        )
    return seccomp.install(spec.get("network", False), supervised)


def _host_signals() -> None:
    """Undo Python's signal dispositions, which would outlive the exec.

    Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec: `yes | head -1`
    would print "Broken pipe" and a write past the file-size limit would fail instead of killing. Its
    SIGINT handler would turn a SIGINT sent to the init into a KeyboardInterrupt that ends the init."""
    for sig in (_signal.SIGINT, _signal.SIGPIPE, _signal.SIGXFSZ):
        _signal.signal(sig, _signal.SIG_DFL)


def _init(command: list[str]) -> None:
    """Be PID 1 of the namespace for `command`: fork it, reap every process, end the way it ends.

    Runs confined, with only descriptors 0-2, after everything `_exec_confined` does. A blocking wait()
    reaps whatever exits (no signal to miss); when it is the command, this process exits with its status
    and the kernel kills whatever is left in the namespace, as it did when the command was PID 1. It
    handles no signal, so those sent from inside are dropped; SIGKILL from outside (coder's timeout and
    interrupt, sent to the whole process group) ends it, and with it the namespace."""
    _signal.signal(_signal.SIGCHLD, _signal.SIG_DFL)  # ignored, children would be reaped unseen
    # Before the fork, so there is no moment when it is dumpable with the command running; the
    # command's exec makes the command dumpable again, as on the host.
    _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    child = os.fork()
    if child == 0:
        os.execvp(command[0], command)
    while True:
        pid, status = os.wait()
        if pid == child:
            _exit_like(status)


def _exec_confined(spec: dict, command: list[str], channel: tuple[int, int] | None = None,
                   dev: list[str] = (), init: bool = False) -> None:
    """Confine, let the supervisor (our parent) take the seccomp listener, exec (as the child of an init
    when `init`: this process is PID 1 of a PID namespace)."""
    try:
        listener = confine(spec, supervised=channel is not None, dev=dev)
        if channel is not None:
            tell, taken = channel
            os.write(tell, str(listener).encode())
            os.read(taken, 1)  # the parent has its own copy now
        os.closerange(3, 65536)
        _host_signals()
        if init:
            _init(command)
        os.execvp(command[0], command)
    except BaseException as e:  # noqa: BLE001 - any failure must stop the command
        sys.stderr.write(f"coder sandbox: {e}\n")
    os._exit(EXIT_SETUP_FAILED)


def _exit_like(status: int) -> None:
    """End this process the way the command ended (a signal becomes 128 + its number)."""
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.WEXITSTATUS(status))


def _wait(pid: int) -> int:
    while True:
        try:
            return os.waitpid(pid, 0)[1]
        except InterruptedError:
            continue


def _supervise(spec: dict, pid: int, told: int, taken: int) -> int:
    """Take the child's seccomp listener and answer its connect() calls until it exits."""
    from sandbox.supervisor import Supervisor, take_fd

    number = os.read(told, 16)
    if not number:  # the child failed before installing its filter; it reports why
        return _wait(pid)
    listener = take_fd(pid, int(number))
    os.write(taken, b"1")
    files = spec.get("files", [])  # a file root is no place for a socket: only directories count
    return Supervisor(listener, [w for w in spec["write"] if w not in files], spec.get("deny", [])).wait(pid)


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.stderr.write("usage: python -m sandbox.helper SPEC -- ARGV...\n")
        os._exit(2)
    parent = os.getppid()
    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)  # coder killed with -9: the sandbox goes with it
    if os.getppid() != parent:
        os._exit(EXIT_SETUP_FAILED)
    spec = marshal.loads(bytes.fromhex(argv[0]))
    command = argv[2:]
    _limits(spec.get("limits", {}))
    namespaces = spec.get("namespaces", True)  # false inside bubblewrap, which made its own
    supervised = not spec.get("network", False) and spec.get("supervise", False)
    dev: list[str] = []
    if namespaces:
        _namespaces(spec.get("network", False))
        _mount(None, "/", MS_REC | MS_PRIVATE)
        try:
            refused = _read_only_view(spec["write"])
        except (OSError, ValueError, IndexError, RecursionError) as e:  # no mountinfo, or one it cannot read
            refused = f"mount table: {e}"
        if refused:
            # Landlock still guards the data of every file outside the roots; only metadata is open.
            sys.stderr.write("coder sandbox: note: outside the writable roots, a file's mode, owner or times may "
                             f"be changeable; its contents are not ({refused})\n")
        _protect(spec.get("protected", []))
        _enter_cwd_again()
        dev = _private_dev(int(spec.get("limits", {}).get("memory") or 0))
    if not (namespaces or supervised):
        _exec_confined(spec, command)
    if supervised:
        told, tell = os.pipe()  # child -> parent: the listener's fd number
        taken, took = os.pipe()  # parent -> child: taken
    pid = os.fork()  # with namespaces, the child is PID 1 of the new PID namespace, the command's init
    if pid != 0:
        if supervised:
            os.close(tell)  # so a child that dies early is an end of file, not a hang
            os.close(taken)
            _exit_like(_supervise(spec, pid, told, took))
        _exit_like(_wait(pid))
    if supervised:
        os.close(told)
        os.close(took)
    _libc.prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0)
    if namespaces:
        _fresh_proc()
        try:
            _drop_capabilities()
        except BaseException as e:  # noqa: BLE001
            sys.stderr.write(f"coder sandbox: {e}\n")
            os._exit(EXIT_SETUP_FAILED)
    _exec_confined(spec, command, (tell, taken) if supervised else None, dev, init=namespaces)


if __name__ == "__main__":
    main(sys.argv[1:])
