/**
 * `Queue`: Python's `multiprocessing.Queue` between unrelated processes, on a
 * POSIX message queue (`mq_open`) that Python (posix_ipc, ctypes) and C
 * programs open by the same name.
 * @module
 */
import { binding } from '../core/binding.js';
import { decodeScratch, isJsonCodec, isRawCodec, joinJsonParts, jsonParts, jsonText, LONG_TEXT, resolveCodec } from '../core/codec.js';
import type { Codec, CodecOption } from '../core/codec.js';
import { closedError, DecodeError, describeValue, ErrorCode, ipcError, IPCError, sysError, typeError } from '../core/errors.js';
import { SpinGate } from '../core/spin.js';
import { WaitList } from '../core/waitlist.js';
import { announcedSegments, hasMagic, LARGE_HEADER, readLarge, removeAllSegments, removeSegment, segmentOwners, waitingSegments, writeLarge } from './large-items.js';
import { HARD_MSGMAX, HARD_MSGSIZEMAX } from './limits.js';
import { MqTransport } from './mq.js';
import { MAX_CAPACITY, MIN_CAPACITY, RECORD_HEADER, RingTransport } from './ring.js';
import { READABLE, WRITABLE } from './transport.js';
import type { QueueTransport, ReadyCallback } from './transport.js';
import { codecOption, kReopen } from '../core/transfer.js';
import type { ReopenSpec } from '../core/transfer.js';
import {
  throwIfAborted,
  validateBoolean,
  validateInteger,
  validateMode,
  validateOwner,
  validateName,
  keysOf,
  validateOptions,
  validateSignal,
  validateTimeout,
  validateWaitOptions,
} from '../core/validate.js';
import type { Owner } from '../core/validate.js';

/** The highest message priority plus one (`MQ_PRIO_MAX`, 32768 on Linux). */
export const MQ_PRIO_MAX: number = binding.MQ_PRIO_MAX;

/**
 * Rejected or thrown when an item was wanted from an empty queue: `getNowait()`,
 * `getSync({ timeout })`, and `get({ timeout })` when the time ran out
 * (Python's `queue.Empty`). `code` is `'ERR_IPC_EMPTY'`.
 */
export class Empty extends Error {
  /** Always `'ERR_IPC_EMPTY'`. */
  readonly code = ErrorCode.EMPTY;
  override get name(): string {
    return 'Empty';
  }
}

/**
 * Rejected or thrown when an item could not be put into a full queue:
 * `putNowait()`, `putSync({ timeout })`, and `put({ timeout })` when the time ran
 * out (Python's `queue.Full`). `code` is `'ERR_IPC_FULL'`. After `putMany`,
 * `sent` says how many of the items did go in before the time ran out.
 */
export class Full extends Error {
  /** Always `'ERR_IPC_FULL'`. */
  readonly code = ErrorCode.FULL;
  /** For `putMany`: how many items (from the first) were sent. Otherwise 0. */
  readonly sent: number;
  constructor(message?: string, sent = 0) {
    super(message);
    this.sent = sent;
  }
  override get name(): string {
    return 'Full';
  }
}

/** What carries a queue's items: see {@link QueueOptions.transport}. */
export type QueueTransportKind = 'shm' | 'mq';

/** The transport of new queues when neither `transport` nor `maxMessageSize` says otherwise. */
export const DEFAULT_TRANSPORT: QueueTransportKind = 'shm';

/** Options for opening or creating a queue. */
export interface QueueOptions<T = unknown> {
  /**
   * How many items the queue holds, >= 1. On `'shm'`: default unbounded
   * (as Python's `Queue()`; only `capacity` limits it). On `'mq'` it is
   * `mq_maxmsg`: default the system default (/proc/sys/fs/mqueue/msg_default,
   * usually 10), and ordinary processes may not exceed fs.mqueue.msg_max
   * (usually 10). When the queue exists, a value that differs from its real
   * one is an error.
   */
  maxsize?: number;
  /**
   * `'mq'` only: the largest message in bytes (`mq_msgsize`). Default: the
   * system default (msgsize_default, usually 8192); ordinary processes may not
   * exceed fs.mqueue.msgsize_max (usually 8192). Larger items still travel,
   * through side segments. When the queue exists, a value that differs is an
   * error. Giving it without `transport` selects `'mq'`.
   */
  maxMessageSize?: number;
  /**
   * What carries the items. `'shm'`: a ring in shared memory
   * (/dev/shm/pipc.NAME.queue), no system call while nobody sleeps, any
   * depth, crash-safe; its layout is documented for Python and C peers.
   * `'mq'`: a POSIX message queue, which posix_ipc, ctypes and C programs open
   * by name, with priorities. Default: whichever kind exists at the name;
   * a new queue is `'shm'` unless `maxMessageSize` is given. Asking for one
   * kind where the other exists is IPCError `EEXIST` naming what is there.
   */
  transport?: QueueTransportKind;
  /**
   * `'shm'` only: the ring's size in bytes (rounded up to a multiple of 8),
   * 64 to 1 GiB; default 8 MiB. An item may be up to `capacity - 8` bytes (a
   * larger one is IPCError `EMSGSIZE`); a ring full of bytes is `Full` (or a
   * wait), as a queue with `maxsize` items is. Pages are only used as items
   * fill them.
   */
  capacity?: number;
  /** `'json'` (default), `'v8'`, `'raw'`, `'pickle'` (Python's pickle of plain data), or `{ encode, decode }`. See the codec module. */
  codec?: CodecOption<T>;
  /** Create the queue if it does not exist. Default true. With false, a missing name fails with ENOENT. */
  create?: boolean;
  /** Fail with EEXIST if the name already exists (O_EXCL). Default false. */
  exclusive?: boolean;
  /** Permission bits for a newly created queue (the umask applies). Default 0o600. */
  mode?: number;
  /**
   * Whose existing queue this call may open: `'self'` (default) only one
   * owned by this process's effective uid, `'any'` any owner, or a uid. One
   * owned by another uid is refused with IPCError `EPERM` naming its owner,
   * so that no other user can plant a queue (made before us, with mode
   * 0o666) that we would adopt. Root is not special: it too adopts only its
   * own unless it says otherwise.
   */
  owner?: Owner;
  /**
   * What `for await (const item of q)` does with a message the codec cannot
   * decode (a {@link DecodeError}; the message is consumed either way):
   * `'throw'` (default) ends the loop with it, `'skip'` goes on to the next
   * message, a function is called with it and the loop goes on.
   */
  onDecodeError?: OnDecodeError;
}

/** See {@link QueueOptions.onDecodeError}. */
export type OnDecodeError = 'throw' | 'skip' | ((err: DecodeError) => void);

/** Options for `iterate()`. */
export interface IterateOptions {
  /** Abort the loop: it rejects with `AbortError`. */
  signal?: AbortSignal;
  /** Overrides the queue's {@link QueueOptions.onDecodeError} for this loop. */
  onDecodeError?: OnDecodeError;
}

/** Options for `put`. */
export interface PutOptions {
  /** Give up after this many milliseconds: rejects with `Full`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, and the item is not sent. */
  signal?: AbortSignal;
  /** Message priority, 0 (default) to MQ_PRIO_MAX - 1; higher priorities are received first. */
  priority?: number;
}

/** Options for `get`. */
export interface GetOptions {
  /** Give up after this many milliseconds: rejects with `Empty`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, and nothing is taken from the queue. */
  signal?: AbortSignal;
}

/** Options for the blocking forms. */
export interface SyncOptions {
  /** Give up after this many milliseconds (then `Full` / `Empty`). Default: wait forever. */
  timeout?: number;
}

/** Attributes of the underlying queue (`mq_getattr` on `'mq'`). */
export interface QueueAttributes {
  /** The queue's capacity in items (`mq_maxmsg`; Infinity for an unbounded `'shm'` queue). */
  maxsize: number;
  /** The largest message in bytes (`mq_msgsize`). */
  maxMessageSize: number;
  /** Messages in the queue now (`mq_curmsgs`). */
  size: number;
}

interface Message {
  bytes: Uint8Array;
  segment: string | undefined;
}

interface Getter {
  /** 0: one item; n: up to n items, as an array. */
  max: number;
  /** The timeout the caller gave (ms; the wait's own may be shorter by a spin), for Empty's message. */
  ms: number;
  /** performance.now() when its spin began (0: it did not spin), to learn how long the wait was. */
  since: number;
}

interface Putter {
  messages: Message[];
  /** Messages before this index were sent. */
  next: number;
  priority: number;
}

const QUEUE_KEYS = keysOf<QueueOptions>()('maxsize', 'maxMessageSize', 'codec', 'create', 'exclusive', 'mode', 'onDecodeError', 'owner', 'transport', 'capacity');

function validateTransport(value: unknown): QueueTransportKind | undefined {
  if (value === undefined || value === 'shm' || value === 'mq') return value;
  throw typeError('ERR_INVALID_ARG_VALUE', `The "transport" option must be 'shm' or 'mq'. Received ${describeValue(value)}`);
}

/** A message queue exists at `name` (or something mq_open refuses for another reason than ENOENT). */
function mqExists(name: string): boolean {
  try {
    MqTransport.probe(name);
    return true;
  } catch (err) {
    if (err instanceof IPCError && err.code === 'ENOENT') return false;
    return true;
  }
}

function kindName(kind: QueueTransportKind): string {
  return kind === 'shm' ? "a shared-memory queue (transport 'shm')" : "a POSIX message queue (transport 'mq')";
}

/**
 * Which transport opens `name`: the kind that exists there, else the one
 * asked for, else the default. Asking for one kind where the other exists is
 * an error naming it.
 */
function chooseTransport(name: string, wanted: QueueTransportKind | undefined, mqOnly: boolean): QueueTransportKind {
  const ring = RingTransport.exists(name);
  const mq = (!ring || wanted === 'mq') && mqExists(name);
  const there: QueueTransportKind | undefined = ring ? 'shm' : mq ? 'mq' : undefined;
  if (wanted !== undefined && there !== undefined && there !== wanted) {
    throw ipcError(
      'EEXIST',
      `${kindName(there)} exists at this name, not ${kindName(wanted)}; open it without "transport" (or with transport: '${there}'), or unlink it first`,
      'open',
      name,
    );
  }
  return wanted ?? there ?? (mqOnly ? 'mq' : DEFAULT_TRANSPORT);
}
const PUT_KEYS = keysOf<PutOptions>()('timeout', 'signal', 'priority');
const PUT_NOWAIT_KEYS = keysOf<{ priority?: number }>()('priority');
const PUT_SYNC_KEYS = keysOf<SyncOptions & { priority?: number }>()('timeout', 'priority');
const GET_KEYS = keysOf<GetOptions>()('timeout', 'signal');
const SYNC_KEYS = keysOf<SyncOptions>()('timeout');
const ITERATE_KEYS = keysOf<IterateOptions>()('signal', 'onDecodeError');

function validateOnDecodeError(value: unknown): OnDecodeError {
  if (value === undefined) return 'throw';
  if (value === 'throw' || value === 'skip' || typeof value === 'function') return value as OnDecodeError;
  throw typeError('ERR_INVALID_ARG_VALUE', `The "onDecodeError" option must be 'throw', 'skip' or a function. Received ${describeValue(value)}`);
}

const RESOLVED = Promise.resolve();
/** True when the long strings of a jsonParts split are at least 3/4 of its text. */
function mostlyLong(parts: string[], strings: string[]): boolean {
  let long = 0;
  let rest = 0;
  for (const s of strings) long += s.length;
  for (const p of parts) rest += p.length;
  return long >= 3 * rest;
}

/** A get's spin grows up to this many times the transport's spinMs while waits are that short (#learn). */
const SPIN_GROWTH = 8;
/** A ring queue's first receive buffer (it grows to the largest item). */
const RX_START = 64 * 1024;
/** What #take returns from an empty queue (items may be null or undefined). */
const NONE: unique symbol = Symbol('none');

/**
 * A FIFO queue of items between processes, on a POSIX message queue. Python's
 * `multiprocessing.Queue` semantics (`put` / `get` with timeouts raising
 * `Full` / `Empty`, `putNowait`, `getNowait`, `qsize`), JavaScript idioms
 * (Promises, `AbortSignal`, `for await`, `using`).
 *
 * ```ts
 * const q = new Queue<{ id: number }>('jobs', { maxsize: 10 });
 * await q.put({ id: 1 });
 * const job = await q.get({ timeout: 1000 }); // Empty after 1 s
 * ```
 *
 * Waiting costs no thread: the queue descriptor is watched with `uv_poll` on
 * the event loop, and waiters in this process are served in the order they
 * came. Messages of higher `priority` are received first; equal priorities in
 * order. Items larger than the queue's `maxMessageSize` travel through a side
 * segment in /dev/shm (see docs/api.md for the descriptor layout).
 */
class QueueClass<T = unknown> implements Disposable, AsyncIterable<T> {
  /** The transport; null once closed. */
  #h: QueueTransport | null;
  readonly #name: string;
  readonly #transport: QueueTransportKind;
  /** Items larger than a message travel through side segments ('mq'); on 'shm' they are an error. */
  readonly #large: boolean;
  readonly #capacity: number | undefined;
  readonly #codec: Codec<T>;
  readonly #maxsize: number;
  readonly #msgsize: number;
  readonly #segmentMode: number;
  /** Whose side segments this queue's receiver reads (null: any uid's). */
  readonly #segmentOwners: Set<number> | null;
  readonly #getters = new WaitList<unknown, Getter>({
    onTimeout: (g) => ({ error: this.#empty(g.ms) }),
    onChange: () => this.#watch(),
  });
  readonly #putters = new WaitList<void, Putter>({
    onTimeout: (p, ms) => ({ error: this.#full(p.next, ms) }),
    onLeave: (p) => this.#dropUnsent(p),
    onChange: () => this.#watch(),
  });
  #events = 0;
  readonly #onPoll: ReadyCallback;
  /** Where single receives land (mq_msgsize bytes, reused): no Buffer per message. */
  #rx: Buffer;
  /** The raw codec on a transport with receiveBytes: items come out in Buffers of their own, with one copy. */
  readonly #rawBytes: boolean;
  /** The json codec: short items go to mq_send as text, without a Buffer. */
  readonly #json: boolean;
  /** A DecodeError that stopped a batch after some items were delivered: the next receive reports it. */
  #undelivered: unknown = NONE;
  readonly #onDecodeError: OnDecodeError;
  /** The last json item had a long text: the next go through jsonParts while they have long strings (#jsonSend). */
  #longJson = false;
  /** Whether a get that finds the queue empty spins first (after empty spins it often does not). */
  readonly #gate = new SpinGate();
  /** When the last #spinTake that ran out began (performance.now(); 0: it did not spin). */
  #spunSince = 0;
  /** How long a get spins now (ms): adapts between the transport's spinMs and SPIN_GROWTH times it. */
  #spinBudget = 0;

  /**
   * Opens the queue `name`, creating it if it is missing. `"jobs"` and `"/jobs"`
   * name the same queue.
   * @throws TypeError / RangeError for bad arguments; IPCError from `mq_open`
   * (EEXIST, ENOENT, EACCES; EINVAL / EMFILE / ENOSPC with a message naming the
   * limit that was hit), or EINVAL when an existing queue's attributes differ
   * from `maxsize` / `maxMessageSize`.
   */
  constructor(name: string, options?: QueueOptions<T>) {
    this.#name = validateName(name);
    const o = validateOptions<QueueOptions<T>>(options, QUEUE_KEYS);
    const wanted = validateTransport(o.transport);
    const maxsize = o.maxsize === undefined ? undefined : validateInteger(o.maxsize, 'maxsize', 1, wanted === 'mq' ? HARD_MSGMAX : 2 ** 31 - 1);
    const msgsize = o.maxMessageSize === undefined ? undefined : validateInteger(o.maxMessageSize, 'maxMessageSize', 1, HARD_MSGSIZEMAX);
    const capacity = o.capacity === undefined ? undefined : validateInteger(o.capacity, 'capacity', MIN_CAPACITY, MAX_CAPACITY);
    if (wanted === 'shm' && msgsize !== undefined) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The "maxMessageSize" option is for transport 'mq'; a 'shm' queue takes items up to its "capacity"`);
    }
    if (wanted === 'mq' && capacity !== undefined) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The "capacity" option is for transport 'shm'; an 'mq' queue has "maxsize" and "maxMessageSize"`);
    }
    this.#codec = resolveCodec<T>(o.codec);
    const create = validateBoolean(o.create, 'create', true);
    const exclusive = validateBoolean(o.exclusive, 'exclusive', false);
    const mode = validateMode(o.mode);
    const owner = validateOwner(o.owner);
    const kind = chooseTransport(this.#name, wanted, msgsize !== undefined && capacity === undefined);
    if (kind === 'mq' && maxsize !== undefined && maxsize > HARD_MSGMAX) validateInteger(maxsize, 'maxsize', 1, HARD_MSGMAX);
    const req = { name: this.#name, create, exclusive, mode, maxsize, maxMessageSize: msgsize, owner };
    let t: QueueTransport;
    if (kind === 'shm') {
      if (msgsize !== undefined) {
        throw typeError('ERR_INVALID_ARG_VALUE', `The "maxMessageSize" option is for transport 'mq', and '${this.#name}' is a 'shm' queue`);
      }
      const ring = new RingTransport({ ...req, capacity });
      this.#capacity = ring.capacity;
      t = ring;
    } else {
      if (capacity !== undefined) {
        throw typeError('ERR_INVALID_ARG_VALUE', `The "capacity" option is for transport 'shm', and '${this.#name}' is an 'mq' queue`);
      }
      this.#capacity = undefined;
      t = new MqTransport(req);
    }
    this.#transport = kind;
    this.#large = kind === 'mq';
    this.#h = t;
    this.#maxsize = t.maxsize;
    this.#msgsize = t.maxMessageSize;
    // Whoever may open the queue may read its side segments, and nobody else.
    this.#segmentMode = t.mode;
    this.#segmentOwners = segmentOwners(t.uid, t.mode);
    this.#onPoll = (status) => this.#serve(status);
    // A ring's items may be up to its capacity: its buffer starts small and
    // grows to the largest item received (an 8 MiB buffer per handle would
    // weigh on the GC's external-memory accounting).
    this.#rx = Buffer.allocUnsafeSlow(kind === 'mq' ? t.maxMessageSize : Math.min(t.maxMessageSize, RX_START));
    this.#json = isJsonCodec(this.#codec);
    this.#rawBytes = isRawCodec(this.#codec) && t.receiveBytes !== undefined;
    this.#onDecodeError = validateOnDecodeError(o.onDecodeError);
  }

  #handle(syscall: string): QueueTransport {
    if (this.#h === null) throw closedError('queue', syscall, this.#name);
    return this.#h;
  }

  /** The name as the OS sees it, with its leading slash (`'/jobs'`). */
  get name(): string {
    return this.#name;
  }

  /** The queue's capacity in items (its real `mq_maxmsg`; Infinity for an unbounded `'shm'` queue). */
  get maxsize(): number {
    return this.#maxsize;
  }

  /**
   * The largest message in bytes: on `'mq'` its real `mq_msgsize` (larger items
   * use side segments); on `'shm'` the largest item, `capacity - 8`.
   */
  get maxMessageSize(): number {
    return this.#msgsize;
  }

  /** What carries the items: `'shm'` or `'mq'`. */
  get transport(): QueueTransportKind {
    return this.#transport;
  }

  /** `'shm'`: the ring's size in bytes; `'mq'`: undefined. */
  get capacity(): number | undefined {
    return this.#capacity;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#h === null;
  }

  /** The queue's current attributes (`mq_getattr`). */
  attributes(): QueueAttributes {
    return this.#handle('mq_getattr').attributes();
  }

  /** Number of messages in the queue now, from every process (exact, unlike Python's approximation). */
  qsize(): number {
    const h = this.#h;
    if (h === null) throw closedError('queue', 'mq_getattr', this.#name);
    return h.size();
  }

  /** True if the queue holds no message now. */
  empty(): boolean {
    return this.qsize() === 0;
  }

  /** True if the queue holds `maxsize` messages now (on `'shm'`: or has no room for even an empty item). */
  full(): boolean {
    const h = this.#handle('mq_getattr');
    return h.full !== undefined ? h.full() : h.size() >= this.#maxsize;
  }

  #encode(item: T): Message {
    if (this.#json && this.#h?.sendJsonParts !== undefined) return this.#message(this.#jsonBytes(item));
    return this.#message(this.#codec.encode(item));
  }

  /**
   * The json codec's bytes of an item on a ring (putMany, putSync): after an
   * item with a long text, made as #jsonSend makes them (long strings quoted
   * natively, jsonJoinBytes), else JSON.stringify's.
   */
  #jsonBytes(item: T): Uint8Array {
    if (this.#longJson) {
      const p = jsonParts(item);
      if (p !== null) {
        if (p[1].length === 0) {
          this.#longJson = false;
          return Buffer.from(p[0][0]!, 'utf8');
        }
        if (!mostlyLong(p[0], p[1])) this.#longJson = false;
        const bytes = binding.jsonJoinBytes(p[0], p[1]);
        if (bytes !== null) return bytes;
        return Buffer.from(joinJsonParts(p[0], p[1]), 'utf8');
      }
    }
    const text = jsonText(item);
    if (text.length >= LONG_TEXT) this.#longJson = true;
    return Buffer.from(text, 'utf8');
  }

  #message(bytes: Uint8Array): Message {
    if (!this.#large) {
      if (bytes.length > this.#msgsize) throw this.#tooLarge(bytes.length);
      return { bytes, segment: undefined };
    }
    if (bytes.length <= this.#msgsize && !hasMagic(bytes)) return { bytes, segment: undefined };
    return writeLarge(this.#name, bytes, this.#segmentMode, this.#msgsize);
  }

  /**
   * A json item's text; true when it was put already; its bytes when the
   * ring had no room for it (for a wait). On a ring, after an
   * item with a long text, items go through jsonParts: JSON.stringify writes
   * all but the long strings, which the native side quotes and escapes eight
   * bytes at a time straight into the ring (JSON.stringify looks at every
   * character; a 64 KiB string costs it about 70 µs). An item with no long
   * string turns the path off again.
   */
  #jsonSend(h: QueueTransport, item: T): string | true | Buffer {
    if (this.#longJson && h.sendJsonParts !== undefined) {
      const p = jsonParts(item);
      if (p !== null) {
        const [parts, strings] = p;
        if (strings.length === 0) {
          this.#longJson = false;
          return parts[0]!;
        }
        // The replacer runs for every value: worth it while long strings are most of the text.
        if (!mostlyLong(parts, strings)) this.#longJson = false;
        const sent = h.sendJsonParts(parts, strings);
        if (sent === 1) return true;
        // No room: the bytes wait, made the same way (not by JSON.stringify).
        const bytes = sent === 0 ? binding.jsonJoinBytes(parts, strings) : null;
        return bytes ?? joinJsonParts(parts, strings);
      }
    }
    const text = jsonText(item);
    if (text.length >= LONG_TEXT && h.sendJsonParts !== undefined) this.#longJson = true;
    return text;
  }

  /** Receives one message and decodes it; NONE when the queue is empty. */
  #take(h: QueueTransport): T | typeof NONE {
    if (this.#undelivered !== NONE) throw this.#takeUndelivered();
    // The count word says empty: no native call (and no lock taken from a putter).
    if (h.readable !== undefined && !h.readable()) return NONE;
    if (this.#rawBytes) return (h.receiveBytes!() ?? NONE) as T | typeof NONE;
    const n = this.#receive(h);
    return n < 0 ? NONE : this.#decodeRx(n);
  }

  /**
   * Receives and decodes up to `max` messages that are there now, each
   * through #rx (no Buffer per message). A receive failure after the first
   * message is left for the next call, so nothing taken is lost; a decode
   * failure stops there and comes back as `error` (NONE when all went well).
   */
  #takeMany(h: QueueTransport, max: number): { items: T[]; taken: number; error: unknown } {
    if (this.#undelivered !== NONE) return { items: [], taken: 1, error: this.#takeUndelivered() };
    const items: T[] = [];
    let taken = 0;
    while (taken < max && this.#rawBytes) {
      const b = h.receiveBytes!();
      if (b === null) return { items, taken, error: NONE };
      items.push(b as T);
      taken++;
    }
    while (taken < max) {
      let n: number;
      try {
        n = this.#receive(h);
      } catch (err) {
        if (taken > 0) break;
        throw err;
      }
      if (n < 0) break;
      taken++;
      try {
        items.push(this.#decodeRx(n));
      } catch (err) {
        if (items.length === 0) return { items, taken, error: err };
        // Deliver what decoded; the next receive reports the bad message.
        this.#undelivered = err;
        break;
      }
    }
    return { items, taken, error: NONE };
  }

  #takeUndelivered(): unknown {
    const err = this.#undelivered;
    this.#undelivered = NONE;
    return err;
  }

  /** Receives one message into #rx, growing it for a larger item: its length, or -1 when empty. */
  #receive(h: QueueTransport): number {
    const n = h.receiveInto(this.#rx);
    if (n >= -1) return n;
    // -2 - length: the item did not fit and is still there.
    this.#rx = Buffer.allocUnsafeSlow(Math.max(-2 - n, this.#rx.length * 2));
    return h.receiveInto(this.#rx);
  }

  /** Decodes the `n` bytes just received into #rx. @throws DecodeError */
  #decodeRx(n: number): T {
    const rx = this.#rx;
    if (this.#large && n > LARGE_HEADER && rx[0] === 0 && hasMagic(rx)) return this.#decode(rx.subarray(0, n));
    try {
      return decodeScratch(this.#codec, rx, n);
    } catch (err) {
      throw this.#decodeError(Buffer.from(rx.subarray(0, n)), err);
    }
  }

  /** Decodes a received message (a descriptor is followed to its side segment). @throws DecodeError */
  #decode(bytes: Buffer): T {
    const data = this.#large && bytes.length > LARGE_HEADER && bytes[0] === 0 && hasMagic(bytes) ? readLarge(this.#name, bytes, this.#segmentOwners) : bytes;
    try {
      return this.#codec.decode(data);
    } catch (err) {
      throw this.#decodeError(data === bytes ? Buffer.from(bytes) : data, err);
    }
  }

  /** The error for the message just received, which the codec refused. */
  #decodeError(bytes: Buffer, cause: unknown): DecodeError {
    const priority = this.#h?.lastPriority() ?? 0;
    const why = cause instanceof Error ? cause.message : String(cause);
    return new DecodeError(`Cannot decode a message of ${bytes.length} bytes from queue '${this.#name}' (priority ${priority}): ${why}`, {
      queue: this.#name,
      priority,
      bytes,
      cause,
    });
  }

  /**
   * Puts `item` into the queue, waiting while it is full. Rejects with `Full`
   * if `timeout` ms pass first, with `AbortError` if `signal` aborts (the item
   * is then not sent). An item that cannot be encoded is rejected before
   * anything is sent.
   * ```ts
   * await q.put({ id: 7 }, { timeout: 500, priority: 1 });
   * ```
   */
  put(item: T, options?: PutOptions): Promise<void> {
    let msg: Message | undefined;
    try {
      const h = this.#h;
      if (options === undefined && h !== null) {
        if (this.#json && this.#putters.size === 0) {
          const text = this.#jsonSend(h, item);
          if (text === true) return RESOLVED;
          if (typeof text !== 'string') return this.#waitPut([{ bytes: text, segment: undefined }], 0, -1, undefined);
          // UTF-8 takes at most 3 bytes per UTF-16 unit: this text fits a message.
          if (text.length * 3 < this.#msgsize) {
            if (h.sendText(text, 0)) return RESOLVED;
            return this.#waitPut([{ bytes: Buffer.from(text, 'utf8'), segment: undefined }], 0, -1, undefined);
          }
          msg = this.#message(Buffer.from(text, 'utf8'));
        } else {
          msg = this.#encode(item);
        }
        if (this.#putters.size === 0 && h.send(msg.bytes, 0)) return RESOLVED;
        return this.#waitPut([msg], 0, -1, undefined);
      }
      const { o, timeout, signal } = validateWaitOptions<PutOptions>(options, PUT_KEYS);
      const priority = this.#priority(o.priority);
      throwIfAborted(signal);
      const handle = this.#handle('mq_send');
      if (this.#json && this.#putters.size === 0) {
        const text = priority === 0 ? this.#jsonSend(handle, item) : jsonText(item);
        if (text === true) return RESOLVED;
        if (typeof text !== 'string') {
          if (timeout === 0) throw this.#full(0);
          return this.#waitPut([{ bytes: text, segment: undefined }], priority, timeout, signal);
        }
        if (text.length * 3 < this.#msgsize) {
          if (handle.sendText(text, priority)) return RESOLVED;
          if (timeout === 0) throw this.#full(0);
          return this.#waitPut([{ bytes: Buffer.from(text, 'utf8'), segment: undefined }], priority, timeout, signal);
        }
        msg = this.#message(Buffer.from(text, 'utf8'));
      } else {
        msg = this.#encode(item);
      }
      if (this.#putters.size === 0 && handle.send(msg.bytes, priority)) return RESOLVED;
      if (timeout === 0) throw this.#full(0);
      return this.#waitPut([msg], priority, timeout, signal);
    } catch (err) {
      if (msg?.segment !== undefined) removeSegment(msg.segment);
      return Promise.reject(err);
    }
  }

  /**
   * Puts several items in order, waiting for room as needed: fewer native
   * calls than one `put` each. On timeout it rejects with `Full` whose `sent`
   * says how many items went in; on abort, with `AbortError` (items not yet sent
   * stay unsent). Every item is encoded before the first is sent.
   */
  putMany(items: Iterable<T>, options?: PutOptions): Promise<void> {
    const messages: Message[] = [];
    try {
      const { o, timeout, signal } = validateWaitOptions<PutOptions>(options, PUT_KEYS);
      const priority = this.#priority(o.priority);
      throwIfAborted(signal);
      const h = this.#handle('mq_send');
      for (const item of items) messages.push(this.#encode(item));
      let next = 0;
      if (this.#putters.size === 0) {
        next = h.sendMany(messages.map((m) => m.bytes), priority, 0);
        if (next === messages.length) return RESOLVED;
      }
      if (timeout === 0) {
        for (let i = next; i < messages.length; i++) if (messages[i]!.segment !== undefined) removeSegment(messages[i]!.segment!);
        throw this.#full(next);
      }
      return this.#waitPut(messages, priority, timeout, signal, next);
    } catch (err) {
      if (!(err instanceof Full)) for (const m of messages) if (m.segment !== undefined) removeSegment(m.segment);
      return Promise.reject(err);
    }
  }

  /** Puts `item` if there is room now; throws `Full` otherwise. Never waits. */
  putNowait(item: T, options?: { priority?: number }): void {
    const h = this.#h;
    const priority = options === undefined ? 0 : this.#priority(validateOptions<PutOptions>(options, PUT_NOWAIT_KEYS).priority);
    if (h === null) throw closedError('queue', 'mq_send', this.#name);
    let msg: Message;
    if (this.#json) {
      const text = priority === 0 ? this.#jsonSend(h, item) : jsonText(item);
      if (text === true) return;
      if (typeof text !== 'string') throw this.#full(0);
      if (text.length * 3 < this.#msgsize) {
        if (!h.sendText(text, priority)) throw this.#full(0);
        return;
      }
      msg = this.#message(Buffer.from(text, 'utf8'));
    } else {
      msg = this.#encode(item);
    }
    let sent = false;
    try {
      sent = h.send(msg.bytes, priority);
    } finally {
      if (!sent && msg.segment !== undefined) removeSegment(msg.segment);
    }
    if (!sent) throw this.#full(0);
  }

  /**
   * Puts `item`, blocking the calling thread (and its event loop) while the
   * queue is full; throws `Full` after `timeout` ms. For scripts.
   */
  putSync(item: T, options?: SyncOptions & { priority?: number }): void {
    const o = validateOptions<SyncOptions & { priority?: number }>(options, PUT_SYNC_KEYS);
    const timeout = validateTimeout(o.timeout);
    const priority = this.#priority(o.priority);
    const h = this.#handle('mq_send');
    const msg = this.#encode(item);
    let sent = false;
    try {
      sent = h.sendSync(msg.bytes, priority, timeout);
    } finally {
      if (!sent && msg.segment !== undefined) removeSegment(msg.segment);
    }
    if (!sent) throw this.#full(0, timeout);
  }

  /**
   * Takes the next item (highest priority first, then oldest), waiting while
   * the queue is empty. Rejects with `Empty` if `timeout` ms pass first, with
   * `AbortError` if `signal` aborts; neither takes anything from the queue.
   * ```ts
   * const job = await q.get({ signal: AbortSignal.timeout(5000) });
   * ```
   */
  get(options?: GetOptions): Promise<T> {
    try {
      const h = this.#h;
      if (options === undefined && h !== null) {
        if (this.#getters.size === 0) {
          let v = this.#take(h);
          if (v !== NONE) return Promise.resolve(v);
          v = this.#spinTake(h, 0, -1) as T | typeof NONE;
          if (v !== NONE) return Promise.resolve(v);
          return this.#waitGet(0, -1, undefined, this.#spunSince) as Promise<T>;
        }
        return this.#waitGet(0, -1, undefined) as Promise<T>;
      }
      const { timeout, signal } = validateWaitOptions<GetOptions>(options, GET_KEYS);
      throwIfAborted(signal);
      const handle = this.#handle('mq_receive');
      let since = 0;
      if (this.#getters.size === 0) {
        let v = this.#take(handle);
        if (v !== NONE) return Promise.resolve(v);
        if (timeout === 0) throw this.#empty(0);
        v = this.#spinTake(handle, 0, timeout) as T | typeof NONE;
        if (v !== NONE) return Promise.resolve(v);
        since = this.#spunSince;
      }
      if (timeout === 0) throw this.#empty(0);
      return this.#waitGet(0, timeout, signal, since) as Promise<T>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Waits for at least one item, then takes up to `max` that are there now,
   * in one native call. Rejects as `get` does.
   * ```ts
   * for (const job of await q.getMany(64)) handle(job);
   * ```
   */
  getMany(max: number, options?: GetOptions): Promise<T[]> {
    try {
      validateInteger(max, 'max', 1, 2 ** 31 - 1);
      const { timeout, signal } = validateWaitOptions<GetOptions>(options, GET_KEYS);
      throwIfAborted(signal);
      const h = this.#handle('mq_receive');
      let since = 0;
      if (this.#getters.size === 0) {
        const r = this.#takeMany(h, max);
        if (r.taken > 0) return r.error === NONE ? Promise.resolve(r.items) : Promise.reject(r.error);
        if (timeout === 0) throw this.#empty(0);
        const items = this.#spinTake(h, max, timeout);
        if (items !== NONE) return Promise.resolve(items as T[]);
        since = this.#spunSince;
      }
      if (timeout === 0) throw this.#empty(0);
      return this.#waitGet(max, timeout, signal, since) as Promise<T[]>;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /** Takes an item if one is there now; throws `Empty` otherwise. Never waits. */
  getNowait(): T {
    const h = this.#h;
    if (h === null) throw closedError('queue', 'mq_receive', this.#name);
    const v = this.#take(h);
    if (v === NONE) throw this.#empty(0);
    return v;
  }

  /**
   * Takes an item, blocking the calling thread (and its event loop) while the
   * queue is empty; throws `Empty` after `timeout` ms. For scripts.
   */
  getSync(options?: SyncOptions): T {
    const o = validateOptions<SyncOptions>(options, SYNC_KEYS);
    const timeout = validateTimeout(o.timeout);
    const b = this.#handle('mq_receive').receiveSync(timeout);
    if (b === null) throw this.#empty(timeout);
    return this.#decode(b);
  }

  /**
   * Iterates over items as they arrive: `for await (const job of q.iterate({ signal }))`.
   * Ends when the queue is closed; an abort rejects with `AbortError`. A
   * message that cannot be decoded is handled as `onDecodeError` says
   * (default: the queue's option, else `'throw'`).
   */
  async *iterate(options?: IterateOptions): AsyncGenerator<T, void, undefined> {
    const o = validateOptions<IterateOptions>(options, ITERATE_KEYS);
    const signal = validateSignal(o.signal);
    const onDecodeError = o.onDecodeError === undefined ? this.#onDecodeError : validateOnDecodeError(o.onDecodeError);
    const getOptions = signal === undefined ? undefined : { signal };
    for (;;) {
      if (this.#h === null) return;
      let item: T;
      try {
        item = await this.get(getOptions);
      } catch (err) {
        if (this.#h === null && err instanceof IPCError && err.code === 'EBADF') return;
        if (err instanceof DecodeError && onDecodeError !== 'throw') {
          if (typeof onDecodeError === 'function') onDecodeError(err);
          continue;
        }
        throw err;
      }
      yield item;
    }
  }

  /** `for await (const item of q)`: items as they arrive, until the queue is closed. */
  [Symbol.asyncIterator](): AsyncGenerator<T, void, undefined> {
    return this.iterate();
  }

  #priority(value: unknown): number {
    const p = validateInteger(value, 'priority', 0, MQ_PRIO_MAX - 1, 0);
    if (p !== 0 && !this.#large) {
      throw ipcError(
        'ENOTSUP',
        "priorities need transport 'mq' (a POSIX message queue orders by priority in the kernel); a 'shm' queue is strictly FIFO",
        'ring_put',
        this.#name,
      );
    }
    return p;
  }

  #tooLarge(bytes: number): IPCError {
    return ipcError(
      'EMSGSIZE',
      `an item of ${bytes} bytes does not fit the queue's ring of ${this.#capacity} bytes (at most ${this.#msgsize} bytes an item: capacity minus the ${RECORD_HEADER}-byte record header); create the queue with a larger "capacity"`,
      'ring_put',
      this.#name,
    );
  }

  #empty(timeout: number): Empty {
    return new Empty(timeout > 0 ? `No item arrived in queue '${this.#name}' within ${timeout} ms` : `Queue '${this.#name}' is empty`);
  }

  #full(sent: number, timeout = 0): Full {
    return new Full(timeout > 0 ? `Queue '${this.#name}' stayed full for ${timeout} ms` : `Queue '${this.#name}' is full`, sent);
  }

  /** `since`: when the spin before this wait began (0: none); the wait's timer gets what it left of `timeout`. */
  #waitGet(max: number, timeout: number, signal: AbortSignal | undefined, since = 0): Promise<T | T[]> {
    const left = timeout < 0 || since === 0 ? timeout : Math.max(0, timeout - (performance.now() - since));
    return this.#getters.wait({ max, ms: timeout, since }, left, signal) as Promise<T | T[]>;
  }

  /**
   * Adapts the spin to how long gets wait: up to twice the last wait, from
   * the transport's spinMs to SPIN_GROWTH times it; a wait longer than that
   * brings it back down. So two processes in a ping-pong whose answer takes
   * longer than the base spin (a large item's encoding, or one side woken by
   * an engine thread while the other's spin ran out, which would repeat
   * every round) spin long enough to catch each other, and a consumer whose
   * items come rarely spins only the base time.
   */
  #learn(waited: number, spinMs: number): void {
    const top = spinMs * SPIN_GROWTH;
    this.#spinBudget = waited > top ? spinMs : Math.min(top, Math.max(spinMs, 2 * waited));
  }

  /**
   * The spin before a get waits (the queue was just found empty and no
   * getter of this process waits before this one, so FIFO holds): up to the
   * transport's spinMs (and at most `timeout` ms, when >= 0), on the event
   * loop's thread, it looks at the ring's count word (one Atomics.load, no
   * native call) and takes an item only when one is there; an item put by
   * another process in that time is handed over with no waiter, no thread
   * wake-up and no hop. Another consumer may win the item it saw: it looks
   * again. Returns the item (max 0) or the items (max > 0), or NONE when the
   * spin ran out or did not run (SpinGate: after empty spins it skips some);
   * #spent says how long it took. A decode error is thrown (the item is
   * consumed, as in #take).
   */
  #spinTake(h: QueueTransport, max: number, timeout: number): unknown {
    this.#spunSince = 0;
    const spinMs = h.spinMs;
    if (spinMs === undefined || spinMs === 0 || !this.#gate.open()) return NONE;
    const budget = Math.max(spinMs, this.#spinBudget);
    const start = performance.now();
    const end = start + (timeout >= 0 && timeout < budget ? timeout : budget);
    let now = start;
    for (;;) {
      const seq = h.putSeq!();
      if (h.readable!()) {
        if (max === 0) {
          const v = this.#take(h);
          if (v !== NONE) {
            this.#gate.hit();
            this.#learn(performance.now() - start, spinMs);
            return v;
          }
        } else {
          const r = this.#takeMany(h, max);
          if (r.taken > 0) {
            this.#gate.hit();
            this.#learn(performance.now() - start, spinMs);
            if (r.error !== NONE) throw r.error;
            return r.items;
          }
        }
      }
      // Nothing there (or another consumer won it): wait for the next put.
      while (h.putSeq!() === seq && (now = performance.now()) < end);
      if (now >= end) break;
    }
    this.#spunSince = start;
    this.#gate.miss();
    return NONE;
  }

  #waitPut(messages: Message[], priority: number, timeout: number, signal: AbortSignal | undefined, next = 0): Promise<void> {
    waitingSegments(messages, next);
    return this.#putters.wait({ messages, next, priority }, timeout, signal);
  }

  #dropUnsent(p: Putter): void {
    for (let i = p.next; i < p.messages.length; i++) {
      const seg = p.messages[i]!.segment;
      if (seg !== undefined) removeSegment(seg);
    }
  }

  /**
   * Tells the native side what the waiters need now. It costs no system call:
   * the native side keeps watching interest that is no longer wanted until
   * it fires (and only unrefs the handle), so a caller that awaits get() in a
   * loop asks again without an epoll_ctl pair or an extra loop turn per message.
   */
  #watch(): void {
    const h = this.#h;
    if (h === null) return;
    const events = (this.#getters.size > 0 ? READABLE : 0) | (this.#putters.size > 0 ? WRITABLE : 0);
    if (events === this.#events) return;
    h.watch(events, this.#onPoll);
    this.#events = events;
  }

  /**
   * The descriptor is ready: serve waiters in arrival order for as long as the
   * queue allows. Level-triggered polling calls again while readiness lasts, so
   * a message that another process takes first costs one empty attempt, never
   * a lost wake-up.
   */
  #serve(status: number): void {
    const h = this.#h;
    if (h === null) return;
    try {
      if (status < 0) throw sysError(-status, 'uv_poll', this.#name);
      // Taking messages makes room for our putters; sending gives our getters
      // something to take: go round while one side feeds the other.
      for (let again = true; again; ) {
        this.#serveGetters(h);
        again = this.#servePutters(h) && this.#getters.size > 0;
      }
    } catch (err) {
      this.#getters.rejectAll(err);
      this.#putters.rejectAll(err);
    }
    this.#watch();
  }

  /** Hands messages to getters in arrival order until the queue is empty. */
  #serveGetters(h: QueueTransport): void {
    const getters = this.#getters;
    for (let g = getters.first(); g !== undefined; g = getters.first()) {
      if (this.#undelivered !== NONE) {
        getters.reject(g, this.#takeUndelivered());
        continue;
      }
      let value: unknown;
      if (g.data.max === 0) {
        const n = this.#receive(h);
        if (n < 0) return;
        try {
          value = this.#decodeRx(n);
        } catch (err) {
          getters.reject(g, err);
          continue;
        }
      } else {
        const r = this.#takeMany(h, g.data.max);
        if (r.taken === 0) return;
        if (r.error !== NONE) {
          getters.reject(g, r.error);
          continue;
        }
        value = r.items;
      }
      // A wait that began with a spin: a short one teaches the next spin to last (#learn).
      if (g.data.since !== 0) {
        const spinMs = h.spinMs ?? 0;
        const waited = performance.now() - g.data.since;
        this.#learn(waited, spinMs);
      }
      getters.resolve(g, value);
    }
  }

  /** Sends putters' messages in arrival order until the queue is full; true if any was sent. */
  #servePutters(h: QueueTransport): boolean {
    let sent = false;
    const putters = this.#putters;
    for (let w = putters.first(); w !== undefined; w = putters.first()) {
      const p = w.data;
      const n =
        p.messages.length - p.next === 1
          ? h.send(p.messages[p.next]!.bytes, p.priority)
            ? 1
            : 0
          : h.sendMany(p.messages.map((m) => m.bytes), p.priority, p.next);
      announcedSegments(p.messages, p.next, p.next + n);
      p.next += n;
      if (n > 0) sent = true;
      if (p.next < p.messages.length) break;
      putters.resolve(w, undefined);
    }
    return sent;
  }

  /**
   * Closes this handle (`mq_close`). Pending `get`s and `put`s in this process
   * reject with IPCError `EBADF` (unsent items stay unsent); `for await` loops
   * end. The queue and its messages live on until unlinked. Idempotent.
   */
  close(): void {
    const h = this.#h;
    if (h === null) return;
    this.#h = null;
    this.#getters.rejectAll(closedError('queue', 'mq_receive', this.#name));
    this.#putters.rejectAll(closedError('queue', 'mq_send', this.#name));
    h.close();
  }

  /**
   * Removes the queue's name (`mq_unlink`) and any side segments of large items
   * still pending. Open handles keep working until closed.
   */
  unlink(): void {
    QueueClass.unlink(this.#name);
  }

  /**
   * Removes the queue `name` of either kind (the `'shm'` segment and the
   * `'mq'` queue, with its pending side segments). Throws IPCError ENOENT if
   * neither exists (segments are removed regardless).
   */
  static unlink(name: string): void {
    const n = validateName(name);
    removeAllSegments(n);
    let removed = false;
    let missing: unknown;
    let failure: unknown;
    for (const remove of [RingTransport.unlink, MqTransport.unlink]) {
      try {
        remove(n);
        removed = true;
      } catch (err) {
        if (err instanceof IPCError && err.code === 'ENOENT') missing = err;
        else failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    if (!removed) throw missing;
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal how a child process reopens this queue: by name, with its codec, never creating it. */
  [kReopen](): ReopenSpec {
    this.#handle('mq_open');
    return { kind: 'Queue', name: this.#name, options: { codec: codecOption(this.#codec, 'Queue'), create: false } };
  }
}

/** Options that make a queue of Buffers: `codec: 'raw'`. */
export type RawQueueOptions = Omit<QueueOptions<Buffer>, 'codec'> & { codec: 'raw' };

/**
 * The constructor of {@link Queue}: the codec drives the item type. With
 * `codec: 'raw'` items are Buffers (`Queue<Buffer>`); otherwise they are
 * what you say (`new Queue<Job>(...)`), and `'raw'` is refused for an item
 * type that a Buffer is not.
 */
export interface QueueConstructor {
  new (name: string, options: RawQueueOptions): Queue<Buffer>;
  new <T = unknown>(name: string, options?: QueueOptions<T>): Queue<T>;
  readonly prototype: Queue<unknown>;
  /**
   * Removes the queue `name` (`mq_unlink`) and its pending side segments.
   * Throws IPCError ENOENT if the queue does not exist (segments are removed
   * regardless).
   */
  unlink(name: string): void;
}

/** A queue of items of type `T` (see the class documentation above). */
export type Queue<T = unknown> = QueueClass<T>;
// The class keeps its name for stack traces and `constructor.name`.
Object.defineProperty(QueueClass, 'name', { value: 'Queue' });
export const Queue: QueueConstructor = QueueClass;
