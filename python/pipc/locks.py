"""Web Locks across processes: the Node side's ``locks`` (``navigator.locks``'s
shape) by name, from Python.

>>> from pipc import locks
>>> with locks.request("cache", mode="shared") as lock:     # read
...     ...
>>> with locks.request("cache") as lock:                    # write: exclusive
...     ...
>>> locks.query()      # LockManagerSnapshot(held=[LockInfo(...)], pending=[...])

A lock name means the same lock in every process on the host, Node or Python:
both speak docs/api.md "Web Locks across processes: segment layout and
protocol" (``/dev/shm/pipc.ENC.lock``, the crash-safe semaphore's geometry,
slots, internal lock and undo journal, kind 2), so their requests join one
queue, granted in the order they were made and by the same mode rules. A
process that dies by any means loses its locks and waiting requests within
about 250 ms, and the next request is granted.

Within a process, requests for one name (from any thread) queue here in
order; the process's slot publishes only the oldest one (and the next one,
published in its place when it is granted), as the Node side does per
environment.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import functools
import mmap
import os
import struct
import threading
import time
from typing import Dict, List, NamedTuple, Optional, Tuple

from . import _libc as C
from ._errors import closed_error, ipc_error
from ._names import NAME_MAX, SHM_DIR
from ._robust import (CHECK_S, HEADER_BYTES, KIND_SEMAPHORE, LAYOUT_VERSION, MAGIC_VALUE, SEGMENT_BYTES, SLOT_BYTES,
                      SLOT_COUNT, SLOT_WORDS, TOTAL_WORDS, CrashSafeWords, _slot_word)
from ._segopen import claim_slot, open_segment

__all__ = ["request", "query", "LockManager", "WebLock", "LockInfo", "LockManagerSnapshot", "AbortError",
           "NotSupportedError", "lock_file_name", "parse_lock_file_name"]

# Header words (the crash-safe semaphore's geometry; docs/api.md).
H_MAGIC, H_VERSION, H_KIND, H_MAX, H_SLOTS, H_SLOTBASE, H_LOCK, H_EXCLUSIVE, H_SEQ, H_WAITERS = range(10)
H_TICKET, H_DEADPID, H_DEADAT, H_SHARED = 12, 13, 14, 16
# Slot words.
S_PID, S_HELD, S_HELD_MODE, S_JOURNAL, S_ENTRIES = 0, 1, 2, 3, 4
S_PEND_MODE, S_PEND_TICKET, S_STEAL_GEN, S_PEND_SHARED, S_PEND_EXCL, S_NEXT_MODE, S_NEXT_TICKET = range(16, 23)

KIND_LOCK = 2

SHARED, EXCLUSIVE = 1, 2
_MODE_NAME = {SHARED: "shared", EXCLUSIVE: "exclusive"}
_MODE_OF = {"shared": SHARED, "exclusive": EXCLUSIVE}
LOCK_RESERVED = len("pipc.") + len(".lock")
INT_MAX = 2**31 - 1

_Words = ctypes.c_int32 * TOTAL_WORDS


class AbortError(Exception):
    """The lock was stolen (``steal=True`` in another request) while this one
    held it: raised when its ``with`` block ends (Node: the request's promise
    rejects with AbortError). The block itself is never interrupted."""


class NotSupportedError(ValueError):
    """The Web Locks spec's NotSupportedError: a name starting with ``-``,
    ``steal`` with ``if_available`` or with mode ``'shared'``, ``timeout`` with
    ``steal`` or ``if_available``."""


class WebLock(NamedTuple):
    """A granted lock, as the ``with`` statement's target."""

    name: str
    mode: str
    """``'exclusive'`` or ``'shared'``."""


class LockInfo(NamedTuple):
    """One held lock or waiting request in :func:`query`'s snapshot."""

    name: str
    mode: str
    client_id: str
    """The holder's or requester's process id, as a string (the spec's opaque clientId)."""
    pid: int


class LockManagerSnapshot(NamedTuple):
    """What :func:`query` returns, as the spec's LockManagerSnapshot."""

    held: List[LockInfo]
    pending: List[LockInfo]


def _before(a: int, b: int) -> bool:
    """Ticket ``a`` is older than ``b`` (int32 tickets wrap: the sign of the difference)."""
    return ((a - b) & 0xFFFFFFFF) >= 0x80000000


def lock_file_name(name: str) -> str:
    """The /dev/shm file name of the lock ``name``: ``pipc.ENC.lock`` with ``%``,
    ``/`` and NUL written ``%25``, ``%2F``, ``%00``. ValueError past NAME_MAX."""
    enc = name.replace("%", "%25").replace("/", "%2F").replace("\0", "%00")
    try:
        size = len(enc.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f'The "name" argument must be encodable as UTF-8 (no lone surrogates): {name!r}') from None
    if size > NAME_MAX - LOCK_RESERVED:
        raise ValueError(f'The "name" argument is {size} bytes long (encoded); at most '
                         f'{NAME_MAX - LOCK_RESERVED} are allowed')
    return f"pipc.{enc}.lock"


def parse_lock_file_name(file: str) -> Optional[str]:
    """The lock name a /dev/shm file name stands for, or None if it is not a lock segment's."""
    if not file.startswith("pipc.") or not file.endswith(".lock") or len(file) < len("pipc..lock"):
        return None
    enc = file[len("pipc."):-len(".lock")]
    out = []
    i = 0
    while i < len(enc):
        c = enc[i]
        if c == "%":
            code = enc[i + 1:i + 3]
            if code not in ("25", "2F", "00"):
                return None
            out.append({"25": "%", "2F": "/", "00": "\0"}[code])
            i += 3
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _init_header(mm: mmap.mmap) -> None:
    # magic, version, kind, max, slots, slotBase; value (word 7) and initial (16) stay 0.
    struct.pack_into("<5i", mm, 4, LAYOUT_VERSION, KIND_LOCK, 0, SLOT_COUNT, HEADER_BYTES)
    struct.pack_into("<i", mm, 0, MAGIC_VALUE)  # last


def _nonzero(col: "list[int]", own: int) -> "list[int]":
    """Indices of the nonzero entries. ``count`` runs in C: most columns are
    all zero, or nonzero only at ``own`` (our slot's index), found without a
    Python loop over 512 entries."""
    nz = len(col) - col.count(0)
    if nz == 0:
        return []
    if nz == 1 and col[own] != 0:
        return [own]
    return [i for i, v in enumerate(col) if v]


class _LockSegment(CrashSafeWords):
    """One open lock segment and the slot this process owns in it. Every
    method but ``ticket`` and ``note`` runs under the segment's internal lock
    with the undo journal, as native/sync/weblocks.cc; callers serialise them
    (the name's thread lock)."""

    _LOCK_SLEEP_S = 0.001

    def __init__(self, name: str, create: bool, permissions: int, owner: C.Owner) -> None:
        self.name = name
        self.closed = True
        self._fd = -1
        self._mm: Optional[mmap.mmap] = None
        path = f"{SHM_DIR}/{lock_file_name(name)}"
        fd, mm, self.created = open_segment(path, name, create, False, permissions, owner, SEGMENT_BYTES,
                                            _init_header, "lock segment")
        self._fd, self._mm = fd, mm
        self._w = _Words.from_buffer(mm)
        self._base = ctypes.addressof(self._w)
        try:
            magic, version, kind, _, slots, slotbase = struct.unpack_from("<6i", mm, 0)
            if magic != MAGIC_VALUE or version != LAYOUT_VERSION or slots != SLOT_COUNT or slotbase != HEADER_BYTES:
                raise ipc_error(_errno.EINVAL, "mmap", name, f"'{path}' has no posix-ipc crash-safe header")
            if kind != KIND_LOCK:
                what = "a crash-safe semaphore's segment" if kind == KIND_SEMAPHORE else f"a segment of kind {kind}"
                raise ipc_error(_errno.EINVAL, "mmap", name, f"'{path}' is {what}, not a lock segment")
            self.slot = claim_slot(fd, HEADER_BYTES, SLOT_BYTES, SLOT_COUNT, name)
        except BaseException:
            self._unmap()
            raise
        self.closed = False
        self._rec = _slot_word(self.slot)
        self.next_check = 0.0
        # Whatever a dead previous owner of this slot left is undone or dropped,
        # also if it died holding the internal lock (which then holds our id).
        if not C.cas32(self._addr(H_LOCK), self.slot, self.slot):
            self._lock_internal()
        changed = self._recover_slot(self.slot)
        self._w[self._rec + S_PID] = os.getpid()
        self._w[self._rec + S_HELD_MODE] = 0
        self._unlock()
        if changed:
            C.futex_wake(self._addr(H_SEQ))

    # -- words ---------------------------------------------------------------

    def _column(self, j: int) -> "list[int]":
        """Word ``j`` of every slot (one slice of the mapping)."""
        first = HEADER_BYTES // 4 + j
        return self._w[first:first + SLOT_WORDS * SLOT_COUNT:SLOT_WORDS]

    def _wake_all(self) -> None:
        """Sleepers count themselves in ``waiters`` before they read ``seq``."""
        if C.load32(self._addr(H_WAITERS)) > 0:
            C.add32(self._addr(H_SEQ), 1)
            C.futex_wake(self._addr(H_SEQ))

    # -- under the internal lock ---------------------------------------------------

    def _recover_slot(self, sid: int) -> int:
        """Rolls slot ``sid`` back, then drops its locks and waiting request
        (journaled in our slot). 1 if anything changed (seq moved on)."""
        self._rollback(sid)
        w = self._w
        rec = _slot_word(sid)
        changed = 0
        if w[rec + S_HELD] != 0 or w[rec + S_PEND_MODE] != 0:
            self._tx([rec + S_HELD, rec + S_HELD_MODE, rec + S_PEND_MODE, H_EXCLUSIVE, H_SHARED, H_DEADPID])
            if w[H_EXCLUSIVE] == sid:
                w[H_EXCLUSIVE] = 0
            if w[rec + S_HELD_MODE] == SHARED:
                w[H_SHARED] = max(0, w[H_SHARED] - w[rec + S_HELD])
            if w[rec + S_HELD] != 0:
                w[H_DEADPID] = w[rec + S_PID]
                struct.pack_into("<d", self._mm, H_DEADAT * 4, time.time() * 1e3)  # type: ignore[arg-type]
            w[rec + S_HELD] = 0
            w[rec + S_HELD_MODE] = 0
            w[rec + S_PEND_MODE] = 0
            self._end()
            C.add32(self._addr(H_SEQ), 1)
            changed = 1
        w[rec + S_PEND_SHARED] = 0
        w[rec + S_PEND_EXCL] = 0
        w[rec + S_NEXT_MODE] = 0
        if sid != self.slot:
            w[rec + S_PID] = 0
        return changed

    def _recover_dead(self) -> int:
        """Recovers every dead slot that holds, waits or has a journal."""
        busy = set()
        for j in (S_HELD, S_PEND_MODE, S_JOURNAL, S_PEND_SHARED, S_PEND_EXCL):
            busy.update(_nonzero(self._column(j), self.slot - 1))
        n = 0
        for i in sorted(busy):
            sid = i + 1
            if sid != self.slot and not self._alive(sid):
                n += self._recover_slot(sid)
        return n

    def _first(self, ticket: int) -> Tuple[bool, int]:
        """Is our request with this ticket the oldest one waiting? A dead slot in
        the way is recovered on the spot. Returns (first, changed)."""
        changed = 0
        waiting = _nonzero(self._column(S_PEND_MODE), self.slot - 1)
        tickets = self._column(S_PEND_TICKET) if waiting else []
        for i in waiting:
            sid = i + 1
            if sid == self.slot or not _before(tickets[i], ticket):
                continue
            if self._alive(sid):
                return False, changed
            changed += self._recover_slot(sid)
        return True, changed

    def _grant(self, mode: int, ticket: int, head: bool, publish: bool) -> Tuple[bool, int]:
        """Grants (mode, ticket) to our slot if it may have it. ``head``: it is
        the request our slot publishes; granted, the next one (words 21-22) is
        published in its place in the same journaled change. Not granted and
        ``publish``: it is published. Returns (granted, changed)."""
        w = self._w
        rec = self._rec
        changed = 0
        ex = w[H_EXCLUSIVE]
        if ex != 0 and ex != self.slot and (not 1 <= ex <= SLOT_COUNT or not self._alive(ex)):
            if 1 <= ex <= SLOT_COUNT:
                changed += self._recover_slot(ex)
            ex = w[H_EXCLUSIVE]
        fits = ex == 0 and (mode == SHARED or w[H_SHARED] == 0)
        if fits:
            first, c = self._first(ticket)
            changed += c
            if first:
                next_mode = C.load32(self._addr(rec + S_NEXT_MODE))
                next_ticket = C.load32(self._addr(rec + S_NEXT_TICKET))
                words = [rec + S_HELD, rec + S_HELD_MODE, H_SHARED if mode == SHARED else H_EXCLUSIVE]
                if head:
                    words += [rec + S_PEND_MODE, rec + S_PEND_TICKET]
                self._tx(words)
                w[rec + S_HELD] += 1
                w[rec + S_HELD_MODE] = mode
                if mode == SHARED:
                    w[H_SHARED] += 1
                else:
                    w[H_EXCLUSIVE] = self.slot
                if head:
                    w[rec + S_PEND_TICKET] = next_ticket
                    w[rec + S_PEND_MODE] = next_mode if next_mode in (SHARED, EXCLUSIVE) else 0
                self._end()
                if head:
                    C.store32(self._addr(rec + S_NEXT_MODE), 0)
                    changed += 1  # our published request moved on: another slot's may be first now
                return True, changed
        if publish and (w[rec + S_PEND_MODE] != mode or w[rec + S_PEND_TICKET] != ticket):
            if w[rec + S_PEND_MODE] != 0:
                changed += 1  # replacing an older published request may make another slot's first
            self._tx([rec + S_PEND_MODE, rec + S_PEND_TICKET])
            w[rec + S_PEND_TICKET] = ticket
            w[rec + S_PEND_MODE] = mode
            self._end()
        return False, changed

    # -- operations (each takes the internal lock) -------------------------------

    def _check(self) -> None:
        if self.closed:
            raise closed_error("lock segment", "futex", self.name)

    def ticket(self) -> int:
        """Draws a ticket (atomic increment of header word 12)."""
        self._check()
        return C.add32(self._addr(H_TICKET), 1)

    def note(self, queue: "list[_Request]") -> None:
        """Publishes how many requests wait here (for query) and which is next after the head."""
        self._check()
        shared = sum(1 for r in queue if r.mode == SHARED)
        rec = self._rec
        C.store32(self._addr(rec + S_PEND_SHARED), shared)
        C.store32(self._addr(rec + S_PEND_EXCL), len(queue) - shared)
        if len(queue) < 2:
            C.store32(self._addr(rec + S_NEXT_MODE), 0)
        else:
            C.store32(self._addr(rec + S_NEXT_TICKET), queue[1].ticket)
            C.store32(self._addr(rec + S_NEXT_MODE), queue[1].mode)

    def try_grant(self, mode: int, ticket: int, head: bool, publish: bool) -> int:
        """One grant attempt: the steal generation when granted, else -1. Checks
        for dead slots at most every 250 ms."""
        self._check()
        now = time.monotonic()
        check = now >= self.next_check
        if check:
            self.next_check = now + CHECK_S
        self._lock_internal()
        changed = self._recover_dead() if check else 0
        granted, c = self._grant(mode, ticket, head, publish)
        gen = self._w[self._rec + S_STEAL_GEN] if granted else -1
        self._unlock()
        if changed + c > 0:
            self._wake_all()
        return gen

    def release(self, mode: int, gen: int) -> bool:
        """Releases one lock of ``mode`` granted under steal generation ``gen``:
        False if it was stolen meanwhile (nothing changed)."""
        self._check()
        w = self._w
        rec = self._rec
        self._lock_internal()
        ok = w[rec + S_STEAL_GEN] == gen and w[rec + S_HELD] > 0 and w[rec + S_HELD_MODE] == mode
        if ok:
            self._tx([rec + S_HELD, rec + S_HELD_MODE, H_SHARED if mode == SHARED else H_EXCLUSIVE])
            w[rec + S_HELD] -= 1
            if w[rec + S_HELD] == 0:
                w[rec + S_HELD_MODE] = 0
            if mode == SHARED:
                w[H_SHARED] = max(0, w[H_SHARED] - 1)
            else:
                w[H_EXCLUSIVE] = 0
            self._end()
        self._unlock()
        if ok:
            self._wake_all()
        return ok

    def steal(self) -> int:
        """Takes every lock of the name from its holders (each victim's steal
        generation moves on), then grants us an exclusive lock ahead of the
        queue. Returns its steal generation."""
        self._check()
        w = self._w
        self._lock_internal()
        robbed = []
        for i in _nonzero(self._column(S_HELD), self.slot - 1):
            sid = i + 1
            rec = _slot_word(sid)
            robbed.append(rec)
            self._tx([rec + S_HELD, rec + S_HELD_MODE, rec + S_STEAL_GEN, H_SHARED, H_EXCLUSIVE])
            if w[rec + S_HELD_MODE] == SHARED:
                w[H_SHARED] = max(0, w[H_SHARED] - w[rec + S_HELD])
            if w[H_EXCLUSIVE] == sid:
                w[H_EXCLUSIVE] = 0
            w[rec + S_HELD] = 0
            w[rec + S_HELD_MODE] = 0
            w[rec + S_STEAL_GEN] = (w[rec + S_STEAL_GEN] + 1) & INT_MAX
            self._end()
        rec = self._rec
        self._tx([rec + S_HELD, rec + S_HELD_MODE, H_EXCLUSIVE])
        w[rec + S_HELD] = 1
        w[rec + S_HELD_MODE] = EXCLUSIVE
        w[H_EXCLUSIVE] = self.slot
        self._end()
        C.add32(self._addr(H_SEQ), 1)
        gen = w[rec + S_STEAL_GEN]
        self._unlock()
        self._wake_all()
        for rec in robbed:  # a Node holder watches its slot's generation word
            C.futex_wake(self._addr(rec + S_STEAL_GEN))
        return gen

    def cancel(self) -> None:
        """Our slot publishes no waiting request any more (and no next one)."""
        self._check()
        w = self._w
        rec = self._rec
        C.store32(self._addr(rec + S_NEXT_MODE), 0)
        if w[rec + S_PEND_MODE] == 0:
            return
        self._lock_internal()
        self._tx([rec + S_PEND_MODE])
        w[rec + S_PEND_MODE] = 0
        self._end()
        self._unlock()
        self._wake_all()

    def snapshot(self) -> "list[tuple[int, int, int, int, int, int, int, int]]":
        """(slot, pid, held, held mode, pending mode, pending ticket, pending
        shared, pending exclusive) of every live slot that holds or waits; the
        dead are recovered first."""
        self._check()
        self._lock_internal()
        changed = self._recover_dead()
        rows = []
        w = self._w
        for sid in range(1, SLOT_COUNT + 1):
            rec = _slot_word(sid)
            if w[rec + S_HELD] == 0 and w[rec + S_PEND_MODE] == 0 and w[rec + S_PEND_SHARED] == 0 \
                    and w[rec + S_PEND_EXCL] == 0:
                continue
            rows.append((sid, w[rec + S_PID], w[rec + S_HELD], w[rec + S_HELD_MODE], w[rec + S_PEND_MODE],
                         w[rec + S_PEND_TICKET], w[rec + S_PEND_SHARED], w[rec + S_PEND_EXCL]))
        self._unlock()
        if changed:
            self._wake_all()
        return rows

    # -- waiting -----------------------------------------------------------------

    def waiters(self, delta: int) -> None:
        C.add32(self._addr(H_WAITERS), delta)

    def seq(self) -> int:
        return C.load32(self._addr(H_SEQ))

    def sleep(self, seq: int, timeout: float) -> None:
        """FUTEX_WAIT on ``seq`` while it holds the value read (at most ``timeout`` s)."""
        C.futex_wait(self._addr(H_SEQ), seq, timeout)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Gives the slot up: what it still holds or requests is dropped (as if
        we had died), then the descriptor closes and the mapping goes."""
        if self.closed:
            return
        self.closed = True
        self._lock_internal()
        changed = self._recover_slot(self.slot)
        self._w[self._rec + S_PID] = 0
        self._unlock()
        if changed:
            C.futex_wake(self._addr(H_SEQ))
        self._unmap()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


class _Request:
    __slots__ = ("mode", "ticket", "gen")

    def __init__(self, mode: int, ticket: int) -> None:
        self.mode = mode
        self.ticket = ticket
        self.gen: Optional[int] = None  # the steal generation once granted


class _NameState:
    """One open lock segment and this process's queue for its name."""

    def __init__(self, name: str, seg: _LockSegment) -> None:
        self.name = name
        self.seg = seg
        self.mu = threading.Lock()
        self.cond = threading.Condition(self.mu)
        self.queue: List[_Request] = []
        self.users = 0  # requests waiting or holding (the segment closes at 0)

    def pump(self) -> None:
        """Under ``mu``: grants what can be granted from the head of the queue
        (for whichever thread's request it is), publishes the new head, and
        wakes the threads concerned."""
        while self.queue:
            head = self.queue[0]
            gen = self.seg.try_grant(head.mode, head.ticket, True, True)
            if gen < 0:
                break
            self.queue.pop(0)
            head.gen = gen
            self.seg.note(self.queue)
        if not self.queue:
            self.seg.cancel()
        self.cond.notify_all()

    def drop(self, req: _Request) -> None:
        """Under ``mu``: takes a request that gave up out of the queue."""
        i = self.queue.index(req)
        del self.queue[i]
        self.seg.note(self.queue)
        if i == 0:
            self.pump()


class _LockRequest:
    """What :meth:`LockManager.request` returns: a context manager whose
    ``__enter__`` waits for the lock and returns a :class:`WebLock` (or None
    with ``if_available`` when it is not available at once), and whose
    ``__exit__`` releases it. Single use."""

    def __init__(self, manager: "LockManager", name: str, mode: int, if_available: bool, steal: bool,
                 timeout: Optional[float], permissions: int, owner: C.Owner) -> None:
        self._m = manager
        self._name = name
        self._mode = mode
        self._if_available = if_available
        self._steal = steal
        self._timeout = timeout
        self._permissions = permissions
        self._owner = owner
        self._st: Optional[_NameState] = None
        self._gen: Optional[int] = None
        self._used = False

    def __enter__(self) -> Optional[WebLock]:
        if self._used:
            raise RuntimeError("a lock request is used once: call locks.request() again")
        self._used = True
        st = self._m._open(self._name, self._permissions, self._owner)
        try:
            gen = self._acquire(st)
        except BaseException:
            self._m._done(st)
            raise
        if gen is None:
            self._m._done(st)
            return None
        self._st, self._gen = st, gen
        return WebLock(self._name, _MODE_NAME[self._mode])

    def _acquire(self, st: _NameState) -> Optional[int]:
        seg = st.seg
        with st.mu:
            if self._steal:
                return seg.steal()
            ticket = seg.ticket()
            if self._if_available:
                gen = seg.try_grant(self._mode, ticket, False, False) if not st.queue else -1
                return gen if gen >= 0 else None
            req = _Request(self._mode, ticket)
            st.queue.append(req)
            seg.note(st.queue)
            deadline = None if self._timeout is None else time.monotonic() + self._timeout
            try:
                if len(st.queue) == 1:
                    st.pump()
                while req.gen is None:
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        raise ipc_error(_errno.ETIMEDOUT, "futex", self._name,
                                        f"the lock '{self._name}' was not granted within {self._timeout} s")
                    if st.queue[0] is not req:
                        st.cond.wait(None if deadline is None else deadline - now)
                        continue
                    # The head of our queue: sleep on the segment's seq word. Count
                    # ourselves a waiter before reading seq and trying, so a change
                    # made after the try wakes us.
                    seg.waiters(1)
                    try:
                        seq = seg.seq()
                        st.pump()
                        if req.gen is not None:
                            break
                        end = seg.next_check if deadline is None else min(seg.next_check, deadline)
                        st.mu.release()
                        try:
                            seg.sleep(seq, max(0.0, min(end - time.monotonic(), CHECK_S)))
                        finally:
                            st.mu.acquire()
                    finally:
                        seg.waiters(-1)
            except BaseException:
                if req.gen is None:
                    st.drop(req)
                else:  # granted as we gave up: give it back
                    seg.release(req.mode, req.gen)
                raise
            return req.gen

    def __exit__(self, *exc: object) -> None:
        st, gen = self._st, self._gen
        if st is None or gen is None:
            return
        self._st = self._gen = None
        try:
            with st.mu:
                released = st.seg.release(self._mode, gen)
        finally:
            self._m._done(st)
        if not released:
            raise AbortError(f"The lock '{self._name}' was stolen")


class LockManager:
    """The lock manager of this process, shared with every process on the
    host (Node or Python) through the lock segments in /dev/shm. Use the
    module's :func:`request` and :func:`query` (one manager per process)."""

    def __init__(self) -> None:
        self._mu = threading.Lock()
        self._names: Dict[str, _NameState] = {}

    def request(self, name: str, mode: str = "exclusive", *, if_available: bool = False, steal: bool = False,
                timeout: Optional[float] = None, permissions: int = 0o600,
                owner: C.Owner = "self") -> _LockRequest:
        """Requests the lock ``name``; use the result in a ``with`` statement::

            with locks.request("cache", mode="shared") as lock:
                ...

        The ``with`` waits until the lock is granted (requests for a name are
        granted in the order they were made, across processes and languages;
        a shared one waits behind an older exclusive one) and binds a
        :class:`WebLock`; the lock is released when the block ends.

        Args:
            name: any str not starting with ``-`` (at most 245 bytes once encoded).
            mode: ``'exclusive'`` (one holder) or ``'shared'`` (any number, no exclusive one).
            if_available: grant only if grantable at once (nobody waiting, mode
                compatible); otherwise the ``with`` binds None.
            steal: release every current holder's lock of that name (in every
                process; they learn it when their block ends: AbortError) and
                grant this one at once, ahead of the queue. Exclusive only.
            timeout: give up after this many seconds: TimeoutError (an
                IPCError ETIMEDOUT), the request leaves the queue.
            permissions: permission bits of the segment if this request creates it.
            owner: whose existing segment to use: ``'self'``, ``'any'`` or a uid.

        Raises:
            TypeError: a name that is not a str, options of the wrong type.
            ValueError: an unknown mode, a name too long; NotSupportedError
                (a ValueError) for the spec's refused combinations.
            IPCError: the segment (EINVAL not a lock segment, ELOOP a symlink,
                EISDIR, EACCES, EPERM another uid's).
        """
        if not isinstance(name, str):
            raise TypeError(f'The "name" argument must be a str, not {type(name).__name__}')
        if mode not in _MODE_OF:
            raise ValueError(f"mode must be 'exclusive' or 'shared', not {mode!r}")
        for v, arg in ((if_available, "if_available"), (steal, "steal")):
            if not isinstance(v, bool):
                raise TypeError(f"{arg} must be a bool, not {type(v).__name__}")
        timeout = C.validate_timeout(timeout)
        permissions = C.validate_mode(permissions)
        owner = C.validate_owner(owner)
        if name.startswith("-"):
            raise NotSupportedError(f'Lock names starting with "-" are reserved: {name!r}')
        lock_file_name(name)
        m = _MODE_OF[mode]
        if steal and if_available:
            raise NotSupportedError('The "steal" and "if_available" options cannot be used together')
        if steal and m != EXCLUSIVE:
            raise NotSupportedError('The "steal" option may only be used with mode "exclusive"')
        if timeout is not None and (steal or if_available):
            raise NotSupportedError('The "timeout" option cannot be used with "steal" or "if_available"')
        return _LockRequest(self, name, m, if_available, steal, timeout, permissions, owner)

    def _open(self, name: str, permissions: int, owner: C.Owner) -> _NameState:
        with self._mu:
            st = self._names.get(name)
            if st is None:
                st = _NameState(name, _LockSegment(name, True, permissions, owner))
                self._names[name] = st
            st.users += 1
            return st

    def _done(self, st: _NameState) -> None:
        """A request ended: the segment closes once no request of ours holds or waits."""
        with self._mu:
            st.users -= 1
            if st.users == 0:
                del self._names[st.name]
                with st.mu:
                    st.seg.close()

    def query(self) -> LockManagerSnapshot:
        """Every lock held and requested on the host, as far as this process may
        open the lock segments (this uid's, and those it has open): holders and
        requesters of every process with their pids, the dead recovered first.
        This process's waiting requests are listed in their order; another
        process's oldest waiting request is placed in queue order, the rest
        after it."""
        held: List[LockInfo] = []
        pending: List[Tuple[LockInfo, int, int, int]] = []
        try:
            files = os.listdir(SHM_DIR)
        except OSError:
            files = []
        fi = -1
        for file in files:
            name = parse_lock_file_name(file)
            if name is None:
                continue
            fi += 1
            with self._mu:
                st = self._names.get(name)
                if st is not None:
                    st.users += 1
            seg: Optional[_LockSegment] = None
            try:
                if st is None:
                    try:
                        seg = _LockSegment(name, False, 0o600, "self")
                    except (OSError, ValueError):
                        continue  # not ours to read, or not a lock segment
                    rows = seg.snapshot()
                    mine, queue = seg.slot, []
                else:
                    with st.mu:
                        rows = st.seg.snapshot()
                        mine, queue = st.seg.slot, [r.mode for r in st.queue]
                        head_ticket = st.queue[0].ticket if st.queue else 0
            finally:
                if seg is not None:
                    seg.close()
                if st is not None:
                    self._done(st)
            for sid, pid, n_held, held_mode, pend_mode, pend_ticket, pend_shared, pend_excl in rows:
                def info(mode: int, pid: int = pid) -> LockInfo:
                    return LockInfo(name, _MODE_NAME.get(mode, "exclusive"), str(pid), pid)
                held.extend(info(held_mode) for _ in range(n_held))
                if sid == mine and st is not None:
                    pending.extend((info(md), fi, head_ticket, k) for k, md in enumerate(queue))
                    continue
                k = 0
                if pend_mode != 0:
                    pending.append((info(pend_mode), fi, pend_ticket, k))
                    k += 1
                    if pend_mode == SHARED:
                        pend_shared -= 1
                    else:
                        pend_excl -= 1
                for _ in range(max(0, pend_excl)):
                    pending.append((info(EXCLUSIVE), fi, pend_ticket, k))
                    k += 1
                for _ in range(max(0, pend_shared)):
                    pending.append((info(SHARED), fi, pend_ticket, k))
                    k += 1

        def order(a: Tuple[LockInfo, int, int, int], b: Tuple[LockInfo, int, int, int]) -> int:
            if a[1] != b[1]:
                return a[1] - b[1]
            d = (a[2] - b[2]) & 0xFFFFFFFF
            if d:
                return -1 if d >= 0x80000000 else 1
            return a[3] - b[3]

        pending.sort(key=functools.cmp_to_key(order))
        return LockManagerSnapshot(held, [p[0] for p in pending])


_manager = LockManager()


def request(name: str, mode: str = "exclusive", *, if_available: bool = False, steal: bool = False,
            timeout: Optional[float] = None, permissions: int = 0o600, owner: C.Owner = "self") -> _LockRequest:
    """``with pipc.locks.request(name, mode='exclusive'|'shared', if_available=False,
    steal=False, timeout=None) as lock:`` (see :meth:`LockManager.request`)."""
    return _manager.request(name, mode, if_available=if_available, steal=steal, timeout=timeout,
                            permissions=permissions, owner=owner)


def query() -> LockManagerSnapshot:
    """Every lock held and requested on the host (see :meth:`LockManager.query`)."""
    return _manager.query()
