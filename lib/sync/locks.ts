/**
 * Web Locks across processes: `locks.request(name, options?, callback)` and
 * `locks.query()` in the shape of the browser's (and Node's) `navigator.locks`,
 * for every process on the host. Each lock name has a crash-safe segment
 * (native/sync/weblocks.cc; docs/api.md "Web Locks across processes"): each
 * environment owns one slot in it, publishes the oldest of its requests not
 * yet granted, and holds shared or exclusive locks counted per slot. A process
 * that dies by any means loses its locks and requests within about 250 ms.
 *
 * Within an environment, requests for a name queue here in order; the segment
 * orders the environments' oldest requests by ticket, so the queue of the
 * Web Locks spec is kept across processes.
 * @module
 */
import { readdirSync } from 'node:fs';
import { binding } from '../core/binding.js';
import type { Handle, WaitToken } from '../core/binding.js';
import { AbortError, describeValue, typeError } from '../core/errors.js';
import { lockFileName, lockSegmentPath, parseLockFileName, SHM_DIR } from '../core/names.js';
import { keysOf, validateMode, validateOptions, validateOwner, validateSignal, type Owner } from '../core/validate.js';

/** `'exclusive'` (one holder) or `'shared'` (any number of holders, no exclusive one). */
export type LockMode = 'exclusive' | 'shared';

/** Options of {@link LockManager.request}, as the Web Locks spec's LockOptions. */
export interface LockOptions {
  /** Default `'exclusive'`. */
  mode?: LockMode;
  /** Grant only if it can be granted at once; otherwise the callback gets `null`. */
  ifAvailable?: boolean;
  /** Take the lock from its current holders (exclusive only). Their callbacks go on running; their request() promises reject with AbortError. */
  steal?: boolean;
  /** Abort the request while it waits: it rejects with AbortError (cause: the signal's reason). */
  signal?: AbortSignal;
  /** Permission bits of a new lock segment (default 0o600; the umask applies). */
  permissions?: number;
  /** Whose existing lock segment to use: 'self' (default), 'any', or a uid; another uid's is IPCError EPERM. */
  owner?: Owner;
}

/** What a callback receives: the granted lock. */
export interface WebLock {
  readonly name: string;
  readonly mode: LockMode;
}

/** One entry of {@link LockManagerSnapshot}. */
export interface LockInfo {
  name: string;
  mode: LockMode;
  /** The holder's or requester's process id, as a string (the spec's opaque client id). */
  clientId: string;
  /** The same process id, as a number. */
  pid: number;
}

/** What {@link LockManager.query} returns, as the spec's LockManagerSnapshot. */
export interface LockManagerSnapshot {
  held: LockInfo[];
  pending: LockInfo[];
}

const REQUEST_KEYS = keysOf<LockOptions>()('mode', 'ifAvailable', 'steal', 'signal', 'permissions', 'owner');
const SHARED = 1;
const EXCLUSIVE = 2;
const MODE_NAME: Record<number, LockMode> = { [SHARED]: 'shared', [EXCLUSIVE]: 'exclusive' };
const KIND_LOCK = 2;
// Words of the lock segment (native/sync/weblocks.cc).
const H_TICKET = 12;
const S_PEND_SHARED = 19;
const S_PEND_EXCL = 20;
const S_NEXT_MODE = 21;
const S_NEXT_TICKET = 22;
const S_STEAL_GEN = 18;
const LAYOUT = binding.ROBUST_LAYOUT;

interface LocksBinding {
  robOpen(
    name: string, path: string, create: boolean, exclusive: boolean, mode: number, initial: number, max: number, kind: number, owner: number,
  ): [Handle, ArrayBuffer, number, boolean];
  robClose(h: Handle, view?: ArrayBuffer): void;
  lkTry(h: Handle, mode: number, ticket: number, head: boolean, publish: boolean): number;
  lkRelease(h: Handle, mode: number, gen: number): 0 | 1;
  lkSteal(h: Handle): number;
  lkCancel(h: Handle): void;
  lkSnapshot(h: Handle): number[];
  lkWaitAsync(h: Handle, mode: number, ticket: number, cb: (err: Error | null, granted: boolean, gen: number) => void): WaitToken;
  lkWatchSteal(h: Handle, gen: number, cb: (err: Error | null, stolen: boolean) => void): WaitToken;
  cancelWait(token: WaitToken): void;
}
const native = binding as unknown as LocksBinding;

/** The error the spec calls NotSupportedError: a TypeError named so, code ERR_IPC_NOT_SUPPORTED. */
function notSupported(message: string): TypeError {
  const err = typeError('ERR_IPC_NOT_SUPPORTED', message);
  Object.defineProperty(err, 'name', { value: 'NotSupportedError', configurable: true });
  return err;
}

class GrantedLock implements WebLock {
  readonly name: string;
  readonly mode: LockMode;
  constructor(name: string, mode: LockMode) {
    this.name = name;
    this.mode = mode;
    Object.freeze(this);
  }
  get [Symbol.toStringTag](): string {
    return 'Lock';
  }
}

interface Request {
  mode: number;
  ticket: number;
  callback: (lock: WebLock | null) => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** While granted: the steal generation it was granted under. */
  gen?: number;
  /** Its lock was stolen: request() has rejected with AbortError already. */
  stolen?: boolean;
}

function stolenError(name: string): AbortError {
  return new AbortError(`The lock '${name}' was stolen`);
}

/** One open lock segment and this environment's queue for its name. */
class NameState {
  readonly name: string;
  readonly handle: Handle;
  readonly view: ArrayBuffer;
  readonly m: Int32Array;
  readonly base: number;
  readonly queue: Request[] = [];
  held = 0;
  /** The requests holding a lock of this name here, their callbacks running. */
  readonly granted = new Set<Request>();
  waiting: WaitToken | undefined;
  /** The watch on this slot's steal generation while it holds locks. */
  stealWatch: WaitToken | undefined;
  closed = false;

  constructor(name: string, permissions: number, owner: number, create = true) {
    this.name = name;
    const [h, view, slot] = native.robOpen(name, lockSegmentPath(name), create, false, permissions, 0, 0, KIND_LOCK, owner);
    this.handle = h;
    this.view = view;
    this.m = new Int32Array(view);
    this.base = (LAYOUT.headerBytes + (slot - 1) * LAYOUT.slotBytes) / 4;
  }

  ticket(): number {
    return (Atomics.add(this.m, H_TICKET, 1) + 1) | 0;
  }

  /** Publishes how many requests wait here (for query) and which is next after the head. */
  note(): void {
    let shared = 0;
    for (const r of this.queue) if (r.mode === SHARED) shared++;
    const m = this.m;
    const b = this.base;
    Atomics.store(m, b + S_PEND_SHARED, shared);
    Atomics.store(m, b + S_PEND_EXCL, this.queue.length - shared);
    const next = this.queue[1];
    if (next === undefined) {
      Atomics.store(m, b + S_NEXT_MODE, 0);
    } else {
      Atomics.store(m, b + S_NEXT_TICKET, next.ticket);
      Atomics.store(m, b + S_NEXT_MODE, next.mode);
    }
  }
}

/**
 * The lock manager of this environment, shared with every process on the
 * host through the lock segments in /dev/shm. Use the exported {@link locks}.
 */
export class LockManager {
  readonly #names = new Map<string, NameState>();

  /**
   * Requests the lock `name` and calls `callback` with it once granted (or with
   * `null`, with `ifAvailable`, when it is not available at once). The lock is
   * released when the promise the callback returns settles; request() settles
   * as it does (or rejects with AbortError if the lock was stolen meanwhile).
   */
  request<T>(name: string, callback: (lock: WebLock | null) => T | PromiseLike<T>): Promise<Awaited<T>>;
  request<T>(name: string, options: LockOptions, callback: (lock: WebLock | null) => T | PromiseLike<T>): Promise<Awaited<T>>;
  request(name: unknown, optionsOrCallback?: unknown, maybeCallback?: unknown): Promise<unknown> {
    try {
      return this.#request(name, optionsOrCallback, maybeCallback);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #request(nameArg: unknown, optionsOrCallback: unknown, maybeCallback: unknown): Promise<unknown> {
    const callback = maybeCallback === undefined ? optionsOrCallback : maybeCallback;
    const rawOptions = maybeCallback === undefined ? undefined : optionsOrCallback;
    if (typeof nameArg !== 'string') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "name" argument must be of type string. Received ${describeValue(nameArg)}`);
    }
    const name = nameArg;
    if (typeof callback !== 'function') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "callback" argument must be a function. Received ${describeValue(callback)}`);
    }
    const o = validateOptions<LockOptions>(rawOptions, REQUEST_KEYS);
    let mode = EXCLUSIVE;
    if (o.mode !== undefined) {
      if (o.mode === 'shared') mode = SHARED;
      else if (o.mode !== 'exclusive') {
        throw typeError('ERR_INVALID_ARG_VALUE', `The "mode" option must be 'exclusive' or 'shared'. Received ${describeValue(o.mode)}`);
      }
    }
    const ifAvailable = o.ifAvailable === undefined ? false : Boolean(o.ifAvailable);
    const steal = o.steal === undefined ? false : Boolean(o.steal);
    const signal = validateSignal(o.signal);
    const permissions = validateMode(o.permissions);
    const owner = validateOwner(o.owner);
    if (name.startsWith('-')) throw notSupported(`Lock names starting with "-" are reserved. Received '${name}'`);
    lockFileName(name); // length and characters
    if (steal && ifAvailable) throw notSupported('The "steal" and "ifAvailable" options cannot be used together');
    if (steal && mode !== EXCLUSIVE) throw notSupported('The "steal" option may only be used with mode "exclusive"');
    if (signal !== undefined && (steal || ifAvailable)) {
      throw notSupported('The "signal" option cannot be used with "steal" or "ifAvailable"');
    }
    if (signal?.aborted) throw new AbortError(undefined, { cause: signal.reason });

    const st = this.#open(name, permissions, owner);
    return new Promise((resolve, reject) => {
      const req: Request = {
        mode,
        ticket: 0,
        callback: callback as Request['callback'],
        resolve,
        reject,
        signal,
        onAbort: undefined,
      };
      try {
        if (steal) {
          const gen = native.lkSteal(st.handle);
          this.#run(st, req, gen);
          return;
        }
        req.ticket = st.ticket();
        if (ifAvailable) {
          const gen = st.queue.length === 0 ? native.lkTry(st.handle, mode, req.ticket, false, false) : -1;
          if (gen >= 0) this.#run(st, req, gen);
          else this.#callNull(st, req);
          return;
        }
        st.queue.push(req);
        if (signal !== undefined) {
          req.onAbort = () => this.#abort(st, req);
          signal.addEventListener('abort', req.onAbort, { once: true });
        }
        st.note();
        if (st.queue.length === 1) this.#pump(st);
      } catch (err) {
        const i = st.queue.indexOf(req);
        if (i >= 0) st.queue.splice(i, 1);
        this.#idle(st);
        reject(err);
      }
    });
  }

  #open(name: string, permissions: number, owner: number): NameState {
    let st = this.#names.get(name);
    if (st === undefined) {
      st = new NameState(name, permissions, owner);
      this.#names.set(name, st);
    }
    return st;
  }

  /** Grants what can be granted from the head of the local queue, then waits for the head. */
  #pump(st: NameState): void {
    while (st.waiting === undefined) {
      const head = st.queue[0];
      if (head === undefined) {
        native.lkCancel(st.handle);
        return;
      }
      const gen = native.lkTry(st.handle, head.mode, head.ticket, true, true);
      if (gen >= 0) {
        this.#grantHead(st, gen);
        continue;
      }
      st.waiting = native.lkWaitAsync(st.handle, head.mode, head.ticket, (err, granted, g) => {
        st.waiting = undefined;
        if (err !== null || !granted) {
          // The segment failed under us: every waiting request fails the same way.
          const failed = st.queue.splice(0);
          st.note();
          for (const r of failed) this.#settle(r, () => r.reject(err ?? new Error('lock wait ended')));
          this.#idle(st);
          return;
        }
        this.#grantHead(st, g);
        this.#pump(st);
      });
    }
  }

  #grantHead(st: NameState, gen: number): void {
    const head = st.queue.shift()!;
    st.note();
    this.#run(st, head, gen);
  }

  #settle(req: Request, fn: () => void): void {
    if (req.onAbort !== undefined) req.signal!.removeEventListener('abort', req.onAbort);
    req.onAbort = undefined;
    fn();
  }

  #abort(st: NameState, req: Request): void {
    const i = st.queue.indexOf(req);
    if (i < 0) return; // granted already
    st.queue.splice(i, 1);
    if (i === 0 && st.waiting !== undefined) {
      // The engine gives back a grant that raced with the cancel.
      native.cancelWait(st.waiting);
      st.waiting = undefined;
    }
    st.note();
    if (i === 0) this.#pump(st);
    this.#settle(req, () => req.reject(new AbortError(undefined, { cause: req.signal!.reason })));
    this.#idle(st);
  }

  #run(st: NameState, req: Request, gen: number): void {
    st.held += 1;
    req.gen = gen;
    st.granted.add(req);
    if (st.stealWatch === undefined) this.#watchSteal(st, gen);
    const lock = new GrantedLock(st.name, MODE_NAME[req.mode]!);
    this.#settle(req, () => undefined);
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(req.callback(lock));
    } catch (err) {
      result = Promise.reject(err);
    }
    const done = (ok: boolean, value: unknown): void => {
      st.held -= 1;
      st.granted.delete(req);
      if (st.granted.size === 0 && st.stealWatch !== undefined) {
        native.cancelWait(st.stealWatch);
        st.stealWatch = undefined;
      }
      let released = 1;
      try {
        released = native.lkRelease(st.handle, req.mode, gen);
      } finally {
        this.#idle(st);
      }
      if (req.stolen === true) return; // rejected when the steal was seen
      if (released === 0) req.reject(stolenError(st.name));
      else if (ok) req.resolve(value);
      else req.reject(value);
    };
    result.then(
      (v) => done(true, v),
      (e) => done(false, e),
    );
  }

  /**
   * While this environment holds locks of the name: waits for the slot's
   * steal generation to move on from gen (another request stole them) and
   * then rejects those holders' request() promises with AbortError at once,
   * as the spec does; their callbacks run on (their results are ignored).
   */
  #watchSteal(st: NameState, gen: number): void {
    const token = native.lkWatchSteal(st.handle, gen, (err, stolen) => {
      if (st.stealWatch !== token) return;
      st.stealWatch = undefined;
      if (st.closed || st.granted.size === 0 || err !== null || !stolen) return;
      const now = Atomics.load(st.m, st.base + S_STEAL_GEN);
      let live = false; // grants made since, under the new generation
      for (const r of st.granted) {
        if (r.gen === now) live = true;
        else if (r.stolen !== true) {
          r.stolen = true;
          r.reject(stolenError(st.name));
        }
      }
      if (live) this.#watchSteal(st, now);
    });
    st.stealWatch = token;
  }

  #callNull(st: NameState, req: Request): void {
    this.#idle(st);
    let result: Promise<unknown>;
    try {
      result = Promise.resolve(req.callback(null));
    } catch (err) {
      result = Promise.reject(err);
    }
    result.then(req.resolve, req.reject);
  }

  /** Closes a name's segment once this environment neither holds nor waits for it. */
  #idle(st: NameState): void {
    if (st.held > 0 || st.queue.length > 0 || st.waiting !== undefined || st.closed) return;
    st.closed = true;
    this.#names.delete(st.name);
    native.robClose(st.handle, st.view);
  }

  /**
   * Every lock held and requested on the host, as far as this process may
   * open the lock segments: `{ held, pending }` with each holder's and
   * requester's pid. This environment's own waiting requests are listed in
   * their order; another process's are listed oldest first by process.
   */
  async query(): Promise<LockManagerSnapshot> {
    await Promise.resolve();
    const held: LockInfo[] = [];
    const pending: { info: LockInfo; file: number; ticket: number; n: number }[] = [];
    let fileIndex = 0;
    let files: string[];
    try {
      files = readdirSync(SHM_DIR);
    } catch {
      files = [];
    }
    for (const file of files) {
      const name = parseLockFileName(file);
      if (name === undefined) continue;
      const fi = fileIndex++;
      let st = this.#names.get(name);
      let opened = false;
      if (st === undefined) {
        try {
          st = new NameState(name, 0o600, validateOwner(undefined), false);
          opened = true;
        } catch {
          continue; // not ours to read, or not a lock segment
        }
      }
      try {
        const rows = native.lkSnapshot(st.handle);
        const mine = (st.base - LAYOUT.headerBytes / 4) / (LAYOUT.slotBytes / 4) + 1;
        for (let i = 0; i < rows.length; i += 8) {
          const [slot, pid, nHeld, heldMode, pendMode, pendTicket, pendShared, pendExcl] = rows.slice(i, i + 8) as number[] as [
            number, number, number, number, number, number, number, number,
          ];
          const info = (mode: number): LockInfo => ({ name, mode: MODE_NAME[mode]!, clientId: String(pid), pid });
          for (let k = 0; k < nHeld; k++) held.push(info(heldMode));
          if (slot === mine) {
            st.queue.forEach((r, n) => pending.push({ info: info(r.mode), file: fi, ticket: st!.queue[0]!.ticket, n }));
            continue;
          }
          let shared = pendShared;
          let excl = pendExcl;
          let n = 0;
          if (pendMode !== 0) {
            pending.push({ info: info(pendMode), file: fi, ticket: pendTicket, n: n++ });
            if (pendMode === SHARED) shared--;
            else excl--;
          }
          for (let k = 0; k < excl; k++) pending.push({ info: info(EXCLUSIVE), file: fi, ticket: pendTicket, n: n++ });
          for (let k = 0; k < shared; k++) pending.push({ info: info(SHARED), file: fi, ticket: pendTicket, n: n++ });
        }
      } finally {
        if (opened) native.robClose(st.handle, st.view);
      }
    }
    // Per name (files in directory order), oldest ticket first (tickets wrap: compare the difference).
    pending.sort((a, b) => a.file - b.file || ((a.ticket - b.ticket) | 0) || a.n - b.n);
    return { held, pending: pending.map((p) => p.info) };
  }
}

/**
 * For the command-line tool: how many locks are held and requests wait on the
 * lock `name`, by mode, with the holders' pids (opens an existing segment of
 * any owner; the dead are recovered first).
 * @internal
 */
export function lockState(name: string): { shared: number; exclusive: number; pending: number; holders: number[] } {
  const st = new NameState(name, 0o600, -1, false);
  try {
    const rows = native.lkSnapshot(st.handle);
    const out = { shared: 0, exclusive: 0, pending: 0, holders: [] as number[] };
    for (let i = 0; i < rows.length; i += 8) {
      const nHeld = rows[i + 2]!;
      if (nHeld > 0) {
        out.holders.push(rows[i + 1]!);
        if (rows[i + 3] === SHARED) out.shared += nHeld;
        else out.exclusive += nHeld;
      }
      out.pending += Math.max(rows[i + 6]! + rows[i + 7]!, rows[i + 4] === 0 ? 0 : 1);
    }
    return out;
  } finally {
    native.robClose(st.handle, st.view);
  }
}

/** This environment's lock manager: `await locks.request('cache', { mode: 'shared' }, async (lock) => ...)`. */
export const locks = new LockManager();
