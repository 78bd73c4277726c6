"""Queues on POSIX message queues: :class:`Queue`, the same object as the Node
side's ``Queue`` of that name, with its wire format (docs/api.md, "Wire
format"): one item is one message, no header; the JSON codec's message is
exactly the UTF-8 JSON text; an encoded item larger than the queue's message
size travels through a side segment in /dev/shm announced by a descriptor
message (``b"\\0PIPCBIG"``, the length as 8 bytes little-endian, the segment's
name). ``get`` raises :class:`queue.Empty`, ``put`` :class:`queue.Full`, as
Python's own queues.
"""
from __future__ import annotations

import ctypes
import errno as _errno
import itertools
import json
import os
import queue as _queue
import re
import secrets
import stat
import time
from typing import Any, Callable, Optional, Tuple, Union

from . import _libc as C
from . import _ring
from ._errors import IPCError, closed_error, ipc_error
from ._names import NAME_MAX, SHM_DIR, validate_name
from ._closable import Closable
from .semaphore import _hybrid

__all__ = ["Queue", "Empty", "Full", "MQ_PRIO_MAX", "LARGE_MAGIC"]

Empty = _queue.Empty
Full = _queue.Full
MQ_PRIO_MAX = 32768
LARGE_MAGIC = b"\0PIPCBIG"
LARGE_HEADER = 16
_SEGMENT_SUFFIX = re.compile(r"^\d+-\d+-[0-9a-f]+$")
_segment_seq = itertools.count(1)


class MqAttr(ctypes.Structure):
    """struct mq_attr (with its reserved tail)."""

    _fields_ = [("mq_flags", ctypes.c_long), ("mq_maxmsg", ctypes.c_long),
                ("mq_msgsize", ctypes.c_long), ("mq_curmsgs", ctypes.c_long),
                ("pad", ctypes.c_long * 4)]


_mq = C.librt
_mq.mq_open.restype = ctypes.c_int
_mq.mq_open.argtypes = [ctypes.c_char_p, ctypes.c_int, ctypes.c_uint, ctypes.POINTER(MqAttr)]
_mq.mq_getattr.argtypes = [ctypes.c_int, ctypes.POINTER(MqAttr)]
_mq.mq_timedsend.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint,
                             ctypes.POINTER(C.Timespec)]
_mq.mq_timedreceive.restype = ctypes.c_ssize_t
_mq.mq_timedreceive.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_uint),
                                ctypes.POINTER(C.Timespec)]
_mq.mq_close.argtypes = [ctypes.c_int]
_mq.mq_unlink.argtypes = [ctypes.c_char_p]


def _setting(name: str, fallback: int) -> int:
    try:
        with open(f"/proc/sys/fs/mqueue/{name}") as f:
            return int(f.read())
    except (OSError, ValueError):
        return fallback


class Codec:
    """An item codec: ``encode(item) -> bytes`` and ``decode(bytes) -> item``."""

    def __init__(self, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any]) -> None:
        self.encode = encode
        self.decode = decode


def _json_encode(item: Any) -> bytes:
    # JSON.stringify's output: compact, UTF-8, and no NaN/Infinity (which JSON.parse refuses).
    try:
        return json.dumps(item, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    except ValueError as e:
        raise ValueError(f"Cannot encode item as JSON: {e}") from None


def _json_decode(data: bytes) -> Any:
    return json.loads(data.decode("utf-8"))


JSON = Codec(_json_encode, _json_decode)
RAW = Codec(lambda b: bytes(b) if isinstance(b, (bytes, bytearray, memoryview)) else _raw_type(b), bytes)


def _raw_type(b: Any) -> bytes:
    raise TypeError(f"the raw codec sends bytes-like items, not {type(b).__name__}")


def _codec(option: Union[str, Codec, Any]) -> Codec:
    if option == "json":
        return JSON
    if option == "raw":
        return RAW
    if option == "v8":
        raise ValueError("the 'v8' codec is Node to Node only; use 'json' or 'raw' with a Python peer")
    if isinstance(option, str):
        raise ValueError(f"codec must be 'json', 'raw' or an object with encode() and decode(), not {option!r}")
    if callable(getattr(option, "encode", None)) and callable(getattr(option, "decode", None)):
        return option  # type: ignore[no-any-return]
    raise TypeError("codec must be 'json', 'raw' or an object with encode() and decode()")


class Queue(Closable):
    """A FIFO of items (by priority, then order) shared by name across
    processes, Node and Python: a POSIX message queue.

    >>> q = Queue("jobs", maxsize=10)
    >>> q.put({"id": 1})
    >>> q.get(timeout=5)
    {'id': 1}

    Args:
        name: ``"jobs"`` or ``"/jobs"``.
        maxsize: capacity in messages of a queue this call creates (None: the
            existing one, or the system default). An existing queue with
            another capacity is an IPCError EINVAL.
        max_message_size: the largest message in bytes (None: as maxsize).
            Larger items travel in side segments.
        codec: ``'json'`` (default), ``'raw'`` (bytes), or an object with
            ``encode(item) -> bytes`` and ``decode(bytes) -> item``.
        create, exclusive, mode, owner: as for :class:`pipc.Semaphore`.
        transport: ``'shm'`` (a ring in one shared-memory segment, as the Node
            side's default) or ``'mq'``. Default: whichever kind exists at the
            name, else ``'shm'`` (``'mq'`` when ``max_message_size`` is given).
            Asking for one kind where the other exists is FileExistsError EEXIST.
        capacity: ``'shm'`` only: the ring's bytes of a queue this call creates,
            64..2**30, rounded up to a multiple of 8 (default 8 MiB); an item
            may be up to ``capacity - 8`` bytes.

    On ``'shm'``, ``maxsize`` counts items (1..2**31-1; None: the existing
    queue's, or unbounded for a new one, reported as ``maxsize == 0``), and
    priorities other than 0 are IPCError ENOTSUP (the ring is strictly FIFO).
    """

    def __init__(self, name: str, maxsize: Optional[int] = None, *, max_message_size: Optional[int] = None,
                 codec: Union[str, Codec] = "json", create: bool = True, exclusive: bool = False,
                 mode: int = 0o600, owner: C.Owner = "self", transport: Optional[str] = None,
                 capacity: Optional[int] = None) -> None:
        self._mqd = -1
        self._ring: Optional[_ring.Ring] = None
        self._name = validate_name(name)
        if transport not in (None, "shm", "mq"):
            raise ValueError(f"transport must be 'shm' or 'mq', not {transport!r}")
        self._codec = _codec(codec)
        mode = C.validate_mode(mode)
        owner = C.validate_owner(owner)
        self.last_priority = 0
        """The priority of the item received last."""
        self.last_large = False
        """True if the item received last travelled through a side segment."""
        kind = _choose_transport(self._name, transport, max_message_size is not None and capacity is None)
        if kind == "shm":
            self._open_ring(maxsize, max_message_size, capacity, create, exclusive, mode, owner)
            return
        if capacity is not None:
            raise TypeError(f"capacity is for transport 'shm', and {self._name!r} is an 'mq' queue" if transport is None
                            else "capacity is for transport 'shm'; an 'mq' queue has maxsize and max_message_size")
        for v, arg, hi in ((maxsize, "maxsize", 65536), (max_message_size, "max_message_size", 16 << 20)):
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"{arg} must be an int or None")
                if not 1 <= v <= hi:
                    raise ValueError(f"{arg} must be within 1 and {hi}, not {v}")
        attr = None
        if maxsize is not None or max_message_size is not None:
            attr = MqAttr()
            attr.mq_maxmsg = maxsize if maxsize is not None else _setting("msg_default", 10)
            attr.mq_msgsize = max_message_size if max_message_size is not None else _setting("msgsize_default", 8192)
        flags = os.O_RDWR | os.O_CLOEXEC | (os.O_CREAT if create else 0) | (os.O_EXCL if create and exclusive else 0)
        mqd = _mq.mq_open(self._name.encode(), flags, mode, ctypes.byref(attr) if attr is not None else None)
        if mqd == -1:
            raise ipc_error(ctypes.get_errno(), "mq_open", self._name)
        self._mqd = mqd
        try:
            st = os.fstat(mqd)
            C.check_owner(st, owner, "mq_open", self._name)
            a = self._attr()
            if (maxsize is not None and a.mq_maxmsg != maxsize) or (
                    max_message_size is not None and a.mq_msgsize != max_message_size):
                raise ipc_error(_errno.EINVAL, "mq_open", self._name,
                                f"the queue exists with maxsize {a.mq_maxmsg} and max_message_size {a.mq_msgsize}, "
                                f"not the requested maxsize {maxsize or a.mq_maxmsg} and max_message_size "
                                f"{max_message_size or a.mq_msgsize}; open it without them or unlink it first")
        except BaseException:
            self.close()
            raise
        self._maxsize = int(a.mq_maxmsg)
        self._msgsize = int(a.mq_msgsize)
        self._mode = stat.S_IMODE(st.st_mode)
        self._uid = st.st_uid
        self._buf = ctypes.create_string_buffer(self._msgsize)
        self._prio = ctypes.c_uint()

    def _open_ring(self, maxsize: Optional[int], max_message_size: Optional[int], capacity: Optional[int],
                   create: bool, exclusive: bool, mode: int, owner: C.Owner) -> None:
        if max_message_size is not None:
            raise TypeError("max_message_size is for transport 'mq'; a 'shm' queue takes items up to its capacity")
        for v, arg, lo, hi in ((maxsize, "maxsize", 1, 2**31 - 1),
                               (capacity, "capacity", _ring.MIN_CAPACITY, _ring.MAX_CAPACITY)):
            if v is not None:
                if isinstance(v, bool) or not isinstance(v, int):
                    raise TypeError(f"{arg} must be an int or None")
                if not lo <= v <= hi:
                    raise ValueError(f"{arg} must be within {lo} and {hi}, not {v}")
        cap = _ring.DEFAULT_CAPACITY if capacity is None else _ring.align8(capacity)
        r = _ring.Ring(self._name, create, exclusive, mode, cap, maxsize or 0, owner)
        if (capacity is not None and r.cap != cap) or (maxsize is not None and r.maxsize != maxsize):
            r.close()
            raise ipc_error(_errno.EINVAL, "ring_open", self._name,
                            f"the queue exists with capacity {r.cap} and maxsize {r.maxsize or 'unbounded'}, not the "
                            f"requested capacity {cap if capacity is not None else r.cap} and maxsize "
                            f"{maxsize or r.maxsize or 'unbounded'}; open it without them or unlink it first")
        self._ring = r
        self._maxsize = r.maxsize
        self._msgsize = r.cap - _ring.RECORD_HEADER
        self._mode = r.mode
        self._uid = r.uid

    # -- attributes ------------------------------------------------------------

    @property
    def name(self) -> str:
        """The name as the OS sees it (``'/jobs'``)."""
        return self._name

    @property
    def maxsize(self) -> int:
        """Capacity in messages (``'shm'``: in items, 0 when unbounded)."""
        return self._maxsize

    @property
    def transport(self) -> str:
        """``'shm'`` or ``'mq'``."""
        return "mq" if self._ring is None else "shm"

    @property
    def capacity(self) -> Optional[int]:
        """The ring's bytes (``'shm'``), else None."""
        return None if self._ring is None else self._ring.cap

    @property
    def max_message_size(self) -> int:
        """The largest message in bytes; larger items travel in side segments."""
        return self._msgsize

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        if self._ring is not None:
            return self._ring._closed
        return self._mqd < 0

    def _attr(self) -> MqAttr:
        a = MqAttr()
        C.check(_mq.mq_getattr(self._mqd, ctypes.byref(a)), "mq_getattr", self._name)
        return a

    def _fd(self, syscall: str) -> int:
        if self._mqd < 0:
            raise closed_error("queue", syscall, self._name)
        return self._mqd

    def qsize(self) -> int:
        """Messages in the queue now, from every process."""
        if self._ring is not None:
            return self._ring.count()
        self._fd("mq_getattr")
        return int(self._attr().mq_curmsgs)

    def empty(self) -> bool:
        """True if the queue holds no message now."""
        return self.qsize() == 0

    def full(self) -> bool:
        """True if the queue holds ``maxsize`` messages now (``'shm'``: or has no
        room for even an empty item)."""
        if self._ring is not None:
            return self._ring.full()
        return self.qsize() >= self._maxsize

    # -- put -------------------------------------------------------------------

    def put(self, item: Any, block: bool = True, timeout: Optional[float] = None, *, priority: int = 0) -> None:
        """Puts ``item``, waiting for room (at most ``timeout`` seconds; not at all
        if ``block`` is False). Raises :class:`queue.Full` when there is none."""
        timeout = C.validate_timeout(timeout)
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise TypeError("priority must be an int")
        if not 0 <= priority < MQ_PRIO_MAX:
            raise ValueError(f"priority must be within 0 and {MQ_PRIO_MAX - 1}, not {priority}")
        if self._ring is not None:
            self._put_ring(item, block, timeout, priority)
            return
        self._fd("mq_timedsend")
        data = self._codec.encode(item)
        if not isinstance(data, (bytes, bytearray)):
            raise TypeError("codec.encode() must return bytes")
        segment = None
        if len(data) > self._msgsize or data.startswith(LARGE_MAGIC):
            data, segment = self._write_large(bytes(data))
        try:
            if not self._send(bytes(data), priority, 0.0 if not block else timeout):
                raise Full()
        except BaseException:
            if segment is not None:
                _remove_segment(segment)
            raise

    def _put_ring(self, item: Any, block: bool, timeout: Optional[float], priority: int) -> None:
        r = self._ring
        assert r is not None
        r.check_open("ring_put")
        if priority != 0:
            raise ipc_error(_errno.ENOTSUP, "ring_put", self._name,
                            "priorities need transport 'mq' (a POSIX message queue orders by priority in the kernel); "
                            "a 'shm' queue is strictly FIFO")
        data = self._codec.encode(item)
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError("codec.encode() must return bytes")
        deadline = None if timeout is None else time.monotonic() + timeout
        while not r.try_put(data):
            if not block or not r.wait(False, len(data), deadline):
                raise Full()

    def put_nowait(self, item: Any, *, priority: int = 0) -> None:
        """``put(item, block=False)``."""
        self.put(item, False, priority=priority)

    def _send(self, data: bytes, priority: int, timeout: Optional[float]) -> bool:
        fd = self._fd("mq_timedsend")
        return _timed(lambda ts: _mq.mq_timedsend(fd, data, len(data), priority, ts), "mq_timedsend",
                      self._name, timeout) >= 0

    def _write_large(self, data: bytes) -> Tuple[bytes, str]:
        bare = self._name[1:]
        file = f"pipc-mq.{bare}.{os.getpid()}-{next(_segment_seq)}-{secrets.token_hex(6)}"
        if len(file.encode()) > NAME_MAX:
            raise ValueError(f"An item of {len(data)} bytes must travel through a side segment, but its name would "
                             f"be longer than {NAME_MAX} bytes; use a shorter queue name")
        segment = "/" + file
        desc = LARGE_MAGIC + len(data).to_bytes(8, "little") + segment.encode()
        if len(desc) > self._msgsize:
            raise ValueError(f"An item of {len(data)} bytes does not fit the max_message_size ({self._msgsize}) of "
                             f"queue '{self._name}', and neither does the {len(desc)}-byte descriptor of a side "
                             f"segment; use a queue with max_message_size >= {len(desc)}")
        path = f"{SHM_DIR}/{file}"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, self._mode)
        except OSError as e:
            raise ipc_error(e.errno or _errno.EIO, "open", segment) from None
        try:
            os.fchmod(fd, self._mode)
            view = memoryview(data)
            off = 0
            while off < len(data):
                off += os.write(fd, view[off:])
        except OSError as e:
            os.close(fd)
            _remove_segment(segment)
            raise ipc_error(e.errno or _errno.EIO, "write", segment) from None
        os.close(fd)
        return desc, segment

    # -- get -------------------------------------------------------------------

    def get(self, block: bool = True, timeout: Optional[float] = None) -> Any:
        """Removes and returns the next item (highest priority first), waiting
        for one (at most ``timeout`` seconds; not at all if ``block`` is False).
        Raises :class:`queue.Empty` when there is none."""
        return self._codec.decode(self._get_data(block, timeout))

    def _get_data(self, block: bool, timeout: Optional[float]) -> bytes:
        """The next item's bytes, before decoding (``get`` without the codec)."""
        timeout = C.validate_timeout(timeout)
        if self._ring is not None:
            return self._get_ring(block, timeout)
        msg = self._receive(0.0 if not block else timeout)
        if msg is None:
            raise Empty()
        self.last_large = msg.startswith(LARGE_MAGIC)
        if self.last_large:
            msg = self._read_large(msg)
        return msg

    def _get_ring(self, block: bool, timeout: Optional[float]) -> bytes:
        r = self._ring
        assert r is not None
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            data = r.try_get()
            if data is not None:
                return data
            if not block or not r.wait(True, 0, deadline):
                raise Empty()

    def get_nowait(self) -> Any:
        """``get(block=False)``."""
        return self.get(False)

    def _receive(self, timeout: Optional[float]) -> Optional[bytes]:
        fd = self._fd("mq_timedreceive")
        n = _timed(lambda ts: _mq.mq_timedreceive(fd, self._buf, self._msgsize, ctypes.byref(self._prio), ts),
                   "mq_timedreceive", self._name, timeout)
        if n < 0:
            return None
        self.last_priority = self._prio.value
        return self._buf.raw[:n]

    def _read_large(self, desc: bytes) -> bytes:
        """Reads and removes the side segment a descriptor names, checking what is
        at the name before reading a byte (docs/api.md, "Large items")."""
        length = int.from_bytes(desc[8:16], "little")
        try:
            segment = desc[LARGE_HEADER:].decode("utf-8")
        except UnicodeDecodeError:
            segment = ""
        prefix = f"pipc-mq.{self._name[1:]}."
        file = segment[1:]
        if not segment.startswith("/") or not file.startswith(prefix) or not _SEGMENT_SUFFIX.match(file[len(prefix):]):
            raise ipc_error(_errno.EINVAL, "mq_receive", self._name,
                            f"descriptor names {segment!r}, not a side segment of this queue")
        path = f"{SHM_DIR}/{file}"
        flags = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        writable = True
        try:
            try:
                fd = os.open(path, os.O_RDWR | flags)
            except PermissionError:
                writable = False
                fd = os.open(path, os.O_RDONLY | flags)
        except OSError as e:
            _remove_segment(segment)
            if e.errno == _errno.ELOOP:
                raise ipc_error(_errno.EINVAL, "read", segment, "side segment is a symbolic link, which is never followed") from None
            raise ipc_error(e.errno or _errno.EIO, "open", segment) from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ipc_error(_errno.EINVAL, "read", segment, "side segment is not a regular file")
            if st.st_nlink != 1:
                raise ipc_error(_errno.EINVAL, "read", segment, f"side segment has {st.st_nlink} links")
            if self._mode & 0o022 == 0 and st.st_uid not in (os.geteuid(), self._uid):
                raise ipc_error(_errno.EPERM, "read", segment,
                                f"side segment is owned by uid {st.st_uid}, neither this process's nor the queue owner's")
            if st.st_size != length:
                raise ipc_error(_errno.EIO, "read", segment,
                                f"side segment holds {st.st_size} bytes, the descriptor announced {length}")
            chunks = []
            off = 0
            while off < length:
                b = os.pread(fd, min(length - off, 1 << 20), off)
                if not b:
                    break
                chunks.append(b)
                off += len(b)
            if off != length:
                raise ipc_error(_errno.EIO, "read", segment, f"side segment holds {off} bytes, announced {length}")
            return b"".join(chunks)
        finally:
            if not _remove_segment(segment) and writable:
                try:
                    os.ftruncate(fd, 0)  # not ours to remove: free its memory now
                except OSError:
                    pass
            os.close(fd)

    # -- lifecycle -------------------------------------------------------------

    def close(self) -> None:
        """Closes this handle; the queue lives on until unlinked. Idempotent."""
        ring = getattr(self, "_ring", None)
        if ring is not None:
            ring.close()
        if getattr(self, "_mqd", -1) >= 0:
            _mq.mq_close(self._mqd)
            self._mqd = -1

    def _unlink_self(self) -> None:
        Queue._unlink_name(self._name)

    @classmethod
    def _unlink_name(cls, name: str) -> None:
        """Removes the queue ``name`` of either kind (the ``'shm'`` segment, the
        ``'mq'`` queue and its pending side segments); ENOENT if neither exists."""
        n = validate_name(name)
        removed = False
        missing: Optional[IPCError] = None
        failure: Optional[IPCError] = None
        for remove in (_ring.unlink, lambda x: C.check(_mq.mq_unlink(x.encode()), "mq_unlink", x)):
            try:
                remove(n)
                removed = True
            except IPCError as e:
                if e.errno == _errno.ENOENT:
                    missing = e
                elif failure is None:
                    failure = e
        prefix = f"pipc-mq.{n[1:]}."
        try:
            entries = os.listdir(SHM_DIR)
        except OSError:
            entries = []
        for e in entries:
            if e.startswith(prefix) and _SEGMENT_SUFFIX.match(e[len(prefix):]):
                _remove_segment("/" + e)
        if failure is not None:
            raise failure
        if not removed and missing is not None:
            raise missing

    unlink = _hybrid(_unlink_name, _unlink_self)
    """``q.unlink()`` removes this queue's name; ``Queue.unlink(name)`` removes ``name``."""

    def __iter__(self) -> "Queue":
        return self

    def __next__(self) -> Any:
        return self.get()

    def __repr__(self) -> str:
        return f"<Queue {self._name!r} maxsize={getattr(self, '_maxsize', '?')}{' closed' if self.closed else ''}>"


def _mq_exists(name: str) -> bool:
    """A message queue exists at ``name`` (or mq_open refuses it for another reason than ENOENT)."""
    mqd = _mq.mq_open(name.encode(), os.O_RDONLY | os.O_CLOEXEC, 0, None)
    if mqd >= 0:
        _mq.mq_close(mqd)
        return True
    return ctypes.get_errno() != _errno.ENOENT


def _kind_name(kind: str) -> str:
    return "a shared-memory queue (transport 'shm')" if kind == "shm" else "a POSIX message queue (transport 'mq')"


def _choose_transport(name: str, wanted: Optional[str], mq_only: bool) -> str:
    """The kind that exists at ``name``, else the one asked for, else 'shm'
    ('mq' when only mq options were given); as lib/queue/queue.ts."""
    ring = C.kind_at(_ring.path_of(name)) != "none"
    mq = (not ring or wanted == "mq") and _mq_exists(name)
    there = "shm" if ring else "mq" if mq else None
    if wanted is not None and there is not None and there != wanted:
        raise ipc_error(_errno.EEXIST, "open", name,
                        f"{_kind_name(there)} exists at this name, not {_kind_name(wanted)}; open it without "
                        f"transport (or with transport='{there}'), or unlink it first")
    return wanted or there or ("mq" if mq_only else "shm")


def _timed(call: Callable[[Any], int], syscall: str, name: str, timeout: Optional[float]) -> int:
    """Runs an mq_timed* call until it succeeds (its result), times out after
    ``timeout`` seconds (None: never; -1), or fails (IPCError); EINTR retries
    (a Python signal handler has run in between)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        left = 3600.0 * 24 * 365 if deadline is None else deadline - time.monotonic()
        r = call(ctypes.byref(C.realtime_deadline(left)))
        if r >= 0:
            return r
        e = ctypes.get_errno()
        if e == _errno.EINTR or (e == _errno.ETIMEDOUT and deadline is None):
            continue
        if e == _errno.ETIMEDOUT:
            return -1
        raise ipc_error(e, syscall, name)


def _remove_segment(segment: str) -> bool:
    """Unlinks a side segment; False when it is there but not ours to remove."""
    try:
        os.unlink(f"{SHM_DIR}/{segment[1:]}")
    except FileNotFoundError:
        return True
    except PermissionError:
        return False
    except OSError:
        return True
    return True
