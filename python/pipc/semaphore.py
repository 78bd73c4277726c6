"""Named semaphores: :class:`Semaphore`, :class:`BoundedSemaphore` and
:class:`Lock`, the same objects as the Node side's classes of those names.

Crash-safe by default (``/dev/shm/pipc.NAME.sem``, see :mod:`pipc._robust`):
units held by a process that dies, by any means, come back to the waiters
within about 250 ms, in Node or Python. ``robust=False`` is a plain POSIX
``sem_open`` semaphore (``/dev/shm/sem.NAME``), shared with posix_ipc and C,
whose dead holders nobody can recover. A name holds one kind: opening it as the
other kind raises :class:`FileExistsError` (an :class:`IPCError` ``EEXIST``)
naming the kind that is there.

A handle belongs to the process that opened it: after ``fork()`` open a new
one in the child (a crash-safe handle's slot is tied to its open file
description, which a forked child shares).
"""
from __future__ import annotations

import ctypes
import errno as _errno
import os
import time
from typing import Any, Optional

from . import _libc as C
from ._errors import closed_error, ipc_error
from ._names import PLAIN_SEM_RESERVED, ROBUST_SEM_RESERVED, plain_sem_path, robust_sem_path, validate_name
from ._robust import NONE, OVER_RELEASE, TAKEN_RECOVERED, OwnerDead, RobustSegment
from ._segment import SPIN_S, SpinGate

__all__ = ["Semaphore", "BoundedSemaphore", "Lock", "OwnerDead", "SEM_VALUE_MAX"]

SEM_VALUE_MAX = C.SEM_VALUE_MAX
CLOCK_MONOTONIC = 1

_sem = C.librt
_sem.sem_open.restype = ctypes.c_void_p
_sem.sem_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.c_uint]
for _f in ("sem_wait", "sem_trywait", "sem_post", "sem_close"):
    getattr(_sem, _f).argtypes = [ctypes.c_void_p]
_sem.sem_getvalue.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_int)]
_sem.sem_unlink.argtypes = [ctypes.c_char_p]
try:
    _sem.sem_clockwait.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.POINTER(C.Timespec)]
    _HAVE_CLOCKWAIT = True
except AttributeError:  # pragma: no cover - glibc < 2.30
    _HAVE_CLOCKWAIT = False
_sem.sem_timedwait.argtypes = [ctypes.c_void_p, ctypes.POINTER(C.Timespec)]


class _hybrid:
    """A method that works on the class (``Semaphore.unlink('jobs')``) and on an
    instance (``sem.unlink()``), as the Node side's static and instance unlink."""

    def __init__(self, cls_fn: Any, inst_fn: Any) -> None:
        self.cls_fn, self.inst_fn = cls_fn, inst_fn
        self.__doc__ = cls_fn.__doc__

    def __get__(self, obj: Any, owner: Any) -> Any:
        if obj is None:
            return self.cls_fn.__get__(owner, type(owner))
        return self.inst_fn.__get__(obj, owner)


def _kind_error(name: str, robust_there: bool) -> Exception:
    there = "a crash-safe semaphore (robust=True)" if robust_there else "a plain POSIX semaphore (robust=False)"
    return ipc_error(_errno.EEXIST, "open" if not robust_there else "sem_open", name,
                     f"{there} already exists at this name")


def _validate_count(v: object, arg: str, lo: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise TypeError(f"{arg} must be an int, not {type(v).__name__}")
    if v < lo or v > SEM_VALUE_MAX:
        raise ValueError(f"{arg} must be within {lo} and {SEM_VALUE_MAX}, not {v}")
    return v


class Semaphore:
    """A counting semaphore shared by name across processes (Node and Python).

    >>> jobs = Semaphore("transcode", 3)     # at most 3 at once, host-wide
    >>> with jobs:
    ...     transcode()

    Args:
        name: ``"jobs"`` or ``"/jobs"`` (the same object).
        value: initial value of a semaphore this call creates (ignored if it exists).
        create: create it if missing (else FileNotFoundError).
        exclusive: fail with FileExistsError if it exists.
        mode: permission bits of a semaphore this call creates (umask applies).
        owner: whose existing semaphore (either kind) may be opened: ``'self'``
            (the effective uid), ``'any'``, or a uid; another's is a
            PermissionError (``EPERM``), as on the Node side.
        robust: crash-safe (default) or a plain ``sem_open`` semaphore.
    """

    _bound: int = 0
    _strict: bool = False
    _is_lock: bool = False

    def __init__(self, name: str, value: int = 1, *, create: bool = True, exclusive: bool = False,
                 mode: int = 0o600, owner: C.Owner = "self", robust: bool = True) -> None:
        self._rob: Optional[RobustSegment] = None
        self._sem: Optional[int] = None
        self._closed = True
        if not isinstance(robust, bool):
            raise TypeError("robust must be a bool")
        self._name = validate_name(name, "name", ROBUST_SEM_RESERVED if robust else PLAIN_SEM_RESERVED)
        value = _validate_count(value, "value", 0)
        mode = C.validate_mode(mode)
        owner = C.validate_owner(owner)
        self._recovered: Optional[OwnerDead] = None
        bound = self._bound
        if robust:
            if C.kind_at(plain_sem_path(self._name)) != "none":
                raise _kind_error(self._name, False)
            rob = RobustSegment(self._name, robust_sem_path(self._name), create, exclusive, mode, value, bound, owner)
            if bound and self._strict and rob.max != bound:
                rob.close()
                is_ = "an unbounded semaphore" if rob.max == 0 else f"a semaphore bounded at {rob.max}"
                lock = " (a Lock)" if self._is_lock else ""
                raise ipc_error(_errno.EINVAL, "open", self._name, f"'{self._name}' is {is_}, not bounded at {bound}{lock}")
            self._rob = rob
            self._gate = SpinGate()
            self._closed = False
            return
        if C.kind_at(robust_sem_path(self._name)) != "none":
            raise _kind_error(self._name, True)
        if not (create and exclusive):
            try:
                st = os.lstat(plain_sem_path(self._name))
            except FileNotFoundError:
                st = None
            if st is not None:
                C.check_owner(st, owner, "sem_open", self._name)
        flags = (os.O_CREAT if create else 0) | (os.O_EXCL if create and exclusive else 0)
        h = _sem.sem_open(self._name.encode(), flags, mode, value)
        if not h:
            raise ipc_error(ctypes.get_errno(), "sem_open", self._name)
        self._sem = h
        self._closed = False
        if bound and self._plain_value() > bound:
            v = self._plain_value()
            self.close()
            raise ipc_error(_errno.EINVAL, "sem_open", self._name, f"'{self._name}' has value {v}, more than the bound {bound}")

    # -- state -----------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name as the OS sees it, with its leading slash (``'/jobs'``)."""
        return self._name

    @property
    def robust(self) -> bool:
        """True for a crash-safe semaphore, False for a plain POSIX one."""
        return self._rob is not None or self._sem is None and not self._closed

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def _plain_value(self) -> int:
        v = ctypes.c_int()
        C.check(_sem.sem_getvalue(self._sem, ctypes.byref(v)), "sem_getvalue", self._name)
        return v.value

    @property
    def value(self) -> int:
        """The current value: how many more acquires would succeed at once."""
        if self._closed:
            raise closed_error("semaphore", "sem_getvalue", self._name)
        if self._rob is not None:
            return self._rob.value
        return self._plain_value()

    def get_value(self) -> int:
        """Same as :attr:`value` (multiprocessing's spelling)."""
        return self.value

    @property
    def recovered(self) -> Optional[OwnerDead]:
        """Set (crash-safe only) when the last acquire got a unit whose holder
        died holding it, as pthread's EOWNERDEAD: what it guarded may be half-updated."""
        return self._recovered

    # -- acquire / release ---------------------------------------------------

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """Takes one unit. Returns True when taken, False when ``block`` is False
        and none is free, or when ``timeout`` seconds passed first."""
        timeout = C.validate_timeout(timeout)
        if self._closed:
            raise closed_error("semaphore", "sem_trywait", self._name)
        if not block:
            timeout = 0.0
        rob = self._rob
        if rob is not None:
            r = rob.try_acquire()
            if r == NONE and timeout != 0.0 and SPIN_S > 0:
                r = self._spin(rob, timeout)
            if r == NONE and timeout != 0.0:
                r = rob.wait(None if timeout is None else time.monotonic() + timeout)
            if r == NONE:
                return False
            self._recovered = rob.took_recovered() if r == TAKEN_RECOVERED else None
            return True
        return self._plain_acquire(timeout)

    def _spin(self, rob: RobustSegment, timeout: Optional[float]) -> int:
        """Before a crash-safe wait sleeps: watches the value word for up to
        SPIN_S (POSIX_IPC_WAIT_SPIN_US, as the Node side) and tries when a unit
        is there, so a peer that releases at once is caught without a futex
        sleep and wake. Gated as Node's spin (SpinGate)."""
        gate = self._gate
        if not gate.open():
            return NONE
        r = rob.spin(SPIN_S if timeout is None else min(SPIN_S, timeout))
        if r != NONE:
            gate.hit()
        else:
            gate.miss()
        return r

    def _plain_acquire(self, timeout: Optional[float]) -> bool:
        h = self._sem
        while True:
            if _sem.sem_trywait(h) == 0:
                return True
            e = ctypes.get_errno()
            if e == _errno.EINTR:
                continue
            if e != _errno.EAGAIN:
                raise ipc_error(e, "sem_trywait", self._name)
            break
        if timeout == 0.0:
            return False
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if deadline is None:
                r = _sem.sem_wait(h)
                syscall = "sem_wait"
            elif _HAVE_CLOCKWAIT:
                t = deadline - time.monotonic() + time.clock_gettime(CLOCK_MONOTONIC)
                t = max(t, 0.0)
                ts = C.Timespec(int(t), int((t - int(t)) * 1e9))
                r = _sem.sem_clockwait(h, CLOCK_MONOTONIC, ctypes.byref(ts))
                syscall = "sem_clockwait"
            else:  # pragma: no cover
                r = _sem.sem_timedwait(h, ctypes.byref(C.realtime_deadline(deadline - time.monotonic())))
                syscall = "sem_timedwait"
            if r == 0:
                return True
            e = ctypes.get_errno()
            if e == _errno.EINTR:
                continue  # a Python signal handler has run (KeyboardInterrupt propagates)
            if e == _errno.ETIMEDOUT:
                return False
            raise ipc_error(e, syscall, self._name)

    def try_acquire(self) -> bool:
        """Takes one unit if one is free right now; never waits."""
        return self.acquire(False)

    def release(self, n: int = 1) -> None:
        """Gives back ``n`` units, waking waiters in any process (Node or Python)."""
        if self._closed:
            raise closed_error("semaphore", "sem_post", self._name)
        n = _validate_count(n, "n", 1)
        if self._rob is not None:
            if self._rob.release(n) == OVER_RELEASE:
                raise ValueError(f"Semaphore released too many times: {self._name} is bounded at {self._rob.max}")
            return
        self._before_release(n)
        for _ in range(n):
            C.check(_sem.sem_post(self._sem), "sem_post", self._name)

    def _before_release(self, n: int) -> None:
        """Subclasses check the bound of a plain semaphore here."""

    def __enter__(self) -> "Semaphore":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    # -- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        """Closes this handle (a crash-safe one gives back what it still holds).
        The semaphore itself lives on until unlinked. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._rob is not None:
            self._rob.close()
        elif self._sem is not None:
            _sem.sem_close(self._sem)
            self._sem = None

    def _unlink_self(self) -> None:
        if self._rob is not None:
            try:
                os.unlink(robust_sem_path(self._name))
            except OSError as e:
                raise ipc_error(e.errno or _errno.EIO, "unlink", self._name) from None
        else:
            C.check(_sem.sem_unlink(self._name.encode()), "sem_unlink", self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        """Removes the semaphore ``name``, of either kind. FileNotFoundError if there is none."""
        n = validate_name(name, "name", PLAIN_SEM_RESERVED)
        removed = False
        if C.kind_at(robust_sem_path(n)) != "none":
            try:
                os.unlink(robust_sem_path(n))
            except OSError as e:
                raise ipc_error(e.errno or _errno.EIO, "unlink", n) from None
            removed = True
        if not removed or C.kind_at(plain_sem_path(n)) != "none":
            C.check(_sem.sem_unlink(n.encode()), "sem_unlink", n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``sem.unlink()`` removes this semaphore's name; ``Semaphore.unlink(name)``
    removes the name of either kind. Open handles keep working until closed."""

    def __del__(self) -> None:
        # A handle still holding units keeps them until the process ends (then
        # waiters recover them): giving them back here could admit a second
        # holder while this process is still inside the critical section.
        try:
            if self._rob is not None and not self._closed and self._rob.held() > 0:
                return
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"value={self.value}"
        return f"<{type(self).__name__} {self._name!r} {'robust' if self._rob else 'plain'} {state}>"


class BoundedSemaphore(Semaphore):
    """A semaphore that refuses to be released above its bound (Python's
    ``BoundedSemaphore``): :meth:`release` past ``max_value`` raises ValueError
    and changes nothing (crash-safe: the bound is stored in the segment and
    checked under its lock; plain: value then post, as CPython does).

    Args:
        max_value: the bound (default: ``value``). An existing crash-safe
            semaphore must have this bound when it is given explicitly.
    """

    def __init__(self, name: str, value: int = 1, *, max_value: Optional[int] = None, create: bool = True,
                 exclusive: bool = False, mode: int = 0o600, owner: C.Owner = "self", robust: bool = True) -> None:
        value = _validate_count(value, "value", 0)
        if max_value is None:
            max_value = max(value, 1)
        else:
            self._strict = True
        max_value = _validate_count(max_value, "max_value", 1)
        if value > max_value:
            raise ValueError(f"value ({value}) must not exceed max_value ({max_value})")
        self._bound = max_value
        super().__init__(name, value, create=create, exclusive=exclusive, mode=mode, owner=owner, robust=robust)

    @property
    def max_value(self) -> int:
        """The bound (for a crash-safe semaphore, the one stored with it)."""
        return (self._rob.max if self._rob is not None else 0) or self._bound

    def _before_release(self, n: int) -> None:
        if self.value + n > self._bound:
            raise ValueError(f"Semaphore released too many times: {self._name} is bounded at {self._bound}")


class Lock(BoundedSemaphore):
    """A cross-process mutual-exclusion lock: a semaphore bounded at 1.

    >>> with Lock("db-migrate"):
    ...     migrate()                 # one process at a time, host-wide

    Unlike a thread lock it has no owner: any process may release it.
    Releasing an unlocked Lock raises ValueError.
    """

    _is_lock = True

    def __init__(self, name: str, *, create: bool = True, exclusive: bool = False, mode: int = 0o600,
                 owner: C.Owner = "self", robust: bool = True) -> None:
        super().__init__(name, 1, max_value=1, create=create, exclusive=exclusive, mode=mode, owner=owner, robust=robust)

    def locked(self) -> bool:
        """True if the lock is held (by any process)."""
        return self.value == 0

    @property
    def token(self) -> Optional[int]:
        """The fencing token of the current holder (crash-safe only): the 64-bit
        acquire counter, read while holding the lock."""
        return self._rob.holder_token() if self._rob is not None else None

    def __enter__(self) -> "Lock":
        self.acquire()
        return self
