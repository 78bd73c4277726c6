"""pipc: the Python side of posix-ipc (the npm package), standard library only.

Opens by name the same operating-system objects as the Node.js classes, and
speaks their protocols: crash-safe semaphores, message queues with the JSON
codec and large-item side segments, shared memory, Value and SharedArray with
real atomics, Event, Barrier, RLock, Condition and JoinableQueue (crash
safe), and the Web Locks manager `locks`. Find it with::

    PYTHONPATH=$(npx posix-ipc python-path) python3 app.py

Named ``pipc`` so that it cannot be confused with PyPI's ``posix_ipc``.
"""
from ._errors import IPCError
from .queue import MQ_PRIO_MAX, Empty, Full, Queue
from .semaphore import SEM_VALUE_MAX, BoundedSemaphore, Lock, OwnerDead, Semaphore
from .shm import PAGE_SIZE, SharedArray, SharedMemory, Value
from .joinable import JoinableQueue, TasksLostError
from . import locks
from .sync import BARRIER_MAX_PARTIES, Barrier, BrokenBarrierError, Condition, Event, RLock

__all__ = ["IPCError", "Queue", "Empty", "Full", "MQ_PRIO_MAX", "Semaphore", "BoundedSemaphore", "Lock", "OwnerDead", "SEM_VALUE_MAX",
           "SharedMemory", "Value", "SharedArray", "PAGE_SIZE",
           "Event", "Barrier", "BrokenBarrierError", "BARRIER_MAX_PARTIES", "RLock", "Condition"]
__version__ = "0.1.0"
__all__ += ["JoinableQueue", "TasksLostError", "locks"]
