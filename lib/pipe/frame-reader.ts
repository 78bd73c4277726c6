/**
 * The receiving half of multiprocessing.connection's framing, as a state
 * machine over the bytes that arrive (no socket here: `Connection` feeds it
 * and asks it for frames, and tests drive it byte by byte).
 *
 * Small frames are cut out of the chunks that arrived. A frame of at least
 * {@link ASSEMBLE_MIN} bytes that a receiver accepts is assembled in a buffer
 * of its own, which the next reads may fill directly (see `readTarget`). That
 * buffer grows as bytes arrive, never ahead of them by more than
 * {@link GROW_FIRST} (as Python's `recv_bytes` grows its buffer): a peer that
 * announces 2 GiB and sends nothing costs nothing, and its memory is
 * committed (prefaulted) at most {@link PREFAULT_WINDOW} ahead of the bytes.
 * @internal
 * @module
 */
import { ipcError } from '../core/errors.js';

/** A frame at least this large is assembled in its own buffer as it arrives. */
export const ASSEMBLE_MIN = 64 * 1024;
/** The first size of an assembly buffer (or the frame's size if smaller); then it doubles as it fills. */
export const GROW_FIRST = 64 * 1024 * 1024;
// An assembly buffer at least this large is usually fresh pages from the OS:
// they are mapped in ahead of the reads (one system call per window) rather
// than by one page fault per 4 KiB as bytes arrive, which costs more than
// the copying itself, and more still when the kernel takes the faults inside
// read().
const PREFAULT_MIN = 256 * 1024;
/** How far ahead of the bytes received an assembly buffer's pages are committed. */
export const PREFAULT_WINDOW = 4 * 1024 * 1024;

export interface FrameReaderOptions {
  /** Commits the pages of a buffer (madvise MADV_POPULATE_WRITE); a no-op by default. */
  prefault?(b: Buffer): void;
  /** The object's path, for error messages. */
  path?: string;
  /** The first capacity of an assembly buffer (default {@link GROW_FIRST}). */
  firstCapacity?: number;
}

const noop = (): void => {};

export class FrameReader {
  // Received bytes not yet handed out: chunks[0] from offset #off.
  #chunks: Buffer[] = [];
  #off = 0;
  #avail = 0;
  // The parsed header of the frame at the front, while it is incomplete.
  #hdrLen = 0;
  #hdrSize = -1;
  // The frame being assembled: its buffer so far (capacity), its payload
  // bytes so far, and its header, to put back in front when it is complete.
  #asm: Buffer | null = null;
  #asmGot = 0;
  #asmHdr: Buffer | null = null;
  /** Bytes of #asm whose pages are committed. */
  #faulted = 0;
  // The rest of #asm, handed out as the buffer of the next read.
  #asmTarget: Buffer | null = null;
  readonly #prefault: (b: Buffer) => void;
  readonly #path: string | undefined;
  readonly #first: number;

  constructor(options: FrameReaderOptions = {}) {
    this.#prefault = options.prefault ?? noop;
    this.#path = options.path;
    this.#first = options.firstCapacity ?? GROW_FIRST;
  }

  /** Bytes received and not handed out, outside an assembly buffer. */
  get available(): number {
    return this.#avail;
  }

  /** True when any byte of a frame is here (for `poll`). */
  get hasData(): boolean {
    return this.#avail > 0 || this.#asm !== null;
  }

  /** How many bytes of an unfinished frame are here (header included), for "cut short" errors. */
  get partial(): number {
    return this.#avail + (this.#asm === null ? 0 : this.#hdrLen + this.#asmGot);
  }

  /** The payload size of the frame at the front, once `header()` returned true. */
  get frameSize(): number {
    return this.#hdrSize;
  }

  /** Forgets everything (the stream is closed or corrupt). */
  clear(): void {
    this.#chunks = [];
    this.#off = 0;
    this.#avail = 0;
    this.#hdrSize = -1;
    this.#asm = null;
    this.#asmHdr = null;
    this.#asmTarget = null;
  }

  /**
   * Where the next read should land: the rest of the assembly buffer (no
   * copy at all), or null when there is none (read into a shared buffer and
   * `push` the bytes).
   */
  readTarget(): Buffer | null {
    const asm = this.#asm;
    if (asm === null) return (this.#asmTarget = null);
    this.#commit(this.#asmGot);
    return (this.#asmTarget = asm.subarray(this.#asmGot));
  }

  /** True if `buf` is what `readTarget()` handed out last. */
  isTarget(buf: Uint8Array): boolean {
    return buf === this.#asmTarget && buf !== null;
  }

  /** `n` bytes were read into the last `readTarget()`. */
  filled(n: number): void {
    this.#asmTarget = null;
    if (n === 0) return;
    this.#asmGot += n;
    if (this.#asmGot === this.#asm!.length) this.#full();
  }

  /**
   * Takes `n` bytes from `buf`: `owned` when buf is ours to keep (a chunk
   * Node allocated), else they are copied out (a shared read buffer).
   */
  push(buf: Buffer, n: number, owned: boolean): void {
    if (n === 0) return;
    let off = 0;
    while (this.#asm !== null && off < n) {
      const asm = this.#asm;
      const k = Math.min(asm.length - this.#asmGot, n - off);
      this.#commit(this.#asmGot + k);
      buf.copy(asm, this.#asmGot, off, off + k);
      this.#asmGot += k;
      off += k;
      if (this.#asmGot === asm.length) this.#full();
    }
    if (off < n) {
      const rest = owned ? (off === 0 && n === buf.length ? buf : buf.subarray(off, n)) : Buffer.from(buf.subarray(off, n));
      this.#chunks.push(rest);
      this.#avail += n - off;
    }
  }

  /**
   * Parses the header at the front; false if it is not all here yet.
   * @throws IPCError EPROTO for a length no multiprocessing peer sends.
   */
  header(): boolean {
    if (this.#hdrSize >= 0) return true;
    if (this.#avail < 4) return false;
    const first = this.#chunks[0]!;
    const n = first.length - this.#off >= 4 ? first.readInt32BE(this.#off) : this.#peek(4).readInt32BE(0);
    if (n >= 0) {
      this.#hdrLen = 4;
      this.#hdrSize = n;
      return true;
    }
    if (n !== -1) {
      throw ipcError('EPROTO', `invalid frame length ${n}: the peer does not speak multiprocessing.connection framing`, 'recv', this.#path);
    }
    if (this.#avail < 12) return false;
    const big = this.#peek(12).readBigUInt64BE(4);
    this.#hdrLen = 12;
    this.#hdrSize = big > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(big);
    return true;
  }

  /**
   * True when the frame at the front (whose header is parsed) is all here.
   * When it is not and is large, it starts being assembled in its own buffer
   * (the caller has accepted its size).
   */
  complete(): boolean {
    if (this.#asm === null && this.#avail >= this.#hdrLen + this.#hdrSize) return true;
    if (this.#asm === null && this.#hdrSize >= ASSEMBLE_MIN) this.#assemble();
    return false;
  }

  /** Takes the payload of the complete frame at the front. */
  take(): Buffer {
    this.#takeBytes(this.#hdrLen);
    const data = this.#takeBytes(this.#hdrSize);
    this.#hdrSize = -1;
    return data;
  }

  /** Moves the (incomplete) frame at the front into a buffer of its own. */
  #assemble(): void {
    const size = this.#hdrSize;
    const hdr = Buffer.from(this.#takeBytes(this.#hdrLen));
    const got = this.#avail;
    const asm = Buffer.allocUnsafe(Math.min(size, Math.max(this.#first, 2 * got)));
    this.#asm = asm;
    this.#faulted = 0;
    this.#commit(got);
    let at = 0;
    let off = this.#off;
    for (const c of this.#chunks) {
      c.copy(asm, at, off);
      at += c.length - off;
      off = 0;
    }
    this.#chunks = [];
    this.#off = 0;
    this.#avail = 0;
    this.#asmGot = got;
    this.#asmHdr = hdr;
  }

  /** The assembly buffer is full: the frame is complete, or the buffer doubles (up to the frame's size). */
  #full(): void {
    const asm = this.#asm!;
    const size = this.#hdrSize;
    if (asm.length === size) {
      // Complete: it goes back in line as header + payload, whole.
      this.#chunks = [this.#asmHdr!, asm];
      this.#off = 0;
      this.#avail = this.#asmHdr!.length + asm.length;
      this.#asm = null;
      this.#asmHdr = null;
      return;
    }
    const bigger = Buffer.allocUnsafe(Math.min(size, asm.length * 2));
    this.#asm = bigger;
    this.#faulted = 0;
    this.#commit(asm.length);
    asm.copy(bigger, 0);
  }

  /** Commits the assembly buffer's pages up to `upTo` bytes and one window beyond. */
  #commit(upTo: number): void {
    const asm = this.#asm!;
    if (asm.length < PREFAULT_MIN || upTo < this.#faulted - PREFAULT_WINDOW / 2) return;
    const end = Math.min(asm.length, upTo + PREFAULT_WINDOW);
    if (end <= this.#faulted) return;
    this.#prefault(asm.subarray(this.#faulted, end));
    this.#faulted = end;
  }

  /** Copies n bytes from the front (zero-copy when they lie in one chunk). */
  #peek(n: number): Buffer {
    const first = this.#chunks[0]!;
    if (first.length - this.#off >= n) return first.subarray(this.#off, this.#off + n);
    const out = Buffer.allocUnsafe(n);
    let got = 0;
    let off = this.#off;
    for (const c of this.#chunks) {
      const k = Math.min(n - got, c.length - off);
      c.copy(out, got, off, off + k);
      got += k;
      off = 0;
      if (got === n) break;
    }
    return out;
  }

  #takeBytes(n: number): Buffer {
    const out = n === 0 ? Buffer.alloc(0) : this.#peek(n);
    let left = n;
    while (left > 0) {
      const first = this.#chunks[0]!;
      const k = Math.min(left, first.length - this.#off);
      left -= k;
      this.#off += k;
      if (this.#off === first.length) {
        this.#chunks.shift();
        this.#off = 0;
      }
    }
    this.#avail -= n;
    return out;
  }
}
