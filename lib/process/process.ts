/**
 * `Process`: Python's `multiprocessing.Process` for Node. The target is a
 * function exported by a module, run in a new `node` process with `args`;
 * posix-ipc objects among the args arrive there reopened by name, pipe ends
 * as inherited descriptors.
 * @module
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, constants as osConstants } from 'node:os';
import { dirname, join, resolve as resolvePath } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { deserialize } from 'node:v8';
import { Pipe } from '../pipe/pipe.js';
import type { Connection } from '../pipe/connection.js';
import { typeError, validateBoolean, validateOptions, validateTimeout } from '../core/validate.js';
import { pack, serialize } from './transfer.js';

/** Options for `new Process(moduleUrl, options)`. */
export interface ProcessOptions {
  /**
   * The target's arguments. posix-ipc objects among them (at any depth of
   * plain arrays and objects) are reopened by name in the child with the same
   * options; a `Connection` (pipe end) travels as an inherited descriptor;
   * other values are structured-cloned (`v8.serialize`).
   */
  args?: unknown[];
  /** The module's export to run. Default `'default'`. */
  export?: string;
  /** The process's name (`currentProcess().name` in the child). Default `'Process-N'`. */
  name?: string;
  /**
   * Killed when this process exits, even when it is killed with SIGKILL, and
   * does not keep this process alive. Default false.
   */
  daemon?: boolean;
  /** The child's environment. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Node options for the child. Default `process.execArgv`. */
  execArgv?: string[];
  /** The child's working directory. Default `process.cwd()`. */
  cwd?: string;
  /**
   * The child's stdin, stdout and stderr, as `spawn`'s `stdio` (three
   * entries, or one for all). Default `['ignore', 'inherit', 'inherit']`
   * (stdin is /dev/null, as Python's children). With `'pipe'`, read
   * `stdout`/`stderr` (or write `stdin`) on the Process.
   */
  stdio?: 'inherit' | 'ignore' | 'pipe' | Array<'inherit' | 'ignore' | 'pipe' | number>;
}

/** Options for `join`. */
export interface JoinOptions {
  /** Stop waiting after this many milliseconds (the process keeps running). Default: wait until it exits. */
  timeout?: number;
}

/** What `currentProcess()` returns. */
export interface ProcessInfo {
  /** `'MainProcess'` in a process not started by `Process`. */
  readonly name: string;
  readonly pid: number;
  readonly daemon: boolean;
}

const CURRENT = Symbol.for('posix-ipc.currentProcess');
/** @internal resolves when the child has exited, without keeping this process alive as `join()` does. */
export const kExited: unique symbol = Symbol('exited') as never;
const DESCRIPTORS_FROM = 5; // the child's fd 3 is the control channel, 4 the daemon's lifeline
let counter = 0;
const children = new Set<Process>();
const daemons = new Set<ChildProcess>();
let exitHook = false;

/**
 * The process this code runs in: its name (as given to `Process` in the
 * parent, or `'MainProcess'`), pid and daemon flag. Python's `current_process()`.
 */
export function currentProcess(): ProcessInfo {
  const info = (globalThis as Record<symbol, ProcessInfo | undefined>)[CURRENT];
  return info ?? { name: 'MainProcess', pid: process.pid, daemon: false };
}

/** @internal set by the child bootstrap. */
export function setCurrentProcess(info: ProcessInfo): void {
  (globalThis as Record<symbol, ProcessInfo | undefined>)[CURRENT] = Object.freeze({ ...info });
}

/** The started children of this process that are still running. Python's `active_children()`. */
export function activeChildren(): Process[] {
  return [...children].filter((p) => p.isAlive());
}

/** The number of CPUs this process may use (`os.availableParallelism()`). Python's `cpu_count()`. */
export function cpuCount(): number {
  return availableParallelism();
}

// Under the TypeScript sources (tests), a child runs the built modules in dist/.
const here = fileURLToPath(import.meta.url);
/** @internal the path of one of this folder's built modules, which a child node can run. */
export function builtModule(base: string): string {
  return here.endsWith('.ts') ? join(dirname(here), '..', '..', 'dist', 'process', `${base}.js`) : join(dirname(here), `${base}.js`);
}
const BOOTSTRAP = builtModule('child');

/** @internal a module argument as a file: URL (a URL, a file: URL string or a path). */
export function moduleHref(moduleUrl: unknown, argName = 'moduleUrl'): string {
  let url: URL;
  if (moduleUrl instanceof URL) url = moduleUrl;
  else if (typeof moduleUrl === 'string' && moduleUrl.length > 0) {
    url = moduleUrl.startsWith('file:') ? new URL(moduleUrl) : pathToFileURL(resolvePath(moduleUrl));
  } else {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be a URL, a file: URL string or a path`);
  }
  if (url.protocol !== 'file:') throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must be a file: URL. Received ${url.href}`);
  if (!existsSync(fileURLToPath(url))) {
    throw Object.assign(new Error(`Cannot find module '${fileURLToPath(url)}'`), { code: 'ERR_MODULE_NOT_FOUND' });
  }
  return url.href;
}

function stateError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/** The error a child reported, rebuilt here with the child's stack. */
function rebuildError(e: { name?: string; message?: string; stack?: string; code?: unknown }): Error {
  const err = new Error(e.message ?? String(e));
  Object.defineProperty(err, 'name', { value: e.name ?? 'Error', configurable: true, writable: true });
  if (e.code !== undefined) (err as Error & { code?: unknown }).code = e.code;
  err.stack = e.stack ?? `${e.name}: ${e.message}`;
  return err;
}

function stdioOf(option: ProcessOptions['stdio']): Array<'inherit' | 'ignore' | 'pipe' | number> {
  if (option === undefined) return ['ignore', 'inherit', 'inherit'];
  const list = typeof option === 'string' ? [option, option, option] : option;
  if (!Array.isArray(list) || list.length !== 3) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "stdio" option must be 'inherit', 'ignore', 'pipe' or an array of three of them`);
  }
  for (const s of list) {
    if (s !== 'inherit' && s !== 'ignore' && s !== 'pipe' && !(Number.isInteger(s) && (s as number) >= 0)) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The "stdio" option's entries must be 'inherit', 'ignore', 'pipe' or a descriptor`);
    }
  }
  return list;
}

/**
 * A function of a module, run in a new node process. Python's
 * `multiprocessing.Process(target=..., args=...)`:
 *
 * ```ts
 * // worker.mjs: export default async function (sem, q, n) { ... }
 * const p = new Process(new URL('./worker.mjs', import.meta.url), { args: [sem, q, 3] });
 * p.start();
 * await p.join();
 * p.exitCode; // 0, 1 if the target threw (p.error has its stack), -9 if killed
 * ```
 *
 * The child closes the objects it reopened when the target returns (or
 * throws), then exits when its event loop is empty, as any node program.
 * A non-daemon child keeps this process alive until it exits (as Python
 * waits for its children at exit); it is not killed when this process ends.
 */
export class Process {
  readonly #href: string;
  readonly #export: string;
  readonly #args: unknown[];
  #name: string;
  readonly #daemon: boolean;
  readonly #env: NodeJS.ProcessEnv | undefined;
  readonly #execArgv: string[];
  readonly #cwd: string | undefined;
  readonly #stdio: Array<'inherit' | 'ignore' | 'pipe' | number>;
  #child: ChildProcess | null = null;
  #control: Connection | null = null;
  #lifeline: Connection | null = null;
  #exitCode: number | null = null;
  #error: Error | undefined;
  #exited: Promise<void> | null = null;

  /**
   * @param moduleUrl the module whose export is the target: a URL
   *   (`new URL('./worker.mjs', import.meta.url)`), a file: URL string or a path.
   * @throws TypeError for bad options; Error `ERR_MODULE_NOT_FOUND` if the module file does not exist.
   */
  constructor(moduleUrl: URL | string, options?: ProcessOptions) {
    this.#href = moduleHref(moduleUrl);
    const o = validateOptions<ProcessOptions>(options);
    if (o.args !== undefined && !Array.isArray(o.args)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "args" option must be an array');
    this.#args = o.args ?? [];
    if (o.export !== undefined && typeof o.export !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "export" option must be a string');
    this.#export = o.export ?? 'default';
    if (o.name !== undefined && typeof o.name !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "name" option must be a string');
    counter += 1;
    this.#name = o.name ?? `Process-${counter}`;
    this.#daemon = validateBoolean(o.daemon, 'daemon', false);
    if (o.env !== undefined && (typeof o.env !== 'object' || o.env === null)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "env" option must be an object');
    this.#env = o.env;
    if (o.execArgv !== undefined && (!Array.isArray(o.execArgv) || o.execArgv.some((a) => typeof a !== 'string'))) {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "execArgv" option must be an array of strings');
    }
    this.#execArgv = o.execArgv ?? process.execArgv;
    if (o.cwd !== undefined && typeof o.cwd !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "cwd" option must be a string');
    this.#cwd = o.cwd;
    this.#stdio = stdioOf(o.stdio);
  }

  /** The name (`'Process-N'` unless given). Settable before and after start, as Python's. */
  get name(): string {
    return this.#name;
  }
  set name(value: string) {
    if (typeof value !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "name" must be a string');
    this.#name = value;
  }

  /** Whether this is a daemon child (see `ProcessOptions.daemon`). */
  get daemon(): boolean {
    return this.#daemon;
  }

  /** The child's pid once started; undefined before. */
  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /**
   * null while running (or not started); then the exit code: 0, 1 when the
   * target threw, or the negative signal number when it was killed by one
   * (-15 after `terminate()`, -9 after `kill()`), as Python's.
   */
  get exitCode(): number | null {
    return this.#exitCode;
  }

  /** The exception the target threw, with the child's stack (after `join()`); undefined otherwise. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** The child's stdin/stdout/stderr streams when `stdio` made them `'pipe'`. */
  get stdin(): Writable | null {
    return this.#child?.stdin ?? null;
  }
  get stdout(): Readable | null {
    return this.#child?.stdout ?? null;
  }
  get stderr(): Readable | null {
    return this.#child?.stderr ?? null;
  }

  /** True from `start()` until the child has exited. */
  isAlive(): boolean {
    return this.#child !== null && this.#exitCode === null;
  }

  /**
   * Starts the child. Synchronous, as Python's: the arguments are packed
   * here, so an argument that cannot travel throws now (TypeError
   * `ERR_IPC_UNCLONEABLE`) and no child is started. A missing export, or an
   * object that cannot be reopened there, makes the child exit 1 with `error` set.
   * @throws Error `ERR_IPC_PROCESS_STARTED` when called twice.
   */
  start(): void {
    if (this.#child !== null || this.#exited !== null) {
      throw stateError('ERR_IPC_PROCESS_STARTED', `${this.#name} was already started: a Process can be started once`);
    }
    const fds: number[] = [];
    const packed = pack(this.#args, fds);
    const message = serialize({
      module: this.#href,
      export: this.#export,
      name: this.#name,
      daemon: this.#daemon,
      args: packed,
      fdBase: DESCRIPTORS_FROM,
    });
    const [control, childControl] = Pipe({ codec: 'raw' });
    let lifeline: Connection | null = null;
    let childLifeline: Connection | null = null;
    if (this.#daemon) [childLifeline, lifeline] = Pipe({ duplex: false });
    const stdio: StdioOptions = [...this.#stdio, childControl.fileno(), childLifeline?.fileno() ?? 'ignore', ...fds];
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [...this.#execArgv, BOOTSTRAP, ...(this.#daemon ? ['--daemon'] : [])], {
        stdio,
        env: this.#env ?? process.env,
        cwd: this.#cwd,
        serialization: 'json',
      });
    } catch (err) {
      control.close();
      lifeline?.close();
      throw err;
    } finally {
      childControl.close();
      childLifeline?.close();
    }
    if (child.pid === undefined) {
      // spawn failed (a missing cwd, no more processes): Node says why only on the next tick.
      child.on('error', () => {});
      control.close();
      lifeline?.close();
      const why = this.#cwd !== undefined && !existsSync(this.#cwd) ? ` (cwd ${this.#cwd} does not exist)` : '';
      throw stateError('ERR_IPC_SPAWN_FAILED', `${this.#name} could not be started: spawning ${process.execPath} failed${why}`);
    }
    this.#child = child;
    this.#control = control;
    this.#lifeline = lifeline;
    children.add(this);
    if (this.#daemon) {
      child.unref();
      daemons.add(child);
      if (!exitHook) {
        exitHook = true;
        // Python terminates daemonic children at exit; the lifeline covers a
        // parent that is killed instead.
        process.on('exit', () => {
          for (const c of daemons) c.kill('SIGTERM');
        });
      }
    }
    let spawnError: Error | undefined;
    child.on('error', (err) => {
      spawnError = err;
    });
    this.#exited = new Promise<void>((resolve) => {
      child.on('exit', (code, signal) => {
        void this.#finish(code, signal, spawnError).then(resolve);
      });
    });
    // The start message fits the socket buffer or is written as the child reads it.
    control.sendBytes(message).catch(() => {
      // the child died before reading it: its exit says why
    });
  }

  async #finish(code: number | null, signal: NodeJS.Signals | null, spawnError: Error | undefined): Promise<void> {
    const control = this.#control!;
    // The child writes its result before it exits: it is in the socket by now.
    try {
      const reply = deserialize(await control.recvBytes(undefined, { timeout: 1000 })) as {
        error?: { name?: string; message?: string; stack?: string; code?: unknown };
      };
      if (reply.error !== undefined) this.#error = rebuildError(reply.error);
    } catch {
      // killed, or exited without a word (process.exit in the target)
    }
    if (spawnError !== undefined && this.#error === undefined) this.#error = spawnError;
    control.close();
    this.#lifeline?.close();
    daemons.delete(this.#child!);
    children.delete(this);
    this.#exitCode = code ?? (signal !== null ? -(osConstants.signals[signal] ?? 0) : 1);
  }

  /**
   * Waits until the child exits (resolves its `exitCode`), or until `timeout`
   * ms passed (resolves null; the child keeps running). Python's `join()`.
   * @throws Error `ERR_IPC_PROCESS_NOT_STARTED` before `start()`.
   */
  async join(options?: JoinOptions): Promise<number | null> {
    const o = validateOptions<JoinOptions>(options);
    const timeout = validateTimeout(o.timeout);
    if (this.#exited === null) throw stateError('ERR_IPC_PROCESS_NOT_STARTED', `${this.#name} was not started: call start() before join()`);
    if (this.#exitCode !== null) return this.#exitCode;
    // A daemon child does not keep this process alive, except while joined.
    const child = this.#child!;
    if (this.#daemon) child.ref();
    try {
      if (timeout < 0) {
        await this.#exited;
      } else {
        let timer: ReturnType<typeof setTimeout> | undefined;
        await Promise.race([this.#exited, new Promise<void>((r) => (timer = setTimeout(r, timeout)))]);
        clearTimeout(timer);
      }
    } finally {
      if (this.#daemon && this.#exitCode === null) child.unref();
    }
    return this.#exitCode;
  }

  #signal(sig: NodeJS.Signals): void {
    if (this.#child === null) throw stateError('ERR_IPC_PROCESS_NOT_STARTED', `${this.#name} was not started`);
    if (this.#exitCode === null) this.#child.kill(sig);
  }

  /** Sends SIGTERM (the child's exitCode becomes -15 unless it handles it). No-op once it exited. */
  terminate(): void {
    this.#signal('SIGTERM');
  }

  /** Sends SIGKILL (exitCode -9). No-op once it exited. */
  kill(): void {
    this.#signal('SIGKILL');
  }

  /**
   * Releases what this object holds. The child must have exited (Python's
   * `close()` raises while it runs). Idempotent.
   * @throws Error `ERR_IPC_PROCESS_ALIVE` while the child runs.
   */
  close(): void {
    if (this.isAlive()) throw stateError('ERR_IPC_PROCESS_ALIVE', `${this.#name} is still running: join() or kill() it before close()`);
  }

  /** @internal */
  [kExited](): Promise<void> {
    return this.#exited ?? Promise.resolve();
  }

  /** Kills the child if it still runs and waits for it: `await using p = new Process(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    if (this.#exited === null) return;
    if (this.isAlive()) this.kill();
    await this.#exited;
  }
}
