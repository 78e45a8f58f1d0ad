"""A seccomp-bpf filter through ctypes: what a sandboxed command may not ask the kernel.

Refused with EPERM: ptrace and cross-process memory access, io_uring (it
bypasses the syscall filter), and kernel-extension calls (bpf, modules,
keyrings, perf). Syscalls of a foreign architecture (i386 or x32 on x86_64)
are refused wholesale, so the filter cannot be sidestepped through another ABI.

With the network off, only Unix stream and seqpacket sockets may be created:
no datagram ones (a datagram can be addressed to any named socket on the
machine without a connect). Every connect() is then handed to a supervisor outside the sandbox
(sandbox.supervisor) through a user-notification listener, which decides on a
private copy of the address: a named socket outside the writable roots is
refused. Where the kernel has no user notifications, connect() is refused.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_ARCH = {
    "x86_64": (0xC000003E, {
        "socket": 41, "connect": 42, "socketpair": 53, "seccomp": 317,
        "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "init_module": 175, "finit_module": 313, "kexec_load": 246,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "connect": 203, "socketpair": 199, "seccomp": 277,
        "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "init_module": 105, "finit_module": 273, "kexec_load": 104,
    }),
}
_SOCKET_CALLS = ("socket", "connect", "socketpair", "seccomp")  # filtered by argument, or not at all
X32_BIT = 0x40000000
AF_UNIX, SOCK_STREAM, SOCK_SEQPACKET, SOCK_TYPE_MASK = 1, 1, 5, 0xF

_LD_W_ABS, _ALU_AND_K, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x54, 0x15, 0x35, 0x06
RET_ALLOW, RET_KILL_PROCESS, RET_USER_NOTIF = 0x7FFF0000, 0x80000000, 0x7FC00000
RET_EPERM = 0x00050000 | errno.EPERM
_NR, _ARCH_OFF, _ARG0, _ARG1 = 0, 4, 16, 24  # offsets in struct seccomp_data (low words, little-endian)

SECCOMP_SET_MODE_FILTER, SECCOMP_GET_ACTION_AVAIL = 1, 2
SECCOMP_FILTER_FLAG_NEW_LISTENER = 1 << 3

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def available() -> bool:
    return os.uname().machine in _ARCH


def syscall_number(name: str) -> int:
    return _ARCH[os.uname().machine][1][name]


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def _unix_stream_only(nr: int) -> list[bytes]:
    """socket()/socketpair(): AF_UNIX, and only the connection types; other syscalls skip the block.

    SOCK_DGRAM is refused, and so is every other type: the kernel turns an
    AF_UNIX SOCK_RAW into a datagram socket too.
    """
    return [
        _insn(_JEQ_K, nr, jf=9),
        _insn(_LD_W_ABS, _ARG0),
        _insn(_JEQ_K, AF_UNIX, jt=1),
        _insn(_RET_K, RET_EPERM),
        _insn(_LD_W_ABS, _ARG1),
        _insn(_ALU_AND_K, SOCK_TYPE_MASK),
        _insn(_JEQ_K, SOCK_STREAM, jt=2),
        _insn(_JEQ_K, SOCK_SEQPACKET, jt=1),
        _insn(_RET_K, RET_EPERM),
        _insn(_RET_K, RET_ALLOW),
    ]


def build_filter(network: bool, supervised: bool = False) -> bytes:
    """The BPF program as bytes (struct sock_filter[]), for inspection and for `install`.

    `supervised` (network off only): connect() goes to the user-notification
    listener instead of being refused.
    """
    arch, nr = _ARCH[os.uname().machine]
    prog = [
        _insn(_LD_W_ABS, _ARCH_OFF),
        _insn(_JEQ_K, arch, jt=1),
        _insn(_RET_K, RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _NR),
    ]
    if os.uname().machine == "x86_64":
        prog += [_insn(_JGE_K, X32_BIT, jf=1), _insn(_RET_K, RET_EPERM)]
    for name, number in nr.items():
        if name not in _SOCKET_CALLS:
            prog += [_insn(_JEQ_K, number, jf=1), _insn(_RET_K, RET_EPERM)]
    if not network:
        prog += _unix_stream_only(nr["socket"]) + _unix_stream_only(nr["socketpair"])
        prog += [_insn(_JEQ_K, nr["connect"], jf=1), _insn(_RET_K, RET_USER_NOTIF if supervised else RET_EPERM)]
    prog.append(_insn(_RET_K, RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def notifications_available() -> bool:
    """Whether this kernel can hand a syscall to a supervisor (SECCOMP_RET_USER_NOTIF, Linux 5.0+)."""
    if not available():
        return False
    action = ctypes.c_uint32(RET_USER_NOTIF)
    return _libc.syscall(syscall_number("seccomp"), SECCOMP_GET_ACTION_AVAIL, 0, ctypes.byref(action)) == 0


def install(network: bool, supervised: bool = False) -> int | None:
    """Load the filter into this process (no_new_privs first); returns the listener fd when supervised."""
    code = build_filter(network, supervised)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    flags = SECCOMP_FILTER_FLAG_NEW_LISTENER if supervised else 0
    fd = _libc.syscall(syscall_number("seccomp"), SECCOMP_SET_MODE_FILTER, flags, ctypes.byref(prog))
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {errno.errorcode.get(err, err)}")
    return int(fd) if supervised else None
