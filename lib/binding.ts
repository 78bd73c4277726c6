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

/** An opaque native handle (an external). */
export type Handle = { readonly __handle: unique symbol };
/** An opaque token for an in-flight wait on the engine's threads. */
export type WaitToken = { readonly __wait: unique symbol };
/** callback(err, succeeded): succeeded is false when the wait timed out. */
export type WaitCallback = (err: IPCError | null, ok: boolean) => void;

export interface CoreBinding {
  setErrorFactory(f: (message: string, code: string, errno: number, syscall: string, path?: string) => Error): void;
  strerror(errno: number): { code: string; description: string };
  cancelWait(token: WaitToken): void;
  engineStats(): { threads: number; pending: number; spinNs: number };
  setSpin(ns: number): void;
}

export interface SemBinding {
  semOpen(name: string, create: boolean, exclusive: boolean, mode: number, value: number): Handle;
  semTryWait(h: Handle): boolean;
  semPost(h: Handle, n?: number): void;
  semValue(h: Handle): number;
  semWaitSync(h: Handle, timeoutMs: number): boolean;
  semWaitAsync(h: Handle, timeoutMs: number, cb: WaitCallback): WaitToken;
  semClose(h: Handle): void;
  semUnlink(name: string): void;
  readonly SEM_VALUE_MAX: number;
}

// BEGIN MqBinding (issue 3)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface MqBinding {}
// END MqBinding

// BEGIN ShmBinding (issue 4)
/** A typed window on a mapping, for the atomic operations. */
export type ShmViewHandle = { readonly __shmView: unique symbol };
/** A value an atomic operation takes or returns: number up to 32 bits, bigint for 64. */
export type ShmScalar = number | bigint;

export interface ShmBinding {
  /**
   * Opens (and maybe creates and initialises) a segment and maps it: [handle, created, mapped size].
   * whenSmaller, for an existing segment smaller than `size`: 0 map as is, 1 grow it, 2 wait for its creator.
   */
  shmOpen(
    name: string, create: boolean, exclusive: boolean, readOnly: boolean, mode: number, size: number,
    init: Uint8Array | null, whenSmaller: 0 | 1 | 2,
  ): [Handle, boolean, number];
  /** A new external ArrayBuffer over the whole mapping (no copy); detached by shmClose. */
  shmBuffer(h: Handle): ArrayBuffer;
  /** Detaches every ArrayBuffer handed out and unmaps. Idempotent. */
  shmClose(h: Handle): void;
  shmUnlink(name: string): void;
  /** type: native/shm.h ElemType (0 int8 ... 7 uint64). */
  shmView(h: Handle, type: number, byteOffset: number, count: number): ShmViewHandle;
  shmLoad(v: ShmViewHandle, index: number): ShmScalar;
  shmStore(v: ShmViewHandle, index: number, value: ShmScalar): void;
  shmAdd(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmSub(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmAnd(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmOr(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmXor(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmExchange(v: ShmViewHandle, index: number, value: ShmScalar): ShmScalar;
  shmCompareExchange(v: ShmViewHandle, index: number, expected: ShmScalar, replacement: ShmScalar): ShmScalar;
  readonly SHM_PAGE_SIZE: number;
}
// END ShmBinding

// BEGIN PipeBinding (issue 5)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface PipeBinding {}
// END PipeBinding

export type Binding = CoreBinding & SemBinding & MqBinding & ShmBinding & PipeBinding;

const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => unknown;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const binding = load(root) as Binding;

binding.setErrorFactory(
  (message, code, errno, syscall, path) => new IPCError(message, code, errno, syscall, path),
);
