"""Landlock through ctypes: filesystem, TCP and scope rules for the calling process.

Landlock is allow-listed: once a ruleset handles a right, only the listed
hierarchies keep it. Rights granted on a directory hold for everything under
it, so a deny list inside an allowed tree is expressed by allowing each
sibling on the way down instead of the parent. The ruleset adapts to the
kernel's ABI: rights the kernel does not know are dropped, never guessed.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

_SYSCALLS = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}

EXECUTE = 1 << 0
WRITE_FILE = 1 << 1
READ_FILE = 1 << 2
READ_DIR = 1 << 3
REMOVE_DIR = 1 << 4
REMOVE_FILE = 1 << 5
MAKE_CHAR = 1 << 6
MAKE_DIR = 1 << 7
MAKE_REG = 1 << 8
MAKE_SOCK = 1 << 9
MAKE_FIFO = 1 << 10
MAKE_BLOCK = 1 << 11
MAKE_SYM = 1 << 12
REFER = 1 << 13  # ABI 2
TRUNCATE = 1 << 14  # ABI 3
IOCTL_DEV = 1 << 15  # ABI 5

NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1

SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1

READ = EXECUTE | READ_FILE | READ_DIR
_FS_BY_ABI = {1: (1 << 13) - 1, 2: (1 << 14) - 1, 3: (1 << 15) - 1, 5: (1 << 16) - 1}


class LandlockError(OSError):
    pass


def _calls() -> tuple[int, int, int] | None:
    return _SYSCALLS.get(os.uname().machine)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def abi_version() -> int:
    """The kernel's Landlock ABI, or 0 when Landlock is missing or disabled."""
    calls = _calls()
    if calls is None:
        return 0
    version = _libc.syscall(calls[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    return max(0, int(version))


def fs_rights(abi: int) -> int:
    best = max((v for v in _FS_BY_ABI if v <= abi), default=0)
    return _FS_BY_ABI.get(best, 0)


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _allow_except(allowed: str, denied: list[str]) -> Iterable[str]:
    """`allowed` itself, or — when a denied path lies inside — its siblings on the way down.

    Plain strings and os.scandir: the helper runs before every command, and
    pathlib alone would cost it a few milliseconds of imports.
    """
    inside = [d for d in denied if _inside(d, allowed)]
    if not inside:
        yield allowed
        return
    if allowed in inside:
        return
    try:
        # A symlink's rule would land on its target, which may be the very tree
        # being carved out; targets get their own rules under their real paths.
        with os.scandir(allowed) as entries:
            children = [e.path for e in entries if not e.is_symlink()]
    except OSError:
        return
    for child in children:
        yield from _allow_except(child, inside)


def restrict_self(
    *,
    read: Iterable[str],
    write: Iterable[str],
    deny: Iterable[str] = (),
    devices: Iterable[str] = (),
    network: bool = False,
    scope_signals: bool = True,
) -> int:
    """Confine this process (and everything it execs); returns the ABI used.

    `read` trees get read/execute, `write` trees everything, `devices` may be
    opened for writing (/dev/null); `deny` is carved out of both. With network
    off and ABI >= 4, TCP bind and connect are refused outright. Needs
    no_new_privs (or CAP_SYS_ADMIN) beforehand.
    """
    abi = abi_version()
    calls = _calls()
    if abi < 1 or calls is None:
        raise LandlockError("Landlock is not available on this kernel")
    create, add_rule, restrict = calls
    all_fs = fs_rights(abi)
    attr = _RulesetAttr(all_fs, 0, 0)
    size = 8
    if abi >= 4 and not network:
        attr.net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | (SCOPE_SIGNAL if scope_signals else 0)
        size = 24
    fd = _libc.syscall(create, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    denied = [os.path.realpath(d) for d in deny]
    try:
        grants: list[tuple[str, int]] = []
        for root in read:
            grants += [(p, READ & all_fs) for p in _allow_except(os.fspath(root), denied)]
        for root in write:
            grants += [(p, all_fs) for p in _allow_except(os.fspath(root), denied)]
        for dev in devices:
            grants.append((os.fspath(dev), (READ_FILE | WRITE_FILE | IOCTL_DEV | TRUNCATE) & all_fs))
        for path, rights in grants:
            _add_path_rule(add_rule, fd, path, rights)
        if _libc.syscall(restrict, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(fd)
    return abi


def _add_path_rule(add_rule: int, ruleset_fd: int, path: str, rights: int) -> None:
    """Grant `rights` on `path`. On a file (a file scope's target) only the file rights hold: it can be
    read, written in place and truncated, while creating, removing or renaming anything next to it
    needs rights on its folder, which a file rule does not give."""
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # vanished or unreadable: nothing to grant
    try:
        if not os.path.isdir(path):
            # Directory-only rights are refused on files.
            rights &= EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV
        rule = _PathBeneath(rights, pfd)
        if _libc.syscall(add_rule, ctypes.c_int(ruleset_fd), ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0)):
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_add_rule {path}: {os.strerror(err)}")
    finally:
        os.close(pfd)
