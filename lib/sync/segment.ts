/**
 * The crash-safe synchronisation segment under Event, Barrier, Condition and
 * JoinableQueue: an Int32Array over /dev/shm/pipc.NAME.<kind> (a 256-byte
 * header, 256 slots of 64 bytes), one slot owned by this handle through an
 * OFD lock the kernel drops when the process dies. The protocols run here with
 * Atomics on the mapping; native code (native/sync/segment.cc) opens and
 * checks the file, claims the slot, says whether a slot's owner is alive, and
 * sleeps and wakes on futex words. docs/api.md ("Crash-safe synchronisation
 * segments") is the contract with C and Python peers.
 * @internal
 * @module
 */
import { binding } from '../core/binding.js';
import { SpinGate, waitSpinMs } from '../core/spin.js';
import type { Handle, WaitToken } from '../core/binding.js';
import { abortError, closedError, type IPCError } from '../core/errors.js';
import { SYNC_RESERVED, syncPath, validateName, type SyncKind } from '../core/names.js';
import { validateBoolean, validateMode, validateOwner, type Owner } from '../core/validate.js';

const LAYOUT = binding.SEGMENT_LAYOUT;

/** Header words common to every kind. */
export const H_MAGIC = 0;
export const H_KIND = 2;
/** The first header word a kind may use. */
export const H_FIRST = 6;

/** The kind numbers stored in header word 2 (1 is the crash-safe semaphore). */
export const KIND = { event: 2, barrier: 3, condition: 4, joinable: 5 } as const;

/** Slot word 0: the owner's pid (informational: liveness is the slot's OFD lock). */
export const S_PID = 0;

/** The longest a wait sleeps before it looks again (dead peers, lost wake-ups). */
export const CHECK_MS = 250;

export interface OpenOptions {
  create: boolean;
  exclusive: boolean;
  mode: number;
  owner: number;
}

interface Watcher<T> {
  check: () => T | undefined;
  resolve: (v: T | undefined) => void;
  reject: (err: unknown) => void;
  due: number; // performance.now() deadline, Infinity: none
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

/** One native futex wait per watched word, however many promises wait on it. */
interface Watch {
  watchers: Set<Watcher<unknown>>;
  token: WaitToken | undefined;
}

export class SyncSegment {
  readonly handle: Handle;
  readonly m: Int32Array;
  readonly slot: number;
  /** Number of slots (for scans). */
  readonly slots: number = LAYOUT.slots;
  readonly created: boolean;
  readonly name: string;
  readonly #view: ArrayBuffer;
  readonly #watches = new Map<number, Watch>();
  #closed = false;

  constructor(name: string, kind: Exclude<SyncKind, 'rlock'>, o: OpenOptions, init: number[]) {
    const [h, view, slot, created] = binding.segOpen(name, syncPath(name, kind), KIND[kind], o.create, o.exclusive, o.mode, o.owner, init);
    this.name = name;
    this.handle = h;
    this.#view = view;
    this.m = new Int32Array(view);
    this.slot = slot;
    this.created = created;
    this.m[this.base(slot) + S_PID] = process.pid;
  }

  /** The first word of slot `id`'s record. */
  base(id: number): number {
    return (LAYOUT.headerBytes + (id - 1) * LAYOUT.slotBytes) / 4;
  }

  /** The first word of our own slot. */
  get mine(): number {
    return this.base(this.slot);
  }

  get closed(): boolean {
    return this.#closed;
  }

  #open(syscall: string): void {
    if (this.#closed) throw closedError('object', syscall, this.name);
  }

  /** False only when slot `id`'s owner is gone (the kernel dropped its lock). */
  alive(id: number): boolean {
    return binding.segAlive(this.handle, id);
  }

  wake(word: number, n = 0): number {
    return binding.segWake(this.handle, word, n);
  }

  /**
   * Internal spin lock in header word `word`: 0 free, else the holder's slot;
   * `waiters` counts the contenders asleep on it (a dead one leaves only an
   * extra wake-up behind). Held for a few stores; a holder found dead is taken
   * over, and the caller told (true) so that it can repair what the holder may
   * have half done.
   */
  lock(word: number, waiters: number): boolean {
    const m = this.m;
    for (let i = 0; ; i++) {
      const cur = Atomics.compareExchange(m, word, 0, this.slot);
      if (cur === 0) return false;
      if (i >= 64 && i % 16 === 0 && !this.alive(cur)) {
        if (Atomics.compareExchange(m, word, cur, this.slot) === cur) return true;
        continue;
      }
      // The holder may be descheduled (more processes than cores): sleep.
      if (i >= 128) {
        Atomics.add(m, waiters, 1);
        binding.segWaitSync(this.handle, word, cur, 2);
        Atomics.sub(m, waiters, 1);
      }
    }
  }

  unlock(word: number, waiters: number): void {
    const m = this.m;
    Atomics.store(m, word, 0);
    if (Atomics.load(m, waiters) > 0) binding.segWake(this.handle, word, 1);
  }

  /**
   * Blocks the thread until `check()` returns a value (returned) or `timeout`
   * ms pass (undefined; -1: forever). Sleeps on `word` at most CHECK_MS at a
   * time; `check` runs at every wake-up and slice.
   */
  waitSync<T>(word: number, check: () => T | undefined, timeout: number): T | undefined {
    const due = timeout < 0 ? Infinity : performance.now() + timeout;
    for (;;) {
      this.#open('futex');
      const v = Atomics.load(this.m, word);
      const r = check();
      if (r !== undefined) return r;
      const left = due - performance.now();
      if (left <= 0) return undefined;
      binding.segWaitSync(this.handle, word, v, Math.min(left, CHECK_MS));
    }
  }

  /**
   * The async form of waitSync: resolves with check()'s value, or undefined
   * when `timeout` passes; rejects with AbortError when `signal` aborts, with
   * check()'s exception if it throws, with EBADF on close. All waits on one
   * word share one native wait.
   */
  watch<T>(word: number, check: () => T | undefined, timeout: number, signal: AbortSignal | undefined): Promise<T | undefined> {
    let v: number;
    try {
      this.#open('futex');
      if (signal?.aborted) throw abortError(signal);
      // Read before the check: a change after it ends the first sleep at once.
      v = Atomics.load(this.m, word);
      const r = check();
      if (r !== undefined) return Promise.resolve(r);
      if (timeout === 0) return Promise.resolve(undefined);
      const spun = this.#spin(word, v, check);
      if (spun !== undefined) return Promise.resolve(spun);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<T | undefined>((resolve, reject) => {
      let w = this.#watches.get(word);
      if (w === undefined) {
        w = { watchers: new Set(), token: undefined };
        this.#watches.set(word, w);
      }
      const watch = w;
      const watcher: Watcher<T> = {
        check,
        resolve,
        reject,
        due: timeout < 0 ? Infinity : performance.now() + timeout,
        signal,
        onAbort: undefined,
      };
      if (signal !== undefined) {
        watcher.onAbort = () => {
          if (!watch.watchers.delete(watcher as Watcher<unknown>)) return;
          reject(abortError(signal));
          this.#serve(word, watch);
        };
        signal.addEventListener('abort', watcher.onAbort, { once: true });
      }
      watch.watchers.add(watcher as Watcher<unknown>);
      this.#rearm(word, watch, v);
    });
  }

  readonly #gate = new SpinGate();

  /**
   * Before a wait sleeps: watches the word on the event loop's thread for up
   * to waitSpinMs() (POSIX_IPC_WAIT_SPIN_US, as semaphores do) and runs
   * check() again each time it changes, so a peer that answers at once is
   * seen with no engine thread wake-up. SpinGate skips the spin for a
   * while after empty ones.
   */
  #spin<T>(word: number, v: number, check: () => T | undefined): T | undefined {
    const spinMs = waitSpinMs();
    if (spinMs === 0 || !this.#gate.open()) return undefined;
    const m = this.m;
    const end = performance.now() + spinMs;
    let seen = v;
    do {
      const now = Atomics.load(m, word);
      if (now !== seen) {
        seen = now;
        const r = check();
        if (r !== undefined) {
          this.#gate.hit();
          return r;
        }
      }
    } while (performance.now() < end);
    this.#gate.miss();
    return undefined;
  }

  #leave(w: Watcher<unknown>): void {
    if (w.onAbort !== undefined) w.signal!.removeEventListener('abort', w.onAbort);
  }

  /** Cancels the word's native wait and starts one fitting the remaining watchers, if any. */
  #rearm(word: number, watch: Watch, v?: number): void {
    if (watch.token !== undefined) {
      binding.cancelWait(watch.token);
      watch.token = undefined;
    }
    if (watch.watchers.size === 0 || this.#closed) {
      this.#watches.delete(word);
      return;
    }
    let due = Infinity;
    for (const w of watch.watchers) due = Math.min(due, w.due);
    const slice = Math.max(0, Math.min(CHECK_MS, due - performance.now()));
    const expected = v ?? Atomics.load(this.m, word);
    watch.token = binding.segWaitAsync(this.handle, word, expected, slice, (err) => {
      watch.token = undefined;
      if (err !== null) {
        this.#fail(word, watch, err);
        return;
      }
      this.#serve(word, watch);
    });
  }

  #serve(word: number, watch: Watch): void {
    if (this.#closed) return;
    // Read before the checks: a change after them ends the next sleep at once.
    const v = Atomics.load(this.m, word);
    const now = performance.now();
    for (const w of [...watch.watchers]) {
      let r: unknown;
      try {
        r = w.check();
      } catch (err) {
        watch.watchers.delete(w);
        this.#leave(w);
        w.reject(err);
        continue;
      }
      if (r !== undefined || now >= w.due) {
        watch.watchers.delete(w);
        this.#leave(w);
        w.resolve(r);
      }
    }
    this.#rearm(word, watch, v);
  }

  #fail(word: number, watch: Watch, err: IPCError): void {
    for (const w of watch.watchers) {
      this.#leave(w);
      w.reject(err);
    }
    watch.watchers.clear();
    this.#watches.delete(word);
  }

  /** Pending async waits in this handle. */
  get pending(): number {
    let n = 0;
    for (const w of this.#watches.values()) n += w.watchers.size;
    return n;
  }

  /** Rejects the pending waits with EBADF, then gives the slot up and unmaps. Idempotent. */
  close(what: string): void {
    if (this.#closed) return;
    const err = closedError(what, 'futex', this.name);
    for (const [word, watch] of this.#watches) {
      if (watch.token !== undefined) binding.cancelWait(watch.token);
      watch.token = undefined;
      this.#fail(word, watch, err);
    }
    this.#closed = true;
    binding.segClose(this.handle, this.#view);
  }
}

/** Options every synchronisation object takes when it opens its name. */
export interface SyncOpenOptions {
  /** Create the object if it does not exist. Default true; with false a missing name is IPCError ENOENT. */
  create?: boolean;
  /** Fail with EEXIST if the name exists. Default false. */
  exclusive?: boolean;
  /** Permission bits of a new object (the umask applies). Default 0o600. */
  mode?: number;
  /** Whose existing object this call may open: 'self' (default), 'any' or a uid (as Semaphore's). */
  owner?: Owner;
}

export const OPEN_KEYS = ['create', 'exclusive', 'mode', 'owner'] as const;

/** Validates the open options of `o`. */
export function openOptions(o: SyncOpenOptions): OpenOptions {
  return {
    create: validateBoolean(o.create, 'create', true),
    exclusive: validateBoolean(o.exclusive, 'exclusive', false),
    mode: validateMode(o.mode),
    owner: validateOwner(o.owner),
  };
}

/** Removes the segment of `kind` at `name`. IPCError ENOENT if there is none. */
export function unlinkSegment(kind: SyncKind, name: string): void {
  const n = validateName(name, 'name', SYNC_RESERVED);
  binding.robUnlink(syncPath(n, kind), n);
}
