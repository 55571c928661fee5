"""A system-call filter for the worker (seccomp, through ``ctypes``: standard library only).

Installed by the worker on itself, after it switched users and before it imports the submission,
where namespaces may be refused (a default Docker container) but seccomp is not. The filter
answers ``EPERM`` to

- ``socket`` for anything but a Unix socket (no network, loopback included),
- ``ptrace``, ``process_vm_readv``/``process_vm_writev`` (no reading another process's memory),
- ``mount``, ``umount2``, ``pivot_root``, ``unshare``, ``setns`` (no new view of the filesystem),
- ``bpf``, ``perf_event_open``, ``userfaultfd``, ``keyctl``, ``add_key``, ``request_key``,

and lets everything else through. Signals to other processes are the user layer's to stop (a
filter cannot tell the submission's own processes from the grader's). x86-64 and AArch64 only;
elsewhere :func:`install` returns False and the grader reports the layer as unavailable.
"""

from __future__ import annotations

import ctypes
import platform
import struct

__all__ = ["available", "install"]

_ARCH = {  # machine: (AUDIT_ARCH_*, the blocked calls' numbers, socket's number)
    "x86_64": (0xC000003E, (101, 310, 311, 165, 166, 155, 272, 308, 321, 298, 323, 250, 248, 249), 41),
    "aarch64": (0xC00000B7, (117, 270, 271, 40, 39, 41, 97, 268, 280, 241, 282, 219, 217, 218), 198),
}

_LD_W_ABS, _JEQ_K, _JGE_K, _RET_K = 0x20, 0x15, 0x35, 0x06
_ALLOW, _EPERM = 0x7FFF0000, 0x00050000 | 1
_AF_UNIX = 1


def available() -> bool:
    """Whether this machine's architecture has a filter here (the kernel may still refuse it)."""
    return platform.machine() in _ARCH


def _program() -> bytes:
    arch, blocked, socket_nr = _ARCH[platform.machine()]
    ops: list[tuple[int, int, int, int]] = []

    def op(code, jt, jf, k):
        ops.append((code, jt, jf, k))

    op(_LD_W_ABS, 0, 0, 4)  # seccomp_data.arch
    op(_JEQ_K, 1, 0, arch)
    op(_RET_K, 0, 0, _ALLOW)  # another ABI: not ours to judge
    op(_LD_W_ABS, 0, 0, 0)  # seccomp_data.nr
    if platform.machine() == "x86_64":
        op(_JGE_K, 0, 1, 0x40000000)  # the x32 ABI: refused
        op(_RET_K, 0, 0, _EPERM)
    for nr in blocked:
        op(_JEQ_K, 0, 1, nr)
        op(_RET_K, 0, 0, _EPERM)
    op(_JEQ_K, 0, 4, socket_nr)
    op(_LD_W_ABS, 0, 0, 16)  # args[0], low half: the address family
    op(_JEQ_K, 0, 1, _AF_UNIX)
    op(_RET_K, 0, 0, _ALLOW)
    op(_RET_K, 0, 0, _EPERM)
    op(_RET_K, 0, 0, _ALLOW)
    return b"".join(struct.pack("=HBBI", *o) for o in ops)


def install() -> bool:
    """Install the filter on this process and every process it starts; True when it is in force."""
    if not available():
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return False
    program = _program()
    count = len(program) // 8
    buffer = ctypes.create_string_buffer(program, len(program))

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    fprog = Fprog(count, ctypes.addressof(buffer))
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    if prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return False
    return prctl(22, 2, ctypes.addressof(fprog), 0, 0) == 0  # PR_SET_SECCOMP, SECCOMP_MODE_FILTER
