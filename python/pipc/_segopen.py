"""Opening a fixed-size segment file in /dev/shm safely, as the native
``OpenOrCreateShmFile`` + ``CheckShmFile`` do: an existing file is opened with
``O_NOFOLLOW | O_NONBLOCK`` (never through a symlink, never blocking on a
FIFO) and checked (a regular file, owned as ``owner`` allows, of exactly the
layout's size) before it is mapped; a missing one is made complete under no
name (``O_TMPFILE``, ``ftruncate``, the header with its magic last) and linked
into place, so no opener ever maps a half-written header.

Used by the JoinableQueue counter (:mod:`pipc.joinable`) and the Web Locks
segments (:mod:`pipc.locks`).
"""
from __future__ import annotations

import errno as _errno
import mmap
import os
import stat
from typing import Callable, Tuple

from . import _libc as C
from ._errors import IPCError, ipc_error

_KIND_OF = (
    (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISLNK, "a symbolic link"),
)


def _kind(mode: int) -> str:
    for test, what in _KIND_OF:
        if test(mode):
            return what
    return "not a regular file"


def _make(path: str, mode: int, size: int, init: Callable[[mmap.mmap], None]) -> int:
    fd = os.open("/dev/shm", os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, mode)
    try:
        os.ftruncate(fd, size)
        with mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE) as mm:
            init(mm)
        C.link_fd(fd, path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def open_segment(path: str, name: str, create: bool, exclusive: bool, mode: int, owner: C.Owner, size: int,
                 init: Callable[[mmap.mmap], None], what: str) -> Tuple[int, mmap.mmap, bool]:
    """Opens (or creates, with ``init`` writing the header, magic last) the
    segment file ``path`` of exactly ``size`` bytes and maps it.

    Returns ``(fd, mapping, created)``. Raises :class:`IPCError`: ``ELOOP``
    for a symlink, ``EISDIR`` for a directory, ``EINVAL`` for another kind of
    file or a size other than ``size``, ``EPERM`` for another uid's file
    (unless ``owner`` accepts it), ``ENOENT``/``EEXIST``/``EACCES`` as
    ``open(2)`` says. The caller checks the header (``what`` names the layout
    in messages)."""
    fd = -1
    syscall = "open"
    try:
        fd, created = C.open_or_create(path, name, create, exclusive, lambda: _make(path, mode, size, init))
        syscall = "fstat"
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ipc_error(_errno.EISDIR if stat.S_ISDIR(st.st_mode) else _errno.EINVAL, "fstat", name,
                            f"'{path}' is {_kind(st.st_mode)}, not a regular file")
        if not created:
            C.check_owner(st, owner, "open", name)
        if st.st_size != size:
            raise ipc_error(_errno.EINVAL, "fstat", name,
                            f"'{path}' is a {st.st_size}-byte file, not a {size}-byte {what}")
        syscall = "mmap"
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    except BaseException as e:
        if fd >= 0:
            os.close(fd)
        if isinstance(e, OSError) and not isinstance(e, IPCError):
            if e.errno == _errno.ELOOP:
                raise ipc_error(_errno.ELOOP, syscall, name, f"'{path}' is a symbolic link (never followed)") from None
            raise ipc_error(e.errno or _errno.EIO, syscall, name) from None
        raise
    return fd, mm, created


def claim_slot(fd: int, header_bytes: int, slot_bytes: int, count: int, name: str) -> int:
    """Takes the OFD write lock on the first byte of a free slot, trying slot
    ``pid % count + 1`` first (as the native ``ClaimSlot``). Returns its id;
    IPCError ``ENOSPC`` when every slot is taken."""
    start = os.getpid() % count
    try:
        for i in range(count):
            sid = 1 + (start + i) % count
            if C.ofd_trylock(fd, header_bytes + slot_bytes * (sid - 1)):
                return sid
    except OSError as e:
        raise ipc_error(e.errno or _errno.EIO, "fcntl", name) from None
    raise ipc_error(_errno.ENOSPC, "fcntl", name, f"has no free slot ({count} handles are open)")
