/**
 * `Connection`: one end of a pipe or stream socket that sends and receives
 * whole messages in multiprocessing.connection's frame format, so that the
 * peer may be Python's `multiprocessing.connection.Connection`.
 * @module
 */
import { Socket } from 'node:net';
import { binding } from '../core/binding.js';
import { jsonText, resolveCodec } from '../core/codec.js';
import type { Codec, CodecOption } from '../core/codec.js';
import { closedError, describeValue, eofError, fromNodeError, ipcError, isEof } from '../core/errors.js';
import { LoopRef, WaitList } from '../core/waitlist.js';
import type { Waiter } from '../core/waitlist.js';
import { encodeHeader, MAX_FRAME } from './frame.js';
import { FrameReader } from './frame-reader.js';
import { codecOption, kReopen } from '../core/transfer.js';
import type { ReopenSpec } from '../core/transfer.js';
import {
  typeError,
  rangeError,
  throwIfAborted,
  validateBoolean,
  validateInteger,
  keysOf,
  validateOptions,
  validateSignal,
  validateTimeout,
  validateWaitOptions,
} from '../core/validate.js';

/** Options for `new Connection(fd)` (and the factories that make connections). */
export interface ConnectionOptions<T = unknown> {
  /**
   * How `send()`/`recv()` encode items: `'json'` (default; the bytes are the
   * UTF-8 JSON text), `'v8'`, `'raw'` (Buffers), `'pickle'` (what Python's `send()`/`recv()` speak), or `{ encode, decode }`.
   */
  codec?: CodecOption<T>;
  /** Whether this end may receive. Default: true unless the descriptor is write-only. */
  readable?: boolean;
  /** Whether this end may send. Default: true unless the descriptor is read-only. */
  writable?: boolean;
}

/** Options for a receive or a poll. */
export interface RecvOptions {
  /** Give up after this many milliseconds: rejects with IPCError `ETIMEDOUT`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`; no message is consumed. */
  signal?: AbortSignal;
}

/**
 * The default `maxLength` of `recv()`: 64 MiB. A peer cannot make `recv()`
 * take more memory than this unless the caller allows it.
 */
export const RECV_MAX_LENGTH = 64 * 1024 * 1024;

/** Options for `recv()`. */
export interface RecvMessageOptions extends RecvOptions {
  /**
   * The longest message accepted, in bytes (default {@link RECV_MAX_LENGTH},
   * 64 MiB). A longer one is refused with IPCError `EMSGSIZE` before it is
   * read, and stays first in line for a call that allows it.
   */
  maxLength?: number;
}

/** What an internal factory hands to the constructor (module-private). */
interface Adopt {
  socket?: Socket;
  prefix?: number;
  path?: string;
  readable?: boolean;
  writable?: boolean;
}
let adopting: Adopt | null = null;

/**
 * Builds a Connection over a net.Socket that Node already owns (accepted or
 * connected), or over a descriptor with extra state. @internal
 */
export function adoptConnection<T>(what: Adopt, fd: number, options?: ConnectionOptions<T>): Connection<T> {
  adopting = what;
  try {
    return new Connection<T>(fd, options);
  } finally {
    adopting = null;
  }
}

/**
 * The descriptor under a socket Node owns. Node exposes no public accessor;
 * its own child_process and cluster modules read the same field.
 * @internal
 */
export function socketFd(socket: Socket): number {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' ? fd : -1;
}

const CONNECTION_KEYS = keysOf<ConnectionOptions>()('codec', 'readable', 'writable');
const RECV_KEYS = keysOf<RecvOptions>()('timeout', 'signal');
const RECV_MESSAGE_KEYS = keysOf<RecvMessageOptions>()('timeout', 'signal', 'maxLength');
const POLL_KEYS = keysOf<{ signal?: AbortSignal }>()('signal');
const RESOLVED = Promise.resolve();
const NOT_READY = { value: false };
// An end dropped without close() before it was ever used (say, one meant for
// a child that never started) gives its descriptor back when collected. Once
// libuv drives the descriptor, the open handle keeps the connection alive,
// as an open net.Socket is, until close().
const unused = new FinalizationRegistry<number>((fd) => binding.pipeFdClose(fd));
const KIND_BYTES = 0;
const KIND_OBJECT = 1;
const KIND_INTO = 2;
// Frames up to this size go out as one buffer (header copied in front): one
// write, and no small separate header segment for the peer to wake up for.
const COPY_MAX = 16 * 1024;
// While nobody is receiving, read ahead at most this much before pausing, so
// a peer that floods us meets the OS's back-pressure, not our memory.
const READ_AHEAD = 256 * 1024;
// Descriptors this module opens are read into one buffer per thread: libuv
// reads into it and the callback copies the bytes out before returning, so
// connections never share bytes in flight. 256 KiB is a quarter of the reads
// and wake-ups of Node's usual 64 KiB chunks, with no allocation per read.
// While a frame is being assembled, the reads go straight into the rest of
// that frame's own buffer instead (no copy at all), never past it.
const READ_BUFFER = 256 * 1024;
let readBuffer: Buffer | null = null;
// A read that brought at least this much means bulk traffic: the next reads
// go into fresh buffers of their own, which the frames in them keep (no copy
// in user space at all, as Node's own 'data' chunks), until a read brings
// less again and the shared buffer (one copy, no allocation) serves.
const BULK_READ = 64 * 1024;
const prefault = (b: Buffer): void => binding.pipePrefault(b);

interface Request {
  kind: number;
  max: number;
  into: Buffer | undefined;
  offset: number;
}

/** A Buffer over the bytes of any ArrayBufferView or ArrayBuffer, or a TypeError. */
function bytesOf(value: unknown, argName: string): Buffer {
  if (Buffer.isBuffer(value)) return value;
  if (ArrayBuffer.isView(value)) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return Buffer.from(value);
  throw typeError(
    'ERR_INVALID_ARG_TYPE',
    `The "${argName}" argument must be a Buffer, TypedArray, DataView or ArrayBuffer. Received ${describeValue(value)}`,
  );
}

/**
 * One end of a pipe, FIFO or AF_UNIX stream socket carrying whole messages
 * (Python's `multiprocessing.connection.Connection`).
 *
 * Messages are framed as Python frames them (see docs/api.md), so the peer
 * may be Node or Python. `send`/`recv` go through the connection's codec;
 * `sendBytes`/`recvBytes` carry raw bytes (Python's `send_bytes`/`recv_bytes`).
 * I/O runs on Node's event loop (libuv drives the descriptor); every wait is
 * a Promise that takes `{ timeout, signal }`.
 *
 * ```ts
 * const [a, b] = Pipe();
 * await a.send({ hello: 'world' });
 * console.log(await b.recv()); // { hello: 'world' }
 * ```
 */
export class Connection<T = unknown> implements AsyncIterable<T>, Disposable {
  #fd: number;
  #sock: Socket | null = null;
  readonly #readable: boolean;
  readonly #writable: boolean;
  readonly #codec: Codec<T>;
  readonly #path: string | undefined;
  #closed = false;

  // Received bytes and the frames in them (see frame-reader.ts).
  readonly #frames: FrameReader;
  // Pending receives and polls; the socket is referenced while either waits.
  readonly #loop = new LoopRef();
  readonly #reqs = new WaitList<unknown, Request>({
    onTimeout: (_req, ms) => ({ error: ipcError('ETIMEDOUT', `no message within ${ms} ms`, 'recv', this.#path) }),
    onChange: () => this.#flow(),
    loop: this.#loop,
  });
  readonly #pollers = new WaitList<boolean>({ onTimeout: () => NOT_READY, onChange: () => this.#flow(), loop: this.#loop });
  // The end of the read side: EOF, or the error that ended it.
  #ended = false;
  #readErr: unknown = null;
  #writeErr: unknown = null;
  #writes = 0;
  #paused = false;
  #idleCheck = false;
  // The last read brought at least BULK_READ bytes (see #nextReadBuffer).
  #bulk = false;
  readonly #json: boolean;

  /**
   * Wraps the descriptor `fd` (a pipe, FIFO or stream socket) as a
   * connection, like Python's `Connection(handle)`: typically fd 3 inherited
   * from a parent that passed a `Pipe()` end in `spawn`'s `stdio`. The
   * connection owns the descriptor from now on and closes it in `close()`.
   *
   * @throws TypeError (`ERR_INVALID_FD_TYPE`) if `fd` is not a pipe, FIFO or
   *   socket; IPCError `EBADF` if it is not open.
   */
  constructor(fd: number, options?: ConnectionOptions<T>) {
    const adopt = adopting;
    adopting = null;
    const o = validateOptions<ConnectionOptions<T>>(options, CONNECTION_KEYS);
    this.#codec = resolveCodec<T>(o.codec);
    this.#json = o.codec === undefined || o.codec === 'json';
    this.#path = adopt?.path;
    this.#frames = new FrameReader({ prefault, path: this.#path });
    if (adopt?.socket !== undefined) {
      this.#fd = fd;
      this.#readable = adopt.readable ?? true;
      this.#writable = adopt.writable ?? true;
      this.#attach(adopt.socket);
      return;
    }
    validateInteger(fd, 'fd', 0, 0x7fffffff);
    const readable = validateBoolean(o.readable, 'readable', adopt?.readable ?? true);
    const writable = validateBoolean(o.writable, 'writable', adopt?.writable ?? true);
    const info = binding.pipeFdInfo(fd);
    if (info.kind === 'other') {
      throw typeError('ERR_INVALID_FD_TYPE', `File descriptor ${fd} is not a pipe, FIFO or socket`);
    }
    // O_ACCMODE: 0 read-only, 1 write-only, 2 read-write.
    this.#readable = readable && info.access !== 1;
    this.#writable = writable && info.access !== 0;
    if (!this.#readable && !this.#writable) {
      throw typeError('ERR_INVALID_ARG_VALUE', `File descriptor ${fd} would be neither readable nor writable`);
    }
    this.#fd = fd;
    binding.pipeFdOwn(fd);
    unused.register(this, fd, this);
    if (adopt?.prefix !== undefined && adopt.prefix >= 0) {
      this.#frames.push(Buffer.from([adopt.prefix]), 1, true);
    }
  }

  /** The descriptor (Python's `fileno()`), to pass to a child process's `stdio`. */
  fileno(): number {
    if (this.#closed) throw closedError('connection', 'fileno', this.#path);
    return this.#fd;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Whether this end can receive. */
  get readable(): boolean {
    return this.#readable;
  }

  /** Whether this end can send. */
  get writable(): boolean {
    return this.#writable;
  }

  // Node's stream is made on first use only: an end passed to a child process
  // must keep its descriptor blocking, and libuv makes what it adopts
  // non-blocking.
  #socket(): Socket {
    if (this.#sock !== null) return this.#sock;
    if (this.#closed) throw closedError('connection', 'recv', this.#path);
    // Node asks `buffer()` for the buffer of the next read after each read.
    const onread = this.#readable
      ? {
          buffer: (): Buffer => this.#nextReadBuffer(),
          callback: (n: number, buf: Uint8Array): boolean => {
            if (this.#frames.isTarget(buf)) this.#frames.filled(n);
            else this.#frames.push(buf as Buffer, n, buf !== readBuffer);
            this.#bulk = n >= BULK_READ;
            this.#arrived();
            return true;
          },
        }
      : undefined;
    // `onread` is accepted by the constructor (as by net.connect) though
    // @types/node 20 declares it for connect() only.
    const opts = { fd: this.#fd, readable: this.#readable, writable: this.#writable, allowHalfOpen: true, onread };
    const s = new Socket(opts);
    unused.unregister(this);
    binding.pipeFdRelease(this.#fd);
    this.#attach(s, onread !== undefined);
    return s;
  }

  #attach(s: Socket, ownBuffer = false): void {
    this.#sock = s;
    s.on('error', (err) => this.#onError(err));
    if (this.#readable) {
      if (!ownBuffer) {
        s.on('data', (chunk: Buffer) => {
          this.#frames.push(chunk, chunk.length, true);
          this.#arrived();
        });
      }
      s.on('end', () => this.#end(null));
      s.resume();
    }
    this.#loop.attach(s);
    this.#flow();
  }

  // Reads of descriptors this module opens land in the rest of the frame
  // being assembled (no copy), else in the shared read buffer.
  #nextReadBuffer(): Buffer {
    const target = this.#frames.readTarget();
    if (target !== null) return target;
    if (this.#bulk) return Buffer.allocUnsafe(READ_BUFFER);
    return (readBuffer ??= Buffer.allocUnsafe(READ_BUFFER));
  }

  /** Bytes arrived: serve the waiters, or read ahead a little. */
  #arrived(): void {
    if (this.#reqs.size > 0 || this.#pollers.size > 0) this.#pump();
    else this.#flow();
  }

  #onError(err: unknown): void {
    const e = fromNodeError(err, 'read', this.#path);
    if (this.#writeErr === null) this.#writeErr = e;
    // A peer that closed with our data unread resets the connection: at a
    // frame boundary that is the end of its stream, as a clean close is.
    const code = (e as { code?: string }).code;
    this.#end(code === 'ECONNRESET' || code === 'EPIPE' ? null : e);
  }

  #end(err: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#readErr = err;
    this.#pump();
  }

  #pump(): void {
    try {
      const frames = this.#frames;
      for (let w = this.#reqs.first(); w !== undefined && frames.header(); w = this.#reqs.first()) {
        const req = w.data;
        const size = frames.frameSize;
        if (size > req.max) {
          // Refused before reading it: the frame stays first in line.
          this.#reqs.reject(
            w,
            ipcError(
              'EMSGSIZE',
              req.kind === KIND_INTO
                ? `message of ${size} bytes does not fit in the ${req.max} bytes left in the buffer`
                : `message of ${size} bytes is longer than maxLength (${req.max})`,
              'recv',
              this.#path,
            ),
          );
          continue;
        }
        if (!frames.complete()) break;
        this.#deliver(w, frames.take());
      }
    } catch (err) {
      // A corrupt stream: nothing after it can be trusted.
      this.#ended = true;
      this.#readErr = err;
      this.#frames.clear();
    }
    if (this.#ended && this.#reqs.size > 0) {
      let err = this.#readErr;
      if (err === null) {
        const partial = this.#frames.partial;
        err =
          partial === 0
            ? eofError('recv', this.#path)
            : ipcError('ECONNRESET', `the peer closed the connection in the middle of a message (${partial} bytes of it arrived)`, 'recv', this.#path);
      }
      this.#reqs.rejectAll(err);
    }
    if (this.#pollers.size > 0 && (this.#frames.hasData || this.#ended)) {
      for (const p of this.#pollers.all()) this.#pollers.resolve(p, true);
    }
    this.#flow();
  }

  #deliver(w: Waiter<unknown, Request>, data: Buffer): void {
    const req = w.data;
    if (req.kind === KIND_BYTES) {
      this.#reqs.resolve(w, data);
    } else if (req.kind === KIND_OBJECT) {
      let item: T;
      try {
        item = this.#codec.decode(data);
      } catch (err) {
        this.#reqs.reject(w, err);
        return;
      }
      this.#reqs.resolve(w, item);
    } else {
      data.copy(req.into!, req.offset);
      this.#reqs.resolve(w, data.length);
    }
  }

  /** Reads while someone waits (or a little ahead). The wait lists keep the loop alive meanwhile. */
  #flow(): void {
    const s = this.#sock;
    if (s === null || !this.#readable) return;
    if (this.#reqs.size > 0 || this.#pollers.size > 0) {
      if (this.#paused) {
        this.#paused = false;
        s.resume();
      }
    } else {
      if (!this.#idleCheck && !this.#paused && this.#frames.available >= READ_AHEAD) {
        // Decided a moment later: a loop that awaits one message after
        // another asks again within microtasks, and stopping and restarting
        // the reads for each message would cost system calls.
        this.#idleCheck = true;
        setImmediate(this.#onIdleCheck);
      }
    }
  }

  readonly #onIdleCheck = (): void => {
    this.#idleCheck = false;
    const s = this.#sock;
    if (s === null || this.#closed || this.#reqs.size > 0 || this.#pollers.size > 0) return;
    if (!this.#paused && this.#frames.available >= READ_AHEAD) {
      this.#paused = true;
      s.pause();
    }
  };

  #checkRead(syscall: string): void {
    if (this.#closed) throw closedError('connection', syscall, this.#path);
    if (!this.#readable) throw ipcError('EBADF', 'connection is write-only', syscall, this.#path);
  }

  #request(kind: number, max: number, into: Buffer | undefined, offset: number, options: unknown, keys = RECV_KEYS): Promise<never> {
    const { timeout, signal } = validateWaitOptions<RecvOptions>(options, keys);
    throwIfAborted(signal);
    this.#socket();
    const p = this.#reqs.wait({ kind, max, into, offset }, timeout, signal) as Promise<never>;
    this.#pump();
    return p;
  }

  /**
   * Receives the next message and decodes it with the codec (Python's
   * `recv()`, but the default codec is JSON, not pickle). Messages are
   * received in order; concurrent calls are served first come, first served.
   *
   * Rejects with IPCError `EOF` when the peer closed its end at a message
   * boundary, `ECONNRESET` when it vanished in the middle of a message,
   * `ETIMEDOUT` after `timeout` ms, `EBADF` when this end is closed meanwhile,
   * `EMSGSIZE` when the message is longer than `maxLength` (default
   * {@link RECV_MAX_LENGTH}, 64 MiB; it stays first in line);
   * with `AbortError` when `signal` aborts (no message is consumed).
   */
  recv(options?: RecvMessageOptions): Promise<T> {
    try {
      this.#checkRead('recv');
      const limit = (options as RecvMessageOptions | undefined)?.maxLength;
      const max = limit === undefined ? RECV_MAX_LENGTH : validateInteger(limit, 'maxLength', 0, Number.MAX_SAFE_INTEGER);
      return this.#request(KIND_OBJECT, max, undefined, 0, options, RECV_MESSAGE_KEYS);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Receives the next message as bytes (Python's `recv_bytes(maxlength)`).
   * A message longer than `maxLength` is refused with IPCError `EMSGSIZE`
   * before it is read into memory; it stays first in line (unlike Python,
   * the connection stays usable), so a later call with a larger limit gets it.
   */
  recvBytes(maxLength?: number, options?: RecvOptions): Promise<Buffer> {
    try {
      this.#checkRead('recv');
      const max = maxLength === undefined ? MAX_FRAME : validateInteger(maxLength, 'maxLength', 0, Number.MAX_SAFE_INTEGER);
      return this.#request(KIND_BYTES, max, undefined, 0, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Receives the next message into `buffer` at byte `offset` and resolves
   * with its length (Python's `recv_bytes_into`). A message that does not
   * fit is refused with IPCError `EMSGSIZE` and stays first in line.
   */
  recvBytesInto(buffer: ArrayBufferView | ArrayBuffer, offset = 0, options?: RecvOptions): Promise<number> {
    try {
      this.#checkRead('recv');
      const buf = bytesOf(buffer, 'buffer');
      validateInteger(offset, 'offset', 0, buf.length);
      return this.#request(KIND_INTO, buf.length - offset, buf, offset, options);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Whether a message (or the end of the stream) is ready to be received,
   * waiting up to `timeout` ms (default 0: answer now; `Infinity`: until
   * then). Python's `poll(timeout)`, with milliseconds.
   */
  poll(timeout = 0, options?: { signal?: AbortSignal }): Promise<boolean> {
    try {
      this.#checkRead('poll');
      const ms = validateTimeout(timeout);
      const signal = validateSignal(validateOptions<{ signal?: AbortSignal }>(options, POLL_KEYS).signal);
      throwIfAborted(signal);
      this.#socket();
      if (this.#frames.hasData || this.#ended) return Promise.resolve(true);
      if (binding.pipePollIn(this.#fd, 0)) return Promise.resolve(true);
      if (ms === 0) return Promise.resolve(false);
      return this.#pollers.wait(undefined, ms, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Encodes `item` with the codec and sends it as one message. Resolves when
   * the bytes are handed to the OS; rejects with IPCError `EPIPE` if the peer
   * is gone, `EBADF` if this end is closed or read-only, TypeError
   * (`ERR_IPC_ENCODE`) if the codec cannot encode it.
   */
  send(item: T): Promise<void> {
    try {
      this.#checkWrite();
      if (this.#json) {
        // The default codec, framed in one buffer without an intermediate copy.
        const text = jsonText(item);
        if (text.length <= COPY_MAX / 3) {
          const n = Buffer.byteLength(text);
          const b = Buffer.allocUnsafe(4 + n);
          b.writeInt32BE(n, 0);
          b.write(text, 4);
          return this.#write(b);
        }
      }
      const bytes = this.#codec.encode(item);
      return this.#frame(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  /**
   * Sends bytes as one message (Python's `send_bytes(buf, offset, size)`;
   * offset and size count bytes). The bytes are not copied: leave them
   * unchanged until the promise settles.
   */
  sendBytes(buffer: ArrayBufferView | ArrayBuffer, offset = 0, size?: number): Promise<void> {
    try {
      this.#checkWrite();
      const buf = bytesOf(buffer, 'buffer');
      validateInteger(offset, 'offset', 0, buf.length);
      const n = size === undefined ? buf.length - offset : validateInteger(size, 'size', 0, Number.MAX_SAFE_INTEGER);
      if (offset + n > buf.length) {
        throw rangeError('ERR_OUT_OF_RANGE', `offset + size (${offset + n}) is larger than the buffer (${buf.length} bytes)`);
      }
      return this.#frame(offset === 0 && n === buf.length ? buf : buf.subarray(offset, offset + n));
    } catch (err) {
      return Promise.reject(err);
    }
  }

  #checkWrite(): void {
    if (this.#closed) throw closedError('connection', 'send', this.#path);
    if (!this.#writable) throw ipcError('EBADF', 'connection is read-only', 'send', this.#path);
    if (this.#writeErr !== null) throw this.#writeErr;
  }

  #frame(payload: Buffer): Promise<void> {
    const n = payload.length;
    if (n <= COPY_MAX) {
      const b = Buffer.allocUnsafe(4 + n);
      b.writeInt32BE(n, 0);
      payload.copy(b, 4);
      return this.#write(b);
    }
    return this.#write(encodeHeader(n), payload);
  }

  /** Writes a header and payload (or one framed buffer); resolves once the OS has them. */
  #write(first: Buffer, second?: Buffer): Promise<void> {
    const s = this.#socket();
    // Nothing of ours or Node's in flight: one system call straight to the
    // (non-blocking) descriptor, no write request and no callback. Whatever
    // does not fit now, or an error, goes through the stream as before
    // (which reports the error the usual way).
    if (this.#writes === 0 && s.writableLength === 0 && !s.destroyed) {
      const n = binding.pipeWritev(this.#fd, first, second);
      const total = first.length + (second === undefined ? 0 : second.length);
      if (n === total) return RESOLVED;
      if (n > 0) {
        if (n < first.length) first = first.subarray(n);
        else {
          first = second!.subarray(n - first.length);
          second = undefined;
        }
      }
    }
    this.#writes += 1;
    let settle: ((err?: Error | null) => void) | undefined;
    const done = (err?: Error | null): void => {
      this.#writes -= 1;
      if (settle !== undefined) settle(err);
      if (this.#closed && this.#writes === 0) this.#destroy();
    };
    if (second === undefined) {
      s.write(first, done);
    } else {
      s.cork();
      s.write(first);
      s.write(second, done);
      s.uncork();
    }
    // libuv wrote it all at once (the common case): no need to wait a tick
    // for the callback to say so.
    if (s.writableLength === 0 && !s.errored) return RESOLVED;
    return new Promise<void>((resolve, reject) => {
      settle = (err) => {
        if (err) reject(this.#writeErr ?? fromNodeError(err, 'write', this.#path));
        else resolve();
      };
    });
  }

  #destroy(): void {
    unused.unregister(this);
    const s = this.#sock;
    if (s !== null) s.destroy();
    else if (this.#fd >= 0) binding.pipeFdClose(this.#fd);
  }

  /**
   * Closes this end and its descriptor. Pending receives and polls reject
   * with IPCError `EBADF`; messages already passed to `send` are still
   * delivered (the descriptor closes once they are written). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const err = closedError('connection', 'recv', this.#path);
    this.#reqs.rejectAll(err);
    this.#pollers.rejectAll(err);
    this.#frames.clear();
    if (this.#writes === 0) this.#destroy();
    else this.#sock?.unref();
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Receives messages until the peer closes its end (or this end is closed):
   * `for await (const msg of conn) { ... }`.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    for (;;) {
      let item: T;
      try {
        item = await this.recv();
      } catch (err) {
        if (isEof(err) || this.#closed) return;
        throw err;
      }
      yield item;
    }
  }

  /** @internal how a child process rebuilds this end: its descriptor travels as one of the child's stdio. */
  [kReopen](): ReopenSpec {
    return { kind: 'Connection', fd: this.fileno(), options: { codec: codecOption(this.#codec, 'Connection'), readable: this.#readable, writable: this.#writable } };
  }
}
