/**
 * The JavaScript half of the wait engine: a FIFO of pending waits on one
 * object, served by at most one native wait at a time. However many promises
 * are pending (10,000 acquires), the process uses one engine thread per
 * object; timeouts and aborts are settled here at once, and when the last
 * waiter leaves, the native wait is cancelled (whatever it took meanwhile is
 * given back by the engine, so an abandoned wait consumes nothing).
 * @internal
 * @module
 */
import type { IPCError } from './errors.js';
import { abortError } from './errors.js';
import type { WaitCallback, WaitToken } from './binding.js';

interface Waiter {
  resolve(ok: boolean): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

export interface WaitSource {
  /** Takes one unit without waiting; true if it did. */
  tryTake(): boolean;
  /** Starts one native wait (no deadline) that takes one unit. */
  startWait(cb: WaitCallback): WaitToken;
  /** Cancels a native wait started by startWait. */
  cancelWait(token: WaitToken): void;
  /** Gives one unit back (when a unit arrives that nobody waits for any more). */
  giveBack(): void;
}

export class WaiterQueue {
  readonly #source: WaitSource;
  readonly #waiters = new Set<Waiter>();
  #token: WaitToken | undefined;
  readonly #onNative: WaitCallback;

  constructor(source: WaitSource) {
    this.#source = source;
    this.#onNative = (err, ok) => this.#settleNative(err, ok);
  }

  /** True when nobody in this process is waiting (new callers may take at once). */
  get idle(): boolean {
    return this.#waiters.size === 0;
  }

  get size(): number {
    return this.#waiters.size;
  }

  /** Queues a wait; resolves true when a unit is taken, false on timeout. */
  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      if (timeoutMs >= 0) {
        w.timer = setTimeout(() => this.#leave(w, false), timeoutMs);
      }
      if (signal !== undefined) {
        w.onAbort = () => this.#leave(w, abortError(signal));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.add(w);
      if (this.#token === undefined) this.#token = this.#source.startWait(this.#onNative);
    });
  }

  /** Rejects every waiter (the object was closed). */
  rejectAll(err: unknown): void {
    for (const w of [...this.#waiters]) this.#leave(w, err);
  }

  #cleanup(w: Waiter): void {
    this.#waiters.delete(w);
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
  }

  #leave(w: Waiter, outcome: boolean | unknown): void {
    if (!this.#waiters.has(w)) return;
    this.#cleanup(w);
    if (this.#waiters.size === 0 && this.#token !== undefined) {
      this.#source.cancelWait(this.#token);
      this.#token = undefined;
    }
    if (outcome === false) w.resolve(false);
    else w.reject(outcome);
  }

  #first(): Waiter | undefined {
    for (const w of this.#waiters) return w;
    return undefined;
  }

  #settleNative(err: IPCError | null, ok: boolean): void {
    this.#token = undefined;
    if (err !== null) {
      this.rejectAll(err);
      return;
    }
    if (ok) {
      const w = this.#first();
      if (w === undefined) {
        this.#source.giveBack();
        return;
      }
      this.#cleanup(w);
      w.resolve(true);
    }
    // Serve whoever else can be served without another thread hop.
    let next = this.#first();
    while (next !== undefined && this.#source.tryTake()) {
      this.#cleanup(next);
      next.resolve(true);
      next = this.#first();
    }
    if (next !== undefined) this.#token = this.#source.startWait(this.#onNative);
  }
}
