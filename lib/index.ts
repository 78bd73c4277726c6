/**
 * posix-ipc: POSIX named semaphores, message queues, pipes and shared memory
 * for Node.js, with the shapes of Python's threading/multiprocessing.
 * @module
 */
// Errors and semaphores
export { IPCError, AbortError } from './errors.js';
export { Semaphore, BoundedSemaphore, Lock, SEM_VALUE_MAX } from './semaphore.js';
export type { SemaphoreOptions, BoundedSemaphoreOptions, AcquireOptions, Held } from './semaphore.js';
// Queues (POSIX message queues)
export { Queue, Empty, Full, MQ_PRIO_MAX } from './queue.js';
export type { QueueOptions, PutOptions, GetOptions, SyncOptions, QueueAttributes } from './queue.js';
// Shared memory
export { SharedMemory, SharedCells, Value, SharedArray, PAGE_SIZE } from './shm.js';
export type {
  SharedMemoryOptions,
  SharedCellsOptions,
  ValueOptions,
  SharedArrayOptions,
  Typecode,
  BigIntTypecode,
  ScalarOf,
  TypedArrayOf,
} from './shm.js';
// Pipes, FIFOs and sockets
export { Connection } from './connection.js';
export type { ConnectionOptions, RecvOptions } from './connection.js';
export { Pipe, NamedPipe } from './pipe.js';
export type { PipeOptions, NamedPipeCreateOptions, NamedPipeOpenOptions } from './pipe.js';
export { Listener, Client, AuthenticationError } from './listener.js';
export type { ListenerOptions, AcceptOptions, ClientOptions } from './listener.js';
