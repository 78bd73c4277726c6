/**
 * The shared-memory ring transport: items as length-prefixed records in one
 * segment, /dev/shm/pipc.NAME.queue, with a crash-safe internal lock and
 * futex wake-up words (native/ring/ring.cc; the layout is in docs/api.md).
 * No system call while neither side sleeps; waiting costs no thread of its
 * own (the wait engine's futex wait).
 * @internal
 * @module
 */
import { binding } from '../core/binding.js';
import type { Handle, WaitToken } from '../core/binding.js';
import { ipcError } from '../core/errors.js';
import { READABLE, WRITABLE } from './transport.js';
import type { QueueTransport, ReadyCallback, TransportAttributes, TransportOpenRequest } from './transport.js';

/** The default ring size in bytes. */
export const DEFAULT_CAPACITY = 8 * 1024 * 1024;
/** Bytes before each item in the ring. */
export const RECORD_HEADER: number = binding.RING_LAYOUT.recordHeader;
export const MIN_CAPACITY: number = binding.RING_LAYOUT.minCapacity;
export const MAX_CAPACITY: number = binding.RING_LAYOUT.maxCapacity;

/**
 * How long a wait first spins on the event loop's thread (nanoseconds) before
 * it hands over to an engine thread: a peer that answers within that time (a
 * round trip) is caught without a thread wake-up and hop. Override with
 * POSIX_IPC_RING_SPIN_NS (0: never spin).
 */
const SPIN_NS = Math.max(0, Number(process.env.POSIX_IPC_RING_SPIN_NS ?? 30_000) || 0);
/**
 * Int32 indices in the header: the internal lock (kLock), the state words
 * head, tail, used, count (kHead..kCount, in that order) and the put
 * sequence word (kPutSeq).
 */
const LOCK: number = binding.RING_LAYOUT.lock;
const HEAD: number = binding.RING_LAYOUT.head;
const COUNT: number = binding.RING_LAYOUT.count;
const PUT_SEQ: number = binding.RING_LAYOUT.putSeq;
/** Where receiveBytes() takes a small item first (one per thread: modules are per isolate). */
const RECEIVE_SCRATCH = Buffer.allocUnsafeSlow(4096);
/** A wait that spun and found the ring ready: its report is a microtask away. */
const SPUN = Symbol('spun');
type Job = WaitToken | typeof SPUN | null;

/** What a ring transport is asked for, beyond the common request. */
export interface RingOpenRequest extends TransportOpenRequest {
  /** Ring bytes, or undefined: the existing one or DEFAULT_CAPACITY. */
  capacity: number | undefined;
}

export class RingTransport implements QueueTransport {
  readonly #h: Handle;
  readonly #name: string;
  /** Items it holds at most (Infinity: unbounded, limited by bytes only). */
  readonly maxsize: number;
  /** The largest item in bytes: the capacity minus one record header. */
  readonly maxMessageSize: number;
  readonly capacity: number;
  readonly mode: number;
  readonly uid: number | undefined;
  /**
   * How long a get that finds the ring empty spins on the event loop's
   * thread before it waits (milliseconds; 0 without a header view).
   */
  readonly spinMs: number;
  /** The header's words (ringView), for the spin's looks; null where external buffers are refused. */
  readonly #w: Int32Array | null;
  readonly #view: ArrayBuffer | undefined;
  #events = 0;
  #onReady: ReadyCallback | null = null;
  #readJob: Job = null;
  #writeJob: Job = null;
  #closed = false;

  /** /dev/shm/pipc.NAME.queue for the OS name '/NAME'. */
  static path(name: string): string {
    return `/dev/shm/pipc.${name.slice(1)}.queue`;
  }

  /** True if something (a queue or not) is at the segment's name. */
  static exists(name: string): boolean {
    return binding.robKindAt(RingTransport.path(name)) !== 'none';
  }

  /** Removes the segment's name. @throws IPCError ENOENT */
  static unlink(name: string): void {
    binding.ringUnlink(RingTransport.path(name), name);
  }

  /**
   * Opens (or creates) the ring. @throws IPCError (EINVAL for a file at the
   * name that is not a queue segment, or whose attributes differ from the
   * requested ones; EPERM for another uid's).
   */
  constructor(req: RingOpenRequest) {
    const { name, create, exclusive, mode } = req;
    const capacity = req.capacity === undefined ? DEFAULT_CAPACITY : Math.ceil(req.capacity / 8) * 8;
    const [h, cap, max, realMode, uid] = binding.ringOpen(
      name, RingTransport.path(name), create, exclusive, mode, capacity, req.maxsize ?? 0, req.owner,
    );
    const maxsize = max === 0 ? Infinity : max;
    if ((req.capacity !== undefined && cap !== capacity) || (req.maxsize !== undefined && maxsize !== req.maxsize)) {
      binding.ringClose(h);
      throw ipcError(
        'EINVAL',
        `the queue exists with capacity ${cap} and maxsize ${maxsize}, not the requested capacity ${req.capacity === undefined ? cap : capacity} ` +
          `and maxsize ${req.maxsize ?? maxsize}; open it without them or unlink it first`,
        'ring_open',
        name,
      );
    }
    this.#h = h;
    this.#view = binding.ringView(h);
    this.#w = this.#view === undefined ? null : new Int32Array(this.#view);
    this.spinMs = this.#w === null ? 0 : SPIN_NS / 1e6;
    this.#name = name;
    this.capacity = cap;
    this.maxsize = maxsize;
    this.maxMessageSize = cap - RECORD_HEADER;
    this.mode = realMode;
    this.uid = uid;
  }

  attributes(): TransportAttributes {
    return { maxsize: this.maxsize, maxMessageSize: this.maxMessageSize, size: binding.ringSize(this.#h) };
  }

  size(): number {
    return binding.ringSize(this.#h);
  }

  full(): boolean {
    return binding.ringFull(this.#h);
  }

  /**
   * False when the ring is plainly empty now, read with Atomics.load on the
   * mapping (no native call): a get looks with it before it calls
   * receiveInto, and its spin looks with it, so a putter's lock is not
   * fought over. Plainly empty is what every get leaves when it takes the
   * last item: head, tail, used and count all 0, and the lock free. Anything
   * else says true and goes to the native side, which decides under the
   * lock: items; a putter inside the lock; a holder that died mid-change
   * (its journal is rolled back there, and a dead consumer's item comes
   * back); a scribbled word (IPCError EPROTO). A ring without a view says true.
   */
  readable(): boolean {
    const w = this.#w;
    if (w === null) return true;
    return (Atomics.load(w, COUNT) | Atomics.load(w, LOCK) | Atomics.load(w, HEAD) | Atomics.load(w, HEAD + 1) | Atomics.load(w, HEAD + 2)) !== 0;
  }

  /**
   * The put sequence word (+1 by every put, in any process), from one
   * Atomics.load: a spin waits for it to move rather than reading the count,
   * whose cache line the putter is still writing (a look there slows the
   * putter; the sequence word changes last, just before the unlock).
   */
  putSeq(): number {
    return Atomics.load(this.#w!, PUT_SEQ);
  }

  send(bytes: Uint8Array): boolean {
    return binding.ringSend(this.#h, bytes);
  }

  sendText(text: string): boolean {
    return binding.ringSendText(this.#h, text);
  }

  sendJsonParts(parts: string[], strings: string[]): number {
    return binding.ringSendJsonParts(this.#h, parts, strings);
  }

  sendMany(bytes: Uint8Array[], _priority: number, start: number): number {
    return binding.ringSendMany(this.#h, bytes, start);
  }

  /**
   * The oldest item in a Buffer of its own (an ArrayBuffer of its own too),
   * or null when empty. A small item is copied into a scratch buffer and
   * then into Buffer.allocUnsafeSlow's: two small copies cost a tenth of a
   * Buffer made on the native side (napi_create_buffer_copy, about 700 ns
   * here). A larger one (it stays in the ring when it does not fit the
   * scratch) comes out in one copy into a Buffer made natively.
   */
  receiveBytes(): Buffer | null {
    const n = binding.ringReceiveInto(this.#h, RECEIVE_SCRATCH);
    if (n >= 0) {
      const out = Buffer.allocUnsafeSlow(n);
      RECEIVE_SCRATCH.copy(out, 0, 0, n);
      return out;
    }
    if (n === -1) return null;
    return binding.ringReceive(this.#h);
  }

  receiveInto(into: Buffer): number {
    return binding.ringReceiveInto(this.#h, into);
  }

  lastPriority(): number {
    return 0;
  }

  sendSync(bytes: Uint8Array, _priority: number, timeoutMs: number): boolean {
    return binding.ringSendSync(this.#h, bytes, timeoutMs);
  }

  receiveSync(timeoutMs: number): Buffer | null {
    return binding.ringReceiveSync(this.#h, timeoutMs);
  }

  /**
   * Keeps one engine wait per wanted direction while there is interest, armed
   * again after each report (level-triggered, as a poll); a wait no longer
   * wanted is cancelled, so an idle queue keeps no thread busy and the
   * process free to exit.
   */
  watch(events: number, onReady: ReadyCallback): void {
    if (this.#closed) return;
    this.#events = events;
    this.#onReady = onReady;
    this.#arm();
  }

  /**
   * rearm: after a report, for the waiters still there. The first readable
   * wait of a get does not spin here: Queue spun on the header words before
   * it waited (#spinTake), or its SpinGate said not to.
   */
  #arm(rearm = false): void {
    const events = this.#events;
    if (events & READABLE) {
      this.#readJob ??= this.#start(READABLE, rearm);
    } else if (this.#readJob !== null) {
      if (this.#readJob !== SPUN) binding.cancelWait(this.#readJob);
      this.#readJob = null;
    }
    if (events & WRITABLE) {
      this.#writeJob ??= this.#start(WRITABLE);
    } else if (this.#writeJob !== null) {
      if (this.#writeJob !== SPUN) binding.cancelWait(this.#writeJob);
      this.#writeJob = null;
    }
  }

  #start(which: 1 | 2, rearm = true): Job {
    if (SPIN_NS > 0 && (rearm || which === WRITABLE || this.#w === null) && binding.ringSpin(this.#h, which, SPIN_NS)) {
      queueMicrotask(() => {
        if ((which === READABLE ? this.#readJob : this.#writeJob) === SPUN) this.#fired(which, null);
      });
      return SPUN;
    }
    return binding.ringWait(this.#h, which, (err) => this.#fired(which, err));
  }

  #fired(which: number, err: { errno: number } | null): void {
    if (which === READABLE) this.#readJob = null;
    else this.#writeJob = null;
    if (this.#closed) return;
    this.#onReady?.(err === null ? 0 : err.errno);
    if (!this.#closed) this.#arm(true);
  }

  close(): void {
    if (this.#closed) return;
    this.#events = 0;
    this.#arm();
    this.#closed = true;
    binding.ringClose(this.#h, this.#view);
  }

  /** The OS name, for messages. */
  get name(): string {
    return this.#name;
  }
}
