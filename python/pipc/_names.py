"""Every naming rule, as lib/core/names.ts: a name is given with or without
one leading ``/``; the OS name has exactly one."""
from __future__ import annotations

SHM_DIR = "/dev/shm"
NAME_MAX = 255
PLAIN_SEM_RESERVED = len("sem.")
ROBUST_SEM_RESERVED = len("pipc.") + len(".sem")


def validate_name(name: object, arg: str = "name", reserved: int = 0) -> str:
    """Returns ``name`` with its one leading slash, or raises TypeError / ValueError."""
    if not isinstance(name, str):
        raise TypeError(f'The "{arg}" argument must be a str, not {type(name).__name__}')
    bare = name[1:] if name.startswith("/") else name
    if not bare:
        raise ValueError(f'The "{arg}" argument must not be empty (nor a lone "/")')
    if "/" in bare:
        raise ValueError(f'The "{arg}" argument may have one leading "/" and no other: {name!r}')
    if "\0" in bare:
        raise ValueError(f'The "{arg}" argument must not contain null bytes')
    if bare in (".", ".."):
        raise ValueError(f'The "{arg}" argument must not be "." or ".."')
    size = len(bare.encode("utf-8"))
    if size > NAME_MAX - reserved:
        raise ValueError(f'The "{arg}" argument is {size} bytes long; at most {NAME_MAX - reserved} are allowed')
    return "/" + bare


def plain_sem_path(name: str) -> str:
    """glibc's file of the plain semaphore ``'/jobs'``: ``/dev/shm/sem.jobs``."""
    return f"{SHM_DIR}/sem.{name[1:]}"


def robust_sem_path(name: str) -> str:
    """The segment of the crash-safe semaphore ``'/jobs'``: ``/dev/shm/pipc.jobs.sem``."""
    return f"{SHM_DIR}/pipc.{name[1:]}.sem"


def shm_path(name: str) -> str:
    """The file of the shm_open segment ``'/frame'``: ``/dev/shm/frame``."""
    return f"{SHM_DIR}/{name[1:]}"


# Event, Barrier, Condition, RLock and JoinableQueue (lib/sync/segment.ts):
# /dev/shm/pipc.NAME.<suffix>.
SYNC_SUFFIX = {"event": "event", "barrier": "barrier", "condition": "cond", "rlock": "rlock", "joinable": "jq"}
SYNC_RESERVED = len("pipc.") + len(".barrier")


def sync_path(name: str, kind: str) -> str:
    """The segment of synchronisation object ``'/go'`` of ``kind``: ``/dev/shm/pipc.go.event``."""
    return f"{SHM_DIR}/pipc.{name[1:]}.{SYNC_SUFFIX[kind]}"
