/**
 * posix-ipc: POSIX named semaphores, message queues, pipes and shared memory
 * for Node.js, with the shapes of Python's threading/multiprocessing.
 * @module
 */
// Errors and semaphores
export { IPCError, AbortError, DecodeError, ErrorCode } from './core/errors.js';
export type { Owner } from './core/validate.js';
export { Semaphore, BoundedSemaphore, Lock, SEM_VALUE_MAX } from './sync/semaphore.js';
export type { SemaphoreOptions, BoundedSemaphoreOptions, AcquireOptions, Held } from './sync/semaphore.js';
// Queues (POSIX message queues)
export { Queue, Empty, Full, MQ_PRIO_MAX } from './queue/queue.js';
export type { QueueOptions, PutOptions, GetOptions, SyncOptions, QueueAttributes, IterateOptions, OnDecodeError } from './queue/queue.js';
// Queues on shared memory (transport 'shm', the default)
export type { QueueTransportKind } from './queue/queue.js';
// Shared memory
export { SharedMemory, SharedCells, Value, SharedArray, PAGE_SIZE } from './shm/shared-memory.js';
export type {
  SharedMemoryOptions,
  SharedCellsOptions,
  ValueOptions,
  SharedArrayOptions,
  Typecode,
  BigIntTypecode,
  ScalarOf,
  TypedArrayOf,
} from './shm/shared-memory.js';
// Pipes, FIFOs and sockets
export { Connection, RECV_MAX_LENGTH } from './pipe/connection.js';
export type { ConnectionOptions, RecvOptions, RecvMessageOptions } from './pipe/connection.js';
export { Pipe, NamedPipe } from './pipe/pipe.js';
export type { PipeOptions, NamedPipeCreateOptions, NamedPipeOpenOptions } from './pipe/pipe.js';
export { Listener, Client, AuthenticationError } from './pipe/listener.js';
export type { ListenerOptions, AcceptOptions, ClientOptions } from './pipe/listener.js';
// Processes and pools
export { Process, currentProcess, activeChildren, cpuCount } from './process/process.js';
export type { ProcessOptions, JoinOptions, ProcessInfo } from './process/process.js';
export { Pool } from './process/pool.js';
export type { PoolOptions, MapOptions } from './process/pool.js';
// Codecs: Python's pickle of plain data (codec: 'pickle')
export { pickleDumps, pickleLoads, pickleCodec, UnpicklingError } from './core/pickle.js';
export type { PickleOptions, PickleEncodeOptions, PickleDecodeOptions } from './core/pickle.js';
// Event, Barrier, Condition, RLock, JoinableQueue (crash-safe, by name)
export { Event } from './sync/event.js';
export type { EventOptions, EventWaitOptions } from './sync/event.js';
export { Barrier, BrokenBarrierError, BARRIER_MAX_PARTIES } from './sync/barrier.js';
export type { BarrierOptions, BarrierWaitOptions } from './sync/barrier.js';
export { RLock } from './sync/rlock.js';
export type { RLockOptions } from './sync/rlock.js';
export { Condition } from './sync/condition.js';
export type { ConditionOptions, ConditionWaitOptions } from './sync/condition.js';
export { JoinableQueue } from './queue/joinable.js';
export type { JoinOptions as QueueJoinOptions, TasksLostInfo } from './queue/joinable.js';
// Web Locks across processes
export { locks, LockManager } from './sync/locks.js';
export type { LockMode, LockOptions, WebLock, LockInfo, LockManagerSnapshot } from './sync/locks.js';
