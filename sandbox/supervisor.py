"""Deciding a sandboxed command's connect() calls from outside the sandbox.

Before Landlock ABI 9 nothing in the kernel stops a confined process from
connecting to a named Unix socket anywhere on the machine (the Docker socket,
an SSH agent, a database). With the network off, the seccomp filter hands every
connect() to this supervisor, the sandbox helper's parent, which:

1. copies the address out of the caller's memory once and decides on that copy
   (the caller cannot change it afterwards);
2. takes a copy of the caller's socket (pidfd_getfd);
3. for a named socket, opens the path relative to the caller's working
   directory with O_PATH, and judges where that very inode lives; inside a
   writable root and outside the deny list it connects through
   /proc/self/fd/N, so no symlink swapped in later can redirect it;
4. answers the caller with the result, or EACCES when the socket lies outside.

Abstract sockets are per network namespace, and the sandbox has its own, so
they only ever reach the sandbox's own sockets. Any failure answers EPERM:
nothing connects by default.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import stat

_IOC_WR, _IOC_W = 0xC0000000, 0x40000000
NOTIF_RECV = _IOC_WR | (80 << 16) | (ord("!") << 8) | 0
NOTIF_SEND = _IOC_WR | (24 << 16) | (ord("!") << 8) | 1
NOTIF_ID_VALID = _IOC_W | (8 << 16) | (ord("!") << 8) | 2
SYS_PIDFD_GETFD = 438  # same number on x86_64 and aarch64
SUN_PATH_MAX = 108
AF_UNIX, SOL_SOCKET, SO_DOMAIN = 1, 1, 39

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _Notif(ctypes.Structure):
    _fields_ = [
        ("id", ctypes.c_uint64), ("pid", ctypes.c_uint32), ("flags", ctypes.c_uint32),
        ("nr", ctypes.c_int32), ("arch", ctypes.c_uint32), ("ip", ctypes.c_uint64),
        ("args", ctypes.c_uint64 * 6),
    ]


class _Resp(ctypes.Structure):
    _fields_ = [("id", ctypes.c_uint64), ("val", ctypes.c_int64), ("error", ctypes.c_int32), ("flags", ctypes.c_uint32)]


def _ioctl(fd: int, request: int, arg: ctypes.Structure | ctypes.c_uint64) -> None:
    if _libc.ioctl(fd, ctypes.c_ulong(request), ctypes.byref(arg)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


def _within(path: str, roots: list[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def allowed_socket(path: str, writable: list[str], deny: list[str]) -> bool:
    """A named socket the sandbox may reach: under a writable root, not on the deny list."""
    return _within(path, writable) and not _within(path, deny)


def _thread_group(tid: int) -> int:
    with open(f"/proc/{tid}/status") as f:
        for line in f:
            if line.startswith("Tgid:"):
                return int(line.split()[1])
    raise OSError(errno.ESRCH, "no such process")


def _sockaddr_un(path: bytes) -> ctypes.Array:
    return ctypes.create_string_buffer(AF_UNIX.to_bytes(2, "little") + path + b"\0")


def _domain(fd: int) -> int:
    value, size = ctypes.c_int(0), ctypes.c_uint32(4)
    if _libc.getsockopt(fd, SOL_SOCKET, SO_DOMAIN, ctypes.byref(value), ctypes.byref(size)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return value.value


def take_fd(pid: int, fd: int) -> int:
    """A copy of descriptor `fd` of process `pid` (pidfd_getfd, Linux 5.6+)."""
    pidfd = os.pidfd_open(pid)
    try:
        dup = _libc.syscall(SYS_PIDFD_GETFD, pidfd, ctypes.c_int(fd), 0)
    finally:
        os.close(pidfd)
    if dup < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return int(dup)


def _connect(fd: int, addr: bytes | ctypes.Array, length: int) -> int:
    """connect(2) on our duplicate; 0 or a negative errno."""
    if _libc.connect(fd, addr, length) == 0:
        return 0
    return -(ctypes.get_errno() or errno.EPERM)


class Supervisor:
    def __init__(self, listener: int, writable: list[str], deny: list[str]) -> None:
        self.listener = listener
        self.writable = [os.path.realpath(p) for p in writable]
        self.deny = [os.path.realpath(p) for p in deny]

    def wait(self, child: int) -> int:
        """Answer notifications until `child` exits; returns its wait status."""
        child_fd = os.pidfd_open(child)
        poller = select.poll()
        poller.register(self.listener, select.POLLIN)
        poller.register(child_fd, select.POLLIN)
        while True:
            try:
                ready = poller.poll()
            except InterruptedError:
                continue
            for fd, events in ready:
                if fd == child_fd:
                    return os.waitpid(child, 0)[1]
                if events & select.POLLIN:
                    self.handle_one()
                elif events & (select.POLLHUP | select.POLLERR):
                    poller.unregister(self.listener)  # nobody left under the filter

    def handle_one(self) -> None:
        notif = _Notif()
        try:
            _ioctl(self.listener, NOTIF_RECV, notif)
        except OSError:
            return  # the caller died before we read it
        resp = _Resp(notif.id, 0, 0, 0)
        try:
            result = self._decide(notif)
        except OSError as e:
            result = -(e.errno or errno.EPERM)
        except Exception:  # noqa: BLE001 - a bug here must refuse, never allow
            result = -errno.EPERM
        if result < 0:
            resp.val, resp.error = -1, result
        try:
            _ioctl(self.listener, NOTIF_SEND, resp)
        except OSError:
            pass  # the caller died meanwhile

    def _decide(self, notif: _Notif) -> int:
        tid = notif.pid
        sock_fd, addr_ptr, addr_len = notif.args[0], notif.args[1], notif.args[2]
        if addr_len < 2 or addr_len > 4096:
            return -errno.EINVAL
        mem = os.open(f"/proc/{tid}/mem", os.O_RDONLY | os.O_CLOEXEC)
        try:
            addr = os.pread(mem, min(addr_len, 2 + SUN_PATH_MAX), addr_ptr)
        finally:
            os.close(mem)
        cwd = os.open(f"/proc/{tid}/cwd", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            # The pid was read from the notification: make sure it is still the caller.
            _ioctl(self.listener, NOTIF_ID_VALID, ctypes.c_uint64(notif.id))
            dup = take_fd(_thread_group(tid), sock_fd)
            try:
                return self._connect_as_caller(dup, addr, cwd)
            finally:
                os.close(dup)
        finally:
            os.close(cwd)

    def _connect_as_caller(self, sock: int, addr: bytes, cwd: int) -> int:
        if _domain(sock) != AF_UNIX:
            return -errno.EPERM  # the network is off
        path = addr[2:]
        if int.from_bytes(addr[:2], "little") != AF_UNIX or not path or path[0] == 0:
            return _connect(sock, addr, len(addr))  # abstract or unnamed: this namespace's own
        path = path.split(b"\0", 1)[0]
        try:
            target = os.open(path, os.O_PATH | os.O_CLOEXEC, dir_fd=cwd)
        except OSError as e:
            return -(e.errno or errno.ENOENT)
        try:
            if not stat.S_ISSOCK(os.fstat(target).st_mode):
                return -errno.ECONNREFUSED
            where = os.readlink(f"/proc/self/fd/{target}")
            if not allowed_socket(where, self.writable, self.deny):
                return -errno.EACCES
            via = f"/proc/self/fd/{target}".encode()
            return _connect(sock, _sockaddr_un(via), 2 + len(via) + 1)
        finally:
            os.close(target)
