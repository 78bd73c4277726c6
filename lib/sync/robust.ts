/**
 * The crash-safe semaphore segment, seen from JavaScript: an Int32Array over
 * the shared mapping, on which the uncontended acquire and release run with
 * Atomics (no native call at all); native code only sleeps, wakes and checks
 * which holders are dead. The layout and protocol (docs/api.md, "Crash-safe
 * semaphores") are shared with native/sync/robust.cc word for word.
 * @internal
 * @module
 */
import { binding } from '../core/binding.js';
import type { Handle, WaitCallback, WaitToken } from '../core/binding.js';

// Header words (Int32 indices). Module-local on purpose: an exported const
// is loaded from its module cell at every use, which cost the pair 4 ns here.
const H_MAX = 3;
const H_LOCK = 6;
const H_VALUE = 7;
const H_WAITERS = 9;
const H_TOKLO = 10;
const H_TOKHI = 11;
const H_RECOVERED = 12;
const H_INITIAL = 16;
// Slot record words, relative to the slot's first word.
const S_HELD = 1;
const S_GOTREC = 2;
const S_JOURNAL = 3;
const S_ENTRIES = 4;
const S_RECPID = 18;
const S_RECAT = 20;

const SEM_VALUE_MAX: number = binding.SEM_VALUE_MAX;
/**
 * On x86 (total store order) a plain store already releases: the stores
 * before it are visible first, so the unlocking store needs no fence. The
 * waiters word is read after the locking CAS, a full barrier, which is all the
 * sleeper protocol needs. Elsewhere the unlock is a sequentially consistent store.
 */
const TSO = process.arch === 'x64' || process.arch === 'ia32';
const LAYOUT = binding.ROBUST_LAYOUT;

/** What the holder of a recovered unit is told about the holder that died. */
export interface OwnerDeadInfo {
  /** The dead holder's process id (as its own PID namespace saw it). */
  pid: number;
  /** When its death was noticed, in milliseconds since the epoch (as Date.now()). */
  at: number;
}

/** One open crash-safe semaphore segment and the slot this handle owns. */
export class RobustSegment {
  readonly handle: Handle;
  readonly #view: ArrayBuffer;
  readonly #m: Int32Array;
  readonly #f: Float64Array;
  readonly #slot: number;
  readonly #base: number; // first word of our slot record
  /** The bound stored in the segment (0: unbounded). */
  readonly max: number;
  readonly #limit: number;
  readonly created: boolean;

  /** `owner`: -1 adopts an existing segment of any uid, otherwise only that uid's (EPERM). */
  constructor(name: string, path: string, create: boolean, exclusive: boolean, mode: number, initial: number, max: number, owner: number) {
    const [h, view, slot, created] = binding.robOpen(name, path, create, exclusive, mode, initial, max, 1, owner);
    this.handle = h;
    this.#view = view;
    this.#m = new Int32Array(view);
    this.#f = new Float64Array(view);
    this.#slot = slot;
    this.#base = (LAYOUT.headerBytes + (slot - 1) * LAYOUT.slotBytes) / 4;
    this.max = this.#m[H_MAX]!;
    this.#limit = this.max > 0 ? this.max : SEM_VALUE_MAX;
    this.created = created;
  }

  /** The initial value the creator gave. */
  get initial(): number {
    return this.#m[H_INITIAL]!;
  }

  get value(): number {
    return Atomics.load(this.#m, H_VALUE);
  }

  /**
   * Takes one unit if one is free. The fast path: take the internal lock word
   * with one CAS, journal the old values in our slot, change them, clear the
   * journal, unlock. Anything unusual (lock busy, nothing free, a recovered
   * unit to hand over) goes to the native slow path.
   *
   * Between the CAS and the unlocking store (both sequentially consistent)
   * plain stores suffice: nobody reads these words without the internal lock,
   * and a process killed at any instruction leaves exactly the stores before
   * it, in program order (typed-array stores are not reordered or elided by
   * V8), which is all a recoverer needs: a journal count written before the
   * changes and cleared after them.
   */
  tryAcquire(): 0 | 1 | 2 {
    const m = this.#m;
    if (Atomics.compareExchange(m, H_LOCK, 0, this.#slot) === 0) {
      const v = m[H_VALUE]!;
      const lo = m[H_TOKLO]!;
      // lo === -1 (0xffffffff): the token carries into its high word, once
      // in 2^32 acquires; the native path does that.
      if (v > 0 && m[H_RECOVERED] === 0 && lo !== -1) {
        const b = this.#base;
        const e = b + S_ENTRIES;
        const h = m[b + S_HELD]!;
        m[e] = H_VALUE;
        m[e + 1] = v;
        m[e + 2] = b + S_HELD;
        m[e + 3] = h;
        m[e + 4] = H_TOKLO;
        m[e + 5] = lo;
        m[b + S_JOURNAL] = 3;
        m[H_VALUE] = v - 1;
        m[b + S_HELD] = h + 1;
        m[H_TOKLO] = lo + 1;
        m[b + S_JOURNAL] = 0;
        if (TSO) m[H_LOCK] = 0;
        else Atomics.store(m, H_LOCK, 0);
        return 1;
      }
      Atomics.store(m, H_LOCK, 0);
    }
    return binding.robTryAcquire(this.handle);
  }

  /**
   * Gives back `n` units: 0 done, -1 it would pass the bound (nothing
   * changed). Throws IPCError EOVERFLOW past SEM_VALUE_MAX (nothing changed).
   * Sleepers announce themselves in the waiters word before they look at the
   * value, so a release that sees no waiters after unlocking has no one to
   * wake: whoever arrives later sees the released unit.
   */
  release(n: number): 0 | -1 {
    const m = this.#m;
    if (n === 1 && Atomics.compareExchange(m, H_LOCK, 0, this.#slot) === 0) {
      const v = m[H_VALUE]!;
      const b = this.#base;
      const h = m[b + S_HELD]!;
      if (h > 0 && v < this.#limit) {
        const e = b + S_ENTRIES;
        m[e] = H_VALUE;
        m[e + 1] = v;
        m[e + 2] = b + S_HELD;
        m[e + 3] = h;
        m[b + S_JOURNAL] = 2;
        m[H_VALUE] = v + 1;
        m[b + S_HELD] = h - 1;
        m[b + S_JOURNAL] = 0;
        if (TSO) m[H_LOCK] = 0;
        else Atomics.store(m, H_LOCK, 0);
        // On x86 a plain read: it cannot pass the locking CAS (a full barrier),
        // and a sleeper counted after it takes the lock after our unlock, so
        // it sees the unit.
        if ((TSO ? m[H_WAITERS] : Atomics.load(m, H_WAITERS)) !== 0) binding.robWake(this.handle);
        return 0;
      }
      Atomics.store(m, H_LOCK, 0);
    }
    return binding.robRelease(this.handle, n);
  }

  /**
   * If this slot's last native acquire got a unit whose holder died: who it
   * was. Consumes the mark (the fast path never hands out a recovered unit
   * and leaves the mark alone).
   */
  takeRecovered(): OwnerDeadInfo | undefined {
    const m = this.#m;
    const b = this.#base;
    if (m[b + S_GOTREC] === 0) return undefined;
    m[b + S_GOTREC] = 0;
    return { pid: m[b + S_RECPID]!, at: this.#f[(b + S_RECAT) / 2]! };
  }

  /**
   * The fencing token of the current holder of a Lock (64-bit, increasing):
   * the counter every acquire increments, read while we hold the only unit,
   * so nobody else has incremented it since our acquire.
   */
  holderToken(): bigint {
    const m = this.#m;
    return (BigInt(Atomics.load(m, H_TOKHI) >>> 0) << 32n) | BigInt(Atomics.load(m, H_TOKLO) >>> 0);
  }

  startWait(cb: WaitCallback): WaitToken {
    return binding.robWaitAsync(this.handle, -1, cb);
  }

  waitSync(timeoutMs: number): boolean {
    return binding.robWaitSync(this.handle, timeoutMs) !== 0;
  }

  close(): void {
    binding.robClose(this.handle, this.#view);
  }
}
