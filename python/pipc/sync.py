"""The rest of Python's ``synchronize`` module by name across processes, crash
safe, and shared with the Node side's classes of the same names:
:class:`Event`, :class:`Barrier`, :class:`RLock` and :class:`Condition`.

Event, Barrier and Condition each keep a segment of their own
(``/dev/shm/pipc.NAME.event``, ``.barrier``, ``.cond``; see
:mod:`pipc._segment`); an RLock is a crash-safe Lock at
``/dev/shm/pipc.NAME.rlock`` (see :mod:`pipc._robust`). A process that dies
by any means, SIGKILL included, neither hangs the others nor keeps a lock: a
dead Barrier party breaks the barrier within a second, a dead RLock owner's
lock comes back, a dead Condition waiter is skipped by ``notify``.

Times are seconds (as in :mod:`threading`). A handle belongs to the process
that opened it: after ``fork()`` open new ones in the child.
"""
from __future__ import annotations

import errno as _errno
import functools
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, TypeVar, Union

from . import _libc as C
from ._closable import Closable
from ._errors import closed_error, ipc_error
from ._names import SYNC_RESERVED, sync_path, validate_name
from ._robust import NONE, TAKEN_RECOVERED, OwnerDead, RobustSegment
from ._segment import CHECK_S, H_FIRST, SLOT_COUNT, SyncSegment, base, unlink_segment
from .semaphore import Lock, _hybrid

__all__ = ["Event", "Barrier", "BrokenBarrierError", "BARRIER_MAX_PARTIES", "RLock", "Condition"]

T = TypeVar("T")

# Event header word: the state, 2 * seq + flag (futex word); one CAS per change.
EV_STATE = H_FIRST + 1

# Barrier header words.
BA_LOCK = H_FIRST  # internal lock: 0 free, else the holder's slot
BA_PARTIES = H_FIRST + 1
BA_COUNT = H_FIRST + 2  # parties arrived in the current round
BA_GEN = H_FIRST + 3  # round number (wraps; compared with != only)
BA_BROKEN = H_FIRST + 4  # 1: broken until reset()
BA_SEQ = H_FIRST + 5  # futex word: +1 at every round end, break and reset
BA_LOCKWAIT = H_FIRST + 6  # contenders asleep on the internal lock
# Barrier slot words.
BS_WAITING, BS_GEN, BS_RESET = 1, 2, 3
BARRIER_MAX_PARTIES = SLOT_COUNT

# Condition header word and slot words.
CO_TICKET = H_FIRST  # +1 per wait (wraps)
CS_STATE, CS_TICKET = 1, 2
IDLE, WAITING, NOTIFIED = 0, 1, 2


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _validate_bool(v: object, arg: str) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"{arg} must be a bool, not {type(v).__name__}")
    return v


def _open_args(create: object, exclusive: object, mode: object, owner: object) -> Tuple[bool, bool, int, C.Owner]:
    return (_validate_bool(create, "create"), _validate_bool(exclusive, "exclusive"), C.validate_mode(mode),
            C.validate_owner(owner))


# --- Event -------------------------------------------------------------------


class Event(Closable):
    """A flag that processes (Node or Python) wait for, found by name: Python's
    ``threading.Event`` / ``multiprocessing.Event``.

    >>> go = Event("start")
    >>> go.wait()      # in every worker
    >>> go.set()       # in the coordinator: they all run

    Args:
        name: ``"start"`` or ``"/start"`` (the same object).
        create: create it (clear) if missing, else FileNotFoundError.
        exclusive: FileExistsError if it exists.
        mode: permission bits of an Event this call creates (umask applies).
        owner: whose existing Event may be opened: ``'self'`` (the effective
            uid), ``'any'``, or a uid; another's is a PermissionError.

    Any number of threads may wait on one handle.
    """

    def __init__(self, name: str, *, create: bool = True, exclusive: bool = False, mode: int = 0o600,
                 owner: C.Owner = "self") -> None:
        self._seg: Optional[SyncSegment] = None
        self._name = validate_name(name, "name", SYNC_RESERVED)
        cr, ex, md, ow = _open_args(create, exclusive, mode, owner)
        self._seg = SyncSegment(self._name, sync_path(self._name, "event"), "event", cr, ex, md, ow)

    @property
    def name(self) -> str:
        """The name with its leading slash."""
        return self._name

    @property
    def closed(self) -> bool:
        return self._seg is None or self._seg.closed

    def _s(self, syscall: str) -> SyncSegment:
        seg = self._seg
        if seg is None or seg.closed:
            raise closed_error("Event", syscall, self._name)
        return seg

    def is_set(self) -> bool:
        """True while the flag is set."""
        return self._s("load").ld(EV_STATE) & 1 == 1

    def set(self) -> None:
        """Sets the flag and wakes every waiter in every process: the state goes
        from 2k (clear) to 2k + 3 (set, seq + 1) in one CAS. A setter killed
        before it wakes leaves the flag set, which sleeping waiters see within
        250 ms."""
        seg = self._s("futex")
        while True:
            s = seg.ld(EV_STATE)
            if s & 1:
                return
            if seg.cas(EV_STATE, s, _i32(s + 3)) == s:
                break
        seg.wake(EV_STATE)

    def clear(self) -> None:
        """Clears the flag (2k + 1 to 2k + 2)."""
        seg = self._s("store")
        while True:
            s = seg.ld(EV_STATE)
            if not s & 1 or seg.cas(EV_STATE, s, _i32(s + 1)) == s:
                return

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Blocks until the flag is set: True if it was set when the wait began
        or at any moment during it (also if cleared again since), False when
        ``timeout`` seconds passed first."""
        timeout = C.validate_timeout(timeout)
        seg = self._s("futex")
        s0 = seg.ld(EV_STATE)
        if s0 & 1:
            return True
        # s0 is even (clear): the only way out of it is a set. != only: the word wraps.
        r = seg.wait_until(EV_STATE, lambda: True if seg.ld(EV_STATE) != s0 else None, timeout, "Event")
        return r is True

    def close(self) -> None:
        """Closes this handle; a thread waiting on it raises EBADF. Idempotent."""
        if self._seg is not None:
            self._seg.close()

    def _unlink_self(self) -> None:
        unlink_segment(sync_path(self._name, "event"), self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        n = validate_name(name, "name", SYNC_RESERVED)
        unlink_segment(sync_path(n, "event"), n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``ev.unlink()`` / ``Event.unlink(name)``: removes the name (FileNotFoundError if
    there is none); open handles keep working."""

    def __enter__(self) -> "Event":
        return self

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("set" if self.is_set() else "unset")
        return f"<Event {self._name!r} {state}>"


# --- Barrier -----------------------------------------------------------------


class BrokenBarrierError(threading.BrokenBarrierError):
    """The barrier is, or became during the wait, broken: abort(), reset(), a
    party's timeout, a failed action, or a party that died waiting. A
    subclass of :class:`threading.BrokenBarrierError`."""


class Barrier(Closable):
    """A barrier for ``parties`` processes (Node or Python), found by name:
    Python's ``threading.Barrier`` / ``multiprocessing.Barrier``.

    >>> start = Barrier("bench-start", 8)
    >>> start.wait()   # all 8 workers go on together

    Args:
        name: the name.
        parties: how many parties each round needs (1-256). Required to create
            it; an existing Barrier of another size is an IPCError EINVAL;
            None opens the existing one whatever its size.
        action: runs once per round, in the process whose arrival completes
            it, before any party is released; if it raises, the barrier
            breaks and that party's wait raises its exception.
        timeout: the default timeout of :meth:`wait`, in seconds.
        create, exclusive, mode, owner: as for :class:`Event`.

    Threads may share a handle: each wait takes a slot of its own (a further
    one locked through the handle's descriptor), so every waiting thread is
    one party, as with ``threading.Barrier``. A party that dies or closes its
    handle while waiting breaks the barrier for everyone within a second.
    """

    def __init__(self, name: str, parties: Optional[int] = None, action: Optional[Callable[[], Any]] = None,
                 timeout: Optional[float] = None, *, create: bool = True, exclusive: bool = False,
                 mode: int = 0o600, owner: C.Owner = "self") -> None:
        self._seg: Optional[SyncSegment] = None
        self._name = validate_name(name, "name", SYNC_RESERVED)
        if parties is not None:
            if isinstance(parties, bool) or not isinstance(parties, int):
                raise TypeError(f"parties must be an int, not {type(parties).__name__}")
            if not 1 <= parties <= BARRIER_MAX_PARTIES:
                raise ValueError(f"parties must be within 1 and {BARRIER_MAX_PARTIES}, not {parties}")
        if action is not None and not callable(action):
            raise TypeError("action must be callable")
        self._action = action
        self._timeout = C.validate_timeout(timeout)
        cr, ex, md, ow = _open_args(create, exclusive, mode, owner)
        self._next_check = 0.0
        path = sync_path(self._name, "barrier")
        if parties is None:
            if cr and ex:
                raise TypeError("parties is required to create a Barrier")
            try:
                self._seg = SyncSegment(self._name, path, "barrier", False, False, md, ow)
            except FileNotFoundError:
                if cr:
                    raise TypeError(f"parties is required to create a Barrier ('{self._name}' does not exist)") from None
                raise
        else:
            seg = SyncSegment(self._name, path, "barrier", cr, ex, md, ow, {BA_PARTIES: parties})
            there = seg.ld(BA_PARTIES)
            if there != parties:
                seg.close()
                raise ipc_error(_errno.EINVAL, "open", self._name,
                                f"'{self._name}' is a Barrier of {there} parties, not {parties}")
            self._seg = seg
        self._took_slot(self._seg.slot)

    def _took_slot(self, sid: int) -> None:
        """A previous owner of slot ``sid`` that died mid-wait left its marks; one
        that died holding the internal lock left the slot's number in it."""
        seg = self._seg
        assert seg is not None
        seg.st(base(sid) + BS_WAITING, 0)
        if seg.cas(BA_LOCK, sid, sid) == sid:
            self._break_locked()
            seg.unlock(BA_LOCK, BA_LOCKWAIT)
            seg.wake(BA_SEQ)

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._seg is None or self._seg.closed

    def _s(self, syscall: str) -> SyncSegment:
        seg = self._seg
        if seg is None or seg.closed:
            raise closed_error("Barrier", syscall, self._name)
        return seg

    @property
    def parties(self) -> int:
        """The number of parties each round needs."""
        return self._s("load").ld(BA_PARTIES)

    @property
    def n_waiting(self) -> int:
        """How many parties are waiting in the current round."""
        seg = self._s("load")
        if seg.ld(BA_BROKEN) == 1:
            return 0
        return min(seg.ld(BA_COUNT), seg.ld(BA_PARTIES))

    @property
    def broken(self) -> bool:
        """True while the barrier is broken (until :meth:`reset`)."""
        return self._s("load").ld(BA_BROKEN) == 1

    def _lock(self) -> None:
        seg = self._seg
        assert seg is not None
        if seg.lock(BA_LOCK, BA_LOCKWAIT):
            # Its holder died in the middle of an update: nobody can count on this round any more.
            self._break_locked()

    def _unlock(self) -> None:
        assert self._seg is not None
        self._seg.unlock(BA_LOCK, BA_LOCKWAIT)

    def _break_locked(self) -> None:
        seg = self._seg
        assert seg is not None
        seg.st(BA_BROKEN, 1)
        seg.add(BA_SEQ, 1)

    def abort(self) -> None:
        """Breaks the barrier: every waiting party, in every process, raises
        BrokenBarrierError; so do later waits until :meth:`reset`."""
        seg = self._s("futex")
        self._lock()
        self._break_locked()
        self._unlock()
        seg.wake(BA_SEQ)

    def reset(self) -> None:
        """Returns the barrier to its empty, unbroken state; parties waiting now
        raise BrokenBarrierError."""
        seg = self._s("futex")
        self._lock()
        gen = seg.ld(BA_GEN)
        waiting = seg.slot_words(BS_WAITING)
        gens = seg.slot_words(BS_GEN)
        for i in range(SLOT_COUNT):
            if waiting[i] == 1 and gens[i] == gen:
                seg.st(base(i + 1) + BS_RESET, 1)
        seg.st(BA_COUNT, 0)
        seg.st(BA_GEN, _i32(gen + 1))
        seg.st(BA_BROKEN, 0)
        seg.add(BA_SEQ, 1)
        self._unlock()
        seg.wake(BA_SEQ)

    def _check_dead(self, gen: int) -> None:
        """Breaks the barrier if a party of round ``gen`` died waiting in it (its
        slot's lock is gone). At most every 250 ms."""
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_S
        seg = self._seg
        assert seg is not None
        waiting = seg.slot_words(BS_WAITING)
        gens = seg.slot_words(BS_GEN)
        for i in range(SLOT_COUNT):
            sid = i + 1
            if waiting[i] != 1 or gens[i] != gen:
                continue
            if not seg.alive(sid):
                self._lock()
                if seg.ld(BA_GEN) == gen:
                    self._break_locked()
                self._unlock()
                seg.wake(BA_SEQ)
                return

    def _outcome(self, gen: int, mine: int) -> Optional[str]:
        """How round ``gen`` ended for the wait in the slot at word ``mine``
        ('ok', 'broken', 'reset'), or None while it goes on."""
        seg = self._seg
        assert seg is not None
        # The generation first: reset() stores our reset mark before it moves
        # the generation, so a moved generation read here comes with the mark.
        if seg.ld(BA_GEN) != gen:
            return "reset" if seg.ld(mine + BS_RESET) == 1 else "ok"
        if seg.ld(mine + BS_RESET) == 1:
            return "reset"
        if seg.ld(BA_BROKEN) == 1:
            return "broken"
        self._check_dead(gen)
        return None

    def _arrive(self, mine: int) -> Tuple[str, int, int, bool]:
        """Joins the round: ('broken', ...), ('wait', 0, gen, False) while a round is
        being released, or ('in', index, gen, last)."""
        seg = self._seg
        assert seg is not None
        self._lock()
        if seg.ld(BA_BROKEN) == 1:
            self._unlock()
            return ("broken", 0, 0, False)
        gen = seg.ld(BA_GEN)
        count = seg.ld(BA_COUNT)
        parties = seg.ld(BA_PARTIES)
        if count >= parties:
            self._unlock()
            return ("wait", 0, gen, False)
        seg.st(mine + BS_GEN, gen)
        seg.st(mine + BS_RESET, 0)
        seg.st(mine + BS_WAITING, 1)
        seg.st(BA_COUNT, count + 1)
        self._unlock()
        return ("in", count, gen, count + 1 == parties)

    def _release(self, gen: int) -> bool:
        """The last party in: ends round ``gen`` (unless it was broken meanwhile)."""
        seg = self._seg
        assert seg is not None
        self._lock()
        if seg.ld(BA_BROKEN) == 1 or seg.ld(BA_GEN) != gen:
            self._unlock()
            return False
        seg.st(BA_COUNT, 0)
        seg.st(BA_GEN, _i32(gen + 1))
        seg.add(BA_SEQ, 1)
        self._unlock()
        seg.wake(BA_SEQ)
        return True

    def _broken(self, timed_out: bool = False) -> BrokenBarrierError:
        if timed_out:
            return BrokenBarrierError(f"the wait on Barrier '{self._name}' timed out, which broke it")
        return BrokenBarrierError(f"Barrier '{self._name}' is broken")

    def wait(self, timeout: Optional[float] = None) -> int:
        """Waits until all parties have called wait(); returns this party's index
        (0..parties-1, the order of arrival, unique in the round; the last one
        runs the action). Raises BrokenBarrierError if the barrier is or
        becomes broken; a wait that times out breaks it (as Python's)."""
        timeout = self._timeout if timeout is None else C.validate_timeout(timeout)
        seg = self._s("futex")
        sid = seg.claim_wait_slot("Barrier")
        if sid != seg.slot:
            self._took_slot(sid)
        mine = base(sid)
        due = None if timeout is None else time.monotonic() + timeout

        def left() -> Optional[float]:
            return None if due is None else max(0.0, due - time.monotonic())

        try:
            while True:
                kind, index, gen, last = self._arrive(mine)
                if kind == "broken":
                    raise self._broken()
                if kind == "wait":
                    g = gen
                    r = seg.wait_until(BA_SEQ, lambda: True if seg.ld(BA_GEN) != g or seg.ld(BA_BROKEN) == 1 else None,
                                       left(), "Barrier")
                    if r is None:
                        self.abort()
                        raise self._broken(True)
                    continue
                if last:
                    if self._action is not None:
                        try:
                            self._action()
                        except BaseException:
                            self.abort()
                            raise
                    if not self._release(gen):
                        raise self._broken()
                    return index
                try:
                    out = seg.wait_until(BA_SEQ, lambda: self._outcome(gen, mine), left(), "Barrier")
                except BaseException:
                    # Interrupted (KeyboardInterrupt, close): the round can never complete.
                    if not seg.closed:
                        self.abort()
                    raise
                if out == "ok":
                    return index
                if out is None:
                    self.abort()
                    raise self._broken(True)
                raise self._broken()
        finally:
            if not seg.closed:
                seg.st(mine + BS_WAITING, 0)
            seg.release_wait_slot(sid)

    def close(self) -> None:
        """Closes this handle (a party waiting on it leaves its round, which
        breaks it). Idempotent."""
        if self._seg is not None:
            self._seg.close()

    def _unlink_self(self) -> None:
        unlink_segment(sync_path(self._name, "barrier"), self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        n = validate_name(name, "name", SYNC_RESERVED)
        unlink_segment(sync_path(n, "barrier"), n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``b.unlink()`` / ``Barrier.unlink(name)``: removes the name."""

    def __enter__(self) -> "Barrier":
        return self

    def __repr__(self) -> str:
        if self.closed:
            return f"<Barrier {self._name!r} closed>"
        return f"<Barrier {self._name!r} parties={self.parties} waiting={self.n_waiting} broken={self.broken}>"


# --- RLock -------------------------------------------------------------------


class _Ownership:
    __slots__ = ("depth", "holder")

    def __init__(self, holder: "RLock") -> None:
        self.depth = 1
        self.holder = holder


# The owner of an RLock is this process and thread: name -> ownership, per thread.
# Every handle of one name in one thread shares the count (they are one lock).
_owned = threading.local()


def _owned_map() -> Dict[str, _Ownership]:
    m = getattr(_owned, "m", None)
    if m is None:
        m = _owned.m = {}
    return m  # type: ignore[no-any-return]


class RLock(Closable):
    """A re-entrant lock shared by name (Node and Python): Python's
    ``threading.RLock`` / ``multiprocessing.RLock``. The process and thread
    that holds it may acquire it again, and must release it as many times;
    anyone else waits.

    >>> r = RLock("config")
    >>> with r:
    ...     with r:          # re-entered
    ...         edit()

    The lock is a crash-safe Lock (``/dev/shm/pipc.NAME.rlock``): if its
    owner dies, by any means, it comes back within about 250 ms, and
    :attr:`recovered` tells the next owner who died.

    Args:
        name: the name. create, exclusive, mode, owner: as for :class:`Event`.
    """

    def __init__(self, name: str, *, create: bool = True, exclusive: bool = False, mode: int = 0o600,
                 owner: C.Owner = "self") -> None:
        self._rob: Optional[RobustSegment] = None
        self._name = validate_name(name, "name", SYNC_RESERVED)
        cr, ex, md, ow = _open_args(create, exclusive, mode, owner)
        self._recovered: Optional[OwnerDead] = None
        rob = RobustSegment(self._name, sync_path(self._name, "rlock"), cr, ex, md, 1, 1, owner=ow)
        if rob.max != 1:
            rob.close()
            is_ = "an unbounded semaphore" if rob.max == 0 else f"a semaphore bounded at {rob.max}"
            raise ipc_error(_errno.EINVAL, "open", self._name, f"'{self._name}' is {is_}, not an RLock (bounded at 1)")
        self._rob = rob

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._rob is None or self._rob._closed

    def _r(self, syscall: str) -> RobustSegment:
        rob = self._rob
        if rob is None or rob._closed:
            raise closed_error("RLock", syscall, self._name)
        return rob

    @property
    def count(self) -> int:
        """How many times this thread holds the lock (0: not the owner)."""
        own = _owned_map().get(self._name)
        return 0 if own is None else own.depth

    def _is_owned(self) -> bool:
        """True if this process and thread own the lock (as CPython's RLock)."""
        return self.count > 0

    def locked(self) -> bool:
        """True if anyone (any process, any thread) holds the lock."""
        return self._r("sem_getvalue").value == 0

    @property
    def recovered(self) -> Optional[OwnerDead]:
        """Set when the last acquire that took the lock got it from an owner that
        died holding it (what the lock guarded may be half-updated)."""
        return self._recovered

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """Acquires the lock, or re-enters it if this thread owns it. Returns
        False when ``block`` is False and it is taken, or ``timeout`` seconds
        passed first."""
        timeout = C.validate_timeout(timeout)
        rob = self._r("sem_clockwait")
        m = _owned_map()
        own = m.get(self._name)
        if own is not None:
            own.depth += 1
            return True
        if not block:
            timeout = 0.0
        r = rob.try_acquire()
        if r == NONE and timeout != 0.0:
            r = rob.wait(None if timeout is None else time.monotonic() + timeout)
        if r == NONE:
            return False
        self._recovered = rob.took_recovered() if r == TAKEN_RECOVERED else None
        m[self._name] = _Ownership(self)
        return True

    __enter__ = acquire

    def release(self) -> None:
        """Releases one level; the last one frees the lock for others. Raises
        RuntimeError when this thread does not own the lock, as Python's."""
        self._r("sem_post")
        m = _owned_map()
        own = m.get(self._name)
        if own is None:
            raise RuntimeError("cannot release un-acquired lock")
        own.depth -= 1
        if own.depth > 0:
            return
        del m[self._name]
        holder = own.holder._rob
        assert holder is not None
        holder.release(1)

    def __exit__(self, *exc: object) -> None:
        self.release()

    # CPython's Condition protocol (threading.Condition uses these when present).
    def _release_save(self) -> int:
        """Releases every level, returning how many there were."""
        m = _owned_map()
        own = m.get(self._name)
        if own is None:
            raise RuntimeError("cannot wait on un-acquired lock")
        del m[self._name]
        holder = own.holder._rob
        assert holder is not None
        holder.release(1)
        return own.depth

    def _acquire_restore(self, depth: int) -> None:
        """Takes the lock back (blocking) with ``depth`` levels."""
        self.acquire()
        _owned_map()[self._name].depth = depth

    def close(self) -> None:
        """Closes this handle. If it is the one holding the lock for this thread,
        the lock is given up (for the next owner, marked as recovered). Idempotent."""
        m = _owned_map()
        own = m.get(self._name)
        if own is not None and own.holder is self:
            del m[self._name]
        if self._rob is not None:
            self._rob.close()

    def __del__(self) -> None:
        # A handle still holding the lock keeps it until the process ends
        # (then waiters recover it): giving it back here could admit a second
        # owner while this one is still inside its critical section.
        try:
            if self._rob is not None and not self._rob._closed and self._rob.held() > 0:
                return
            self.close()
        except Exception:
            pass

    def _unlink_self(self) -> None:
        unlink_segment(sync_path(self._name, "rlock"), self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        n = validate_name(name, "name", SYNC_RESERVED)
        unlink_segment(sync_path(n, "rlock"), n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``r.unlink()`` / ``RLock.unlink(name)``: removes the name."""

    def __repr__(self) -> str:
        if self.closed:
            return f"<RLock {self._name!r} closed>"
        return f"<RLock {self._name!r} {'locked' if self.locked() else 'unlocked'} count={self.count}>"


# --- Condition ---------------------------------------------------------------


def _ticket_order(a: Tuple[int, int], b: Tuple[int, int]) -> int:
    return _i32(a[1] - b[1])  # tickets wrap: compare by difference


class Condition(Closable):
    """A condition variable shared by name (Node and Python): Python's
    ``threading.Condition`` / ``multiprocessing.Condition``.

    >>> c = Condition("jobs")
    >>> with c:                       # consumer
    ...     c.wait_for(ready)
    >>> with c:                       # producer
    ...     publish(); c.notify_all()

    Args:
        name: the name.
        lock: a :class:`RLock` or a :class:`pipc.Lock`; by default
            ``RLock(name)`` (the one Node's ``new Condition(name)`` uses),
            closed and unlinked with the Condition.
        create, exclusive, mode, owner: as for :class:`Event`.

    As in Python, :meth:`wait` and :meth:`notify` need the lock held
    (RuntimeError otherwise; with a Lock, which has no owner, "held" means
    held by someone). Wake-ups may be spurious (re-check, or use
    :meth:`wait_for`); notifications are not lost to waiters that timed out
    or died. Threads may share a handle (each wait takes a slot of its own).
    """

    def __init__(self, name: str, lock: Optional[Union[RLock, Lock]] = None, *, create: bool = True,
                 exclusive: bool = False, mode: int = 0o600, owner: C.Owner = "self") -> None:
        self._seg: Optional[SyncSegment] = None
        self._own_lock = False
        self._name = validate_name(name, "name", SYNC_RESERVED)
        if lock is not None and not isinstance(lock, (RLock, Lock)):
            raise TypeError(f"lock must be a pipc.RLock or a pipc.Lock, not {type(lock).__name__}")
        cr, ex, md, ow = _open_args(create, exclusive, mode, owner)
        seg = SyncSegment(self._name, sync_path(self._name, "condition"), "condition", cr, ex, md, ow)
        seg.st(seg.mine + CS_STATE, IDLE)  # a dead previous owner's wait
        try:
            self._lock: Union[RLock, Lock] = lock if lock is not None else RLock(self._name, create=cr, mode=md, owner=ow)
        except BaseException:
            seg.close()
            raise
        self._seg = seg
        self._own_lock = lock is None

    @property
    def name(self) -> str:
        return self._name

    @property
    def closed(self) -> bool:
        return self._seg is None or self._seg.closed

    @property
    def lock(self) -> Union[RLock, Lock]:
        """The lock this condition uses."""
        return self._lock

    def _s(self, syscall: str) -> SyncSegment:
        seg = self._seg
        if seg is None or seg.closed:
            raise closed_error("Condition", syscall, self._name)
        return seg

    def acquire(self, block: bool = True, timeout: Optional[float] = None) -> bool:
        """The lock's acquire()."""
        return self._lock.acquire(block, timeout)

    def release(self) -> None:
        """The lock's release()."""
        self._lock.release()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        self._lock.release()

    def _is_owned(self) -> bool:
        lk = self._lock
        return lk._is_owned() if isinstance(lk, RLock) else lk.locked()

    @property
    def n_waiting(self) -> int:
        """How many live waiters there are now, in every process."""
        seg = self._s("load")
        states = seg.slot_words(CS_STATE)
        return sum(1 for i, s in enumerate(states) if s == WAITING and seg.alive(i + 1))

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Releases the lock (every level of an RLock), sleeps until notified
        or ``timeout`` seconds pass, then holds the lock again. Returns False
        on timeout, else True (also when the timeout raced with a
        notification, which then counts as received)."""
        timeout = C.validate_timeout(timeout)
        seg = self._s("futex")
        if not self._is_owned():
            raise RuntimeError("cannot wait on un-acquired lock")
        sid = seg.claim_wait_slot("Condition")
        mine = base(sid)
        word = mine + CS_STATE
        try:
            seg.st(word, IDLE)
            seg.st(mine + CS_TICKET, seg.add(CO_TICKET, 1))
            seg.st(word, WAITING)
            lk = self._lock
            depth = lk._release_save() if isinstance(lk, RLock) else (lk.release() or 1)
            failure: Optional[BaseException] = None
            try:
                seg.wait_until(word, lambda: True if seg.ld(word) != WAITING else None, timeout, "Condition")
            except BaseException as e:
                failure = e
            if seg.closed:
                if failure is not None:
                    raise failure
                raise closed_error("Condition", "futex", self._name)
            notified = seg.cas(word, WAITING, IDLE) == NOTIFIED
            seg.st(word, IDLE)
            if isinstance(lk, RLock):
                lk._acquire_restore(depth)
            else:
                lk.acquire()
            if failure is not None:
                # Interrupted: a notification that reached us goes on to the next waiter.
                if notified:
                    self._notify(1)
                raise failure
            return notified
        finally:
            seg.release_wait_slot(sid)

    def wait_for(self, predicate: Callable[[], T], timeout: Optional[float] = None) -> T:
        """Waits until ``predicate()`` is true, re-checking after each wake-up,
        and returns its last value (false when ``timeout`` passed first), as
        Python's. The lock must be held; it is held when this returns."""
        if not callable(predicate):
            raise TypeError("predicate must be callable")
        timeout = C.validate_timeout(timeout)
        endtime: Optional[float] = None
        waittime = timeout
        result = predicate()
        while not result:
            if waittime is not None:
                if endtime is None:
                    endtime = time.monotonic() + waittime
                else:
                    waittime = endtime - time.monotonic()
                    if waittime <= 0:
                        break
            self.wait(waittime)
            result = predicate()
        return result

    def notify(self, n: int = 1) -> int:
        """Wakes up to ``n`` waiters, oldest first, in any process; returns how
        many were notified. Never waits: a waiter whose process died is
        cleared and skipped. RuntimeError without the lock."""
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be an int, not {type(n).__name__}")
        if n < 0:
            raise ValueError(f"n must be >= 0, not {n}")
        self._s("futex")
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        return self._notify(n)

    def notify_all(self) -> int:
        """Wakes every waiter; returns how many."""
        self._s("futex")
        if not self._is_owned():
            raise RuntimeError("cannot notify on un-acquired lock")
        return self._notify(-1)

    def _notify(self, n: int) -> int:
        """n < 0: all."""
        seg = self._seg
        assert seg is not None
        states = seg.slot_words(CS_STATE)
        tickets = seg.slot_words(CS_TICKET)
        waiting: List[Tuple[int, int]] = [(i + 1, tickets[i]) for i, s in enumerate(states) if s == WAITING]
        waiting.sort(key=functools.cmp_to_key(_ticket_order))
        done = 0
        for sid, _ in waiting:
            if 0 <= n <= done:
                break
            word = base(sid) + CS_STATE
            if not seg.alive(sid):
                seg.cas(word, WAITING, IDLE)
                continue
            if seg.cas(word, WAITING, NOTIFIED) != WAITING:
                continue  # it timed out meanwhile
            seg.wake(word, 1)
            done += 1
        return done

    def close(self) -> None:
        """Closes this handle (and the RLock it made itself). Idempotent."""
        if self._seg is not None:
            self._seg.close()
        if self._own_lock:
            self._lock.close()

    def _unlink_self(self) -> None:
        unlink_segment(sync_path(self._name, "condition"), self._name)
        if self._own_lock:
            self._lock.unlink()

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        n = validate_name(name, "name", SYNC_RESERVED)
        unlink_segment(sync_path(n, "condition"), n)
        try:
            unlink_segment(sync_path(n, "rlock"), n)
        except FileNotFoundError:
            pass  # made with a lock of the caller's

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``c.unlink()`` / ``Condition.unlink(name)``: removes the name and that of its
    default RLock."""

    def __del__(self) -> None:
        try:
            if self._own_lock and not self._lock.closed and isinstance(self._lock, RLock) and \
                    self._lock._rob is not None and not self._lock._rob._closed and self._lock._rob.held() > 0:
                if self._seg is not None:
                    self._seg.close()
                return
            self.close()
        except Exception:
            pass

    def __repr__(self) -> str:
        return f"<Condition {self._name!r} {'closed' if self.closed else f'lock={self._lock!r}'}>"
