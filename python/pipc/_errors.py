"""Errors in Python's terms.

Every failure of an operating-system call is an :class:`IPCError` (a subclass
of :class:`OSError`) carrying ``code`` (``'EEXIST'``), ``errno``, ``syscall``
and the object's ``name``, as the Node side's ``IPCError``. The errors Python
itself would raise for the same errno are also instances of Python's class:
an ``EEXIST`` is a :class:`FileExistsError`, ``ENOENT`` a
:class:`FileNotFoundError`, ``EACCES``/``EPERM`` a :class:`PermissionError`,
``ETIMEDOUT`` a :class:`TimeoutError`. Bad arguments are plain
:class:`TypeError` / :class:`ValueError`.
"""
from __future__ import annotations

import errno as _errno
import os
from typing import Dict, Optional, Type

__all__ = ["IPCError", "ipc_error", "closed_error"]


class IPCError(OSError):
    """An operating-system call on a named IPC object failed.

    Attributes:
        code: the errno's symbolic name, e.g. ``'EEXIST'``.
        errno: the numeric errno.
        syscall: the call that failed, e.g. ``'sem_open'``.
        name: the object's name as the OS sees it (``'/jobs'``), or None.
    """

    code: str
    syscall: str
    name: Optional[str]

    def __init__(self, err: int, message: str, syscall: str = "", name: Optional[str] = None) -> None:
        super().__init__(err, message)
        self.code = _errno.errorcode.get(err, str(err))
        self.syscall = syscall
        self.name = name

    def __str__(self) -> str:
        where = f", {self.syscall}" if self.syscall else ""
        obj = f" '{self.name}'" if self.name else ""
        return f"{self.code}: {self.strerror}{where}{obj}"


class IPCFileExistsError(IPCError, FileExistsError):
    """EEXIST: the name exists (or holds an object of another kind)."""


class IPCFileNotFoundError(IPCError, FileNotFoundError):
    """ENOENT: no object has this name."""


class IPCPermissionError(IPCError, PermissionError):
    """EACCES / EPERM: the mode or the owner forbids it."""


class IPCTimeoutError(IPCError, TimeoutError):
    """ETIMEDOUT: a wait gave up."""


_CLASSES: Dict[int, Type[IPCError]] = {
    _errno.EEXIST: IPCFileExistsError,
    _errno.ENOENT: IPCFileNotFoundError,
    _errno.EACCES: IPCPermissionError,
    _errno.EPERM: IPCPermissionError,
    _errno.ETIMEDOUT: IPCTimeoutError,
}


def ipc_error(err: int, syscall: str, name: Optional[str] = None, message: Optional[str] = None) -> IPCError:
    """Builds the IPCError (of the matching Python class) for ``err``."""
    cls = _CLASSES.get(err, IPCError)
    return cls(err, message if message is not None else os.strerror(err), syscall, name)


def closed_error(kind: str, syscall: str, name: Optional[str]) -> IPCError:
    """The error of an operation on a closed handle (EBADF), as the Node side's."""
    return ipc_error(_errno.EBADF, syscall, name, f"{kind} is closed")
