/**
 * The one wait mechanism every family stands on: a FIFO of pending waits on
 * one object, each with its timeout (any finite number of milliseconds, up to
 * Number.MAX_SAFE_INTEGER: setTimeout's 2^31 - 1 limit is passed by chaining
 * timers), its AbortSignal, and a cleanup that runs exactly once however the
 * wait ends (served, timed out, aborted, rejected on close). A {@link LoopRef}
 * keeps the event loop alive while anyone waits, and only then.
 *
 * {@link WaiterQueue} builds the semaphores' "one native wait per object"
 * engine on it.
 * @internal
 * @module
 */
import type { IPCError } from './errors.js';
import { abortError } from './errors.js';
import type { WaitCallback, WaitToken } from './binding.js';

/** The longest delay setTimeout honours; a longer one fires after about 1 ms. */
export const MAX_TIMER_DELAY = 0x7fffffff;

/** Something that can keep the event loop alive: a socket, server, timer. */
export interface Refable {
  ref(): unknown;
  unref(): unknown;
}

/**
 * Keeps one handle referenced while it has holders (pending waits) and
 * unreferenced otherwise, so an idle object never keeps the process alive.
 * Several wait lists of one object may share it.
 */
export class LoopRef {
  #target: Refable | null = null;
  #holders = 0;
  #refed = false;

  /** Starts managing `target` (unreferenced unless someone waits now). */
  attach(target: Refable): void {
    this.#target = target;
    this.#refed = false;
    target.unref();
    this.#apply();
  }

  hold(): void {
    if (this.#holders++ === 0) this.#apply();
  }

  release(): void {
    if (--this.#holders === 0) this.#apply();
  }

  #apply(): void {
    const t = this.#target;
    if (t === null) return;
    const want = this.#holders > 0;
    if (want === this.#refed) return;
    this.#refed = want;
    if (want) t.ref();
    else t.unref();
  }
}

/** How a wait that ran out of time ends: resolved with a value, or rejected. */
export type TimeoutOutcome<R> = { value: R } | { error: unknown };

export interface WaitListOptions<R, D> {
  /** The outcome of a wait whose `timeout` passed (`ms` is the timeout it was given). */
  onTimeout(data: D, ms: number): TimeoutOutcome<R>;
  /** Called once for each wait that ends other than by `resolve` (timeout, abort, reject). */
  onLeave?(data: D): void;
  /** Called after the list changed (a wait joined or left), to adjust interest. */
  onChange?(): void;
  /** Referenced while the list is not empty. */
  loop?: LoopRef;
}

/** One pending wait. `data` is the owner's; the rest belongs to the list. */
export class Waiter<R, D> {
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  /** performance.now() when a timeout longer than one timer is due. */
  due = 0;
  ms = -1;
  onAbort: (() => void) | undefined = undefined;
  constructor(
    readonly data: D,
    readonly settleValue: (value: R) => void,
    readonly settleError: (err: unknown) => void,
    readonly signal: AbortSignal | undefined,
  ) {}
}

/**
 * A FIFO of waits. The owner serves them in order (`first()`, then
 * `resolve`/`reject`), and the list settles timeouts and aborts itself.
 */
export class WaitList<R, D = undefined> {
  readonly #waiters = new Set<Waiter<R, D>>();
  readonly #options: WaitListOptions<R, D>;
  readonly #expire = (w: Waiter<R, D>): void => {
    if (w.due !== 0) {
      const left = w.due - performance.now();
      if (left > 0) {
        w.timer = setTimeout(this.#expire, Math.min(Math.ceil(left), MAX_TIMER_DELAY), w);
        return;
      }
    }
    if (!this.#remove(w)) return;
    this.#left(w);
    const outcome = this.#options.onTimeout(w.data, w.ms);
    if ('error' in outcome) w.settleError(outcome.error);
    else w.settleValue(outcome.value);
    this.#options.onChange?.();
  };

  constructor(options: WaitListOptions<R, D>) {
    this.#options = options;
  }

  /** How many waits are pending. */
  get size(): number {
    return this.#waiters.size;
  }

  /**
   * Adds a wait. `timeout` in ms (< 0: forever); an already aborted `signal`
   * must have been refused before (see `throwIfAborted`).
   */
  wait(data: D, timeout: number, signal: AbortSignal | undefined): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      const w = new Waiter<R, D>(data, resolve, reject, signal);
      if (timeout >= 0 && timeout !== Infinity) {
        w.ms = timeout;
        if (timeout > MAX_TIMER_DELAY) {
          w.due = performance.now() + timeout;
          w.timer = setTimeout(this.#expire, MAX_TIMER_DELAY, w);
        } else {
          w.timer = setTimeout(this.#expire, timeout, w);
        }
      }
      if (signal !== undefined) {
        w.onAbort = () => this.reject(w, abortError(signal));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.add(w);
      if (this.#waiters.size === 1) this.#options.loop?.hold();
      this.#options.onChange?.();
    });
  }

  /** The oldest pending wait. */
  first(): Waiter<R, D> | undefined {
    for (const w of this.#waiters) return w;
    return undefined;
  }

  /** The pending waits, oldest first (a copy: safe to settle while iterating). */
  all(): Waiter<R, D>[] {
    return [...this.#waiters];
  }

  /** Serves `w` with `value`; false (and nothing happens) if it already left. */
  resolve(w: Waiter<R, D>, value: R): boolean {
    if (!this.#remove(w)) return false;
    w.settleValue(value);
    this.#options.onChange?.();
    return true;
  }

  /** Ends `w` with `err`; false (and nothing happens) if it already left. */
  reject(w: Waiter<R, D>, err: unknown): boolean {
    if (!this.#remove(w)) return false;
    this.#left(w);
    w.settleError(err);
    this.#options.onChange?.();
    return true;
  }

  /** Rejects every pending wait with `err` (the object was closed or failed). */
  rejectAll(err: unknown): void {
    for (const w of this.all()) this.reject(w, err);
  }

  /** Removes `w` and undoes its timer, abort listener and loop reference: once. */
  #remove(w: Waiter<R, D>): boolean {
    if (!this.#waiters.delete(w)) return false;
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    if (this.#waiters.size === 0) this.#options.loop?.release();
    return true;
  }

  #left(w: Waiter<R, D>): void {
    this.#options.onLeave?.(w.data);
  }
}

const SLEEP_DONE: TimeoutOutcome<void> = { value: undefined };
const ignore = (): void => {};

/** Resolves after `ms` (any finite length); rejects with AbortError when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  const list = new WaitList<void>({ onTimeout: () => SLEEP_DONE });
  return list.wait(undefined, ms, signal);
}

/** A signal that aborts when `timeout` ms pass or `parent` aborts; `dispose()` stops the timer. */
export interface Deadline {
  readonly signal: AbortSignal;
  /** True if it aborted because the time ran out (not because of the parent). */
  readonly timedOut: boolean;
  dispose(): void;
}

/** Makes a {@link Deadline}: `timeout` < 0 means none, only the parent. */
export function deadline(timeout: number, parent: AbortSignal | undefined): Deadline {
  const ac = new AbortController();
  let timedOut = false;
  let disposed = false;
  const list = new WaitList<void>({
    onTimeout: () => {
      timedOut = true;
      ac.abort(new Error('timed out'));
      return SLEEP_DONE;
    },
    // The parent aborted (or dispose() ended the wait).
    onLeave: () => {
      if (!disposed && parent?.aborted === true) ac.abort(parent.reason);
    },
  });
  // The wait is only for its timer and the parent's abort: nobody awaits it.
  list.wait(undefined, timeout, parent).catch(ignore);
  return {
    signal: ac.signal,
    get timedOut() {
      return timedOut;
    },
    dispose: () => {
      disposed = true;
      list.rejectAll(null);
    },
  };
}

interface Source {
  /** Takes one unit without waiting; true if it did. */
  tryTake(): boolean;
  /** Starts one native wait (no deadline) that takes one unit. */
  startWait(cb: WaitCallback): WaitToken;
  /** Cancels a native wait started by startWait. */
  cancelWait(token: WaitToken): void;
  /** Gives one unit back (when a unit arrives that nobody waits for any more). */
  giveBack(): void;
}

export type WaitSource = Source;

const TIMED_OUT_FALSE: TimeoutOutcome<boolean> = { value: false };
const timedOutFalse = (): TimeoutOutcome<boolean> => TIMED_OUT_FALSE;

/**
 * Waits on a counted object (a semaphore) served by at most one native wait at
 * a time. However many promises are pending (10,000 acquires), the process
 * uses one engine thread per object; timeouts and aborts settle at once, and
 * when the last waiter leaves, the native wait is cancelled (whatever it took
 * meanwhile is given back by the engine, so an abandoned wait consumes nothing).
 */
export class WaiterQueue {
  readonly #source: Source;
  readonly #list: WaitList<boolean>;
  #token: WaitToken | undefined;
  readonly #onNative: WaitCallback;

  constructor(source: WaitSource) {
    this.#source = source;
    this.#onNative = (err, ok) => this.#settleNative(err, ok);
    this.#list = new WaitList<boolean>({
      onTimeout: timedOutFalse,
      onChange: () => {
        if (this.#list.size === 0 && this.#token !== undefined) {
          this.#source.cancelWait(this.#token);
          this.#token = undefined;
        }
      },
    });
  }

  /** True when nobody in this process is waiting (new callers may take at once). */
  get idle(): boolean {
    return this.#list.size === 0;
  }

  get size(): number {
    return this.#list.size;
  }

  /** Queues a wait; resolves true when a unit is taken, false on timeout. */
  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    const p = this.#list.wait(undefined, timeoutMs, signal);
    if (this.#token === undefined) this.#token = this.#source.startWait(this.#onNative);
    return p;
  }

  /** Rejects every waiter (the object was closed). */
  rejectAll(err: unknown): void {
    this.#list.rejectAll(err);
  }

  #settleNative(err: IPCError | null, ok: boolean): void {
    this.#token = undefined;
    if (err !== null) {
      this.rejectAll(err);
      return;
    }
    const list = this.#list;
    if (ok) {
      const w = list.first();
      if (w === undefined) {
        this.#source.giveBack();
        return;
      }
      list.resolve(w, true);
    }
    // Serve whoever else can be served without another thread hop.
    let next = list.first();
    while (next !== undefined && this.#source.tryTake()) {
      list.resolve(next, true);
      next = list.first();
    }
    if (next !== undefined) this.#token = this.#source.startWait(this.#onNative);
  }
}
