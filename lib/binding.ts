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
  /** How many of bytes[start..] were sent before the queue was full. */
  mqSendMany(h: Handle, bytes: Uint8Array[], priority: number, start: number): number;
  /** null when the queue is empty. */
  mqReceive(h: Handle): Buffer | null;
  /** Up to max messages; empty when the queue is empty. */
  mqReceiveMany(h: Handle, max: number): Buffer[];
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
// END MqBinding

// BEGIN ShmBinding (issue 4)
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ShmBinding {}
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
