/**
 * `Barrier`: Python's `threading.Barrier` / `multiprocessing.Barrier`, by
 * name across processes, on a crash-safe synchronisation segment
 * (/dev/shm/pipc.NAME.barrier). A party that dies while others wait breaks
 * the barrier for everyone within a second instead of hanging them.
 * @module
 */
import { closedError, ipcError, typeError } from '../core/errors.js';
import { SYNC_RESERVED, validateName } from '../core/names.js';
import { keysOf, throwIfAborted, validateFunction, validateInteger, validateOptions, validateTimeout, validateWaitOptions } from '../core/validate.js';
import { CHECK_MS, H_FIRST, OPEN_KEYS, SyncSegment, openOptions, unlinkSegment, type SyncOpenOptions } from './segment.js';

// Header words.
export const BA_LOCK = H_FIRST; // internal lock: 0 free, else the holder's slot
export const BA_PARTIES = H_FIRST + 1;
export const BA_COUNT = H_FIRST + 2; // parties arrived in the current round
export const BA_GEN = H_FIRST + 3; // round number (wraps; compared with != only)
export const BA_BROKEN = H_FIRST + 4; // 1: broken until reset()
export const BA_SEQ = H_FIRST + 5; // futex word: +1 at every round end, break and reset
export const BA_LOCKWAIT = H_FIRST + 6; // contenders asleep on the internal lock
// Slot words.
export const BS_WAITING = 1; // 1 from arrival until the party has seen its round end
export const BS_GEN = 2; // the round it arrived in
export const BS_RESET = 3; // 1: reset() broke its round

/** The most parties a Barrier can have: one slot each. */
export const BARRIER_MAX_PARTIES = 256;

/** Options for opening a Barrier. */
export interface BarrierOptions extends SyncOpenOptions {
  /** How many parties each round needs (1-256). Required to create; an existing Barrier must have as many. */
  parties?: number;
  /** Runs once per round, in the process whose arrival completes it, before any party is released. Throwing breaks the barrier. */
  action?: () => unknown;
  /** Default timeout of wait() in ms: a wait that times out breaks the barrier (as Python). Default: none. */
  timeout?: number;
}

export interface BarrierWaitOptions {
  /** Overrides the Barrier's default timeout. Timing out breaks the barrier and rejects with BrokenBarrierError. */
  timeout?: number;
  /** Aborting leaves the round: the barrier breaks (the others could never complete it) and the wait rejects with AbortError. */
  signal?: AbortSignal;
}

const BARRIER_KEYS = keysOf<BarrierOptions>()(...OPEN_KEYS, 'parties', 'action', 'timeout');
const WAIT_KEYS = keysOf<BarrierWaitOptions>()('timeout', 'signal');

/** Thrown by Barrier.wait() when the barrier is or becomes broken (Python's BrokenBarrierError). */
export class BrokenBarrierError extends Error {
  readonly code = 'ERR_IPC_BROKEN_BARRIER';
  constructor(message = 'the barrier is broken') {
    super(message);
    this.name = 'BrokenBarrierError';
  }
}

type Outcome = 'ok' | 'broken' | 'reset';

/**
 * A barrier for `parties` processes (or worker threads), found by name.
 * Each `wait()` resolves with an index 0..parties-1, unique within the round,
 * once every party has arrived.
 *
 * ```ts
 * const start = new Barrier('bench-start', { parties: 8 });
 * await start.wait(); // all 8 workers start together
 * ```
 * One wait at a time per handle: each party opens its own Barrier.
 */
export class Barrier implements Disposable {
  readonly #seg: SyncSegment;
  readonly #name: string;
  readonly #action: (() => unknown) | undefined;
  readonly #timeout: number;
  #busy = false;
  #nextCheck = 0;

  constructor(name: string, options?: BarrierOptions) {
    const o = validateOptions<BarrierOptions>(options, BARRIER_KEYS);
    this.#name = validateName(name, 'name', SYNC_RESERVED);
    const parties = o.parties === undefined ? undefined : validateInteger(o.parties, 'parties', 1, BARRIER_MAX_PARTIES);
    if (o.action !== undefined) validateFunction(o.action, 'action');
    this.#action = o.action;
    this.#timeout = validateTimeout(o.timeout);
    const open = openOptions(o);
    if (parties === undefined) {
      if (open.create && open.exclusive) throw typeError('ERR_INVALID_ARG_VALUE', 'The "parties" option is required to create a Barrier');
      try {
        this.#seg = new SyncSegment(this.#name, 'barrier', { ...open, create: false }, []);
      } catch (err) {
        if (open.create && (err as { code?: string }).code === 'ENOENT') {
          throw typeError('ERR_INVALID_ARG_VALUE', `The "parties" option is required to create a Barrier ('${this.#name}' does not exist)`);
        }
        throw err;
      }
    } else {
      this.#seg = new SyncSegment(this.#name, 'barrier', open, [BA_PARTIES, parties]);
      const there = this.#seg.m[BA_PARTIES]!;
      if (there !== parties) {
        this.#seg.close('Barrier');
        throw ipcError('EINVAL', `'${this.#name}' is a Barrier of ${there} parties, not ${parties}`, 'open', this.#name);
      }
    }
    // A previous owner of our slot that died mid-wait left its marks.
    Atomics.store(this.#seg.m, this.#seg.mine + BS_WAITING, 0);
    // One that died holding the internal lock left our slot number in it:
    // nobody else can take that over any more (the slot is alive: ours), so
    // we do, as any contender does with a dead holder's.
    if (Atomics.compareExchange(this.#seg.m, BA_LOCK, this.#seg.slot, this.#seg.slot) === this.#seg.slot) {
      this.#breakLocked();
      this.#unlock();
      this.#seg.wake(BA_SEQ);
    }
  }

  #m(syscall: string): Int32Array {
    if (this.#seg.closed) throw closedError('Barrier', syscall, this.#name);
    return this.#seg.m;
  }

  get name(): string {
    return this.#name;
  }

  get closed(): boolean {
    return this.#seg.closed;
  }

  /** The number of parties each round needs. */
  get parties(): number {
    return this.#m('load')[BA_PARTIES]!;
  }

  /** How many parties are waiting in the current round. */
  get nWaiting(): number {
    const m = this.#m('load');
    if (Atomics.load(m, BA_BROKEN) === 1) return 0;
    return Math.min(Atomics.load(m, BA_COUNT), m[BA_PARTIES]!);
  }

  /** True when the barrier is broken (until reset()). */
  get broken(): boolean {
    return Atomics.load(this.#m('load'), BA_BROKEN) === 1;
  }

  #lock(): void {
    if (this.#seg.lock(BA_LOCK, BA_LOCKWAIT)) {
      // Its holder died in the middle of an update: whatever it left, nobody
      // can count on this round any more.
      this.#breakLocked();
    }
  }

  #unlock(): void {
    this.#seg.unlock(BA_LOCK, BA_LOCKWAIT);
  }

  #breakLocked(): void {
    const m = this.#seg.m;
    Atomics.store(m, BA_BROKEN, 1);
    Atomics.add(m, BA_SEQ, 1);
  }

  /** Breaks the barrier: every waiting party, in every process, rejects with BrokenBarrierError; so do later waits until reset(). */
  abort(): void {
    this.#m('futex');
    this.#lock();
    this.#breakLocked();
    this.#unlock();
    this.#seg.wake(BA_SEQ);
  }

  /** Returns the barrier to its empty, unbroken state; parties waiting now reject with BrokenBarrierError. */
  reset(): void {
    const m = this.#m('futex');
    const seg = this.#seg;
    this.#lock();
    const gen = m[BA_GEN]!;
    for (let id = 1; id <= seg.slots; id++) {
      const b = seg.base(id);
      if (Atomics.load(m, b + BS_WAITING) === 1 && Atomics.load(m, b + BS_GEN) === gen) Atomics.store(m, b + BS_RESET, 1);
    }
    Atomics.store(m, BA_COUNT, 0);
    Atomics.store(m, BA_GEN, (gen + 1) | 0);
    Atomics.store(m, BA_BROKEN, 0);
    Atomics.add(m, BA_SEQ, 1);
    this.#unlock();
    seg.wake(BA_SEQ);
  }

  /** Breaks the barrier if a party of round `gen` died waiting in it (its slot's lock is gone). At most every 250 ms. */
  #checkDead(gen: number): void {
    const now = performance.now();
    if (now < this.#nextCheck) return;
    this.#nextCheck = now + CHECK_MS;
    const m = this.#seg.m;
    const seg = this.#seg;
    for (let id = 1; id <= seg.slots; id++) {
      if (id === seg.slot) continue;
      const b = seg.base(id);
      if (Atomics.load(m, b + BS_WAITING) !== 1 || Atomics.load(m, b + BS_GEN) !== gen) continue;
      if (!seg.alive(id)) {
        this.#lock();
        if (m[BA_GEN] === gen) this.#breakLocked();
        this.#unlock();
        seg.wake(BA_SEQ);
        return;
      }
    }
  }

  /** How the round `gen` ended for us, or undefined while it goes on. */
  #outcome(gen: number): Outcome | undefined {
    const m = this.#seg.m;
    const mine = this.#seg.mine;
    // The generation first: reset() stores our reset mark before it moves the
    // generation, so a moved generation read here comes with the mark (read
    // the other way round, a reset between the two reads looked like a release).
    if (Atomics.load(m, BA_GEN) !== gen) return Atomics.load(m, mine + BS_RESET) === 1 ? 'reset' : 'ok';
    if (Atomics.load(m, mine + BS_RESET) === 1) return 'reset';
    if (Atomics.load(m, BA_BROKEN) === 1) return 'broken';
    this.#checkDead(gen);
    return undefined;
  }

  /**
   * Joins the round. 'wait' with a generation: a round is being released
   * (every party is in, its action runs); come back when it has ended.
   * 'broken'; or 'in' with our index and round.
   */
  #arrive(): { kind: 'in'; index: number; gen: number; last: boolean } | { kind: 'wait'; gen: number } | { kind: 'broken' } {
    const m = this.#seg.m;
    const mine = this.#seg.mine;
    this.#lock();
    if (m[BA_BROKEN] === 1) {
      this.#unlock();
      return { kind: 'broken' };
    }
    const gen = m[BA_GEN]!;
    const count = m[BA_COUNT]!;
    const parties = m[BA_PARTIES]!;
    if (count >= parties) {
      this.#unlock();
      return { kind: 'wait', gen };
    }
    Atomics.store(m, mine + BS_GEN, gen);
    Atomics.store(m, mine + BS_RESET, 0);
    Atomics.store(m, mine + BS_WAITING, 1);
    Atomics.store(m, BA_COUNT, count + 1);
    this.#unlock();
    return { kind: 'in', index: count, gen, last: count + 1 === parties };
  }

  /** The last party in: ends round `gen` (unless it was broken meanwhile). */
  #release(gen: number): boolean {
    const m = this.#seg.m;
    this.#lock();
    if (m[BA_BROKEN] === 1 || m[BA_GEN] !== gen) {
      this.#unlock();
      return false;
    }
    Atomics.store(m, BA_COUNT, 0);
    Atomics.store(m, BA_GEN, (gen + 1) | 0);
    Atomics.add(m, BA_SEQ, 1);
    this.#unlock();
    this.#seg.wake(BA_SEQ);
    return true;
  }

  #broken(timedOut = false): BrokenBarrierError {
    return new BrokenBarrierError(timedOut ? `the wait on Barrier '${this.#name}' timed out, which broke it` : `Barrier '${this.#name}' is broken`);
  }

  #leave(): void {
    if (!this.#seg.closed) Atomics.store(this.#seg.m, this.#seg.mine + BS_WAITING, 0);
    this.#busy = false;
  }

  #enter(): void {
    if (this.#busy) {
      throw ipcError('EBUSY', 'this Barrier handle is already waiting (open one handle per waiting party)', 'futex', this.#name);
    }
    this.#busy = true;
  }

  /**
   * Waits until all parties have called wait(): resolves with this party's
   * index (0..parties-1, the order of arrival; the last one runs the action).
   * Rejects with BrokenBarrierError if the barrier is or becomes broken, by
   * abort(), reset(), a party's timeout or abort, a failing action, or the
   * death of a waiting party (noticed within 1 s).
   */
  async wait(options?: BarrierWaitOptions): Promise<number> {
    const { o, signal } = validateWaitOptions<BarrierWaitOptions>(options, WAIT_KEYS);
    const timeout = o.timeout === undefined ? this.#timeout : validateTimeout(o.timeout);
    this.#m('futex');
    throwIfAborted(signal);
    this.#enter();
    const due = timeout < 0 ? Infinity : performance.now() + timeout;
    try {
      for (;;) {
        const a = this.#arrive();
        if (a.kind === 'broken') throw this.#broken();
        const left = (): number => (due === Infinity ? -1 : Math.max(0, due - performance.now()));
        if (a.kind === 'wait') {
          const m = this.#seg.m;
          const r = await this.#seg.watch(BA_SEQ, () => (Atomics.load(m, BA_GEN) !== a.gen || Atomics.load(m, BA_BROKEN) === 1 ? true : undefined), left(), signal);
          if (r === undefined) {
            this.abort();
            throw this.#broken(true);
          }
          continue;
        }
        if (a.last) {
          if (this.#action !== undefined) {
            try {
              await this.#action();
            } catch (err) {
              this.abort();
              throw err;
            }
          }
          if (!this.#release(a.gen)) throw this.#broken();
          return a.index;
        }
        let r: Outcome | undefined;
        try {
          r = await this.#seg.watch(BA_SEQ, () => this.#outcome(a.gen), left(), signal);
        } catch (err) {
          if (!this.#seg.closed) this.abort();
          throw err;
        }
        if (r === 'ok') return a.index;
        if (r === undefined) {
          // Python: a timed-out wait breaks the barrier.
          this.abort();
          throw this.#broken(true);
        }
        throw this.#broken();
      }
    } finally {
      this.#leave();
    }
  }

  /** The blocking form of wait(), for scripts (an action that returns a promise is not awaited). */
  waitSync(options?: { timeout?: number }): number {
    const { o } = validateWaitOptions<{ timeout?: number }>(options, ['timeout']);
    const timeout = o.timeout === undefined ? this.#timeout : validateTimeout(o.timeout);
    this.#m('futex');
    this.#enter();
    const due = timeout < 0 ? Infinity : performance.now() + timeout;
    const left = (): number => (due === Infinity ? -1 : Math.max(0, due - performance.now()));
    try {
      for (;;) {
        const a = this.#arrive();
        if (a.kind === 'broken') throw this.#broken();
        if (a.kind === 'wait') {
          const m = this.#seg.m;
          if (this.#seg.waitSync(BA_SEQ, () => (Atomics.load(m, BA_GEN) !== a.gen || Atomics.load(m, BA_BROKEN) === 1 ? true : undefined), left()) === undefined) {
            this.abort();
            throw this.#broken(true);
          }
          continue;
        }
        if (a.last) {
          if (this.#action !== undefined) {
            try {
              this.#action();
            } catch (err) {
              this.abort();
              throw err;
            }
          }
          if (!this.#release(a.gen)) throw this.#broken();
          return a.index;
        }
        const r = this.#seg.waitSync(BA_SEQ, () => this.#outcome(a.gen), left());
        if (r === 'ok') return a.index;
        if (r === undefined) {
          this.abort();
          throw this.#broken(true);
        }
        throw this.#broken();
      }
    } finally {
      this.#leave();
    }
  }

  /** Closes this handle; a pending wait rejects with EBADF (and this party leaves its round). Idempotent. */
  close(): void {
    this.#seg.close('Barrier');
  }

  [Symbol.dispose](): void {
    this.close();
  }

  unlink(): void {
    Barrier.unlink(this.#name);
  }

  /** Removes the Barrier `name`. IPCError ENOENT if there is none. */
  static unlink(name: string): void {
    unlinkSegment('barrier', name);
  }
}
