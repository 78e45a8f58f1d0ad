"""A seccomp-bpf filter through ctypes: what a sandboxed command may not ask the kernel.

Refused with EPERM: sockets other than Unix ones (when the network is off),
ptrace and cross-process memory access, io_uring (it bypasses the syscall
filter), and kernel-extension calls (bpf, modules, keyrings, perf). Syscalls of
a foreign architecture (i386 or x32 on x86_64) are refused wholesale, so the
filter cannot be sidestepped through another ABI.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct

_ARCH = {
    "x86_64": (0xC000003E, {
        "socket": 41, "ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 321,
        "perf_event_open": 298, "userfaultfd": 323, "keyctl": 250, "add_key": 248, "request_key": 249,
        "init_module": 175, "finit_module": 313, "kexec_load": 246,
    }),
    "aarch64": (0xC00000B7, {
        "socket": 198, "ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271,
        "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "bpf": 280,
        "perf_event_open": 241, "userfaultfd": 282, "keyctl": 219, "add_key": 217, "request_key": 218,
        "init_module": 105, "finit_module": 273, "kexec_load": 104,
    }),
}
X32_BIT = 0x40000000
AF_UNIX = 1

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
RET_ALLOW, RET_KILL_PROCESS = 0x7FFF0000, 0x80000000
RET_EPERM = 0x00050000 | errno.EPERM
_NR, _ARCH_OFF, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (args[0] low word, little-endian)


def available() -> bool:
    return os.uname().machine in _ARCH


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def build_filter(network: bool) -> bytes:
    """The BPF program as bytes (struct sock_filter[]), for inspection and for `install`."""
    arch, nr = _ARCH[os.uname().machine]
    denied = [n for k, n in nr.items() if k != "socket"]
    prog = [
        _insn(_LD_W_ABS, _ARCH_OFF),
        _insn(_JEQ_K, arch, jt=1),
        _insn(_RET_K, RET_KILL_PROCESS),
        _insn(_LD_W_ABS, _NR),
    ]
    if os.uname().machine == "x86_64":
        prog += [_insn(_JGE_K, X32_BIT, jf=1), _insn(_RET_K, RET_EPERM)]
    for number in denied:
        prog += [_insn(_JEQ_K, number, jf=1), _insn(_RET_K, RET_EPERM)]
    if not network:
        # socket(domain, ...): only AF_UNIX may be created.
        prog += [
            _insn(_JEQ_K, nr["socket"], jf=3),
            _insn(_LD_W_ABS, _ARG0),
            _insn(_JEQ_K, AF_UNIX, jt=1),
            _insn(_RET_K, RET_EPERM),
        ]
    prog.append(_insn(_RET_K, RET_ALLOW))
    return b"".join(prog)


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def install(network: bool) -> None:
    """Load the filter into this process; requires no_new_privs first."""
    code = build_filter(network)
    buf = ctypes.create_string_buffer(code, len(code))
    prog = _SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"seccomp: {errno.errorcode.get(err, err)}")
