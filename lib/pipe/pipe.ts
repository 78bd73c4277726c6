/**
 * Anonymous pipes (`Pipe()`) and named FIFOs (`NamedPipe`), whose ends are
 * {@link Connection}s speaking multiprocessing.connection's frame format.
 * @module
 */
import { statSync } from 'node:fs';
import { binding } from '../core/binding.js';
import { validatePath } from '../core/names.js';
import { resolveCodec } from '../core/codec.js';
import type { ConnectionOptions } from './connection.js';
import { Connection, adoptConnection } from './connection.js';
import { ipcError, sysError } from '../core/errors.js';
import { WaitList } from '../core/waitlist.js';
import type { WaitToken } from '../core/binding.js';
import {
  throwIfAborted,
  typeError,
  validateBoolean,
  validateMode,
  keysOf,
  validateOptions,
  validateWaitOptions,
} from '../core/validate.js';

/** Longer deadlines than this (about 31 years, in ms) are waited for as no deadline. */
const FOREVER_MS = 1e12;

/**
 * The SO_SNDBUF each end of a duplex `Pipe()` asks for (1 MiB; Linux doubles
 * it and caps it at `net.core.wmem_max`). The default (208 KiB) lets a
 * blocked sender put out only two or three 64 KiB frames per wake-up; with
 * 1 MiB it is about two dozen, which is most of the way to the stream's own
 * speed. It costs memory only while bytes are in flight.
 */
export const PIPE_SNDBUF = 1024 * 1024;

/** Options for `Pipe()`. */
export interface PipeOptions<T = unknown> {
  /**
   * Default true: both ends send and receive (an AF_UNIX socketpair). With
   * false, an OS pipe: `[reader, writer]`.
   */
  duplex?: boolean;
  /** The codec of both ends (see {@link ConnectionOptions.codec}). Default `'json'`. */
  codec?: ConnectionOptions<T>['codec'];
}

/**
 * Returns the two connected ends of a new pipe, like Python's
 * `multiprocessing.Pipe(duplex)`. Either end can be given to a child
 * process through `spawn`'s `stdio` (pass `end.fileno()`, then close it here)
 * and rebuilt there with `new Connection(fd)`, or with Python's
 * `multiprocessing.connection.Connection(fd)`.
 *
 * ```ts
 * const [parent, child] = Pipe();
 * const p = spawn('python3', ['worker.py'], { stdio: ['inherit', 'inherit', 'inherit', child.fileno()] });
 * child.close();
 * await parent.send({ job: 1 });
 * ```
 * @throws IPCError (`EMFILE`, `ENFILE`) from `socketpair`/`pipe`.
 */
export function Pipe(options: Omit<PipeOptions<Buffer>, 'codec'> & { codec: 'raw' }): [Connection<Buffer>, Connection<Buffer>];
export function Pipe<T = unknown>(options?: PipeOptions<T>): [Connection<T>, Connection<T>];
export function Pipe<T = unknown>(options?: PipeOptions<T>): [Connection<T>, Connection<T>] {
  const o = validateOptions<PipeOptions<T>>(options, PIPE_KEYS);
  const duplex = validateBoolean(o.duplex, 'duplex', true);
  // A bad codec fails before any descriptor exists.
  resolveCodec(o.codec);
  const [x, y] = duplex ? binding.pipeSocketpair(PIPE_SNDBUF) : binding.pipePipe();
  const opts = { codec: o.codec };
  return [new Connection<T>(x, opts), new Connection<T>(y, opts)];
}

/** Options for `NamedPipe.create`. */
export interface NamedPipeCreateOptions {
  /** Permission bits of the FIFO (the umask may remove more). Default 0o600. */
  mode?: number;
}

/** Options for `NamedPipe.open`. */
export interface NamedPipeOpenOptions<T = unknown> {
  /** Give up waiting for the other side after this many ms: rejects with IPCError `ETIMEDOUT`. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, and nothing stays open. */
  signal?: AbortSignal;
  /** The connection's codec. Default `'json'`. */
  codec?: ConnectionOptions<T>['codec'];
}

const PIPE_KEYS = keysOf<PipeOptions>()('duplex', 'codec');
const CREATE_KEYS = keysOf<NamedPipeCreateOptions>()('mode');
const OPEN_KEYS = keysOf<NamedPipeOpenOptions>()('timeout', 'signal', 'codec');

/**
 * Named pipes (FIFOs): a file-system name that unrelated processes open, one
 * for reading and one for writing, to get a one-way stream. Python opens the
 * same FIFO with `open(path, 'rb')` / `open(path, 'wb')` (or `os.open`) and
 * reads and writes frames with `Connection(fd)`.
 */
export class NamedPipe {
  private constructor() {}

  /**
   * Creates a FIFO at `path` (`mkfifo`), mode 0o600 by default.
   * @throws IPCError `EEXIST` when something exists at `path`, `ENOENT`, `EACCES`...
   */
  static create(path: string, options?: NamedPipeCreateOptions): void {
    const p = validatePath(path);
    const mode = validateMode(validateOptions<NamedPipeCreateOptions>(options, CREATE_KEYS).mode);
    binding.pipeMkfifo(p, mode);
  }

  /**
   * Opens the FIFO at `path` for reading (`'r'`) or writing (`'w'`) and
   * resolves with a one-way {@link Connection}.
   *
   * Opening waits for the other side, as `open(2)` does, but without blocking
   * the event loop or a libuv pool thread: `'w'` resolves once a reader has
   * the FIFO open, `'r'` once a writer has connected (it is open, has
   * written, or came and went: then the first `recv()` reports EOF).
   * Rejects with IPCError `ETIMEDOUT` after `timeout` ms, `AbortError` when
   * `signal` aborts, `ENOENT`/`EACCES` from `open`, `EINVAL` when `path` is
   * not a FIFO.
   */
  static open<T = unknown>(path: string, mode: 'r' | 'w', options?: NamedPipeOpenOptions<T>): Promise<Connection<T>> {
    try {
      const p = validatePath(path);
      if (mode !== 'r' && mode !== 'w') {
        throw typeError('ERR_INVALID_ARG_VALUE', `The "mode" argument must be 'r' or 'w'. Received ${typeof mode === 'string' ? `'${mode}'` : typeof mode}`);
      }
      const { o, timeout, signal } = validateWaitOptions<NamedPipeOpenOptions<T>>(options, OPEN_KEYS);
      const connOpts = { codec: o.codec };
      // A bad codec fails now, not after the wait.
      resolveCodec(o.codec);
      throwIfAborted(signal);
      let st;
      try {
        st = statSync(p);
      } catch (err) {
        const e = err as { errno?: number };
        throw sysError(-(e.errno ?? -2), 'open', p);
      }
      if (!st.isFIFO()) throw ipcError('EINVAL', 'not a FIFO', 'open', p);
      const write = mode === 'w';
      const make = (fd: number, prefix: number): Connection<T> =>
        adoptConnection<T>({ path: p, prefix, readable: !write, writable: write }, fd, connOpts);
      // The native wait keeps the deadline (monotonic); only the abort and
      // the one settlement are ours. Past ~31 years a deadline is "never".
      let token: WaitToken | undefined;
      const open = new WaitList<Connection<T>>({
        onTimeout: () => ({ error: null }),
        onLeave: () => {
          if (token !== undefined) binding.cancelWait(token);
        },
      });
      const r = binding.pipeFifoOpen(p, write, timeout > FOREVER_MS ? -1 : timeout, (err, fd, prefix) => {
        const w = open.first();
        if (w === undefined) {
          if (fd >= 0) make(fd, -1).close();
          return;
        }
        token = undefined;
        if (err !== null) open.reject(w, err);
        else if (fd < 0) open.reject(w, ipcError('ETIMEDOUT', `nobody opened the other side within ${timeout} ms`, 'open', p));
        else open.resolve(w, make(fd, prefix));
      });
      if (r.token === undefined) return Promise.resolve(make(r.fd, r.prefix));
      token = r.token;
      return open.wait(undefined, -1, signal);
    } catch (err) {
      return Promise.reject(err);
    }
  }
}
