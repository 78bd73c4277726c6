/**
 * POSIX shared memory: `SharedMemory` (raw bytes), `Value` and `SharedArray`
 * (typed cells with Python `array` typecodes and native atomic operations),
 * shared by name with other Node processes, Python's
 * `multiprocessing.shared_memory` and C.
 *
 * Layout: a segment holds exactly the caller's bytes, from offset 0, with no
 * header. A `Value('i')` is a 4-byte segment holding one native-endian int32;
 * a `SharedArray('d', n)` is `8 * n` bytes of native-endian doubles. A
 * `Value`'s or `SharedArray`'s lock is the named semaphore of the same name
 * (glibc keeps it at `/dev/shm/sem.NAME`, beside the segment `/dev/shm/NAME`).
 * @module
 */
import { constants as bufferConstants } from 'node:buffer';
import { markAsUntransferable } from 'node:worker_threads';
import { binding } from '../core/binding.js';
import { randomSegmentName, validateSemaphoreName } from '../core/names.js';
import type { Handle } from '../core/binding.js';
import { ErrorCode, IPCError, closedError, ipcError, rangeError } from '../core/errors.js';
import { Lock } from '../sync/semaphore.js';
import { typeInfo } from './typecodes.js';
import type { ScalarOf, TypeInfo, Typecode, TypedArrayOf } from './typecodes.js';
import {
  typeError,
  validateBoolean,
  validateInteger,
  validateMode,
  validateName,
  keysOf,
  validateOptions,
} from '../core/validate.js';

export type { Typecode, BigIntTypecode, ScalarOf, TypedArrayOf } from './typecodes.js';

/** The integer typed arrays JavaScript's Atomics accept. */
type AtomicView = Int8Array | Uint8Array | Int16Array | Uint16Array | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/** The largest Buffer this runtime makes (4 GiB on Node 20): the largest segment we create or view. */
const MAX_SIZE = bufferConstants.MAX_LENGTH;
const WHEN_SMALLER_MAP_AS_IS = 0;
const WHEN_SMALLER_GROW = 1;
const WHEN_SMALLER_WAIT = 2;
/**
 * How long an opener waits (WHEN_SMALLER_WAIT) for a racing creator to give
 * the segment its size: the creator is between its shm_open and its first
 * write, microseconds apart, so this only matters if the creator died there.
 */
const SIZE_WAIT_MS = 1000;

const SHARED_MEMORY_KEYS = keysOf<SharedMemoryOptions>()('create', 'size', 'exclusive', 'mode', 'readOnly');
const CELLS_KEYS = keysOf<SharedCellsOptions>()('name', 'lock', 'create', 'exclusive', 'mode', 'readOnly');

/** The size of a memory page: mappings are made of whole pages. */
export const PAGE_SIZE: number = binding.SHM_PAGE_SIZE;


function readOnlyError(path: string): IPCError {
  return ipcError('EACCES', 'segment is mapped read-only', 'write', path);
}

interface OpenRequest {
  /** With its leading slash; undefined: a fresh random name, created exclusively. */
  name: string | undefined;
  create: boolean;
  exclusive: boolean;
  readOnly: boolean;
  mode: number;
  size: number;
  init: Uint8Array | null;
  whenSmaller: 0 | 1 | 2;
}

/** One open, mapped segment: the state SharedMemory, Value and SharedArray share. */
class Segment {
  h: Handle | null;
  readonly name: string;
  readonly size: number;
  readonly created: boolean;
  readonly readOnly: boolean;
  #ab: ArrayBuffer | null = null;

  constructor(req: OpenRequest) {
    let result: [Handle, boolean, number] | undefined;
    let name = req.name;
    if (name === undefined) {
      // Random names collide only by bad luck; try again as Python does.
      for (let attempt = 0; result === undefined; attempt++) {
        name = randomSegmentName();
        try {
          result = binding.shmOpen(name, true, true, false, req.mode, req.size, req.init, WHEN_SMALLER_MAP_AS_IS, 0);
        } catch (err) {
          if (!(err instanceof IPCError && err.code === 'EEXIST') || attempt >= 100) throw err;
        }
      }
    } else {
      result = binding.shmOpen(name, req.create, req.exclusive, req.readOnly, req.mode, req.size, req.init, req.whenSmaller, SIZE_WAIT_MS);
    }
    [this.h, this.created, this.size] = result;
    this.name = name as string;
    this.readOnly = req.readOnly;
  }

  handle(syscall: string): Handle {
    if (this.h === null) throw closedError('shared memory', syscall, this.name);
    return this.h;
  }

  /** The one ArrayBuffer over the mapping, made on first use. */
  arrayBuffer(): ArrayBuffer {
    if (this.#ab === null) {
      if (this.size > MAX_SIZE) {
        throw rangeError('ERR_BUFFER_TOO_LARGE', `The segment '${this.name}' is ${this.size} bytes; one Buffer can hold at most ${MAX_SIZE} on this runtime (buffer.constants.MAX_LENGTH)`);
      }
      const ab = binding.shmBuffer(this.handle('mmap'), MAX_SIZE);
      // Transferring it to a worker would move the memory out of reach of
      // close()'s detach, and the worker could touch it after munmap.
      markAsUntransferable(ab);
      this.#ab = ab;
    }
    return this.#ab;
  }

  close(): void {
    const h = this.h;
    if (h === null) return;
    this.h = null;
    this.#ab = null;
    binding.shmClose(h);
  }

  /** Closes and, if this process created the segment, removes its name (failed construction). */
  abandon(): void {
    this.close();
    if (this.created) {
      try {
        binding.shmUnlink(this.name);
      } catch {
        // Someone else removed it already: nothing left to clean.
      }
    }
  }
}

function validateSize(value: unknown, argName = 'size'): number {
  return validateInteger(value, argName, 1, MAX_SIZE);
}

// ---------------------------------------------------------------------------
// SharedMemory

/** Options for `new SharedMemory(name, options)`. */
export interface SharedMemoryOptions {
  /**
   * Create the segment if it does not exist. Default `false` when a name is
   * given (open an existing segment, as Python's `SharedMemory(name)`), and
   * always true without a name.
   */
  create?: boolean;
  /**
   * Size in bytes of a segment this call creates (required with `create`):
   * an integer from 1 to `buffer.constants.MAX_LENGTH` (4 GiB on Node 20).
   * An existing segment smaller than `size` is grown to it (zero-filled) when
   * `create` is true; when opening only, `size` is ignored and the whole
   * segment is mapped, as Python does.
   */
  size?: number;
  /** With `create`: fail with EEXIST if the name exists (Python's `create=True`). Default false. */
  exclusive?: boolean;
  /** Permission bits of a segment this call creates (the umask applies). Default `0o600`. */
  mode?: number;
  /**
   * Open for reading only (`O_RDONLY`), e.g. a segment whose mode does not let
   * this user write. See `buffer` for what writes do then. Not with `create`.
   */
  readOnly?: boolean;
}

/**
 * A named POSIX shared-memory segment (`shm_open` + `mmap`), Python's
 * `multiprocessing.shared_memory.SharedMemory` for Node.
 *
 * ```ts
 * const shm = new SharedMemory('frame', { create: true, size: 1 << 20 });
 * shm.buffer.write('hello');          // other processes see it at once
 * // Python: SharedMemory(name='frame').buf[:5] == b'hello'
 * shm.close();
 * shm.unlink();                       // when nobody needs the name any more
 * ```
 *
 * Names follow Python: `'frame'` (or `'/frame'`) here and Python's
 * `SharedMemory(name='frame')` both reach `/dev/shm/frame`, and `name`
 * reports `'frame'` as Python does.
 */
export class SharedMemory implements Disposable {
  readonly #seg: Segment;
  #buffer: Buffer | null = null;

  /**
   * Opens the segment `name`, or creates it (`create: true`, `size` bytes,
   * zero-filled). Without a name, creates a segment with a fresh random name
   * (`psm_` and 8 hex digits, as Python's `SharedMemory(create=True)`):
   * `new SharedMemory({ size: 4096 })` or `new SharedMemory(undefined, { size })`.
   *
   * Mapping costs the same for any size: pages are allocated when first
   * written (tmpfs is sparse). A segment larger than the free space of
   * `/dev/shm` (64 MiB by default in Docker) maps, but touching a page that
   * cannot be allocated kills the process with SIGBUS; size `/dev/shm`
   * accordingly.
   * @throws TypeError / RangeError for bad arguments (size must be an integer
   *   >= 1 to create); IPCError ENOENT (missing, without `create`), EEXIST
   *   (`exclusive`), EACCES (mode), EINVAL (mapping an empty segment), ENOMEM.
   */
  constructor(name?: string | null, options?: SharedMemoryOptions);
  constructor(options: SharedMemoryOptions);
  constructor(name?: string | null | SharedMemoryOptions, options?: SharedMemoryOptions) {
    if (typeof name === 'object' && name !== null && options === undefined) {
      options = name;
      name = undefined;
    }
    if (options !== null && typeof options === 'object' && 'name' in options) {
      throw typeError('ERR_INVALID_ARG_VALUE', `The "options" argument has an unknown option "name": pass the name as the first argument, new SharedMemory(name, { size })`);
    }
    const o = validateOptions<SharedMemoryOptions>(options, SHARED_MEMORY_KEYS);
    const named = name !== undefined && name !== null;
    const osName = named ? validateName(name) : undefined;
    const create = validateBoolean(o.create, 'create', !named);
    const exclusive = validateBoolean(o.exclusive, 'exclusive', false);
    const readOnly = validateBoolean(o.readOnly, 'readOnly', false);
    const mode = validateMode(o.mode);
    if (!named && !create) {
      throw typeError('ERR_INCOMPATIBLE_OPTION_PAIR', 'A name is required to open an existing segment (create: false)');
    }
    if (readOnly && create) {
      throw typeError('ERR_INCOMPATIBLE_OPTION_PAIR', 'Option "readOnly" cannot be used with "create": a created segment is written by its creator');
    }
    let size = 0;
    if (create) {
      if (o.size === undefined) {
        throw rangeError('ERR_OUT_OF_RANGE', 'The "size" option is required to create a segment: an integer >= 1 (bytes)');
      }
      size = validateSize(o.size);
    } else if (o.size !== undefined) {
      validateSize(o.size);
    }
    this.#seg = new Segment({
      name: osName,
      create,
      exclusive,
      readOnly,
      mode,
      size,
      init: null,
      whenSmaller: create ? WHEN_SMALLER_GROW : WHEN_SMALLER_MAP_AS_IS,
    });
  }

  /**
   * A Buffer over the whole mapping: no copy, the very bytes other processes
   * see. Every read shows their latest writes; nothing is flushed or synced.
   * The same Buffer is returned every time; `buffer.buffer` is the underlying
   * ArrayBuffer, for typed-array views (`new Float64Array(shm.buffer.buffer)`).
   *
   * A segment larger than `buffer.constants.MAX_LENGTH` (made by another
   * program) opens, but this getter throws RangeError `ERR_BUFFER_TOO_LARGE`.
   *
   * After `close()` that ArrayBuffer is detached: Buffers and views made from
   * it read as empty (`length` 0), and this getter throws EBADF; the unmapped
   * memory is never touched. The ArrayBuffer cannot be transferred to a worker
   * (`postMessage` copies it); open the segment by name in the worker instead.
   *
   * With `readOnly`, the mapping is copy-on-write and private: it shows the
   * segment as others write it, but a byte written through this Buffer stays
   * in this process (that page stops following the segment) and never reaches
   * the segment; the process never crashes on it. `Value`/`SharedArray`
   * writes on a read-only segment throw EACCES.
   */
  get buffer(): Buffer {
    if (this.#buffer === null || this.#seg.h === null) {
      const ab = this.#seg.arrayBuffer();
      this.#buffer = Buffer.from(ab, 0, ab.byteLength);
    }
    return this.#buffer;
  }

  /**
   * The name as Python reports it: without the leading slash (`'frame'`). Pass
   * it to `new SharedMemory(name)` or Python's `SharedMemory(name=...)`.
   */
  get name(): string {
    return this.#seg.name.slice(1);
  }

  /** The mapped size in bytes: the segment's size when it was opened. */
  get size(): number {
    return this.#seg.size;
  }

  /** True if this call created the segment (rather than opening an existing one). */
  get created(): boolean {
    return this.#seg.created;
  }

  /** True if opened with `readOnly`. */
  get readOnly(): boolean {
    return this.#seg.readOnly;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#seg.h === null;
  }

  /**
   * Unmaps the segment and detaches every view of it (they read as empty).
   * The segment and its contents live on until unlinked. Idempotent.
   */
  close(): void {
    this.#buffer = null;
    this.#seg.close();
  }

  /**
   * Removes the name (`shm_unlink`): new opens fail with ENOENT; processes that
   * have it mapped keep using it; the memory is freed when the last one
   * unmaps. Works after `close()` too.
   * @throws IPCError ENOENT if the name is already gone.
   */
  unlink(): void {
    binding.shmUnlink(this.#seg.name);
  }

  /** Removes the segment `name` (`shm_unlink`). @throws IPCError ENOENT if it does not exist. */
  static unlink(name: string): void {
    binding.shmUnlink(validateName(name));
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

// ---------------------------------------------------------------------------
// Value and SharedArray

/** Options shared by `Value` and `SharedArray`. */
export interface SharedCellsOptions {
  /**
   * Name of the segment (and of its lock). Without one, a fresh random name
   * is created (`psm_…`); read it from `name` to share it.
   */
  name?: string;
  /**
   * `true` (default): `getLock()` returns a `Lock` named like the segment,
   * opened (or created) on first use. `false`: no lock (`getLock()` throws).
   * A `Lock`: `getLock()` returns it (it is not closed or unlinked for you).
   */
  lock?: boolean | Lock;
  /**
   * Create the segment if `name` does not exist. Default true; with false a
   * missing name fails with ENOENT. The initial contents are written only by
   * the process that creates the segment.
   */
  create?: boolean;
  /** Fail with EEXIST if the name exists. Default false. */
  exclusive?: boolean;
  /** Permission bits of a segment (and lock) this call creates. Default `0o600`. */
  mode?: number;
  /** Open an existing segment read-only: writes throw IPCError EACCES. Implies `create: false`. */
  readOnly?: boolean;
}

/** Options for `new Value(...)`. */
export type ValueOptions = SharedCellsOptions;
/** Options for `new SharedArray(...)`. */
export type SharedArrayOptions = SharedCellsOptions;

/**
 * What `Value` and `SharedArray` have in common: a segment of typed cells, a
 * lock found by the same name, and the lifecycle.
 */
export abstract class SharedCells<T extends Typecode> implements Disposable {
  /** @internal */
  protected readonly info: TypeInfo;
  readonly #seg: Segment;
  /** @internal the typed-array view (null after close). */
  protected cells: TypedArrayOf<T> | null;
  /**
   * @internal the same view, for JavaScript's Atomics (null for f/d, and after
   * close): an atomic operation is one hardware instruction on the mapping,
   * with no call into the addon.
   */
  protected atom: AtomicView | null;
  /** @internal false when opened readOnly. */
  protected readonly writable: boolean;
  readonly #count: number;
  readonly #mode: number;
  readonly #lockOption: boolean | Lock;
  #lock: Lock | null = null;

  /** @internal */
  protected constructor(kind: string, typecode: T, count: number, init: Uint8Array | null, options: SharedCellsOptions | undefined) {
    this.info = typeInfo(typecode);
    const o = validateOptions<SharedCellsOptions>(options, CELLS_KEYS);
    const named = o.name !== undefined && o.name !== null;
    const osName = named ? validateSemaphoreName(o.name) : undefined;
    const readOnly = validateBoolean(o.readOnly, 'readOnly', false);
    const create = validateBoolean(o.create, 'create', !readOnly);
    const exclusive = validateBoolean(o.exclusive, 'exclusive', false);
    this.#mode = validateMode(o.mode);
    if (o.lock !== undefined && typeof o.lock !== 'boolean' && !(o.lock instanceof Lock)) {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "lock" option must be a boolean or a Lock`);
    }
    this.#lockOption = o.lock ?? true;
    if (readOnly && create) {
      throw typeError('ERR_INCOMPATIBLE_OPTION_PAIR', 'Option "readOnly" cannot be used with "create: true"');
    }
    if (!named && !create) {
      throw typeError('ERR_INCOMPATIBLE_OPTION_PAIR', `A name is required to open an existing ${kind} (create: false)`);
    }
    const bytes = count * this.info.size;
    if (bytes > MAX_SIZE) {
      throw rangeError('ERR_OUT_OF_RANGE', `A ${kind} of ${count} '${this.info.code}' elements is ${bytes} bytes; at most ${MAX_SIZE} fit one Buffer on this runtime`);
    }
    this.#seg = new Segment({
      name: osName,
      create,
      exclusive,
      readOnly,
      mode: this.#mode,
      size: bytes,
      init,
      // The creator sizes and fills the segment with one pwrite; an opener
      // that raced it waits for that rather than reading a half-made value.
      whenSmaller: WHEN_SMALLER_WAIT,
    });
    try {
      if (this.#seg.size < bytes) {
        throw ipcError('EINVAL', `segment is ${this.#seg.size} bytes, smaller than the ${bytes} bytes of this ${kind}`, 'fstat', this.#seg.name);
      }
      this.#count = count;
      this.cells = this.info.view(this.#seg.arrayBuffer(), count) as TypedArrayOf<T>;
      this.atom = this.info.elem < 0 ? null : (this.cells as unknown as AtomicView);
      this.writable = !readOnly;
    } catch (err) {
      this.#seg.abandon();
      throw err;
    }
  }

  /** The name as Python reports it (no leading slash). The lock has the same name. */
  get name(): string {
    return this.#seg.name.slice(1);
  }

  /** The typecode (`'i'`, `'d'`, ...). */
  get typecode(): T {
    return this.info.code as T;
  }

  /** Bytes per element (Python's `array.itemsize`). */
  get itemsize(): number {
    return this.info.size;
  }

  /** True if this call created the segment and wrote the initial contents. */
  get created(): boolean {
    return this.#seg.created;
  }

  /** True if opened with `readOnly`. */
  get readOnly(): boolean {
    return this.#seg.readOnly;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.cells === null;
  }

  /** @internal the live typed view, or EBADF. */
  protected view(syscall: string): TypedArrayOf<T> {
    const c = this.cells;
    if (c === null) throw closedError(this.constructor.name, syscall, this.#seg.name);
    return c;
  }

  /** @internal the live view, writable, or EBADF / EACCES. */
  protected writableView(): TypedArrayOf<T> {
    const c = this.view('write');
    if (this.#seg.readOnly) throw readOnlyError(this.#seg.name);
    return c;
  }

  /** @internal the view for an atomic read, or EBADF / TypeError. */
  protected atomicView(): AtomicView {
    const a = this.atom;
    if (a === null) this.#noAtomics();
    return a;
  }

  /** @internal the view for an atomic write, or EBADF / TypeError / EACCES. */
  protected atomicWritable(): AtomicView {
    const a = this.atom;
    if (a === null) this.#noAtomics();
    if (!this.writable) throw readOnlyError(this.#seg.name);
    return a;
  }

  #noAtomics(): never {
    if (this.cells === null) throw closedError(this.constructor.name, 'atomic', this.#seg.name);
    throw typeError(ErrorCode.NOT_INTEGER, `Atomic operations need an integer typecode; '${this.info.code}' is floating point`);
  }

  /** @internal element count. */
  protected get count(): number {
    return this.#count;
  }

  /**
   * The lock guarding this object across processes: a `Lock` (named
   * semaphore) with the same name, opened on first call (created if no
   * process made it yet) and closed by `close()`. Every process that calls
   * `getLock()` on the same name gets the same lock, as Python's
   * `Value.get_lock()` guards its value.
   * ```ts
   * await counter.getLock().withAcquired(() => { counter.value = counter.value * 2 + 1; });
   * ```
   * @throws TypeError `ERR_IPC_NO_LOCK` if made with `lock: false`; IPCError EBADF after close.
   */
  getLock(): Lock {
    if (this.#lockOption instanceof Lock) return this.#lockOption;
    if (this.#lockOption === false) {
      throw typeError(ErrorCode.NO_LOCK, `This ${this.constructor.name} was made with lock: false and has no lock`);
    }
    if (this.cells === null) throw closedError(this.constructor.name, 'sem_open', this.#seg.name);
    if (this.#lock === null) this.#lock = new Lock(this.#seg.name, { mode: this.#mode });
    return this.#lock;
  }

  /**
   * Unmaps the segment (views of it read as empty afterwards) and closes the
   * lock this object opened. Names stay until `unlink()`. Idempotent.
   */
  close(): void {
    this.cells = null;
    this.atom = null;
    this.#seg.close();
    const lock = this.#lock;
    this.#lock = null;
    lock?.close();
  }

  /**
   * Removes the segment's name and the name of its lock semaphore (if it
   * exists, whoever created it), unless the lock was passed in as a `Lock`.
   * The lock goes with the segment because it is found by the segment's name:
   * left behind, a lock still held by a process that died would block the next
   * object created under that name.
   * @throws IPCError ENOENT if the segment's name is already gone.
   */
  unlink(): void {
    if (!(this.#lockOption instanceof Lock)) unlinkLockQuietly(this.#seg.name);
    binding.shmUnlink(this.#seg.name);
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function unlinkLockQuietly(osName: string): void {
  try {
    binding.semUnlink(osName);
  } catch (err) {
    if (!(err instanceof IPCError && err.code === 'ENOENT')) throw err;
  }
}

function unlinkCells(name: string): void {
  const osName = validateSemaphoreName(name);
  unlinkLockQuietly(osName);
  binding.shmUnlink(osName);
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * One typed value in shared memory, Python's `multiprocessing.Value` made
 * visible to other processes by name.
 *
 * ```ts
 * const hits = new Value('i', 0, { name: 'hits' }); // open, or create with 0
 * hits.add(1);                     // atomic across processes; returns the old value
 * hits.value;                      // plain read
 * await hits.getLock().withAcquired(() => { hits.value = hits.value * 2; });
 * ```
 *
 * Layout: `itemsize` bytes at offset 0 of the segment `name`, native byte
 * order (little-endian on x86-64 and arm64). Python reads a `Value('i')` with
 * `struct.unpack_from('i', SharedMemory(name='hits').buf)`.
 *
 * `value` is a plain load/store. `add`, `sub`, `and`, `or`, `xor`,
 * `exchange`, `compareExchange`, `load` and `store` are single hardware
 * atomic instructions (sequentially consistent), correct between processes
 * (integer typecodes only). 64-bit typecodes (`q Q l L`) take and give bigint.
 */
export class Value<T extends Typecode = Typecode> extends SharedCells<T> {
  /**
   * @param typecode one of `b B h H i I l L q Q f d` (Python's `array` codes).
   * @param initial the value a newly created segment starts with (default 0);
   *   ignored when the segment already exists.
   * @throws TypeError / RangeError for bad arguments (unknown typecode, an
   *   initial value of the wrong type or out of range); IPCError from
   *   `shm_open` (ENOENT, EEXIST, EACCES) or EINVAL if an existing segment is
   *   smaller than one element.
   */
  constructor(typecode: T, initial?: ScalarOf<T>, options?: ValueOptions) {
    const info = typeInfo(typecode);
    const value = initial === undefined ? info.zero : initial;
    info.check(value, 'initial');
    const cell = info.make(1);
    cell[0] = value as never;
    super('Value', typecode, 1, bytesOf(cell), options);
  }

  /** The current value (a plain, non-atomic read; use `load()` for an atomic one). */
  get value(): ScalarOf<T> {
    return this.view('read')[0] as ScalarOf<T>;
  }

  /** Sets the value (a plain store). @throws TypeError/RangeError if it does not fit the typecode. */
  set value(v: ScalarOf<T>) {
    const c = this.writableView();
    this.info.check(v, 'value');
    c[0] = v as never;
  }

  /** Atomically reads the value. */
  load(): ScalarOf<T> {
    return Atomics.load(this.atomicView() as Int32Array, 0) as ScalarOf<T>;
  }

  /** Atomically writes `v`; returns `v`. */
  store(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    Atomics.store(a as Int32Array, 0, v as number);
    return v;
  }

  /** Atomically adds `v` (wrapping around at the type's width); returns the previous value. */
  add(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.add(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /** Atomically subtracts `v` (wrapping); returns the previous value. */
  sub(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.sub(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise AND; returns the previous value. */
  and(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.and(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise OR; returns the previous value. */
  or(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.or(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise XOR; returns the previous value. */
  xor(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.xor(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /** Atomically replaces the value with `v`; returns the previous value. */
  exchange(v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(v, 'value');
    return Atomics.exchange(a as Int32Array, 0, v as number) as ScalarOf<T>;
  }

  /**
   * Atomically: if the value equals `expected`, replace it with `replacement`.
   * Returns the previous value either way (the swap happened iff it equals
   * `expected`), as `Atomics.compareExchange`.
   */
  compareExchange(expected: ScalarOf<T>, replacement: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    this.info.check(expected, 'expected');
    this.info.check(replacement, 'replacement');
    return Atomics.compareExchange(a as Int32Array, 0, expected as number, replacement as number) as ScalarOf<T>;
  }

  /** Removes the segment `name` and its lock semaphore. @throws IPCError ENOENT if the segment does not exist. */
  static unlink(name: string): void {
    unlinkCells(name);
  }
}

/**
 * A fixed-length typed array in shared memory, Python's
 * `multiprocessing.Array` made visible to other processes by name.
 *
 * ```ts
 * const grid = new SharedArray('d', 1024, { name: 'grid' }); // 1024 zeros, or the existing one
 * grid.array[3] = 1.5;           // a Float64Array over the segment: no copy
 * const counts = new SharedArray('I', [0, 0, 0, 0], { name: 'counts' });
 * counts.add(2, 1);              // atomic on element 2
 * ```
 *
 * Layout: `length * itemsize` bytes from offset 0 of the segment `name`,
 * elements in order, native byte order. Python reads it with
 * `SharedMemory(name='grid').buf.cast('d')` or `struct.unpack_from('1024d', ...)`.
 * An existing segment may be larger; this object views its first `length`
 * elements.
 */
export class SharedArray<T extends Typecode = Typecode> extends SharedCells<T> implements Iterable<ScalarOf<T>> {
  /**
   * @param typecode one of `b B h H i I l L q Q f d`.
   * @param lengthOrValues the number of elements (a new segment is zero-filled),
   *   or the initial elements (an array, typed array or iterable) that a newly
   *   created segment starts with; ignored, except for their count, when the
   *   segment already exists.
   * @throws TypeError / RangeError for bad arguments; IPCError as `Value`.
   */
  constructor(typecode: T, lengthOrValues: number | Iterable<ScalarOf<T>> | ArrayLike<ScalarOf<T>>, options?: SharedArrayOptions) {
    const info = typeInfo(typecode);
    let count: number;
    let init: Uint8Array | null = null;
    if (typeof lengthOrValues === 'number') {
      count = validateInteger(lengthOrValues, 'length', 1, 2 ** 32 - 1);
    } else if (lengthOrValues !== null && typeof lengthOrValues === 'object') {
      const values = Array.from(lengthOrValues as ArrayLike<ScalarOf<T>>);
      count = validateInteger(values.length, 'length', 1, 2 ** 32 - 1);
      const cells = info.make(count);
      for (let i = 0; i < count; i++) {
        info.check(values[i], `values[${i}]`);
        cells[i] = values[i] as never;
      }
      init = bytesOf(cells);
    } else {
      throw typeError('ERR_INVALID_ARG_TYPE', 'The "lengthOrValues" argument must be a number (length) or an array or iterable of values');
    }
    super('SharedArray', typecode, count, init, options);
  }

  /**
   * A typed array over the segment (`Float64Array` for `'d'`, `BigInt64Array`
   * for `'q'`, ...): reads and writes go straight to shared memory, no copy.
   * Plain element access is not atomic; use the methods below for that.
   * After `close()` it is detached (length 0) and this getter throws EBADF.
   * With `readOnly`, element writes through it stay private to this process
   * (a copy-on-write page, as `SharedMemory.buffer`); `set()` throws EACCES.
   */
  get array(): TypedArrayOf<T> {
    return this.view('read');
  }

  /** Number of elements. */
  get length(): number {
    return this.count;
  }

  #index(index: unknown): number {
    if (typeof index === 'number' && index >= 0 && index < this.count && Number.isInteger(index)) return index;
    return validateInteger(index, 'index', 0, this.count - 1);
  }

  /** Plain read of element `index`. */
  get(index: number): ScalarOf<T> {
    const c = this.view('read');
    return c[this.#index(index)] as ScalarOf<T>;
  }

  /** Plain write of element `index` (checked against the typecode). */
  set(index: number, v: ScalarOf<T>): void {
    const c = this.writableView();
    const i = this.#index(index);
    this.info.check(v, 'value');
    c[i] = v as never;
  }

  /** Atomically reads element `index`. */
  load(index: number): ScalarOf<T> {
    const a = this.atomicView();
    return Atomics.load(a as Int32Array, this.#index(index)) as ScalarOf<T>;
  }

  /** Atomically writes `v` to element `index`; returns `v`. */
  store(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    Atomics.store(a as Int32Array, i, v as number);
    return v;
  }

  /** Atomically adds `v` to element `index` (wrapping); returns its previous value. */
  add(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.add(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /** Atomically subtracts `v` from element `index` (wrapping); returns its previous value. */
  sub(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.sub(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise AND on element `index`; returns its previous value. */
  and(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.and(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise OR on element `index`; returns its previous value. */
  or(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.or(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /** Atomic bitwise XOR on element `index`; returns its previous value. */
  xor(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.xor(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /** Atomically replaces element `index` with `v`; returns its previous value. */
  exchange(index: number, v: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(v, 'value');
    return Atomics.exchange(a as Int32Array, i, v as number) as ScalarOf<T>;
  }

  /**
   * Atomically: if element `index` equals `expected`, replace it with
   * `replacement`. Returns the previous value either way.
   */
  compareExchange(index: number, expected: ScalarOf<T>, replacement: ScalarOf<T>): ScalarOf<T> {
    const a = this.atomicWritable();
    const i = this.#index(index);
    this.info.check(expected, 'expected');
    this.info.check(replacement, 'replacement');
    return Atomics.compareExchange(a as Int32Array, i, expected as number, replacement as number) as ScalarOf<T>;
  }

  /** Iterates over the current elements (plain reads). */
  [Symbol.iterator](): Iterator<ScalarOf<T>> {
    return (this.view('read') as unknown as Iterable<ScalarOf<T>>)[Symbol.iterator]();
  }

  /** Removes the segment `name` and its lock semaphore. @throws IPCError ENOENT if the segment does not exist. */
  static unlink(name: string): void {
    unlinkCells(name);
  }
}
