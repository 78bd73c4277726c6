/**
 * Waiting on Redis: the pending waits of one object in this process, served
 * in order by one loop that tries the object once (a script), then blocks on
 * its own connection (BLPOP / BLMOVE on the object's wake list) for at most
 * `fallback` ms before trying again. The fallback re-check is what finds a
 * unit freed by an expired lease, or anything whose wake-up was lost to an
 * outage; it is a bound, not a polling loop.
 *
 * The core wait list (lib/core/waitlist.ts) needs a synchronous `tryTake`
 * and native wait tokens; a Redis attempt is a round trip, hence this one.
 * @internal
 * @module
 */
import { abortError } from '../core/errors.js';
import { isUnavailable } from './client.js';

/** One attempt: a value taken, or how long until trying again could help (ms). */
export type Attempt<T> = { value: T } | { retryIn: number };

export interface WaitSource<T> {
  /** Tries to take once. */
  attempt(): Promise<Attempt<T>>;
  /** Blocks up to `ms` for a wake-up; may itself take a value (BLMOVE). */
  block(ms: number): Promise<T | undefined>;
  /** Gives back a value taken for a waiter that left meanwhile. */
  giveBack(value: T): Promise<void>;
}

interface Waiter<T> {
  resolve(v: T | false): void;
  reject(err: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** Pause after a failed attempt (server unreachable) before the next one. */
const RETRY_MS = 200;

export class RedisWaiters<T> {
  readonly #src: WaitSource<T>;
  readonly #fallback: number;
  readonly #waiters = new Set<Waiter<T>>();
  #running = false;
  #closed: unknown = undefined;
  /** The failure of the latest attempt, while the server cannot be reached. */
  #lastError: unknown = undefined;

  constructor(src: WaitSource<T>, fallbackMs: number) {
    this.#src = src;
    this.#fallback = fallbackMs;
  }

  get idle(): boolean {
    return this.#waiters.size === 0;
  }

  /**
   * Resolves the value taken, or `false` when `timeoutMs` passed (-1: never).
   * When the server was unreachable at the last attempt before the deadline,
   * rejects with that error instead: "timed out" would be a lie.
   */
  wait(timeoutMs: number, signal: AbortSignal | undefined): Promise<T | false> {
    return new Promise<T | false>((resolve, reject) => {
      const w: Waiter<T> = { resolve, reject, timer: undefined, signal, onAbort: undefined };
      if (timeoutMs >= 0) {
        w.timer = setTimeout(() => this.#leave(w, this.#lastError ?? false), timeoutMs);
      }
      if (signal !== undefined) {
        w.onAbort = () => this.#leave(w, abortError(signal));
        signal.addEventListener('abort', w.onAbort, { once: true });
      }
      this.#waiters.add(w);
      void this.#pump();
    });
  }

  /** Rejects every waiter and stops (the object was closed). */
  close(err: unknown): void {
    this.#closed = err;
    for (const w of [...this.#waiters]) this.#leave(w, err);
  }

  #leave(w: Waiter<T>, outcome: unknown): void {
    if (!this.#waiters.delete(w)) return;
    if (w.timer !== undefined) clearTimeout(w.timer);
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
    if (outcome === false) w.resolve(false);
    else w.reject(outcome);
  }

  #serve(value: T): boolean {
    for (const w of this.#waiters) {
      this.#waiters.delete(w);
      if (w.timer !== undefined) clearTimeout(w.timer);
      if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
      w.resolve(value);
      return true;
    }
    return false;
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      while (this.#waiters.size > 0 && this.#closed === undefined) {
        let got: T | undefined;
        try {
          const a = await this.#src.attempt();
          this.#lastError = undefined;
          if ('value' in a) got = a.value;
          else if (this.#waiters.size > 0) got = await this.#src.block(Math.min(this.#fallback, Math.max(a.retryIn, 10)));
        } catch (err) {
          if (this.#closed !== undefined) break;
          if (!isUnavailable(err)) {
            for (const w of [...this.#waiters]) this.#leave(w, err);
            break;
          }
          this.#lastError = err;
          await new Promise((r) => setTimeout(r, RETRY_MS));
          continue;
        }
        if (got !== undefined && !this.#serve(got)) {
          await this.#src.giveBack(got).catch(() => {});
        }
      }
    } finally {
      this.#running = false;
    }
  }
}
