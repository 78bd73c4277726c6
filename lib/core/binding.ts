/**
 * Loads the native addon (prebuilds/ first via node-gyp-build, else build/)
 * and declares the typed shape of the raw binding. Internal: the public API
 * validates every argument before it reaches these functions.
 * @internal
 * @module
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { IPCError } from './errors.js';

/**
 * An opaque native handle: an external tagged with its kind (native/core/handle.h).
 * Passing one to a function of another kind throws TypeError "Illegal invocation".
 */
export type Handle = { readonly __handle: unique symbol };
/** An opaque token (a tagged handle) for an in-flight wait on the engine's threads. */
export type WaitToken = { readonly __wait: unique symbol };
/** callback(err, succeeded): succeeded is false when the wait timed out. */
export type WaitCallback = (err: IPCError | null, ok: boolean) => void;

export interface CoreBinding {
  setErrorFactory(f: (message: string, code: string, errno: number, syscall: string, path?: string) => Error): void;
  strerror(errno: number): { code: string; description: string };
  cancelWait(token: WaitToken): void;
  engineStats(): {
    threads: number;
    pending: number;
    spinNs: number;
    muxThreads: number;
    muxJobs: number;
    /** io_uring threads alive (each holds one io_uring descriptor; 1,024 waits each). */
    ringThreads: number;
    /** Whether pollable waits use io_uring futex waits (Linux 6.7; not with POSIX_IPC_NO_URING). */
    ringAvailable: boolean;
  };
  setSpin(ns: number): void;
  /** An empty native function: the cost of one call into the addon (benchmarks). */
  noop(): void;
}

export interface SemBinding {
  /** owner: -1 adopts an existing semaphore of any uid, otherwise only that uid's (EPERM). */
  semOpen(name: string, create: boolean, exclusive: boolean, mode: number, value: number, owner: number): Handle;
  /** Functions bound to one semaphore (no argument unwrapping): [tryWait, post]. */
  semBind(h: Handle): [tryWait: () => boolean, post: () => void];
  semPost(h: Handle, n?: number): void;
  semValue(h: Handle): number;
  semWaitSync(h: Handle, timeoutMs: number): boolean;
  semWaitAsync(h: Handle, timeoutMs: number, cb: WaitCallback): WaitToken;
  /** glibc's sem_t words (value, waiters) for the Atomics fast path; undefined elsewhere. */
  semView(h: Handle): ArrayBuffer | undefined;
  semWake(h: Handle): void;
  semClose(h: Handle, view?: ArrayBuffer): void;
  semUnlink(name: string): void;
  readonly SEM_VALUE_MAX: number;
}

/** Crash-safe semaphores (native/sync/robust.cc); the segment layout is in lib/sync/robust.ts. */
export interface RobustBinding {
  /**
   * [handle, ArrayBuffer over the whole segment, our slot id, created]. kind: 1 semaphore, 2 Web Locks
   * (native/sync/weblocks.cc); owner: -1 adopts another uid's existing segment, else only that uid's (EPERM).
   */
  robOpen(
    name: string, path: string, create: boolean, exclusive: boolean, mode: number, initial: number, max: number,
    kind?: number, owner?: number,
  ): [Handle, ArrayBuffer, number, boolean];
  /** 0 none free, 1 taken, 2 taken a unit recovered from a dead holder. Checks liveness at most every 250 ms. */
  robTryAcquire(h: Handle): 0 | 1 | 2;
  /** 0, or -1 when it would pass the bound (nothing changed); EOVERFLOW past SEM_VALUE_MAX. */
  robRelease(h: Handle, n: number): 0 | -1;
  /** Wakes the threads sleeping on the segment's futex word. */
  robWake(h: Handle): void;
  /** Gives back the units of dead holders now; how many came back. */
  robRecover(h: Handle): number;
  /** 0 timed out, 1 taken, 2 taken recovered. timeoutMs < 0 waits forever. */
  robWaitSync(h: Handle, timeoutMs: number): 0 | 1 | 2;
  robWaitAsync(h: Handle, timeoutMs: number, cb: WaitCallback): WaitToken;
  /** Detaches `view`, then gives the slot up once no wait uses it. */
  robClose(h: Handle, view?: ArrayBuffer): void;
  robUnlink(path: string, name: string): void;
  /** What lstat finds at a path. */
  robKindAt(path: string): 'file' | 'none' | 'other';
  readonly ROBUST_LAYOUT: { segmentBytes: number; headerBytes: number; slotBytes: number; slots: number };
}

/** Crash-safe synchronisation segments (native/sync/segment.cc); the protocols are in lib/sync/segment.ts. */
export interface SegmentBinding {
  /** [handle, ArrayBuffer over the segment, our slot id, created]. init: (word, value) pairs for a new header. */
  segOpen(
    name: string, path: string, kind: number, create: boolean, exclusive: boolean, mode: number, owner: number, init: number[],
  ): [Handle, ArrayBuffer, number, boolean];
  /** False only when nobody holds slot `slot`'s lock (its owner is gone). */
  segAlive(h: Handle, slot: number): boolean;
  /** FUTEX_WAKE on a word (n <= 0: all); how many woke. */
  segWake(h: Handle, word: number, n: number): number;
  /** Sleeps while the word equals `expected`: true woken, false timed out. timeoutMs < 0: forever. */
  segWaitSync(h: Handle, word: number, expected: number, timeoutMs: number): boolean;
  segWaitAsync(h: Handle, word: number, expected: number, timeoutMs: number, cb: WaitCallback): WaitToken;
  /** Detaches `view` and gives the slot up. */
  segClose(h: Handle, view?: ArrayBuffer): void;
  readonly SEGMENT_LAYOUT: { segmentBytes: number; headerBytes: number; slotBytes: number; slots: number };
}

// Message queues (native/mq/mq.cc)
/** mq_getattr plus the queue's owner and permission bits (fstat). */
export interface MqAttr {
  maxmsg: number;
  msgsize: number;
  curmsgs: number;
  mode?: number;
  uid?: number;
}
/** callback(status, events): status < 0 is a negated errno; events has UV_READABLE (1) / UV_WRITABLE (2). */
export type MqWatchCallback = (status: number, events: number) => void;

export interface MqBinding {
  /** maxmsg/msgsize 0 use the system defaults. The descriptor is O_NONBLOCK. */
  mqOpen(name: string, create: boolean, exclusive: boolean, mode: number, maxmsg: number, msgsize: number): Handle;
  mqAttr(h: Handle): MqAttr;
  mqCurmsgs(h: Handle): number;
  /** false when the queue is full. */
  mqSend(h: Handle, bytes: Uint8Array, priority: number): boolean;
  /** Sends the UTF-8 of `text` (the caller ensures it fits mq_msgsize): false when full. */
  mqSendText(h: Handle, text: string, priority: number): boolean;
  /** How many of bytes[start..] were sent before the queue was full. */
  mqSendMany(h: Handle, bytes: Uint8Array[], priority: number, start: number): number;
  /** null when the queue is empty. */
  mqReceive(h: Handle): Buffer | null;
  /** Up to max messages; empty when the queue is empty. */
  mqReceiveMany(h: Handle, max: number): Buffer[];
  /** Receives into `into` (>= mq_msgsize bytes): the length, or -1 when empty. */
  mqReceiveInto(h: Handle, into: Buffer): number;
  mqLastPriority(h: Handle): number;
  /** Blocks up to timeoutMs (< 0: forever); false when it timed out. */
  mqSendSync(h: Handle, bytes: Uint8Array, priority: number, timeoutMs: number): boolean;
  /** Blocks up to timeoutMs (< 0: forever); null when it timed out. */
  mqReceiveSync(h: Handle, timeoutMs: number): Buffer | null;
  /** Watches the descriptor with uv_poll for `events`; 0 stops. */
  mqWatch(h: Handle, events: number, cb?: MqWatchCallback): void;
  mqClose(h: Handle): void;
  mqUnlink(name: string): void;
  readonly MQ_PRIO_MAX: number;
}

// Shared memory (native/shm/shm.cc)
export interface ShmBinding {
  /**
   * Opens (and maybe creates and initialises) a segment and maps it: [handle, created, mapped size].
   * whenSmaller, for an existing segment smaller than `size`: 0 map as is, 1 grow it, 2 wait up to
   * sizeWaitMs for its creator (and map only `size` bytes of a larger one). owner: -1 any uid,
   * otherwise that uid (EPERM). Only a regular file is mapped; symlinks are not followed and a FIFO
   * does not block.
   */
  shmOpen(
    name: string, create: boolean, exclusive: boolean, readOnly: boolean, mode: number, size: number,
    init: Uint8Array | null, whenSmaller: 0 | 1 | 2, sizeWaitMs: number, owner: number,
  ): [Handle, boolean, number];
  /** A new external ArrayBuffer over the whole mapping (no copy); detached by shmClose. RangeError past maxLength. */
  shmBuffer(h: Handle, maxLength: number): ArrayBuffer;
  /** Detaches every ArrayBuffer handed out and unmaps. Idempotent. */
  shmClose(h: Handle): void;
  shmUnlink(name: string): void;
  readonly SHM_PAGE_SIZE: number;
}

// Pipes, FIFOs and sockets (native/pipe/pipe.cc)
/** callback(err, fd, prefix): fd -1 on timeout; prefix is a byte already read from the FIFO, or -1. */
export type FifoOpenCallback = (err: IPCError | null, fd: number, prefix: number) => void;
/** Pipes, FIFOs and AF_UNIX sockets (native/pipe/pipe.cc). */
export interface PipeBinding {
  pipeSocketpair(sndbuf?: number): [number, number];
  pipeWritev(fd: number, a: Uint8Array, b?: Uint8Array): number;
  pipePipe(): [number, number];
  pipeMkfifo(path: string, mode: number): void;
  pipeFdInfo(fd: number): { kind: 'socket' | 'fifo' | 'other'; access: number };
  pipePollIn(fd: number, timeoutMs: number): boolean;
  pipeFifoOpen(
    path: string,
    write: boolean,
    timeoutMs: number,
    cb: FifoOpenCallback,
  ): { fd: number; prefix: number; token?: undefined } | { token: WaitToken; fd?: undefined; prefix?: undefined };
  pipeUnixListen(address: string, backlog: number, mode: number): number;
  pipeUnixConnect(address: string): number;
  /** Maps in the pages under buf in one system call (best effort; contents untouched). */
  pipePrefault(buf: Uint8Array): void;
  /** A Connection owns fd (closed at environment teardown unless released). */
  pipeFdOwn(fd: number): void;
  /** libuv drives fd from now on. */
  pipeFdRelease(fd: number): void;
  /** Closes an owned fd that libuv never drove. */
  pipeFdClose(fd: number): void;
}

// Shared-memory queues (native/ring/ring.cc); the layout is in docs/api.md.
export interface RingBinding {
  /** [handle, capacity, maxsize (0: unbounded), mode bits, owner uid, created]. owner: -1 any uid. */
  ringOpen(
    name: string, path: string, create: boolean, exclusive: boolean, mode: number, capacity: number, maxsize: number, owner: number,
  ): [Handle, number, number, number, number, boolean];
  /** false when full (of items or of bytes). */
  ringSend(h: Handle, bytes: Uint8Array): boolean;
  ringSendText(h: Handle, text: string): boolean;
  ringSendMany(h: Handle, bytes: Uint8Array[], start: number): number;
  /** The JSON text parts[0] + literal(strings[0]) + parts[1] ...: 1 put, 0 full, -1 not done (U+FFFD in a string, or too large). */
  ringSendJsonParts(h: Handle, parts: string[], strings: string[]): number;
  /** bytes[0..n] (JSON, valid UTF-8) with its long plain string literals cut out: [skeleton, strings], or null. */
  jsonSplitLong(bytes: Buffer, n: number, minBytes: number): [string, string[]] | null;
  /** The bytes ringSendJsonParts would put, or null (U+FFFD in a string: JSON.stringify's turn). */
  jsonJoinBytes(parts: string[], strings: string[]): Buffer | null;
  /** The item's length, -1 when empty, or -2 - length when `into` is too short (the item stays). */
  ringReceiveInto(h: Handle, into: Buffer): number;
  /** The oldest item in a Buffer of its own, or null when empty. */
  ringReceive(h: Handle): Buffer | null;
  ringSize(h: Handle): number;
  ringFull(h: Handle): boolean;
  ringSendSync(h: Handle, bytes: Uint8Array, timeoutMs: number): boolean;
  ringReceiveSync(h: Handle, timeoutMs: number): Buffer | null;
  /** Calls back (on the event loop) once the ring looks readable (1) or writable (2). */
  ringWait(h: Handle, want: 1 | 2, cb: WaitCallback): WaitToken;
  /** Spins on this thread up to `ns` nanoseconds: true if the ring looked readable (1) / writable (2). */
  ringSpin(h: Handle, want: 1 | 2, ns: number): boolean;
  /** The header's first 256 bytes as an ArrayBuffer (the state words; undefined where external buffers are refused). */
  ringView(h: Handle): ArrayBuffer | undefined;
  /** Closes the handle, detaching the ringView buffer if given. */
  ringClose(h: Handle, view?: ArrayBuffer): void;
  ringUnlink(path: string, name: string): void;
  readonly RING_LAYOUT: { dataStart: number; lock: number; head: number; count: number; putSeq: number; recordHeader: number; minCapacity: number; maxCapacity: number };
}

export type Binding = CoreBinding & SemBinding & RobustBinding & MqBinding & ShmBinding & SegmentBinding & PipeBinding & RingBinding;

const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => unknown;
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

// POSIX_IPC_BINDING=/path/to/posix_ipc.node loads that build instead (the
// sanitizer build of scripts/test-asan.sh, a baseline in a benchmark).
const override = process.env.POSIX_IPC_BINDING;
export const binding = (override ? require(override) : load(root)) as Binding;

/** The engine's default spin before sleeping (see POSIX_IPC_SPIN_US). */
export const DEFAULT_SPIN_US = 0;

// POSIX_IPC_SPIN_US: how long an engine thread spins (sem_trywait) before it
// sleeps, in microseconds. Trades CPU for the latency of cross-process hand-offs.
const spinUs = Number(process.env.POSIX_IPC_SPIN_US ?? DEFAULT_SPIN_US);
if (Number.isFinite(spinUs) && spinUs >= 0) binding.setSpin(Math.round(spinUs * 1000));

binding.setErrorFactory(
  (message, code, errno, syscall, path) => new IPCError(message, code, errno, syscall, path),
);
