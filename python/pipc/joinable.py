"""Python's ``multiprocessing.JoinableQueue`` by name: :class:`JoinableQueue`,
the same object as the Node side's class of that name.

A :class:`pipc.Queue` (either transport) plus ``task_done()`` and ``join()``,
with the count of unfinished tasks in a crash-safe synchronisation segment
``/dev/shm/pipc.NAME.jq`` (docs/api.md, "Crash-safe synchronisation segments:
layout and protocol", kind 5), spoken word for word as lib/queue/joinable.ts:

- header word 6 unfinished, 7 seq (futex word), 8 lost (cumulative), 9 the
  pid of the last loss; slot word 0 the owner's pid, 1 owed (items got and not
  marked done), 2 putting (a put counted and not known to be sent);
- a slot is its handle's while the handle's descriptor holds an OFD lock on
  the slot's first byte, so a consumer that dies by any means is noticed: what
  it owed is written off the count and every pending ``join()`` raises
  :class:`IPCError` ``EOWNERDEAD`` (with ``lost`` and ``pid``), in Node and in
  Python, within a second, rather than hang forever.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import mmap
import os
import struct
import threading
import time
from typing import Any, Optional

from . import _libc as C
from ._errors import IPCError, closed_error, ipc_error
from ._names import SHM_DIR, validate_name
from ._segopen import claim_slot, open_segment
from .queue import Queue
from .semaphore import _hybrid

__all__ = ["JoinableQueue", "TasksLostError", "SYNC_RESERVED"]

SYNC_RESERVED = len("pipc.") + len(".barrier")
"""Bytes a synchronisation segment's file adds to its name (a name may be this much shorter than NAME_MAX)."""

MAGIC_VALUE = 0x43504950
LAYOUT_VERSION = 1
HEADER_BYTES = 256
SLOT_BYTES = 64
SLOT_COUNT = 256
SEGMENT_BYTES = HEADER_BYTES + SLOT_BYTES * SLOT_COUNT  # 16,640
KIND_JOINABLE = 5
KIND_NAMES = {2: "an Event", 3: "a Barrier", 4: "a Condition", 5: "a JoinableQueue counter"}
CHECK_S = 0.25  # longest sleep of a join: the periodic scan for dead slots

# Header words.
H_MAGIC, H_VERSION, H_KIND, H_SLOTS, H_SLOTBASE = 0, 1, 2, 4, 5
JQ_UNFINISHED, JQ_SEQ, JQ_LOST, JQ_LOSTPID = 6, 7, 8, 9
# Slot words.
S_PID, JS_OWED, JS_PUTTING = 0, 1, 2

_Words = ctypes.c_int32 * (SEGMENT_BYTES // 4)


class TasksLostError(IPCError):
    """``join()`` found that a process died holding unfinished tasks
    (``EOWNERDEAD``): they were written off the count.

    Attributes:
        lost: how many tasks were written off since this ``join()`` started.
        pid: the process id of the (last) process that died with them.
    """

    lost: int
    pid: int


def jq_path(name: str) -> str:
    """``'/work'`` -> ``/dev/shm/pipc.work.jq``."""
    return f"{SHM_DIR}/pipc.{name[1:]}.jq"


def _init_header(mm: mmap.mmap) -> None:
    struct.pack_into("<5i", mm, 4, LAYOUT_VERSION, KIND_JOINABLE, 0, SLOT_COUNT, HEADER_BYTES)
    struct.pack_into("<i", mm, 0, MAGIC_VALUE)  # last


class _Counter:
    """The open counter segment and the slot this handle owns."""

    def __init__(self, name: str, create: bool, mode: int, owner: C.Owner) -> None:
        self.name = name
        self.closed = True
        path = jq_path(name)
        fd, mm, self.created = open_segment(path, name, create, False, mode, owner, SEGMENT_BYTES, _init_header,
                                            "posix-ipc segment")
        self._fd, self._mm = fd, mm
        self._w = _Words.from_buffer(mm)
        self._base = ctypes.addressof(self._w)
        try:
            magic, version, kind, _, slots, slotbase = struct.unpack_from("<6i", mm, 0)
            if magic != MAGIC_VALUE or version != LAYOUT_VERSION or slots != SLOT_COUNT or slotbase != HEADER_BYTES:
                raise ipc_error(_errno.EINVAL, "mmap", name, f"'{path}' has no posix-ipc synchronisation header")
            if kind != KIND_JOINABLE:
                raise ipc_error(_errno.EINVAL, "mmap", name,
                                f"'{path}' is {KIND_NAMES.get(kind, 'an unknown kind')}, not a JoinableQueue counter")
            self.slot = claim_slot(fd, HEADER_BYTES, SLOT_BYTES, SLOT_COUNT, name)
        except BaseException:
            self._unmap()
            raise
        self.mine = self.word(self.slot, 0)
        self.closed = False
        C.store32(self.addr(self.mine + S_PID), os.getpid())

    @staticmethod
    def word(slot: int, j: int) -> int:
        return (HEADER_BYTES + SLOT_BYTES * (slot - 1)) // 4 + j

    def addr(self, word: int) -> int:
        return self._base + 4 * word

    def load(self, word: int) -> int:
        return C.load32(self.addr(word))

    def alive(self, slot: int) -> bool:
        return slot == self.slot or C.ofd_is_locked(self._fd, HEADER_BYTES + SLOT_BYTES * (slot - 1))

    def column(self, j: int) -> "list[int]":
        """Word ``j`` of every slot (one slice of the mapping; plain loads, for scans only)."""
        first = HEADER_BYTES // 4 + j
        return self._w[first:first + (SLOT_BYTES // 4) * SLOT_COUNT:SLOT_BYTES // 4]

    def wake(self, word: int) -> None:
        C.futex_wake(self.addr(word))

    def _unmap(self) -> None:
        if hasattr(self, "_w"):
            del self._w
        if self._mm is not None:
            self._mm.close()
            self._mm = None  # type: ignore[assignment]
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def close(self) -> None:
        """Gives the slot up (the descriptor closes). The mapping stays until
        this object is collected: a thread still inside join() or put() holds
        it, so its raw word addresses never point to unmapped memory."""
        self.closed = True
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class JoinableQueue(Queue):
    """A :class:`pipc.Queue` whose producers can wait until every item put has
    been processed, in whichever process (Node or Python): each consumer calls
    :meth:`task_done` once per item it got, and :meth:`join` returns when the
    count of unfinished tasks reaches zero.

    >>> q = JoinableQueue("work")
    >>> for job in jobs:
    ...     q.put(job)
    >>> q.join()                       # every job done, in whichever process
    True
    >>> # consumer: for job in q: run(job); q.task_done()

    Takes :class:`pipc.Queue`'s arguments (either transport). The name may be
    13 bytes shorter than NAME_MAX (``pipc.`` and ``.barrier``).

    A consumer that dies holding items it got and had not marked done makes
    every pending ``join()`` (Node's and Python's) raise
    :class:`TasksLostError` (an :class:`IPCError` ``EOWNERDEAD`` with ``lost``
    and ``pid``) within a second; those items are written off the count, so
    later joins wait only for the rest. ``close()`` writes off what this handle
    got and did not mark done in the same way.
    """

    def __init__(self, name: str, maxsize: Optional[int] = None, *, max_message_size: Optional[int] = None,
                 codec: Any = "json", create: bool = True, exclusive: bool = False, mode: int = 0o600,
                 owner: C.Owner = "self", transport: Optional[str] = None, capacity: Optional[int] = None) -> None:
        self._jq: Optional[_Counter] = None
        self._jq_lock = threading.Lock()
        self._next_check = 0.0
        validate_name(name, "name", SYNC_RESERVED)
        super().__init__(name, maxsize, max_message_size=max_message_size, codec=codec, create=create,
                         exclusive=exclusive, mode=mode, owner=owner, transport=transport, capacity=capacity)
        try:
            self._jq = _Counter(self._name, create, mode, C.validate_owner(owner))
        except BaseException:
            super().close()
            raise
        # What a dead previous owner of our slot left is written off now.
        self._recover(self._jq, self._jq.slot)

    # -- the counter -------------------------------------------------------

    def _seg(self, syscall: str) -> _Counter:
        jq = self._jq
        if jq is None or jq.closed:
            raise closed_error("JoinableQueue", syscall, self._name)
        return jq

    @property
    def unfinished_tasks(self) -> int:
        """Items put and not yet marked done, across every process."""
        return self._seg("load").load(JQ_UNFINISHED)

    @property
    def lost_tasks(self) -> int:
        """Tasks written off so far because the process holding them died (cumulative)."""
        return self._seg("load").load(JQ_LOST) & 0xFFFFFFFF

    @staticmethod
    def _sub(jq: _Counter, n: int) -> int:
        """unfinished -= n, not below 0; wakes joiners when it reaches 0. Returns how much it took."""
        a = jq.addr(JQ_UNFINISHED)
        while True:
            u = C.load32(a)
            nu = max(0, u - n)
            if C.cas32(a, u, nu):
                if nu == 0 and u != 0:
                    C.add32(jq.addr(JQ_SEQ), 1)
                    jq.wake(JQ_SEQ)
                return u - nu

    @classmethod
    def _recover(cls, jq: _Counter, slot: int) -> int:
        """Writes off what dead slot ``slot`` held (or our own slot's stale marks, at open and close)."""
        lost = 0
        owed_a = jq.addr(jq.word(slot, JS_OWED))
        owed = C.load32(owed_a)
        if owed > 0 and C.cas32(owed_a, owed, 0):
            lost += owed
        if C.cas32(jq.addr(jq.word(slot, JS_PUTTING)), 1, 0):
            lost += 1
        if lost == 0:
            return 0
        written = cls._sub(jq, lost)
        if written > 0:
            C.store32(jq.addr(JQ_LOSTPID), jq.load(jq.word(slot, S_PID)))
            C.add32(jq.addr(JQ_LOST), written)
            C.add32(jq.addr(JQ_SEQ), 1)
            jq.wake(JQ_SEQ)
        return written

    def _check_dead(self, jq: _Counter) -> None:
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_S
        owed = jq.column(JS_OWED)
        putting = jq.column(JS_PUTTING)
        for i in range(SLOT_COUNT):
            sid = i + 1
            if sid == jq.slot or (owed[i] <= 0 and putting[i] == 0):
                continue
            if not jq.alive(sid):
                self._recover(jq, sid)

    # -- producers ---------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None, *, priority: int = 0) -> None:
        """:meth:`pipc.Queue.put`, counting the item as unfinished (before it is
        sent: a consumer may finish it before ``put`` returns; uncounted again
        if the put fails)."""
        jq = self._seg("put")
        putting = jq.addr(jq.mine + JS_PUTTING)
        C.store32(putting, 1)
        C.add32(jq.addr(JQ_UNFINISHED), 1)
        try:
            super().put(item, block, timeout, priority=priority)
        except BaseException:
            if not jq.closed:
                self._sub(jq, 1)
            raise
        finally:
            if not jq.closed:
                C.store32(putting, 0)

    # -- consumers ---------------------------------------------------------

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """:meth:`pipc.Queue.get`; the item got is owed a :meth:`task_done`
        (also one that fails to decode: it left the queue)."""
        jq = self._seg("get")
        data = self._get_data(block, timeout)
        C.add32(jq.addr(jq.mine + JS_OWED), 1)
        return self._codec.decode(data)

    def task_done(self) -> None:
        """Marks one item done (Python's ``task_done``). Raises
        :class:`ValueError` when called more times than items were put. The item
        is taken off this handle's count if it has one, else off the count of a
        handle that got it (it was handed over)."""
        jq = self._seg("futex")
        a = jq.addr(JQ_UNFINISHED)
        while True:
            u = C.load32(a)
            if u <= 0:
                raise ValueError(f"task_done() called too many times (queue {self._name!r})")
            if C.cas32(a, u, u - 1):
                break
        self._unowe(jq)
        if u == 1:
            C.add32(jq.addr(JQ_SEQ), 1)
            jq.wake(JQ_SEQ)

    @staticmethod
    def _take(jq: _Counter, slot: int) -> bool:
        a = jq.addr(jq.word(slot, JS_OWED))
        while True:
            v = C.load32(a)
            if v <= 0:
                return False
            if C.cas32(a, v, v - 1):
                return True

    def _unowe(self, jq: _Counter) -> None:
        if self._take(jq, jq.slot):
            return
        owed = jq.column(JS_OWED)
        for i in range(SLOT_COUNT):
            if i + 1 != jq.slot and owed[i] > 0 and self._take(jq, i + 1):
                return

    def join(self, timeout: Optional[float] = None) -> bool:
        """Waits until every item put has been marked done, in every process:
        True, or False when ``timeout`` seconds passed first (None: no limit).

        Raises :class:`TasksLostError` (``EOWNERDEAD``) when a process dies
        holding unfinished tasks meanwhile (they are written off the count)."""
        timeout = C.validate_timeout(timeout)
        jq = self._seg("futex")
        deadline = None if timeout is None else time.monotonic() + timeout
        lost0 = jq.load(JQ_LOST)
        seq_a = jq.addr(JQ_SEQ)
        while True:
            jq = self._seg("futex")
            seq = C.load32(seq_a)
            lost = jq.load(JQ_LOST)
            if lost != lost0:
                n = (lost - lost0) & 0xFFFFFFFF
                pid = jq.load(JQ_LOSTPID)
                e = TasksLostError(_errno.EOWNERDEAD, f"process {pid} died holding {n} unfinished task(s); they "
                                   "were written off", "join", self._name)
                e.lost, e.pid = n, pid
                raise e
            if jq.load(JQ_UNFINISHED) <= 0:
                return True
            self._check_dead(jq)
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return False
            left = CHECK_S if deadline is None else min(CHECK_S, deadline - now)
            C.futex_wait(seq_a, seq, left)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> None:
        """Closes the queue and the counter. Items this handle got and did not
        mark done are written off now (as if it had died): pending joins
        elsewhere raise EOWNERDEAD rather than wait for them. Idempotent."""
        with getattr(self, "_jq_lock", threading.Lock()):
            jq = getattr(self, "_jq", None)
            if jq is not None and not jq.closed:
                try:
                    self._recover(jq, jq.slot)
                finally:
                    jq.close()
                    self._jq = None
        super().close()

    def _unlink_self(self) -> None:
        JoinableQueue._unlink_name(self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        """Removes the queue ``name`` and its counter (ENOENT if the counter does not exist)."""
        n = validate_name(name, "name", SYNC_RESERVED)
        try:
            try:
                os.unlink(jq_path(n))
            except OSError as e:
                raise ipc_error(e.errno or _errno.EIO, "unlink", n) from None
        finally:
            Queue._unlink_name(n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``q.unlink()`` removes this queue and its counter; ``JoinableQueue.unlink(name)`` removes ``name``'s."""

    def __repr__(self) -> str:
        return f"<JoinableQueue {self._name!r}{' closed' if self.closed else ''}>"

