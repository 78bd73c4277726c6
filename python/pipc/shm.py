"""Shared memory: :class:`SharedMemory` (raw bytes), :class:`Value` and
:class:`SharedArray` (typed cells with Python ``array`` typecodes and real
atomic operations), the same segments as the Node side's classes of those
names, with the same layout: the caller's bytes from offset 0, no header;
element ``i`` at ``i * itemsize``, native byte order, CPython's sizes on
64-bit Linux (``l``/``L`` are 8 bytes).

A segment is opened as ``shm_open`` does (``/dev/shm/NAME``), but safely: no
symlink is followed (O_NOFOLLOW), a FIFO cannot block the open (O_NONBLOCK),
and ``fstat`` checks that it is a regular file, owned as ``owner`` allows,
large enough. Nothing is registered with multiprocessing's resource tracker:
a segment this process merely opened is never unlinked behind its back.

Atomic operations (``add``, ``sub``, ``and_``, ``or_``, ``xor``,
``exchange``, ``compare_exchange``, ``load``, ``store``) call libatomic on
the mapping's address: each is one sequentially consistent hardware atomic on
the same cell JavaScript's ``Atomics`` use, so mixed Node and Python ``add()``
calls lose no update. ``value`` (and indexing) is a plain load or store.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import mmap
import os
import secrets
import stat
import struct
import time
from typing import Any, Iterable, Iterator, Optional, Union

from . import _libc as C
from ._closable import Closable
from ._errors import IPCError, closed_error, ipc_error
from ._names import PLAIN_SEM_RESERVED, SHM_DIR, validate_name
from .semaphore import Lock, Semaphore, _hybrid

__all__ = ["SharedMemory", "Value", "SharedArray", "TYPECODES", "PAGE_SIZE"]

PAGE_SIZE = mmap.PAGESIZE

# typecode -> (size, signed, integer)
TYPECODES = {
    "b": (1, True, True), "B": (1, False, True), "h": (2, True, True), "H": (2, False, True),
    "i": (4, True, True), "I": (4, False, True), "l": (8, True, True), "L": (8, False, True),
    "q": (8, True, True), "Q": (8, False, True), "f": (4, True, False), "d": (8, True, False),
}
# struct format of one element (explicit sizes: struct's native 'l' is 8 bytes here too).
_FORMAT = {"b": "b", "B": "B", "h": "h", "H": "H", "i": "i", "I": "I", "l": "q", "L": "Q",
           "q": "q", "Q": "Q", "f": "f", "d": "d"}


def _open_segment(name: str, create: bool, exclusive: bool, read_only: bool, mode: int, size: int,
                  owner: C.Owner, init: Optional[bytes], wait_for_size: bool) -> "tuple[int, bool, int]":
    """Opens (or creates) the segment; returns (fd, created, size of the file)."""
    path = f"{SHM_DIR}/{name[1:]}"
    access = os.O_RDONLY if read_only else os.O_RDWR
    flags = access | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    created = False
    for attempt in range(101):
        if create:
            try:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, mode)
                created = True
                break
            except FileExistsError:
                if exclusive:
                    raise ipc_error(_errno.EEXIST, "shm_open", name) from None
            except OSError as e:
                raise _open_error(e, name) from None
        try:
            fd = os.open(path, flags)
            break
        except FileNotFoundError:
            if not create or attempt >= 100:
                raise ipc_error(_errno.ENOENT, "shm_open", name) from None
        except OSError as e:
            raise _open_error(e, name) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ipc_error(_errno.EINVAL, "shm_open", name, "is not a regular file (a shared memory segment)")
        if not created:
            C.check_owner(st, owner, "shm_open", name)
        if created:
            os.fchmod(fd, mode)  # as the Node side: the mode given, whatever the umask
            os.ftruncate(fd, size)
            if init:
                os.pwrite(fd, init, 0)
            return fd, True, size
        have = st.st_size
        if wait_for_size and have < size:
            stop = time.monotonic() + 1.0  # a racing creator sizes it microseconds after its open
            while have < size and time.monotonic() < stop:
                time.sleep(0.001)
                have = os.fstat(fd).st_size
        return fd, False, have
    except BaseException:
        os.close(fd)
        if created:
            try:
                os.unlink(path)
            except OSError:
                pass
        raise


def _open_error(e: OSError, name: str) -> IPCError:
    if e.errno == _errno.ELOOP:
        return ipc_error(_errno.ELOOP, "shm_open", name, "is a symbolic link, which is never followed")
    return ipc_error(e.errno or _errno.EIO, "shm_open", name)


class SharedMemory(Closable):
    """A named POSIX shared-memory segment, shaped like
    ``multiprocessing.shared_memory.SharedMemory``.

    >>> shm = SharedMemory("frame", create=True, size=1 << 20)
    >>> shm.buf[:5] = b"hello"      # Node sees the same bytes in shm.buffer

    Args:
        name: ``"frame"`` or ``"/frame"``; None (with create) makes a fresh
            ``psm_XXXXXXXX`` name.
        create: create the segment. As the standard library, a creating call
            fails with FileExistsError if the name exists, unless
            ``exclusive=False`` (open it, or create it if missing).
        size: the size of a segment this call creates (an opener maps the whole segment).
        exclusive: see ``create`` (default: ``create``).
        mode: permission bits of a created segment (default 0o600).
        read_only: map an existing segment read-only (writes raise TypeError).
        owner: whose existing segment may be opened: ``'self'``, ``'any'`` or a uid.
    """

    def __init__(self, name: Optional[str] = None, create: bool = False, size: int = 0, *,
                 exclusive: Optional[bool] = None, mode: int = 0o600, read_only: bool = False,
                 owner: C.Owner = "self") -> None:
        self._mm: Optional[mmap.mmap] = None
        self._anchor: Optional[ctypes.Array] = None
        if isinstance(size, bool) or not isinstance(size, int):
            raise TypeError("size must be an int")
        if size < 0:
            raise ValueError("size must be >= 0")
        if create and read_only:
            raise ValueError("read_only cannot be used with create=True")
        if create and size == 0:
            raise ValueError("'size' must be a positive number different from zero")
        mode = C.validate_mode(mode)
        owner = C.validate_owner(owner)
        excl = create if exclusive is None else bool(exclusive)
        if name is None:
            if not create:
                raise ValueError("'name' can only be None if create=True")
            for attempt in range(101):
                osname = "/psm_" + secrets.token_hex(4)
                try:
                    fd, created, have = _open_segment(osname, True, True, False, mode, size, owner, None, False)
                    break
                except FileExistsError:
                    if attempt >= 100:
                        raise
        else:
            osname = validate_name(name)
            fd, created, have = _open_segment(osname, create, excl, read_only, mode, size, owner, None, False)
        self._name = osname
        self.created = created
        try:
            self._map(fd, have, read_only)
        finally:
            os.close(fd)  # the mapping keeps the segment alive
        self.read_only = read_only

    def _map(self, fd: int, size: int, read_only: bool) -> None:
        if size == 0:
            raise ipc_error(_errno.EINVAL, "mmap", self._name, "is empty (0 bytes): nothing to map")
        try:
            self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED,
                                 mmap.PROT_READ if read_only else mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as e:
            raise ipc_error(e.errno or _errno.EIO, "mmap", self._name) from None
        self._size = size
        self._buf: Optional[memoryview] = memoryview(self._mm)

    @property
    def name(self) -> str:
        """The name without its leading slash, as the standard library's ``SharedMemory.name``."""
        return self._name[1:]

    @property
    def size(self) -> int:
        """The size of the mapping in bytes."""
        return self._size

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._mm is None

    @property
    def buf(self) -> memoryview:
        """A memoryview over the mapping: the bytes every process sees, no copy."""
        if self._buf is None:
            raise closed_error("shared memory", "mmap", self._name)
        return self._buf

    def address(self) -> int:
        """The mapping's address (for ctypes and the atomics); valid until close()."""
        if self._mm is None:
            raise closed_error("shared memory", "mmap", self._name)
        if self.read_only:
            raise ipc_error(_errno.EACCES, "mmap", self._name, "segment is mapped read-only")
        if self._anchor is None:
            self._anchor = (ctypes.c_char * self._size).from_buffer(self._mm)
        return ctypes.addressof(self._anchor)

    def close(self) -> None:
        """Unmaps the segment (views of ``buf`` taken by the caller must be
        released first, as with the standard library). Idempotent."""
        if self._mm is None:
            return
        if self._buf is not None:
            self._buf.release()
            self._buf = None
        self._anchor = None
        self._mm.close()
        self._mm = None

    def _unlink_self(self) -> None:
        SharedMemory._unlink_name(self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        """Removes the segment's name (FileNotFoundError if already gone)."""
        n = validate_name(name)
        try:
            os.unlink(f"{SHM_DIR}/{n[1:]}")
        except OSError as e:
            raise ipc_error(e.errno or _errno.EIO, "shm_unlink", n) from None

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``shm.unlink()`` removes this segment's name; ``SharedMemory.unlink(name)`` removes ``name``."""

    def __repr__(self) -> str:
        return f"SharedMemory({self.name!r}, size={getattr(self, '_size', 0)})"


Scalar = Union[int, float]


class _Cells(Closable):
    """What Value and SharedArray share: a segment of typed cells, a lock
    found by the same name, atomics and the lifecycle."""

    _kind = "cells"

    def __init__(self, typecode: str, count: int, init: Optional[bytes], name: Optional[str], lock: Union[bool, Semaphore],
                 create: bool, exclusive: bool, mode: int, read_only: bool, owner: C.Owner) -> None:
        self._mm: Optional[mmap.mmap] = None
        self._anchor: Optional[ctypes.Array] = None
        self._lock: Optional[Semaphore] = None
        if not isinstance(typecode, str) or typecode not in TYPECODES:
            raise ValueError(f"typecode must be one of {', '.join(TYPECODES)}, not {typecode!r}")
        self._tc = typecode
        self._itemsize, self._signed, self._integer = TYPECODES[typecode]
        self._fmt = _FORMAT[typecode]
        self._count = count
        if not isinstance(lock, (bool, Semaphore)):
            raise TypeError("lock must be a bool or a pipc.Lock")
        self._lock_option = lock
        if read_only and create:
            raise ValueError("read_only cannot be used with create=True (pass create=False)")
        self._mode = C.validate_mode(mode)
        self._owner = C.validate_owner(owner)
        size = count * self._itemsize
        if name is None:
            if not create:
                raise ValueError(f"A name is required to open an existing {self._kind} (create=False)")
            for attempt in range(101):
                osname = "/psm_" + secrets.token_hex(4)
                try:
                    fd, created, have = _open_segment(osname, True, True, False, self._mode, size, self._owner, init, False)
                    break
                except FileExistsError:
                    if attempt >= 100:
                        raise
        else:
            osname = validate_name(name, "name", PLAIN_SEM_RESERVED)
            fd, created, have = _open_segment(osname, create, exclusive, read_only, self._mode, size, self._owner,
                                              init, True)
        self._name = osname
        self.created = created
        try:
            if have < size:
                raise ipc_error(_errno.EINVAL, "mmap", osname,
                                f"segment is {have} bytes, smaller than the {size} a {self._kind}('{typecode}') of "
                                f"{count} needs")
            self._mm = mmap.mmap(fd, size, mmap.MAP_SHARED,
                                 mmap.PROT_READ if read_only else mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        self.read_only = read_only
        self._view: Optional[memoryview] = memoryview(self._mm).cast(self._fmt)
        if not read_only:
            self._anchor = (ctypes.c_char * size).from_buffer(self._mm)
            self._base = ctypes.addressof(self._anchor)

    # -- checks ------------------------------------------------------------------

    def _v(self, syscall: str = "read") -> memoryview:
        if self._view is None:
            raise closed_error(type(self).__name__, syscall, self._name)
        return self._view

    def _writable(self) -> memoryview:
        v = self._v("write")
        if self.read_only:
            raise ipc_error(_errno.EACCES, "write", self._name, "segment is mapped read-only")
        return v

    def _check(self, v: Any, arg: str = "value") -> Scalar:
        if self._integer:
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{arg} must be an int for typecode '{self._tc}', not {type(v).__name__}")
            bits = 8 * self._itemsize
            lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if self._signed else (0, (1 << bits) - 1)
            if not lo <= v <= hi:
                raise OverflowError(f"{arg} {v} is out of range for typecode '{self._tc}' ({lo}..{hi})")
            return v
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise TypeError(f"{arg} must be a float for typecode '{self._tc}', not {type(v).__name__}")
        return float(v)

    def _addr(self, index: int, syscall: str) -> int:
        if self._view is None:
            raise closed_error(type(self).__name__, syscall, self._name)
        if not self._integer:
            raise TypeError(f"Atomic operations need an integer typecode; '{self._tc}' is floating point")
        if self.read_only and syscall != "load":
            raise ipc_error(_errno.EACCES, "write", self._name, "segment is mapped read-only")
        return self._base + index * self._itemsize

    def _signed_of(self, v: int) -> int:
        if self._signed and v >= 1 << (8 * self._itemsize - 1):
            return v - (1 << (8 * self._itemsize))
        return v

    def _rmw(self, op: str, index: int, v: int) -> int:
        a = self._addr(index, op)
        if op in ("fetch_add", "fetch_sub"):
            # A delta may be given signed or unsigned: it wraps at the width.
            bits = 8 * self._itemsize
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"value must be an int for typecode '{self._tc}', not {type(v).__name__}")
            if not -(1 << (bits - 1)) <= v < (1 << bits):
                raise OverflowError(f"value {v} does not fit {bits} bits")
        else:
            self._check(v)
        return self._signed_of(C.atomic_rmw(op, a, self._itemsize, v))

    def _load(self, index: int) -> int:
        if self.read_only:
            if not self._integer:
                raise TypeError(f"Atomic operations need an integer typecode; '{self._tc}' is floating point")
            return self._v("load")[index]  # an aligned load of one cell is atomic
        return self._signed_of(C.atomic_load(self._addr(index, "load"), self._itemsize))

    def _store(self, index: int, v: int) -> int:
        a = self._addr(index, "store")
        self._check(v)
        C.atomic_store(a, self._itemsize, v)
        return v

    def _cas(self, index: int, expected: int, replacement: int) -> int:
        a = self._addr(index, "compare_exchange")
        self._check(expected, "expected")
        self._check(replacement, "replacement")
        return self._signed_of(C.atomic_cas(a, self._itemsize, expected, replacement))

    # -- state ---------------------------------------------------------------------

    @property
    def typecode(self) -> str:
        """The ``array`` typecode of the elements."""
        return self._tc

    @property
    def name(self) -> str:
        """The segment's name as the OS sees it (``'/hits'``), shared with its lock."""
        return self._name

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._view is None

    def get_lock(self) -> Semaphore:
        """The Lock guarding these cells across processes: the crash-safe Lock of
        the same name (opened, or created, on first call; closed by :meth:`close`),
        as the Node side's ``getLock()``. A read-modify-write under it composes
        with other holders of the lock, not with a lock-free ``add()`` elsewhere."""
        if isinstance(self._lock_option, Semaphore):
            return self._lock_option
        if self._lock_option is False:
            raise TypeError(f"This {type(self).__name__} was made with lock=False and has no lock")
        self._v("sem_open")
        if self._lock is None:
            self._lock = Lock(self._name, mode=self._mode, owner=self._owner)
        return self._lock

    def close(self) -> None:
        """Unmaps the segment and closes the lock this object opened. Idempotent."""
        if self._view is not None:
            self._view.release()
            self._view = None
        self._anchor = None
        if self._mm is not None:
            self._mm.close()
            self._mm = None
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _unlink_self(self) -> None:
        if not isinstance(self._lock_option, Semaphore):
            _unlink_lock_quietly(self._name)
        SharedMemory.unlink(self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        """Removes the segment ``name`` and its lock (of either kind)."""
        n = validate_name(name, "name", PLAIN_SEM_RESERVED)
        _unlink_lock_quietly(n)
        SharedMemory.unlink(n)

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``v.unlink()`` / ``Value.unlink(name)``: removes the segment's name and its lock's."""



def _unlink_lock_quietly(name: str) -> None:
    try:
        Semaphore.unlink(name)
    except FileNotFoundError:
        pass


class Value(_Cells):
    """One typed value in shared memory, by name: ``multiprocessing.Value``
    visible to unrelated processes, the same cell as Node's ``Value``.

    >>> hits = Value("i", 0, name="hits")   # open, or create holding 0
    >>> hits.add(1)                          # atomic across processes; the old value
    >>> with hits.get_lock():
    ...     hits.value = hits.value * 2      # read-modify-write under the lock

    Args:
        typecode: one of ``b B h H i I l L q Q f d``.
        value: the value a newly created segment starts with (ignored if it exists).
        name: the segment's name (None: a fresh ``psm_`` name; read ``name``).
        lock: True (default): ``get_lock()`` opens the Lock of the same name;
            False: none; or a pipc Lock to use.
        create, exclusive, mode, read_only, owner: as for :class:`SharedMemory`
            (``create`` defaults to True: open, or create if missing).
    """

    _kind = "Value"

    def __init__(self, typecode: str, value: Scalar = 0, *, name: Optional[str] = None, lock: Union[bool, Semaphore] = True,
                 create: Optional[bool] = None, exclusive: bool = False, mode: int = 0o600, read_only: bool = False,
                 owner: C.Owner = "self") -> None:
        if not isinstance(typecode, str) or typecode not in TYPECODES:
            raise ValueError(f"typecode must be one of {', '.join(TYPECODES)}, not {typecode!r}")
        self._tc, (self._itemsize, self._signed, self._integer) = typecode, TYPECODES[typecode]
        self._view = None
        init = struct.pack(_FORMAT[typecode], self._check(value, "value"))
        super().__init__(typecode, 1, init, name, lock, (not read_only) if create is None else create, exclusive,
                         mode, read_only, owner)

    @property
    def value(self) -> Scalar:
        """The current value (a plain read; :meth:`load` is the atomic one)."""
        return self._v()[0]  # type: ignore[no-any-return]

    @value.setter
    def value(self, v: Scalar) -> None:
        view = self._writable()
        view[0] = self._check(v)

    def load(self) -> int:
        """Atomically reads the value."""
        return self._load(0)

    def store(self, v: int) -> int:
        """Atomically writes ``v``; returns ``v``."""
        return self._store(0, v)

    def add(self, v: int) -> int:
        """Atomically adds ``v`` (wrapping at the type's width); returns the previous value."""
        return self._rmw("fetch_add", 0, v)

    def sub(self, v: int) -> int:
        """Atomically subtracts ``v``; returns the previous value."""
        return self._rmw("fetch_sub", 0, v)

    def and_(self, v: int) -> int:
        """Atomic bitwise and; returns the previous value."""
        return self._rmw("fetch_and", 0, v)

    def or_(self, v: int) -> int:
        """Atomic bitwise or; returns the previous value."""
        return self._rmw("fetch_or", 0, v)

    def xor(self, v: int) -> int:
        """Atomic bitwise xor; returns the previous value."""
        return self._rmw("fetch_xor", 0, v)

    def exchange(self, v: int) -> int:
        """Atomically stores ``v``; returns the previous value."""
        return self._rmw("exchange", 0, v)

    def compare_exchange(self, expected: int, replacement: int) -> int:
        """Stores ``replacement`` if the value is ``expected``; returns the value
        found (equal to ``expected`` when it stored), as ``Atomics.compareExchange``."""
        return self._cas(0, expected, replacement)

    def __repr__(self) -> str:
        return f"<Value {self._tc!r} {self._name!r} {'closed' if self.closed else self.value}>"


class SharedArray(_Cells):
    """A typed array in shared memory, by name: ``multiprocessing.Array``
    visible to unrelated processes, the same elements as Node's ``SharedArray``.

    >>> grid = SharedArray("d", 1024, name="grid")
    >>> grid[3] = 1.5; grid[0:2] = [1.0, 2.0]
    >>> counts = SharedArray("I", [0, 0, 0, 0], name="counts")
    >>> counts.add(2, 1)                 # atomic on element 2

    Args:
        typecode: one of ``b B h H i I l L q Q f d``.
        size_or_initializer: the number of elements (a new segment is zero
            filled) or the initial elements of a segment this call creates
            (only their count matters when it exists).
        The rest as for :class:`Value`. An existing segment may be larger:
        this object views its first ``len`` elements.
    """

    _kind = "SharedArray"

    def __init__(self, typecode: str, size_or_initializer: Union[int, Iterable[Scalar]], *, name: Optional[str] = None,
                 lock: Union[bool, Semaphore] = True, create: Optional[bool] = None, exclusive: bool = False,
                 mode: int = 0o600, read_only: bool = False, owner: C.Owner = "self") -> None:
        if not isinstance(typecode, str) or typecode not in TYPECODES:
            raise ValueError(f"typecode must be one of {', '.join(TYPECODES)}, not {typecode!r}")
        self._tc, (self._itemsize, self._signed, self._integer) = typecode, TYPECODES[typecode]
        self._view = None
        init: Optional[bytes] = None
        if isinstance(size_or_initializer, bool):
            raise TypeError("size_or_initializer must be an int or an iterable of values")
        if isinstance(size_or_initializer, int):
            count = size_or_initializer
        else:
            values = [self._check(v, f"values[{i}]") for i, v in enumerate(size_or_initializer)]
            count = len(values)
            init = struct.pack(f"{count}{_FORMAT[typecode]}", *values)
        if not 1 <= count <= 2**32 - 1:
            raise ValueError(f"the length must be within 1 and {2**32 - 1}, not {count}")
        super().__init__(typecode, count, init, name, lock, (not read_only) if create is None else create, exclusive,
                         mode, read_only, owner)

    @property
    def array(self) -> memoryview:
        """A memoryview of the elements (cast to the typecode): plain, no copy."""
        return self._v()

    def __len__(self) -> int:
        return self._count

    def _index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError("index must be an int")
        if index < 0:
            index += self._count
        if not 0 <= index < self._count:
            raise IndexError("SharedArray index out of range")
        return index

    def __getitem__(self, index: Union[int, slice]) -> Any:
        v = self._v()
        if isinstance(index, slice):
            return v[index].tolist()
        return v[self._index(index)]

    def __setitem__(self, index: Union[int, slice], value: Any) -> None:
        v = self._writable()
        if isinstance(index, slice):
            items = [self._check(x) for x in value]
            rng = range(*index.indices(self._count))
            if len(items) != len(rng):
                raise ValueError("slice assignment must not change the length")
            for i, x in zip(rng, items):
                v[i] = x
            return
        v[self._index(index)] = self._check(value)

    def __iter__(self) -> Iterator[Scalar]:
        return iter(self._v().tolist())

    def tolist(self) -> list:
        """A copy of the elements."""
        return self._v().tolist()

    def load(self, index: int) -> int:
        """Atomically reads element ``index``."""
        return self._load(self._index(index))

    def store(self, index: int, v: int) -> int:
        """Atomically writes element ``index``; returns ``v``."""
        return self._store(self._index(index), v)

    def add(self, index: int, v: int) -> int:
        """Atomically adds ``v`` to element ``index`` (wrapping); returns its previous value."""
        return self._rmw("fetch_add", self._index(index), v)

    def sub(self, index: int, v: int) -> int:
        """Atomically subtracts ``v`` from element ``index``; returns its previous value."""
        return self._rmw("fetch_sub", self._index(index), v)

    def and_(self, index: int, v: int) -> int:
        """Atomic bitwise and on element ``index``; returns its previous value."""
        return self._rmw("fetch_and", self._index(index), v)

    def or_(self, index: int, v: int) -> int:
        """Atomic bitwise or on element ``index``; returns its previous value."""
        return self._rmw("fetch_or", self._index(index), v)

    def xor(self, index: int, v: int) -> int:
        """Atomic bitwise xor on element ``index``; returns its previous value."""
        return self._rmw("fetch_xor", self._index(index), v)

    def exchange(self, index: int, v: int) -> int:
        """Atomically stores ``v`` in element ``index``; returns its previous value."""
        return self._rmw("exchange", self._index(index), v)

    def compare_exchange(self, index: int, expected: int, replacement: int) -> int:
        """Stores ``replacement`` in element ``index`` if it holds ``expected``;
        returns the value found."""
        return self._cas(self._index(index), expected, replacement)

    def __repr__(self) -> str:
        return f"<SharedArray {self._tc!r} {self._name!r} len={self._count}{' closed' if self.closed else ''}>"
