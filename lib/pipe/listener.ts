/**
 * `Listener` and `Client`: AF_UNIX stream sockets (paths, or Linux abstract
 * names) carrying {@link Connection}s, with the authentication handshake of
 * Python's `multiprocessing.connection` (the HMAC-MD5 form of Python <= 3.11
 * and the negotiated `{digest}` form of 3.12+), so either side may be Python.
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { statSync, unlinkSync } from 'node:fs';
import { Server, Socket } from 'node:net';
import { binding } from '../core/binding.js';
import { randomSocketPath, shownAddress, validateSocketAddress } from '../core/names.js';
import { resolveCodec } from '../core/codec.js';
import type { ConnectionOptions } from './connection.js';
import { Connection, adoptConnection, socketFd } from './connection.js';
import { AbortError, abortError, closedError, ErrorCode, fromNodeError, ipcError } from '../core/errors.js';
import { deadline, LoopRef, sleep, WaitList } from '../core/waitlist.js';
import {
  throwIfAborted,
  typeError,
  rangeError,
  validateInteger,
  validateMode,
  keysOf,
  validateOptions,
  validateSignal,
  validateTimeout,
} from '../core/validate.js';

/**
 * The handshake failed: the peer's key differs from ours, or it does not
 * speak the protocol (Python's `multiprocessing.AuthenticationError`).
 */
export class AuthenticationError extends Error {
  readonly code = ErrorCode.AUTHENTICATION;
  override get name(): string {
    return 'AuthenticationError';
  }
}

// The handshake's bytes, as CPython's Lib/multiprocessing/connection.py.
const CHALLENGE = Buffer.from('#CHALLENGE#');
const WELCOME = Buffer.from('#WELCOME#');
const FAILURE = Buffer.from('#FAILURE#');
// Random bytes after the "{sha256}" prefix of our challenge (3.12's length).
const MESSAGE_LENGTH = 40;
// A challenge of exactly 20 bytes comes from a Python <= 3.11 (MD5 only) peer;
// a 16-byte response is a bare HMAC-MD5 from one.
const LEGACY_CHALLENGE = 20;
const LEGACY_RESPONSE = 16;
// Python's digest names and OpenSSL's.
const DIGESTS: Record<string, string> = {
  md5: 'md5',
  sha256: 'sha256',
  sha384: 'sha384',
  sha3_256: 'sha3-256',
  sha3_384: 'sha3-384',
};
const MAX_DIGEST_NAME = 8;
const OUR_DIGEST = 'sha256';
const HANDSHAKE_MAX = 256;

function digestAndPayload(message: Buffer): [string, Buffer] {
  if (message.length === LEGACY_CHALLENGE || message.length === LEGACY_RESPONSE) return ['', message];
  if (message[0] === 0x7b /* { */) {
    const curly = message.indexOf(0x7d /* } */, 1);
    if (curly > 0 && curly <= MAX_DIGEST_NAME + 1) {
      const name = message.subarray(1, curly).toString('latin1');
      if (Object.hasOwn(DIGESTS, name)) return [name, message.subarray(curly + 1)];
    }
  }
  throw new AuthenticationError('unsupported message length, missing digest prefix, or unsupported digest');
}

function hmac(name: string, key: Buffer, message: Buffer): Buffer {
  return createHmac(DIGESTS[name]!, key).update(message).digest();
}

/** Our challenge, then the peer's answer (the serving side of Python's handshake). */
async function deliverChallenge(conn: Connection, key: Buffer, signal: AbortSignal): Promise<void> {
  const message = Buffer.concat([Buffer.from(`{${OUR_DIGEST}}`), randomBytes(MESSAGE_LENGTH)]);
  await conn.sendBytes(Buffer.concat([CHALLENGE, message]));
  const response = await conn.recvBytes(HANDSHAKE_MAX, { signal });
  let ok = false;
  let why = 'digest received was wrong';
  try {
    const [name, mac] = digestAndPayload(response);
    // The MAC covers our "{sha256}" prefix too, so a peer cannot pick a
    // weaker digest than the one we offered without failing the comparison.
    const expected = hmac(name || 'md5', key, message);
    ok = expected.length === mac.length && timingSafeEqual(expected, mac);
  } catch (err) {
    why = (err as Error).message;
  }
  if (!ok) {
    await conn.sendBytes(FAILURE).catch(() => {});
    throw new AuthenticationError(why);
  }
  await conn.sendBytes(WELCOME);
}

/** The peer's challenge, our answer, its verdict (the client side of Python's handshake). */
async function answerChallenge(conn: Connection, key: Buffer, signal: AbortSignal): Promise<void> {
  const received = await conn.recvBytes(HANDSHAKE_MAX, { signal });
  if (!received.subarray(0, CHALLENGE.length).equals(CHALLENGE)) {
    throw new AuthenticationError('protocol error: expected a challenge');
  }
  const message = received.subarray(CHALLENGE.length);
  if (message.length < LEGACY_CHALLENGE) {
    throw new AuthenticationError(`challenge too short: ${message.length} bytes`);
  }
  const [name] = digestAndPayload(message);
  const response = name === '' ? hmac('md5', key, message) : Buffer.concat([Buffer.from(`{${name}}`), hmac(name, key, message)]);
  await conn.sendBytes(response);
  const verdict = await conn.recvBytes(HANDSHAKE_MAX, { signal });
  if (!verdict.equals(WELCOME)) throw new AuthenticationError('digest sent was rejected');
}

/** Runs both halves of the handshake in `role`'s order, within the deadline. */
async function handshake(
  conn: Connection,
  key: Buffer,
  serving: boolean,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  syscall: string,
  address: string,
): Promise<void> {
  const d = deadline(timeoutMs, signal);
  try {
    if (serving) {
      await deliverChallenge(conn, key, d.signal);
      await answerChallenge(conn, key, d.signal);
    } else {
      await answerChallenge(conn, key, d.signal);
      await deliverChallenge(conn, key, d.signal);
    }
  } catch (err) {
    if (err instanceof AbortError) {
      if (d.timedOut) throw ipcError('ETIMEDOUT', 'authentication handshake timed out', syscall, address);
      if (signal?.aborted) throw abortError(signal);
    }
    throw err;
  } finally {
    d.dispose();
  }
}

function validateAuthkey(value: unknown): Buffer | null {
  if (value === undefined || value === null) return null;
  let key: Buffer;
  if (typeof value === 'string') key = Buffer.from(value, 'utf8');
  else if (value instanceof Uint8Array) key = Buffer.from(value);
  else {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "authkey" option must be a Buffer, Uint8Array or string. Received ${typeof value}`);
  }
  if (key.length === 0) throw typeError('ERR_INVALID_ARG_VALUE', 'The "authkey" option must not be empty');
  return key;
}

/** Options for `new Listener()`. */
export interface ListenerOptions<T = unknown> {
  /** Require clients to prove they know this key (Python's `authkey`). Default: no handshake. */
  authkey?: Uint8Array | string;
  /** The kernel's queue of connections not yet accepted (`listen(2)`). Default 16. */
  backlog?: number;
  /** Permission bits of the socket file (the umask may remove more). Default 0o600. */
  mode?: number;
  /** The codec of accepted connections. Default `'json'`. */
  codec?: ConnectionOptions<T>['codec'];
  /**
   * With an `authkey`: how long a client has to complete the handshake, in
   * ms, before it is disconnected (its failure is reported to `accept()` as
   * IPCError `ETIMEDOUT`). Handshakes run concurrently as clients arrive, so
   * a slow or silent client never delays another. Default 5000.
   */
  handshakeTimeout?: number;
  /**
   * The most clients held that `accept()` has not yet taken (connected,
   * handshaking or ready; each holds a descriptor). Clients arriving beyond it
   * are disconnected at once. Default 64.
   */
  maxPending?: number;
}

/** Options for `accept()`. */
export interface AcceptOptions {
  /** Give up waiting for a client after this many ms: rejects with IPCError `ETIMEDOUT`. */
  timeout?: number;
  /** Abort: rejects with `AbortError`. */
  signal?: AbortSignal;
}

const ACCEPT_KEYS = keysOf<AcceptOptions>()('timeout', 'signal');
const LISTENER_KEYS = keysOf<ListenerOptions>()('authkey', 'backlog', 'mode', 'codec', 'handshakeTimeout', 'maxPending');
const DEFAULT_HANDSHAKE_TIMEOUT = 5000;
const DEFAULT_MAX_PENDING = 64;

/** What `accept()` hands out: a raw client (no authkey), an authenticated one, or a failed handshake. */
type Ready<T> = { socket: Socket } | { conn: Connection<T> } | { error: unknown };

/**
 * A listening AF_UNIX socket (Python's `multiprocessing.connection.Listener`).
 * Python's `Client(address, authkey=...)` connects to it as to its own.
 *
 * ```ts
 * const listener = new Listener('/tmp/app.sock', { authkey: 'secret' });
 * for await (const conn of listener) {
 *   conn.send({ hello: 'from node' });
 * }
 * ```
 *
 * The socket file is created with mode 0o600 (never looser, not even
 * briefly) and removed by `close()`. An address starting with `'\0'` is a
 * Linux abstract name: no file, and any process in the network namespace may
 * connect, so use an `authkey`.
 */
export class Listener<T = unknown> implements AsyncIterable<Connection<T>>, Disposable {
  readonly #address: string;
  readonly #server: Server;
  readonly #authkey: Buffer | null;
  readonly #codec: ConnectionOptions<T>['codec'];
  readonly #file: { dev: number; ino: number } | null = null;
  readonly #handshakeTimeout: number;
  readonly #maxPending: number;
  /** Outcomes nobody has taken yet, in the order they came. */
  readonly #ready: Ready<T>[] = [];
  /** Connections in their handshake. */
  readonly #shaking = new Set<Connection<T>>();
  /** Clients holding a descriptor that accept() has not taken: #shaking and the sockets and conns in #ready. */
  #held = 0;
  // The listening socket keeps the process alive only while an accept() waits.
  readonly #loop = new LoopRef();
  readonly #waiters = new WaitList<Ready<T>>({
    onTimeout: (_w, ms) => ({ error: ipcError('ETIMEDOUT', `no connection within ${ms} ms`, 'accept', shownAddress(this.#address)) }),
    loop: this.#loop,
  });
  #closed = false;
  #error: unknown = null;

  /**
   * Binds and listens on `address` (a path, or `'\0name'` for an abstract
   * name). Without an address, a fresh path under `os.tmpdir()` is used.
   * @throws IPCError `EADDRINUSE` if the address is taken (also by a stale
   *   socket file: remove it first), `EACCES`, `ENOENT`...; TypeError /
   *   RangeError for bad arguments.
   */
  constructor(address?: string, options?: ListenerOptions<T>) {
    const addr =
      address === undefined ? randomSocketPath() : validateSocketAddress(address);
    const o = validateOptions<ListenerOptions<T>>(options, LISTENER_KEYS);
    this.#authkey = validateAuthkey(o.authkey);
    const backlog = validateInteger(o.backlog, 'backlog', 0, 65535, 16);
    const mode = validateMode(o.mode);
    this.#handshakeTimeout = o.handshakeTimeout === undefined ? DEFAULT_HANDSHAKE_TIMEOUT : validateTimeout(o.handshakeTimeout, 'handshakeTimeout');
    this.#maxPending = validateInteger(o.maxPending, 'maxPending', 1, 0x7fffffff, DEFAULT_MAX_PENDING);
    resolveCodec(o.codec);
    this.#codec = o.codec;
    this.#address = addr;
    const fd = binding.pipeUnixListen(addr, backlog, mode);
    if (!addr.startsWith('\0')) {
      const st = statSync(addr);
      this.#file = { dev: st.dev, ino: st.ino };
    }
    // Incoming sockets stay unread until accept() takes them (or their handshake starts).
    this.#server = new Server({ pauseOnConnect: true, allowHalfOpen: true });
    this.#server.on('connection', (s: Socket) => this.#onConnection(s));
    this.#server.on('error', (err) => this.#fail(fromNodeError(err, 'accept', shownAddress(addr))));
    this.#server.listen({ fd, backlog });
    this.#loop.attach(this.#server);
  }

  /** The address it listens on (abstract names keep their leading `'\0'`). */
  get address(): string {
    return this.#address;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  #onConnection(s: Socket): void {
    if (this.#closed || this.#held >= this.#maxPending) {
      s.destroy();
      return;
    }
    this.#held += 1;
    // A client that gives up while queued must not crash the process.
    s.on('error', ignore);
    if (this.#authkey === null) this.#offer({ socket: s });
    else this.#authenticate(s, this.#authkey);
  }

  /** Runs a client's handshake now, beside the others, within the handshake deadline. */
  #authenticate(s: Socket, key: Buffer): void {
    s.removeListener('error', ignore);
    const path = shownAddress(this.#address);
    const conn = adoptConnection<T>({ socket: s, path }, socketFd(s), { codec: this.#codec });
    this.#shaking.add(conn);
    handshake(conn as Connection, key, true, this.#handshakeTimeout, undefined, 'accept', path).then(
      () => {
        this.#shaking.delete(conn);
        if (this.#closed) conn.close();
        else this.#offer({ conn });
      },
      (err: unknown) => {
        this.#shaking.delete(conn);
        this.#held -= 1;
        conn.close();
        if (!this.#closed) this.#offer({ error: err });
      },
    );
  }

  /** Hands an outcome to the oldest accept(), or keeps it for the next one. */
  #offer(r: Ready<T>): void {
    const w = this.#waiters.first();
    if (w !== undefined) {
      this.#waiters.resolve(w, r);
      return;
    }
    if ('error' in r && this.#ready.length >= this.#maxPending) {
      // Failures hold no descriptor; keep only the latest ones.
      const i = this.#ready.findIndex((x) => 'error' in x);
      if (i >= 0) this.#ready.splice(i, 1);
    }
    this.#ready.push(r);
  }

  /** Turns an outcome into what accept() returns (or throws). */
  #take(r: Ready<T>): Connection<T> {
    if ('error' in r) throw r.error;
    this.#held -= 1;
    if ('conn' in r) return r.conn;
    r.socket.removeListener('error', ignore);
    return adoptConnection<T>({ socket: r.socket, path: shownAddress(this.#address) }, socketFd(r.socket), { codec: this.#codec });
  }

  #fail(err: unknown): void {
    this.#error = err;
    this.#waiters.rejectAll(err);
  }

  /**
   * Waits for the next client and returns its connection, after the
   * authentication handshake when the listener has an `authkey`. Handshakes
   * run as clients arrive, concurrently, each within `handshakeTimeout`; a
   * client with the wrong key is told so (`#FAILURE#`), disconnected, and the
   * next `accept()` rejects with {@link AuthenticationError} (a client that
   * does not finish in time: IPCError `ETIMEDOUT`); the listener keeps
   * serving. Concurrent calls take different clients.
   */
  async accept(options?: AcceptOptions): Promise<Connection<T>> {
    const o = validateOptions<AcceptOptions>(options, ACCEPT_KEYS);
    const timeout = validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    throwIfAborted(signal);
    if (this.#closed) throw closedError('listener', 'accept', shownAddress(this.#address));
    const r = this.#ready.shift();
    if (r !== undefined) return this.#take(r);
    if (this.#error !== null) throw this.#error;
    return this.#take(await this.#waiters.wait(undefined, timeout, signal));
  }

  /**
   * Stops listening: pending `accept()`s reject with IPCError `EBADF`,
   * clients not yet accepted are disconnected, and the socket file is
   * removed (if it is still the one this listener created). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.rejectAll(closedError('listener', 'accept', shownAddress(this.#address)));
    for (const r of this.#ready.splice(0)) {
      if ('socket' in r) r.socket.destroy();
      else if ('conn' in r) r.conn.close();
    }
    for (const c of this.#shaking) c.close();
    this.#shaking.clear();
    this.#held = 0;
    this.#server.close();
    if (this.#file !== null) {
      try {
        const st = statSync(this.#address);
        if (st.dev === this.#file.dev && st.ino === this.#file.ino) unlinkSync(this.#address);
      } catch {
        // Already removed by someone else: nothing of ours to clean up.
      }
    }
  }

  /** Same as `close()`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Accepts clients until the listener is closed. Clients that fail the
   * handshake (or vanish during it) are skipped, as a server loop would.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<Connection<T>> {
    for (;;) {
      let conn: Connection<T>;
      try {
        conn = await this.accept();
      } catch (err) {
        if (this.#closed) return;
        if (this.#error !== null) throw err;
        continue;
      }
      yield conn;
    }
  }
}

function ignore(): void {}

/** Options for `Client()`. */
export interface ClientOptions<T = unknown> {
  /** The key the listener expects (Python's `authkey`). Default: no handshake. */
  authkey?: Uint8Array | string;
  /** Give up after this many ms (connecting and handshake): rejects with IPCError `ETIMEDOUT`. */
  timeout?: number;
  /** Abort: rejects with `AbortError`. */
  signal?: AbortSignal;
  /** The connection's codec. Default `'json'`. */
  codec?: ConnectionOptions<T>['codec'];
}

/**
 * Connects to a {@link Listener} (ours or Python's `Listener(address,
 * authkey=...)`) and resolves with the connection once the handshake, if
 * any, succeeded (Python's `multiprocessing.connection.Client`).
 *
 * Rejects with IPCError `ENOENT` / `ECONNREFUSED` when nobody listens,
 * {@link AuthenticationError} when the keys differ.
 */
const CLIENT_KEYS = keysOf<ClientOptions>()('authkey', 'timeout', 'signal', 'codec');

export async function Client<T = unknown>(address: string, options?: ClientOptions<T>): Promise<Connection<T>> {
  const addr = validateSocketAddress(address);
  const o = validateOptions<ClientOptions<T>>(options, CLIENT_KEYS);
  const key = validateAuthkey(o.authkey);
  const timeout = validateTimeout(o.timeout);
  const signal = validateSignal(o.signal);
  resolveCodec(o.codec);
  throwIfAborted(signal);
  const started = performance.now();
  let fd = binding.pipeUnixConnect(addr);
  // -1: the listener's queue is full. An AF_UNIX connect cannot be waited
  // for in the event loop, so try again a little later, up to the deadline.
  for (let delay = 1; fd < 0; delay = Math.min(delay * 2, 50)) {
    if (timeout >= 0 && performance.now() - started >= timeout) {
      throw ipcError('ETIMEDOUT', `could not connect within ${timeout} ms`, 'connect', shownAddress(addr));
    }
    await sleep(delay, signal);
    fd = binding.pipeUnixConnect(addr);
  }
  const conn = adoptConnection<T>({ path: shownAddress(addr) }, fd, { codec: o.codec });
  if (key !== null) {
    const left = timeout < 0 ? -1 : Math.max(0, timeout - (performance.now() - started));
    try {
      await handshake(conn as Connection, key, false, left, signal, 'connect', shownAddress(addr));
    } catch (err) {
      conn.close();
      throw err;
    }
  }
  return conn;
}
