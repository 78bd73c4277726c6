/**
 * `JoinableQueue`: Python's `multiprocessing.JoinableQueue` by name: a Queue
 * plus `taskDone()` and `join()`, with the unfinished-task count in a
 * crash-safe synchronisation segment (/dev/shm/pipc.NAME.jq). Built on the
 * public Queue API, so it works on whichever transport Queue uses.
 * @module
 */
import { DecodeError, closedError, ipcError, rangeError } from '../core/errors.js';
import { SYNC_RESERVED, validateName } from '../core/names.js';
import { validateOptions, validateWaitOptions } from '../core/validate.js';
import { CHECK_MS, H_FIRST, S_PID, SyncSegment, openOptions, unlinkSegment } from '../sync/segment.js';
import { Full, Queue } from './queue.js';
import type { GetOptions, IterateOptions, PutOptions, QueueOptions, SyncOptions } from './queue.js';

// Header words.
export const JQ_UNFINISHED = H_FIRST; // items put and not yet marked done
export const JQ_SEQ = H_FIRST + 1; // futex word: +1 when UNFINISHED reaches 0 and when LOST grows
export const JQ_LOST = H_FIRST + 2; // tasks written off with dead processes (cumulative, wraps)
export const JQ_LOSTPID = H_FIRST + 3; // the last such process
// Slot words (each written by its owner; a recoverer only takes them to 0 by CAS).
export const JS_OWED = 1; // items this slot got and has not marked done
export const JS_PUTTING = 2; // 1 while a put is counted but not known to be sent

/** Options for `join()`. */
export interface JoinOptions {
  /** Give up after this many ms: join() resolves false. Default: forever. */
  timeout?: number;
  signal?: AbortSignal;
}

/** What join() rejects with when a process died with unfinished tasks: IPCError code `EOWNERDEAD`, plus these. */
export interface TasksLostInfo {
  /** How many tasks were written off since this join() started. */
  lost: number;
  /** The pid of the (last) process that died with them. */
  pid: number;
}

const JOIN_KEYS = ['timeout', 'signal'] as const;

/**
 * A Queue whose producers can wait until every item put has been processed:
 * each consumer calls `taskDone()` once per item it got, and `join()`
 * resolves when the count of unfinished items reaches zero.
 *
 * ```ts
 * const q = new JoinableQueue<Job>('work');
 * for (const j of jobs) await q.put(j);
 * await q.join();                      // every job done, in whichever process
 * // consumer: for await (const j of q) { await run(j); q.taskDone(); }
 * ```
 * A consumer that dies holding items it got and had not marked done (its
 * slot's lock is gone) makes every pending join() reject with IPCError
 * `EOWNERDEAD` (with `lost` and `pid`), within a second, instead of hanging:
 * those items were taken off the queue and will never be done. The count is
 * corrected (they are written off), so later joins wait only for the rest.
 */
export class JoinableQueue<T = unknown> implements Disposable {
  readonly #q: Queue<T>;
  readonly #seg: SyncSegment;
  readonly #name: string;
  #nextCheck = 0;

  constructor(name: string, options?: QueueOptions<T>) {
    const o = validateOptions<QueueOptions<T>>(options);
    this.#name = validateName(name, 'name', SYNC_RESERVED);
    const open = openOptions(o);
    this.#q = new Queue<T>(this.#name, o);
    try {
      this.#seg = new SyncSegment(this.#name, 'joinable', { ...open, exclusive: false }, []);
    } catch (err) {
      this.#q.close();
      throw err;
    }
    // What a dead previous owner of our slot left is written off now.
    this.#recover(this.#seg.slot);
  }

  #m(syscall: string): Int32Array {
    if (this.#seg.closed) throw closedError('JoinableQueue', syscall, this.#name);
    return this.#seg.m;
  }

  /** The underlying Queue (its options, transport and state). */
  get queue(): Queue<T> {
    return this.#q;
  }

  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#seg.closed;
  }

  /** Items put and not yet marked done, across every process. */
  get unfinishedTasks(): number {
    return Atomics.load(this.#m('load'), JQ_UNFINISHED);
  }

  /** Tasks written off so far because the process holding them died (cumulative). */
  get lostTasks(): number {
    return Atomics.load(this.#m('load'), JQ_LOST) >>> 0;
  }

  qsize(): number {
    return this.#q.qsize();
  }

  empty(): boolean {
    return this.#q.empty();
  }

  full(): boolean {
    return this.#q.full();
  }

  // Producers: count first (a consumer may finish the item before put() returns), uncount on failure.
  #count(n: number): void {
    const m = this.#m('mq_send');
    Atomics.store(m, this.#seg.mine + JS_PUTTING, 1);
    Atomics.add(m, JQ_UNFINISHED, n);
  }

  #sent(): void {
    if (!this.#seg.closed) Atomics.store(this.#seg.m, this.#seg.mine + JS_PUTTING, 0);
  }

  #unsent(n: number): void {
    if (this.#seg.closed || n <= 0) return;
    this.#sub(n);
  }

  /** UNFINISHED -= n, not below 0; wakes joiners when it reaches 0. */
  #sub(n: number): number {
    const m = this.#seg.m;
    for (;;) {
      const u = Atomics.load(m, JQ_UNFINISHED);
      const nu = Math.max(0, u - n);
      if (Atomics.compareExchange(m, JQ_UNFINISHED, u, nu) === u) {
        if (nu === 0 && u !== 0) {
          Atomics.add(m, JQ_SEQ, 1);
          this.#seg.wake(JQ_SEQ);
        }
        return u - nu;
      }
    }
  }

  async put(item: T, options?: PutOptions): Promise<void> {
    this.#count(1);
    try {
      await this.#q.put(item, options);
    } catch (err) {
      this.#unsent(1);
      throw err;
    } finally {
      this.#sent();
    }
  }

  putNowait(item: T, options?: { priority?: number }): void {
    this.#count(1);
    try {
      this.#q.putNowait(item, options);
    } catch (err) {
      this.#unsent(1);
      throw err;
    } finally {
      this.#sent();
    }
  }

  putSync(item: T, options?: SyncOptions & { priority?: number }): void {
    this.#count(1);
    try {
      this.#q.putSync(item, options);
    } catch (err) {
      this.#unsent(1);
      throw err;
    } finally {
      this.#sent();
    }
  }

  async putMany(items: Iterable<T>, options?: PutOptions): Promise<void> {
    const list = [...items];
    this.#count(list.length);
    try {
      await this.#q.putMany(list, options);
    } catch (err) {
      this.#unsent(list.length - (err instanceof Full ? err.sent : 0));
      throw err;
    } finally {
      this.#sent();
    }
  }

  // Consumers: every item got (also one that failed to decode: it left the queue) is owed a taskDone().
  #got(n: number): void {
    if (!this.#seg.closed) Atomics.add(this.#seg.m, this.#seg.mine + JS_OWED, n);
  }

  #gotError(err: unknown): never {
    if (err instanceof DecodeError) this.#got(1);
    throw err;
  }

  async get(options?: GetOptions): Promise<T> {
    this.#m('mq_receive');
    let item: T;
    try {
      item = await this.#q.get(options);
    } catch (err) {
      this.#gotError(err);
    }
    this.#got(1);
    return item;
  }

  getNowait(): T {
    this.#m('mq_receive');
    let item: T;
    try {
      item = this.#q.getNowait();
    } catch (err) {
      this.#gotError(err);
    }
    this.#got(1);
    return item;
  }

  getSync(options?: SyncOptions): T {
    this.#m('mq_receive');
    let item: T;
    try {
      item = this.#q.getSync(options);
    } catch (err) {
      this.#gotError(err);
    }
    this.#got(1);
    return item;
  }

  async getMany(max: number, options?: GetOptions): Promise<T[]> {
    this.#m('mq_receive');
    let items: T[];
    try {
      items = await this.#q.getMany(max, options);
    } catch (err) {
      this.#gotError(err);
    }
    this.#got(items.length);
    return items;
  }

  /** Items as they arrive, each counted as got (call taskDone() for each), until closed or aborted. */
  async *iterate(options?: IterateOptions): AsyncGenerator<T, void, undefined> {
    for (;;) {
      if (this.#seg.closed || this.#q.closed) return;
      let item: T;
      try {
        item = await this.get(options?.signal === undefined ? undefined : { signal: options.signal });
      } catch (err) {
        if (this.#q.closed && (err as { code?: string }).code === 'EBADF') return;
        throw err;
      }
      yield item;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return this.iterate();
  }

  /**
   * Marks one item done (Python's task_done). Throws RangeError
   * `ERR_IPC_TASK_DONE` when called more times than items were put.
   * The item is taken off this process's count if it has one, else off the
   * count of a process that got it (it was handed over).
   */
  taskDone(): void {
    const m = this.#m('futex');
    for (;;) {
      const u = Atomics.load(m, JQ_UNFINISHED);
      if (u <= 0) throw rangeError('ERR_IPC_TASK_DONE', `taskDone() called more times than there were items in '${this.#name}'`);
      if (Atomics.compareExchange(m, JQ_UNFINISHED, u, u - 1) !== u) continue;
      this.#unowe();
      if (u === 1) {
        Atomics.add(m, JQ_SEQ, 1);
        this.#seg.wake(JQ_SEQ);
      }
      return;
    }
  }

  #unowe(): void {
    const m = this.#seg.m;
    const seg = this.#seg;
    const take = (id: number): boolean => {
      const w = seg.base(id) + JS_OWED;
      for (;;) {
        const v = Atomics.load(m, w);
        if (v <= 0) return false;
        if (Atomics.compareExchange(m, w, v, v - 1) === v) return true;
      }
    };
    if (take(seg.slot)) return;
    for (let id = 1; id <= seg.slots; id++) if (id !== seg.slot && take(id)) return;
  }

  /** Writes off what dead slot `id` held (or our own slot's stale marks, at open). */
  #recover(id: number): number {
    const m = this.#seg.m;
    const b = this.#seg.base(id);
    let lost = 0;
    const owed = Atomics.load(m, b + JS_OWED);
    if (owed > 0 && Atomics.compareExchange(m, b + JS_OWED, owed, 0) === owed) lost += owed;
    if (Atomics.compareExchange(m, b + JS_PUTTING, 1, 0) === 1) lost += 1;
    if (lost === 0) return 0;
    const written = this.#sub(lost);
    if (written > 0) {
      Atomics.store(m, JQ_LOSTPID, Atomics.load(m, b + S_PID));
      Atomics.add(m, JQ_LOST, written);
      Atomics.add(m, JQ_SEQ, 1);
      this.#seg.wake(JQ_SEQ);
    }
    return written;
  }

  #checkDead(): void {
    const now = performance.now();
    if (now < this.#nextCheck) return;
    this.#nextCheck = now + CHECK_MS;
    const m = this.#seg.m;
    const seg = this.#seg;
    for (let id = 1; id <= seg.slots; id++) {
      if (id === seg.slot) continue;
      const b = seg.base(id);
      if (Atomics.load(m, b + JS_OWED) <= 0 && Atomics.load(m, b + JS_PUTTING) === 0) continue;
      if (!seg.alive(id)) this.#recover(id);
    }
  }

  #joinCheck(lost0: number): () => true | undefined {
    const m = this.#seg.m;
    return () => {
      const lost = Atomics.load(m, JQ_LOST);
      if (lost !== lost0) {
        const info: TasksLostInfo = { lost: (lost - lost0) >>> 0, pid: Atomics.load(m, JQ_LOSTPID) };
        throw Object.assign(
          ipcError('EOWNERDEAD', `process ${info.pid} died holding ${info.lost} unfinished task(s); they were written off`, 'join', this.#name),
          info,
        );
      }
      if (Atomics.load(m, JQ_UNFINISHED) <= 0) return true;
      this.#checkDead();
      return undefined;
    };
  }

  /**
   * Waits until every item put has been marked done: true, or false when
   * `timeout` ms passed first. Rejects with IPCError `EOWNERDEAD` (see the
   * class) when a process dies holding unfinished tasks meanwhile.
   */
  async join(options?: JoinOptions): Promise<boolean> {
    const { timeout, signal } = validateWaitOptions<JoinOptions>(options, JOIN_KEYS);
    const m = this.#m('futex');
    return (await this.#seg.watch(JQ_SEQ, this.#joinCheck(Atomics.load(m, JQ_LOST)), timeout, signal)) === true;
  }

  /** The blocking form of join(). */
  joinSync(options?: { timeout?: number }): boolean {
    const { timeout } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const m = this.#m('futex');
    return this.#seg.waitSync(JQ_SEQ, this.#joinCheck(Atomics.load(m, JQ_LOST)), timeout) === true;
  }

  /**
   * Closes the queue and the counter. Items this handle got and did not mark
   * done are written off now (as if it had died): pending joins elsewhere
   * reject with EOWNERDEAD rather than wait for them. Idempotent.
   */
  close(): void {
    if (!this.#seg.closed) {
      this.#recover(this.#seg.slot);
      this.#seg.close('JoinableQueue');
    }
    this.#q.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  unlink(): void {
    JoinableQueue.unlink(this.#name);
  }

  /** Removes the queue and its counter. IPCError ENOENT if the queue does not exist. */
  static unlink(name: string): void {
    const n = validateName(name, 'name', SYNC_RESERVED);
    try {
      unlinkSegment('joinable', n);
    } finally {
      Queue.unlink(n);
    }
  }
}
