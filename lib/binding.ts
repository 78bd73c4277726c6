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
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface ShmBinding {}
// END ShmBinding

// BEGIN PipeBinding (issue 5)
/** callback(err, fd, prefix): fd -1 on timeout; prefix is a byte already read from the FIFO, or -1. */
export type FifoOpenCallback = (err: IPCError | null, fd: number, prefix: number) => void;
/** Pipes, FIFOs and AF_UNIX sockets (native/pipe.cc). */
export interface PipeBinding {
  pipeSocketpair(): [number, number];
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
  /** A Connection owns fd (closed at environment teardown unless released). */
  pipeFdOwn(fd: number): void;
  /** libuv drives fd from now on. */
  pipeFdRelease(fd: number): void;
  /** Closes an owned fd that libuv never drove. */
  pipeFdClose(fd: number): void;
}
// END PipeBinding

export type Binding = CoreBinding & SemBinding & MqBinding & ShmBinding & PipeBinding;

const require = createRequire(import.meta.url);
const load = require('node-gyp-build') as (dir: string) => unknown;
const root = join(dirname(fileURLToPath(import.meta.url)), '..');

export const binding = load(root) as Binding;

binding.setErrorFactory(
  (message, code, errno, syscall, path) => new IPCError(message, code, errno, syscall, path),
);
