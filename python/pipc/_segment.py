"""The crash-safe synchronisation segment under Event, Barrier and Condition
(``/dev/shm/pipc.NAME.event``, ``.barrier``, ``.cond``), speaking the layout
and protocols of lib/sync/segment.ts word for word (docs/api.md,
"Crash-safe synchronisation segments: layout and protocol").

A segment is 16,640 bytes: a 256-byte header of int32 words and 256 slots of
64 bytes. A handle owns one slot while its descriptor holds an
open-file-description lock on the slot's first byte; the kernel drops the
lock when the process dies by any means, so ``F_OFD_GETLK`` tells anyone
whether a slot's owner is alive. Sleeping is ``FUTEX_WAIT`` (shared) on a
word, at most 250 ms at a time, after which the waiter looks again.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import fcntl
import mmap
import os
import platform
import random
import stat
import struct
import threading
import time
import weakref
from typing import Callable, Dict, Optional, TypeVar

from . import _libc as C
from ._errors import IPCError, closed_error, ipc_error

T = TypeVar("T")

# Common header words (int32 indices).
H_MAGIC, H_VERSION, H_KIND, H_ZERO, H_SLOTS, H_SLOTBASE = range(6)
H_FIRST = 6  # the first word a kind may use
MAGIC_VALUE = 0x43504950  # 'PIPC'
LAYOUT_VERSION = 1
KIND = {"event": 2, "barrier": 3, "condition": 4, "joinable": 5}
KIND_NAME = {1: "a crash-safe semaphore", 2: "an Event", 3: "a Barrier", 4: "a Condition", 5: "a JoinableQueue counter"}
HEADER_BYTES = 256
SLOT_BYTES = 64
SLOT_COUNT = 256
SEGMENT_BYTES = HEADER_BYTES + SLOT_BYTES * SLOT_COUNT  # 16,640
SLOT_WORDS = SLOT_BYTES // 4
TOTAL_WORDS = SEGMENT_BYTES // 4
S_PID = 0  # slot word 0: the owner's pid (informational)
CHECK_S = 0.25  # the longest sleep before a waiter looks again

_Words = ctypes.c_int32 * TOTAL_WORDS
_TSO = platform.machine() in ("x86_64", "AMD64", "i386", "i686")

_libc = C.libc
_libc.mmap.restype = ctypes.c_void_p
_libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
_libc.munmap.restype = ctypes.c_int
_libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
_MAP_FAILED = ctypes.c_void_p(-1).value

# futex(2) through syscall(), bound once with fixed argument types (a plain
# ctypes call of the variadic syscall() boxes every argument: 2-4 us a call;
# glibc's syscall() only moves registers, so a fixed prototype is exact on
# x86-64 and arm64 Linux).
_futex = ctypes.CFUNCTYPE(ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_int, ctypes.c_int,
                          ctypes.POINTER(C.Timespec), ctypes.c_void_p, ctypes.c_int,
                          use_errno=True)(("syscall", C.libc))
_SYS_FUTEX = C.SYS_futex


def _futex_wait(addr: int, expected: int, seconds: float) -> None:
    t = max(seconds, 0.0)
    sec = int(t)
    _futex(_SYS_FUTEX, addr, C.FUTEX_WAIT, expected, C.Timespec(sec, int((t - sec) * 1e9)), None, 0)


def _futex_wake(addr: int, n: int) -> None:
    _futex(_SYS_FUTEX, addr, C.FUTEX_WAKE, n, None, None, 0)


if C._atomic is not None:
    _xchg4 = C._atomic.__atomic_exchange_4


def _spin_us() -> float:
    try:
        return max(0.0, float(os.environ.get("POSIX_IPC_WAIT_SPIN_US", "30") or 0))
    except ValueError:
        return 30.0


SPIN_S = _spin_us() / 1e6
"""How long a wait that finds nothing first spins (POSIX_IPC_WAIT_SPIN_US,
microseconds, default 30; 0: never), as the Node side's waits do: an answer
from another process within that time is seen with no futex sleep."""


class SpinGate:
    """lib/core/spin.ts's SpinGate: after two empty spins in a row, the next
    waits skip the spin for a random count below 2^(misses-1) (at most 63)."""

    __slots__ = ("misses", "skip")

    def __init__(self) -> None:
        self.misses = 0
        self.skip = 0

    def open(self) -> bool:
        if self.skip == 0:
            return True
        self.skip -= 1
        return False

    def hit(self) -> None:
        self.misses = 0

    def miss(self) -> None:
        self.misses += 1
        if self.misses >= 2:
            self.skip = int(random.random() * min(64, 2 ** (self.misses - 1)))


def slot_offset(sid: int) -> int:
    """Byte offset of slot ``sid`` (1-based): where its OFD lock byte is."""
    return HEADER_BYTES + SLOT_BYTES * (sid - 1)


def base(sid: int) -> int:
    """The first word of slot ``sid``'s record."""
    return slot_offset(sid) // 4


def kind_name(k: int) -> str:
    return KIND_NAME.get(k, "an unknown kind")


def _create_and_link(path: str, mode: int, kind: int, init: Dict[int, int]) -> int:
    """Makes the segment complete under no name (O_TMPFILE), the magic written
    last, then links it at ``path``: an opener never sees a half-made header."""
    fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    try:
        os.ftruncate(fd, SEGMENT_BYTES)
        with mmap.mmap(fd, HEADER_BYTES, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            struct.pack_into("<5i", mm, 4, LAYOUT_VERSION, kind, 0, SLOT_COUNT, HEADER_BYTES)
            for word, value in init.items():
                if H_FIRST <= word < HEADER_BYTES // 4:
                    struct.pack_into("<i", mm, 4 * word, value)
            w = ctypes.c_int32.from_buffer(mm)
            C.store32(ctypes.addressof(w), MAGIC_VALUE)  # last
            del w
        C.link_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


class SyncSegment:
    """One open synchronisation segment of ``kind`` and the slot this handle owns.

    Word access: :meth:`ld` / :meth:`st` / :meth:`cas` / :meth:`add` /
    :meth:`xchg` are sequentially consistent (libatomic; on x86 a load is a
    plain aligned load, which is). The mapping (made with libc's mmap, so
    that no descriptor is kept with it) lives as long as this object, also
    after :meth:`close`: a thread still using the handle when another closes
    it reads stale words or gets EBADF, never a fault. :meth:`close` gives the
    slot up at once (F_UNLCK, then close) and :meth:`sleep` blocks the
    calling thread (without the GIL) on a futex word.
    """

    def __init__(self, name: str, path: str, kind: str, create: bool, exclusive: bool, mode: int,
                 owner: C.Owner, init: Optional[Dict[int, int]] = None) -> None:
        self.name = name
        self.path = path
        self.kind = KIND[kind]
        self.created = False
        self.slot = 0
        self._closed = False
        self._fd = -1
        self._gate = SpinGate()
        # Slots this handle holds (the first one and those claimed for the
        # waits of further threads), and whether a wait uses the first one.
        self._held: "set[int]" = set()
        self._first_busy = False
        self._slots_mu = threading.Lock()
        fd = -1
        syscall = "open"
        try:
            fd, self.created = C.open_or_create(path, name, create, exclusive,
                                                lambda: _create_and_link(path, mode, self.kind, init or {}))
            syscall = "fstat"
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                err = _errno.EISDIR if stat.S_ISDIR(st.st_mode) else _errno.EINVAL
                raise ipc_error(err, "fstat", name, f"'{path}' is {_what(st.st_mode)}, not a regular file")
            if not self.created:
                C.check_owner(st, owner, "fstat", name)
            if st.st_size != SEGMENT_BYTES:
                raise ipc_error(_errno.EINVAL, "fstat", name,
                                f"'{path}' is a {st.st_size}-byte file, not a {SEGMENT_BYTES}-byte posix-ipc segment")
            syscall = "mmap"
            ptr = _libc.mmap(None, SEGMENT_BYTES, mmap.PROT_READ | mmap.PROT_WRITE, mmap.MAP_SHARED, fd, 0)
            if ptr is None or ptr == _MAP_FAILED:
                raise ipc_error(ctypes.get_errno() or _errno.ENOMEM, "mmap", name)
            # Unmapped when this object is collected (nobody can use it any more).
            weakref.finalize(self, _libc.munmap, ptr, SEGMENT_BYTES)
            self._base = ptr
            self._w = _Words.from_address(ptr)
            self._fd = fd
            fd = -1
            w = self._w
            if (C.load32(ptr) != MAGIC_VALUE or w[H_VERSION] != LAYOUT_VERSION or w[H_SLOTS] != SLOT_COUNT
                    or w[H_SLOTBASE] != HEADER_BYTES):
                raise ipc_error(_errno.EINVAL, "mmap", name, f"'{path}' has no posix-ipc synchronisation header")
            if w[H_KIND] != self.kind:
                raise ipc_error(_errno.EINVAL, "mmap", name,
                                f"'{path}' is {kind_name(w[H_KIND])}, not {kind_name(self.kind)}")
            syscall = "fcntl"
            start = os.getpid() % SLOT_COUNT
            for i in range(SLOT_COUNT):
                sid = 1 + (start + i) % SLOT_COUNT
                if C.ofd_trylock(self._fd, slot_offset(sid)):
                    self.slot = sid
                    break
            if self.slot == 0:
                raise ipc_error(_errno.ENOSPC, "fcntl", name,
                                f"'{path}' has no free slot ({SLOT_COUNT} handles are open)")
        except BaseException as e:
            if fd >= 0:
                os.close(fd)
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
            self._closed = True
            if isinstance(e, OSError) and not isinstance(e, IPCError):
                if e.errno == _errno.ELOOP:
                    raise ipc_error(_errno.ELOOP, syscall, name,
                                    f"'{path}' is a symbolic link (never followed)") from None
                raise ipc_error(e.errno or _errno.EIO, syscall, name) from None
            raise
        self.mine = base(self.slot)
        self.st(self.mine + S_PID, os.getpid())
        self._held.add(self.slot)

    # -- words -------------------------------------------------------------

    def addr(self, word: int) -> int:
        """The address of word ``word`` of the segment."""
        return self._base + 4 * word  # type: ignore[no-any-return]

    if _TSO:
        def ld(self, word: int) -> int:
            return self._w[word]  # type: ignore[no-any-return]
    else:  # pragma: no cover - not x86
        def ld(self, word: int) -> int:
            return C.load32(self._base + 4 * word)

    def st(self, word: int, value: int) -> None:
        C.store32(self._base + 4 * word, value)

    def cas(self, word: int, expected: int, desired: int) -> int:
        """Compare-and-swap; returns the value found (``expected`` on success)."""
        return C.cas32_found(self._base + 4 * word, expected, desired)

    def add(self, word: int, delta: int) -> int:
        """Atomic add; returns the new value."""
        return C.add32(self._base + 4 * word, delta)

    def xchg(self, word: int, value: int) -> int:
        """Atomic exchange; returns the old (signed) value."""
        v = _xchg4(self._base + 4 * word, value & 0xFFFFFFFF, C.SEQ_CST)
        return v - (1 << 32) if v >= 1 << 31 else v  # type: ignore[no-any-return]

    def slot_words(self, j: int) -> "list[int]":
        """Word ``j`` of every slot, slot 1 first (one C-level slice, not 256 reads)."""
        first = HEADER_BYTES // 4 + j
        return self._w[first:first + SLOT_WORDS * SLOT_COUNT:SLOT_WORDS]  # type: ignore[no-any-return]

    # -- liveness, wake, sleep -------------------------------------------------

    def alive(self, sid: int) -> bool:
        """False only when slot ``sid``'s owner is gone (the kernel dropped its lock)."""
        if not 1 <= sid <= SLOT_COUNT:
            return False
        fd = self._fd
        # F_OFD_GETLK does not report our own descriptor's locks: ours are alive.
        if sid == self.slot or sid in self._held or fd < 0:
            return True
        return C.ofd_is_locked(fd, slot_offset(sid))

    def claim_wait_slot(self, what: str) -> int:
        """A slot for one wait: the handle's own while no other thread of this
        handle waits with it, else a further one, locked through the same
        descriptor (one lock per slot, as a handle of its own would take)
        until :meth:`release_wait_slot`. ENOSPC when none is free."""
        with self._slots_mu:
            self.check_open(what, "fcntl")
            if not self._first_busy:
                self._first_busy = True
                return self.slot
            start = (os.getpid() + len(self._held)) % SLOT_COUNT
            for i in range(SLOT_COUNT):
                sid = 1 + (start + i) % SLOT_COUNT
                # Our own descriptor's lock on a byte does not conflict with
                # itself: the slots we hold are skipped here.
                if sid in self._held:
                    continue
                if C.ofd_trylock(self._fd, slot_offset(sid)):
                    self._held.add(sid)
                    self.st(base(sid) + S_PID, os.getpid())
                    return sid
        raise ipc_error(_errno.ENOSPC, "fcntl", self.name, f"'{self.path}' has no free slot ({SLOT_COUNT} are in use)")

    def release_wait_slot(self, sid: int) -> None:
        """Gives back a slot from :meth:`claim_wait_slot`."""
        with self._slots_mu:
            if sid == self.slot:
                self._first_busy = False
                return
            self._held.discard(sid)
            if self._fd >= 0:
                try:
                    fcntl.fcntl(self._fd, C.F_OFD_SETLK,
                                struct.pack(C._FLOCK, C.F_UNLCK, os.SEEK_SET, slot_offset(sid), 1, 0))
                except OSError:
                    pass

    def wake(self, word: int, n: int = 0) -> None:
        """FUTEX_WAKE on ``word``: ``n`` sleepers (0: all)."""
        _futex_wake(self._base + 4 * word, C.INT_MAX if n <= 0 else n)

    @property
    def closed(self) -> bool:
        return self._closed

    def check_open(self, what: str, syscall: str) -> None:
        if self._closed:
            raise closed_error(what, syscall, self.name)

    def sleep(self, word: int, expected: int, seconds: float, what: str) -> None:
        """Sleeps while ``word`` holds ``expected``, at most ``seconds`` (and at
        most CHECK_S). EBADF if the handle is (or gets) closed."""
        self.check_open(what, "futex")
        _futex_wait(self._base + 4 * word, expected, min(seconds, CHECK_S))
        self.check_open(what, "futex")

    def wait_until(self, word: int, check: Callable[[], Optional[T]], timeout: Optional[float], what: str) -> Optional[T]:
        """Blocks until ``check()`` returns something other than None (returned)
        or ``timeout`` seconds pass (None: forever; returns None). Reads the
        word *before* each check, then sleeps on that value: a change after
        the check ends the sleep at once."""
        due = None if timeout is None else time.monotonic() + timeout
        spin = SPIN_S > 0 and timeout != 0
        while True:
            self.check_open(what, "futex")
            v = self.ld(word)
            r = check()
            if r is not None:
                return r
            if spin:
                spin = False
                r = self._spin(word, v, check)
                if r is not None:
                    return r
                continue
            left = CHECK_S
            if due is not None:
                left = due - time.monotonic()
                if left <= 0:
                    return None
            self.sleep(word, v, left, what)

    def _spin(self, word: int, v: int, check: Callable[[], Optional[T]]) -> Optional[T]:
        """Before the first sleep: watches ``word`` for up to SPIN_S and runs
        ``check()`` each time it changes (gated as the Node side's spin)."""
        gate = self._gate
        if not gate.open():
            return None
        w = self._w
        end = time.perf_counter() + SPIN_S
        seen = v
        while True:
            now = w[word] if _TSO else self.ld(word)
            if now != seen:
                seen = now
                r = check()
                if r is not None:
                    gate.hit()
                    return r
            if time.perf_counter() >= end:
                break
        gate.miss()
        return None

    # -- the internal lock -----------------------------------------------------

    def lock(self, word: int, waiters: int) -> bool:
        """Takes the spin lock in header word ``word`` (0 free, else the holder's
        slot); ``waiters`` counts contenders asleep on it. A holder found dead
        is taken over: returns True then, so that the caller can repair what
        it may have half done. As lib/sync/segment.ts's lock()."""
        a = self._base + 4 * word
        i = 0
        while True:
            cur = C.cas32_found(a, 0, self.slot)
            if cur == 0:
                return False
            if i >= 64 and i % 16 == 0 and not self.alive(cur):
                if C.cas32(a, cur, self.slot):
                    return True
            elif i >= 128:
                self.add(waiters, 1)
                _futex_wait(a, cur, 0.002)
                self.add(waiters, -1)
            elif i >= 16:
                os.sched_yield()
            i += 1

    def unlock(self, word: int, waiters: int) -> None:
        self.st(word, 0)
        if self.ld(waiters) > 0:
            self.wake(word, 1)

    # -- lifecycle ---------------------------------------------------------------

    def close(self) -> None:
        """Gives the slot up at once (unlocks its byte, closes the descriptor).
        The mapping goes when this object is collected. Idempotent."""
        with self._slots_mu:
            if self._closed:
                return
            self._closed = True
            fd, self._fd = self._fd, -1
        if fd >= 0:
            try:
                # Every slot lock this descriptor holds (the mapping keeps the
                # open file description, and so its locks, alive).
                fcntl.fcntl(fd, C.F_OFD_SETLK,
                            struct.pack(C._FLOCK, C.F_UNLCK, os.SEEK_SET, HEADER_BYTES, SLOT_BYTES * SLOT_COUNT, 0))
            except OSError:
                pass
            os.close(fd)


def _what(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


def unlink_segment(path: str, name: str) -> None:
    """Removes the segment file at ``path``. FileNotFoundError if there is none."""
    try:
        os.unlink(path)
    except OSError as e:
        raise ipc_error(e.errno or _errno.EIO, "unlink", name) from None
