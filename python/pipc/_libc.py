"""ctypes bindings: libc (sem_*, mq_*, syscall), libatomic's atomics on
addresses of shared mappings, the futex system call and open-file-description
locks. Standard library only; nothing is compiled.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import errno as _errno
import fcntl
import os
import platform
import stat
import struct
import time
from typing import Optional, Union

from ._errors import IPCError, ipc_error

libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)

# glibc >= 2.34 has the mq_* and sem_* calls in libc itself; older ones in librt / libpthread.
try:
    librt = ctypes.CDLL("librt.so.1", use_errno=True)
except OSError:  # pragma: no cover - depends on the C library
    librt = libc

_atomic: Optional[ctypes.CDLL]
try:
    _atomic = ctypes.CDLL(ctypes.util.find_library("atomic") or "libatomic.so.1")
except OSError:  # pragma: no cover - depends on the system
    _atomic = None

SEQ_CST = 5  # __ATOMIC_SEQ_CST

SYS_futex = {"x86_64": 202, "aarch64": 98, "i686": 240, "i386": 240}.get(platform.machine(), 202)
FUTEX_WAIT = 0
FUTEX_WAKE = 1
INT_MAX = 2**31 - 1

F_OFD_GETLK = 36
F_OFD_SETLK = 37
F_WRLCK = 1
F_UNLCK = 2

SEM_VALUE_MAX = INT_MAX


class Timespec(ctypes.Structure):
    """struct timespec."""

    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def check(r: int, syscall: str, name: Optional[str] = None) -> int:
    """Raises the IPCError of errno if ``r`` is -1, else returns ``r``."""
    if r == -1:
        raise ipc_error(ctypes.get_errno(), syscall, name)
    return r


def realtime_deadline(seconds: float) -> Timespec:
    """An absolute CLOCK_REALTIME timespec ``seconds`` from now (for mq_timed* and sem_timedwait)."""
    t = time.time() + max(seconds, 0.0)
    sec = int(t)
    return Timespec(sec, int((t - sec) * 1e9))


# --- atomics ----------------------------------------------------------------

def _need_atomic() -> ctypes.CDLL:
    if _atomic is None:
        raise IPCError(_errno.ENOSYS, "libatomic.so.1 is not installed: atomic operations are unavailable", "dlopen")
    return _atomic


if _atomic is not None:
    for _n, _t in ((1, ctypes.c_uint8), (2, ctypes.c_uint16), (4, ctypes.c_uint32), (8, ctypes.c_uint64)):
        for _op in ("fetch_add", "fetch_sub", "fetch_and", "fetch_or", "fetch_xor", "exchange"):
            _f = getattr(_atomic, f"__atomic_{_op}_{_n}")
            _f.restype = _t
            _f.argtypes = [ctypes.c_void_p, _t, ctypes.c_int]
        _f = getattr(_atomic, f"__atomic_load_{_n}")
        _f.restype = _t
        _f.argtypes = [ctypes.c_void_p, ctypes.c_int]
        _f = getattr(_atomic, f"__atomic_store_{_n}")
        _f.restype = None
        _f.argtypes = [ctypes.c_void_p, _t, ctypes.c_int]
        _f = getattr(_atomic, f"__atomic_compare_exchange_{_n}")
        _f.restype = ctypes.c_bool
        _f.argtypes = [ctypes.c_void_p, ctypes.c_void_p, _t, ctypes.c_bool, ctypes.c_int, ctypes.c_int]

_UNSIGNED = {1: ctypes.c_uint8, 2: ctypes.c_uint16, 4: ctypes.c_uint32, 8: ctypes.c_uint64}


def atomic_rmw(op: str, addr: int, size: int, value: int) -> int:
    """``__atomic_<op>_<size>(addr, value, SEQ_CST)``: the old value, unsigned."""
    mask = (1 << (8 * size)) - 1
    return getattr(_need_atomic(), f"__atomic_{op}_{size}")(addr, value & mask, SEQ_CST)


def atomic_load(addr: int, size: int) -> int:
    """A sequentially consistent load (unsigned)."""
    return getattr(_need_atomic(), f"__atomic_load_{size}")(addr, SEQ_CST)


def atomic_store(addr: int, size: int, value: int) -> None:
    """A sequentially consistent store."""
    mask = (1 << (8 * size)) - 1
    getattr(_need_atomic(), f"__atomic_store_{size}")(addr, value & mask, SEQ_CST)


def atomic_cas(addr: int, size: int, expected: int, desired: int) -> int:
    """Compare-and-swap: stores ``desired`` if the cell holds ``expected``; returns
    the value found (unsigned): equal to ``expected`` (masked) on success."""
    mask = (1 << (8 * size)) - 1
    exp = _UNSIGNED[size](expected & mask)
    getattr(_need_atomic(), f"__atomic_compare_exchange_{size}")(
        addr, ctypes.byref(exp), desired & mask, False, SEQ_CST, SEQ_CST)
    return exp.value


# The 32-bit word operations of the crash-safe semaphore protocol, bound once
# (they run several times per acquire and release).
if _atomic is not None:
    _cas4 = _atomic.__atomic_compare_exchange_4
    _add4 = _atomic.__atomic_fetch_add_4
    _load4 = _atomic.__atomic_load_4
    _store4 = _atomic.__atomic_store_4
_U32 = ctypes.c_uint32


def cas32(addr: int, expected: int, desired: int) -> bool:
    """32-bit CAS on a signed word: True if it stored ``desired``."""
    return bool(_cas4(addr, ctypes.byref(_U32(expected & 0xFFFFFFFF)), desired & 0xFFFFFFFF, False, SEQ_CST, SEQ_CST))


def cas32_found(addr: int, expected: int, desired: int) -> int:
    """32-bit CAS; returns the (signed) value found."""
    exp = _U32(expected & 0xFFFFFFFF)
    _cas4(addr, ctypes.byref(exp), desired & 0xFFFFFFFF, False, SEQ_CST, SEQ_CST)
    v = exp.value
    return v - (1 << 32) if v >= 1 << 31 else v


def add32(addr: int, delta: int) -> int:
    """Atomic 32-bit add; returns the new (signed) value."""
    new = (_add4(addr, delta & 0xFFFFFFFF, SEQ_CST) + delta) & 0xFFFFFFFF
    return new - (1 << 32) if new >= 1 << 31 else new


def load32(addr: int) -> int:
    """Atomic signed 32-bit load."""
    v = _load4(addr, SEQ_CST)
    return v - (1 << 32) if v >= 1 << 31 else v


def store32(addr: int, value: int) -> None:
    """Atomic 32-bit store."""
    _store4(addr, value & 0xFFFFFFFF, SEQ_CST)


# --- linkat ---------------------------------------------------------------------

AT_FDCWD = -100
AT_SYMLINK_FOLLOW = 0x400
libc.linkat.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]


def link_fd(fd: int, path: str) -> None:
    """Gives the unnamed file ``fd`` (O_TMPFILE) the name ``path``: linkat with
    AT_SYMLINK_FOLLOW on /proc/self/fd/N (os.link would link the proc symlink)."""
    if libc.linkat(AT_FDCWD, f"/proc/self/fd/{fd}".encode(), AT_FDCWD, path.encode(), AT_SYMLINK_FOLLOW) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def open_or_create(path: str, name: str, create: bool, exclusive: bool, make) -> "tuple[int, bool]":
    """Opens the /dev/shm file ``path`` read-write (O_NOFOLLOW: never through a
    symlink), or, with ``create`` and nothing there, makes it with ``make()``
    (which creates and links it, returning the fd); another process's create or
    unlink racing ours is retried. With ``exclusive`` an existing file is
    EEXIST. Returns (fd, created); the native OpenOrCreateShmFile does the same."""
    for _ in range(8):
        try:
            fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            if not create:
                raise
            try:
                return make(), True
            except FileExistsError:
                if exclusive:
                    raise
                continue
        if create and exclusive:
            os.close(fd)
            raise ipc_error(_errno.EEXIST, "open", name)
        return fd, False
    raise ipc_error(_errno.ENOENT, "open", name)


# --- futex --------------------------------------------------------------------

libc.syscall.restype = ctypes.c_long


def futex_wait(addr: int, expected: int, timeout: Optional[float]) -> None:
    """FUTEX_WAIT (shared) on the 32-bit word at ``addr`` while it holds
    ``expected``, for at most ``timeout`` seconds (None: no limit). Releases the GIL."""
    ts = None
    if timeout is not None:
        t = max(timeout, 0.0)
        ts = Timespec(int(t), int((t - int(t)) * 1e9))
    libc.syscall(ctypes.c_long(SYS_futex), ctypes.c_void_p(addr), ctypes.c_int(FUTEX_WAIT),
                 ctypes.c_int(expected), ctypes.byref(ts) if ts is not None else None,
                 None, ctypes.c_int(0))


def futex_wake(addr: int, n: int = INT_MAX) -> None:
    """FUTEX_WAKE (shared): wakes up to ``n`` sleepers on the word at ``addr``."""
    libc.syscall(ctypes.c_long(SYS_futex), ctypes.c_void_p(addr), ctypes.c_int(FUTEX_WAKE),
                 ctypes.c_int(n), None, None, ctypes.c_int(0))


# --- open-file-description locks ---------------------------------------------

# struct flock on 64-bit Linux: short l_type, short l_whence, off_t l_start,
# off_t l_len, pid_t l_pid (native alignment and 4 bytes of tail padding).
_FLOCK = "@hhqqi4x"


def ofd_trylock(fd: int, start: int) -> bool:
    """Takes an OFD write lock on byte ``start`` of ``fd``: False if someone else holds it."""
    try:
        fcntl.fcntl(fd, F_OFD_SETLK, struct.pack(_FLOCK, F_WRLCK, os.SEEK_SET, start, 1, 0))
        return True
    except OSError as e:
        if e.errno in (_errno.EAGAIN, _errno.EACCES):
            return False
        raise


def ofd_is_locked(fd: int, start: int) -> bool:
    """True unless the kernel says nobody holds an OFD lock on byte ``start``."""
    try:
        out = fcntl.fcntl(fd, F_OFD_GETLK, struct.pack(_FLOCK, F_WRLCK, os.SEEK_SET, start, 1, 0))
    except OSError:
        return True
    return struct.unpack(_FLOCK, out)[0] != F_UNLCK


# --- who may be adopted ---------------------------------------------------------

Owner = Union[str, int]


def check_owner(st: os.stat_result, owner: Owner, syscall: str, name: str) -> None:
    """Refuses (PermissionError EPERM) an existing object not owned by ``owner``:
    ``'self'`` (the effective uid), ``'any'``, or a uid."""
    if owner == "any":
        return
    want = os.geteuid() if owner == "self" else owner
    if st.st_uid != want:
        raise ipc_error(_errno.EPERM, syscall, name,
                        f"owned by uid {st.st_uid}, not {want} (pass owner='any' or owner={st.st_uid} to open it)")


def validate_owner(owner: object) -> Owner:
    """'self', 'any', or a uid (int >= 0)."""
    if owner in ("self", "any"):
        return owner  # type: ignore[return-value]
    if isinstance(owner, bool) or not isinstance(owner, int):
        raise TypeError(f"owner must be 'self', 'any' or a uid, not {owner!r}")
    if owner < 0 or owner > 0xFFFFFFFF:
        raise ValueError(f"owner uid out of range: {owner}")
    return owner


def validate_mode(mode: object) -> int:
    """Permission bits 0..0o777."""
    if isinstance(mode, bool) or not isinstance(mode, int):
        raise TypeError(f"mode must be an int, not {type(mode).__name__}")
    if mode < 0 or mode > 0o777:
        raise ValueError(f"mode must be within 0 and 0o777, not {oct(mode)}")
    return mode


def validate_timeout(timeout: Optional[float]) -> Optional[float]:
    """None (forever) or seconds >= 0."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise TypeError(f"timeout must be a number of seconds or None, not {type(timeout).__name__}")
    if timeout != timeout or timeout < 0:
        raise ValueError(f"timeout must be >= 0, not {timeout!r}")
    return float(timeout)


def kind_at(path: str) -> str:
    """'file', 'none' or 'other': what lstat finds at ``path``."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return "none"
    except OSError as e:
        return "none" if e.errno == _errno.ENAMETOOLONG else "other"
    return "file" if stat.S_ISREG(st.st_mode) else "other"
