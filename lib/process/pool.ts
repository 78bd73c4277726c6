/**
 * `Pool`: Python's `multiprocessing.Pool` for Node. Worker processes run the
 * functions a module exports; tasks and results travel over this package's
 * own `Pipe` (one per worker, v8 codec).
 * @module
 */
import { Pipe } from '../pipe/pipe.js';
import type { Connection } from '../pipe/connection.js';
import { typeError, validateInteger, validateOptions } from '../core/validate.js';
import { isReopenable } from '../core/transfer.js';
import { Process, builtModule, cpuCount, kExited, moduleHref } from './process.js';
import type { ReplyMessage, TaskMessage } from './pool-worker.js';

/** Options for `new Pool(moduleUrl, options)`. */
export interface PoolOptions {
  /** How many worker processes. Default `cpuCount()`. */
  processes?: number;
  /** Replace a worker after it ran this many tasks (a chunk of `map` is one task). Default: never. */
  maxTasksPerChild?: number;
  /** The name of an export of the module that each worker calls once, with `initargs`, before its first task. */
  initializer?: string;
  /**
   * The initializer's arguments. Like a Process's `args`: posix-ipc objects
   * among them arrive reopened by name, pipe ends as descriptors.
   */
  initargs?: unknown[];
}

/** Options for `map` and its kin. */
export interface MapOptions {
  /**
   * Items per task. Default for `map`/`starmap`: about a quarter of the items
   * per worker, as Python's; for `imap`/`imapUnordered`: 1.
   */
  chunksize?: number;
}

interface Task {
  id: number;
  fn: string;
  /** Each entry is the arguments of one call (apply, starmap)... */
  calls?: unknown[][];
  /** ...or each is the one argument of one call (map, imap): no array per item to clone. */
  items?: unknown[];
  resolve(results: unknown[]): void;
  reject(err: unknown): void;
  settled: boolean;
}

interface Worker {
  proc: Process;
  conn: Connection<unknown>;
  task: Task | null;
  done: number;
  retiring: boolean;
}

function poolError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

function rebuild(e: NonNullable<ReplyMessage['error']>): Error {
  const err = new Error(e.message);
  Object.defineProperty(err, 'name', { value: e.name, configurable: true, writable: true });
  if (e.code !== undefined) (err as Error & { code?: unknown }).code = e.code;
  err.stack = e.stack;
  return err;
}

function validateFn(fn: unknown): string {
  if (typeof fn !== 'string' || fn.length === 0) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "fn" argument must be the name of a function the module exports');
  }
  return fn;
}

function items<T>(iterable: Iterable<T>): T[] {
  if (typeof (iterable as Partial<Iterable<T>> | null | undefined)?.[Symbol.iterator] !== 'function') {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "iterable" argument must be iterable (an array, a Set, a generator...)');
  }
  return Array.from(iterable);
}

function chunked<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

let pools = 0;
const WORKER = builtModule('pool-worker');

/**
 * A pool of worker processes running the functions `moduleUrl` exports.
 *
 * ```ts
 * // tasks.mjs: export function square(x) { return x * x; }
 * await using pool = new Pool(new URL('./tasks.mjs', import.meta.url), { processes: 4 });
 * await pool.map('square', [1, 2, 3]);            // [1, 4, 9], in order
 * for await (const r of pool.imapUnordered('square', items)) ...
 * ```
 *
 * A worker that dies in the middle of a task (killed, or `process.exit` in
 * the task) fails that task with Error `ERR_IPC_WORKER_DIED` and is
 * replaced; the pool goes on. Workers are daemon processes: they do not keep
 * this process alive by themselves and die with it; a pending task does
 * keep it alive.
 */
export class Pool implements AsyncDisposable {
  readonly #href: string;
  readonly #size: number;
  readonly #maxTasks: number;
  readonly #initializer: string | null;
  readonly #initargs: unknown[];
  readonly #workers = new Set<Worker>();
  readonly #queue: Task[] = [];
  #state: 'run' | 'close' | 'terminate' = 'run';
  #nextId = 0;
  #spawned = 0;
  readonly #pool = ++pools;
  readonly #idle: Array<() => void> = [];
  /** Set when workers die before finishing any task (a failing initializer): the pool cannot work. */
  #broken: Error | null = null;
  #pending = 0;
  #keepAlive: ReturnType<typeof setInterval> | null = null;

  /**
   * Starts the workers at once.
   * @throws TypeError / RangeError for bad options; Error `ERR_MODULE_NOT_FOUND` if the module file does not exist;
   *   TypeError `ERR_IPC_UNCLONEABLE` if `initargs` cannot travel.
   */
  constructor(moduleUrl: URL | string, options?: PoolOptions) {
    this.#href = moduleHref(moduleUrl);
    const o = validateOptions<PoolOptions>(options);
    this.#size = validateInteger(o.processes, 'processes', 1, 4096, cpuCount());
    this.#maxTasks = validateInteger(o.maxTasksPerChild, 'maxTasksPerChild', 1, Number.MAX_SAFE_INTEGER, 0);
    if (o.initializer !== undefined && typeof o.initializer !== 'string') {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "initializer" option must be the name of a function the module exports');
    }
    this.#initializer = o.initializer ?? null;
    if (o.initargs !== undefined && !Array.isArray(o.initargs)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "initargs" option must be an array');
    this.#initargs = o.initargs ?? [];
    // The first worker checks the arguments: if they cannot travel, it throws here and none is left running.
    for (let i = 0; i < this.#size; i++) this.#spawn();
  }

  /** How many worker processes the pool keeps. */
  get processes(): number {
    return this.#size;
  }

  /** The pids of the current workers. */
  get pids(): number[] {
    return [...this.#workers].map((w) => w.proc.pid!);
  }

  #spawn(): void {
    const [here, there] = Pipe({ codec: 'v8' });
    this.#spawned += 1;
    const proc = new Process(WORKER, {
      args: [this.#href, there, this.#initializer, this.#initargs],
      daemon: true,
      name: `PoolWorker-${this.#pool}-${this.#spawned}`,
    });
    try {
      proc.start();
    } catch (err) {
      here.close();
      throw err;
    } finally {
      there.close();
    }
    const w: Worker = { proc, conn: here, task: null, done: 0, retiring: false };
    this.#workers.add(w);
    void proc[kExited]().then(() => this.#exited(w));
  }

  #exited(w: Worker): void {
    this.#workers.delete(w);
    w.conn.close();
    const task = w.task;
    const cause = w.proc.error;
    if (task !== null) {
      w.task = null;
      const how = w.proc.exitCode! < 0 ? `was killed by signal ${-w.proc.exitCode!}` : `exited with code ${w.proc.exitCode}`;
      const why = cause === undefined ? '' : ` (${cause.message})`;
      this.#settle(task, Object.assign(poolError('ERR_IPC_WORKER_DIED', `Pool worker ${w.proc.name} (pid ${w.proc.pid}) ${how} while running task '${task.fn}'${why}`), { cause }));
    }
    if (!w.retiring && w.done === 0 && this.#state !== 'terminate' && cause !== undefined) {
      // It failed before finishing a task, of an error (its initializer): a replacement would fail the same way.
      this.#broken = Object.assign(poolError('ERR_IPC_POOL_BROKEN', `Pool worker ${w.proc.name} failed to start: ${cause.message}`), { cause });
      for (const t of this.#queue.splice(0)) this.#settle(t, this.#broken);
    }
    // Replaced while the pool runs, or while queued tasks still need it after close().
    if (this.#broken === null && (this.#state === 'run' || (this.#state === 'close' && this.#queue.length > 0))) this.#spawn();
    if (this.#workers.size === 0) for (const r of this.#idle.splice(0)) r();
    this.#dispatch();
  }

  #settle(task: Task, err: unknown, results?: unknown[]): void {
    if (task.settled) return;
    task.settled = true;
    this.#pending -= 1;
    if (this.#pending === 0 && this.#keepAlive !== null) {
      clearInterval(this.#keepAlive);
      this.#keepAlive = null;
    }
    if (results !== undefined) task.resolve(results);
    else task.reject(err);
  }

  #dispatch(): void {
    for (const w of this.#workers) {
      if (w.task !== null || w.retiring || !w.proc.isAlive()) continue;
      const task = this.#queue.shift();
      if (task === undefined) {
        if (this.#state === 'close') this.#retire(w);
        continue;
      }
      void this.#run(w, task);
    }
  }

  #retire(w: Worker): void {
    w.retiring = true;
    w.conn.send(null).catch(() => {});
  }

  async #run(w: Worker, task: Task): Promise<void> {
    w.task = task;
    try {
      const message: TaskMessage = task.items !== undefined ? { id: task.id, fn: task.fn, items: task.items } : { id: task.id, fn: task.fn, calls: task.calls! };
      await w.conn.send(message);
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ERR_IPC_ENCODE') {
        // An argument that cannot be cloned fails its task only.
        w.task = null;
        this.#settle(task, err);
        this.#dispatch();
      }
      return; // otherwise the worker is gone: #exited fails the task
    }
    let reply: ReplyMessage;
    try {
      reply = (await w.conn.recv()) as ReplyMessage;
    } catch {
      return; // the worker died: #exited fails the task and replaces it
    }
    w.task = null;
    w.done += 1;
    if (reply.error !== undefined) this.#settle(task, rebuild(reply.error));
    else this.#settle(task, null, reply.results);
    if (this.#maxTasks > 0 && w.done >= this.#maxTasks) this.#retire(w);
    this.#dispatch();
  }

  #submit(fn: string, calls: unknown[][] | null, items?: unknown[]): Promise<unknown[]> {
    // Structured clone would turn one into an empty object; they travel once per worker, through initargs.
    const reopenable = calls !== null ? calls.some((c) => c.some(isReopenable)) : items!.some(isReopenable);
    if (reopenable) {
      return Promise.reject(
        typeError('ERR_IPC_UNCLONEABLE', 'A posix-ipc object cannot be a task argument: pass it in the Pool\'s initargs (reopened once in each worker)'),
      );
    }
    if (this.#state !== 'run') return Promise.reject(poolError('ERR_IPC_POOL_CLOSED', 'Pool is not running: no tasks after close() or terminate()'));
    if (this.#broken !== null) return Promise.reject(this.#broken);
    return new Promise<unknown[]>((resolve, reject) => {
      // A task not yet settled keeps this process alive (the workers, daemons, do not).
      this.#pending += 1;
      this.#keepAlive ??= setInterval(() => {}, 1 << 30);
      this.#nextId += 1;
      const task: Task = { id: this.#nextId, fn, resolve, reject, settled: false };
      if (calls !== null) task.calls = calls;
      else task.items = items!;
      this.#queue.push(task);
      this.#dispatch();
    });
  }

  /** One task per chunk: of argument lists when `star`, else of single arguments. */
  #tasks(fn: string, list: unknown[], chunksize: number, star = false): Array<Promise<unknown[]>> {
    const promises = chunked(list, chunksize).map((c) => (star ? this.#submit(fn, c as unknown[][]) : this.#submit(fn, null, c)));
    for (const p of promises) p.catch(() => {}); // observed by the caller in its own order
    return promises;
  }

  #chunksize(options: MapOptions | undefined, n: number, lazy: boolean): number {
    const o = validateOptions<MapOptions>(options);
    const fallback = lazy ? 1 : Math.max(1, Math.ceil(n / (this.#size * 4)));
    return validateInteger(o.chunksize, 'chunksize', 1, Number.MAX_SAFE_INTEGER, fallback);
  }

  /** Runs `fn(...args)` in a worker; resolves its result. Python's `apply_async(...).get()`. */
  async apply(fn: string, args: unknown[] = []): Promise<unknown> {
    validateFn(fn);
    if (!Array.isArray(args)) throw typeError('ERR_INVALID_ARG_TYPE', 'The "args" argument must be an array');
    return (await this.#submit(fn, [args]))[0];
  }

  /**
   * Calls `fn(item)` for every item, in chunks of `chunksize` items per task;
   * resolves the results in the items' order. Rejects with the first failed
   * item's error (the other tasks still run).
   */
  async map(fn: string, iterable: Iterable<unknown>, options?: MapOptions): Promise<unknown[]> {
    validateFn(fn);
    const list = items(iterable);
    const parts = await Promise.all(this.#tasks(fn, list, this.#chunksize(options, list.length, false)));
    return parts.flat(1);
  }

  /** As `map`, with each item an array of arguments: `fn(...item)`. */
  async starmap(fn: string, iterable: Iterable<unknown[]>, options?: MapOptions): Promise<unknown[]> {
    validateFn(fn);
    const calls = items(iterable).map((x) => (Array.isArray(x) ? x : [x]));
    const parts = await Promise.all(this.#tasks(fn, calls, this.#chunksize(options, calls.length, false), true));
    return parts.flat(1);
  }

  /**
   * The results of `fn(item)` in the items' order, each as soon as it and
   * those before it are done. All tasks are submitted at once; a failed item
   * throws from the iterator at its place.
   */
  async *imap(fn: string, iterable: Iterable<unknown>, options?: MapOptions): AsyncGenerator<unknown, void, undefined> {
    validateFn(fn);
    const list = items(iterable);
    for (const p of this.#tasks(fn, list, this.#chunksize(options, list.length, true))) yield* await p;
  }

  /** The results of `fn(item)` in the order they complete. A failed item throws from the iterator when it fails. */
  async *imapUnordered(fn: string, iterable: Iterable<unknown>, options?: MapOptions): AsyncGenerator<unknown, void, undefined> {
    validateFn(fn);
    const list = items(iterable);
    const pending = new Map<number, Promise<[number, unknown[] | null, unknown]>>();
    this.#tasks(fn, list, this.#chunksize(options, list.length, true)).forEach((p, i) => {
      pending.set(
        i,
        p.then(
          (r) => [i, r, null],
          (e) => [i, null, e],
        ),
      );
    });
    while (pending.size > 0) {
      const [i, results, err] = await Promise.race(pending.values());
      pending.delete(i);
      if (results === null) throw err;
      yield* results;
    }
  }

  /** No more tasks: the workers exit once the queued tasks are done. Python's `close()`. */
  close(): void {
    if (this.#state === 'run') this.#state = 'close';
    this.#dispatch();
  }

  /**
   * Kills the workers at once (SIGKILL); queued and running tasks reject
   * with Error `ERR_IPC_POOL_TERMINATED`. Python's `terminate()`.
   */
  terminate(): void {
    if (this.#state === 'terminate') return;
    this.#state = 'terminate';
    const err = poolError('ERR_IPC_POOL_TERMINATED', 'Pool was terminated');
    for (const t of this.#queue.splice(0)) this.#settle(t, err);
    for (const w of this.#workers) {
      if (w.task !== null) this.#settle(w.task, err);
      w.proc.kill();
    }
  }

  /**
   * Waits until every worker has exited. Call `close()` or `terminate()` first.
   * @throws Error `ERR_IPC_POOL_RUNNING` while the pool still takes tasks.
   */
  async join(): Promise<void> {
    if (this.#state === 'run') throw poolError('ERR_IPC_POOL_RUNNING', 'Pool is still running: call close() or terminate() before join()');
    if (this.#workers.size === 0) return;
    // Waiting here keeps this process alive, as joining a Process does.
    const keepAlive = setInterval(() => {}, 1 << 30);
    try {
      await new Promise<void>((r) => this.#idle.push(r));
    } finally {
      clearInterval(keepAlive);
    }
  }

  /** `await using pool = new Pool(...)`: terminates and joins at block exit, as Python's `with Pool()`. */
  async [Symbol.asyncDispose](): Promise<void> {
    this.terminate();
    await this.join();
  }
}
