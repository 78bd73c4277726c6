/**
 * The Redis connection behind every class of `posix-ipc/redis`: a small
 * adapter over node-redis (`redis`, v4/v5) or a duck-typed ioredis instance,
 * the key namespace, the Lua scripts (EVALSHA, EVAL on NOSCRIPT), and the one
 * place where a client's failure becomes an {@link IPCError} with a `code` and
 * the server's address.
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { IPCError } from '../core/errors.js';
import { typeError, validateInteger, validateName, validateOptions } from '../core/validate.js';

/** A command argument. */
export type RedisArg = string | Buffer;

/**
 * What posix-ipc needs from a Redis client. `connect()` builds one from a
 * node-redis client, an ioredis instance or a URL; pass your own to use
 * another client.
 */
export interface RedisAdapter {
  /** Sends one command; bulk strings come back as JavaScript strings. */
  send(args: readonly RedisArg[]): Promise<unknown>;
  /** Sends one command; bulk strings come back as Buffers (binary items). */
  sendBuffers(args: readonly RedisArg[]): Promise<unknown>;
  /** A new connected client to the same server, for blocking commands. */
  duplicate(): Promise<RedisAdapter>;
  /** Closes this client (only those posix-ipc opened are closed by it). */
  close(): Promise<void>;
  /** `host:port` (or the socket path), for error messages. */
  readonly address: string;
}

/** Options for {@link connect}. */
export interface ConnectOptions {
  /** Prefix of every key posix-ipc writes. Default `'pipc:'`. */
  prefix?: string;
  /** How long a connection attempt may take, in ms. Default 5000. */
  connectTimeout?: number;
  /**
   * How long a non-blocking command may wait for its reply (also while the
   * server is unreachable), in ms. Default 5000.
   */
  commandTimeout?: number;
  /** node-redis only: extra `createClient` options (TLS `socket` settings, `username`, `password`...). */
  clientOptions?: Record<string, unknown>;
}

/** Codes for a server that cannot be reached: the operation may succeed later. */
const UNAVAILABLE = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ETIMEDOUT',
  'EPIPE',
  'ERR_IPC_REDIS_UNAVAILABLE',
]);

/** True if `err` says the server could not be reached (rather than refusing the command). */
export function isUnavailable(err: unknown): boolean {
  return err instanceof IPCError && UNAVAILABLE.has(err.code);
}

/**
 * Turns whatever a client threw into an IPCError: `code` is the socket's
 * errno name (`ECONNREFUSED`), the server's error word (`WRONGPASS`,
 * `NOPERM`, `NOAUTH`), or `ERR_IPC_REDIS_UNAVAILABLE` for a client that is
 * offline or closed; `syscall` is `redis <COMMAND>`; `path` the object's name;
 * `address` the server.
 */
export function redisError(err: unknown, address: string, command: string, name?: string): IPCError {
  if (err instanceof IPCError) return err;
  const e = err as { code?: unknown; message?: unknown; name?: unknown; errors?: unknown[]; cause?: unknown } | null;
  // A connection that failed in several ways (AggregateError): the first cause tells.
  const inner = Array.isArray(e?.errors) && e!.errors.length > 0 ? (e!.errors[0] as typeof e) : e;
  let code = typeof inner?.code === 'string' ? inner.code : undefined;
  const message = String(inner?.message ?? e?.message ?? err);
  if (code === undefined) {
    const word = /^([A-Z][A-Z_]+) /.exec(message);
    if (word !== null && word[1] !== 'ERR') code = word[1];
    else if (/offline|closed|timeout|timed out|socket|connect|not connected|Connection is closed/i.test(message)) {
      code = 'ERR_IPC_REDIS_UNAVAILABLE';
    } else code = 'ERR_IPC_REDIS';
  }
  const where = name === undefined ? `redis ${command}` : `redis ${command} '${name}'`;
  const out = new IPCError(`${code}: ${message} (Redis at ${address}), ${where}`, code, 0, `redis ${command}`, name);
  Object.defineProperty(out, 'address', { value: address, enumerable: true });
  Object.defineProperty(out, 'cause', { value: err, enumerable: false });
  return out;
}

/** The error of an operation that needed the server when it could not be reached. */
export interface RedisIPCError extends IPCError {
  /** The server, `host:port`. */
  readonly address: string;
}

// --- adapters ----------------------------------------------------------------

const BLOB_STRING = 36; // RESP_TYPES.BLOB_STRING ('$'), for node-redis type mapping
const BUFFERS = { typeMapping: { [BLOB_STRING]: Buffer } };

interface NodeRedisLike {
  sendCommand(args: readonly RedisArg[], options?: object): Promise<unknown>;
  duplicate(options?: object): NodeRedisLike;
  connect(): Promise<unknown>;
  on(event: string, fn: (...a: unknown[]) => void): unknown;
  destroy?(): void;
  disconnect?(): Promise<void>;
  quit?(): Promise<unknown>;
  close?(): Promise<void>;
  isOpen?: boolean;
  options?: { url?: string; socket?: { host?: string; port?: number; path?: string } };
}

interface IORedisLike {
  call(command: string, ...args: RedisArg[]): Promise<unknown>;
  callBuffer(command: string, ...args: RedisArg[]): Promise<unknown>;
  duplicate(): IORedisLike;
  on(event: string, fn: (...a: unknown[]) => void): unknown;
  once(event: string, fn: (...a: unknown[]) => void): unknown;
  disconnect(): void;
  status?: string;
  options?: { host?: string; port?: number; path?: string };
}

function isNodeRedis(c: unknown): c is NodeRedisLike {
  return c !== null && typeof c === 'object' && typeof (c as NodeRedisLike).sendCommand === 'function' && typeof (c as NodeRedisLike).duplicate === 'function';
}

function isIORedis(c: unknown): c is IORedisLike {
  return c !== null && typeof c === 'object' && typeof (c as IORedisLike).call === 'function' && typeof (c as IORedisLike).callBuffer === 'function';
}

function isAdapter(c: unknown): c is RedisAdapter {
  return (
    c !== null &&
    typeof c === 'object' &&
    typeof (c as RedisAdapter).send === 'function' &&
    typeof (c as RedisAdapter).sendBuffers === 'function' &&
    typeof (c as RedisAdapter).duplicate === 'function'
  );
}

function nodeRedisAddress(c: NodeRedisLike): string {
  const s = c.options?.socket;
  if (s?.path) return s.path;
  if (c.options?.url) {
    try {
      const u = new URL(c.options.url);
      return `${u.hostname || 'localhost'}:${u.port || 6379}`;
    } catch {
      // fall through
    }
  }
  return `${s?.host ?? 'localhost'}:${s?.port ?? 6379}`;
}

class NodeRedisAdapter implements RedisAdapter {
  readonly address: string;
  readonly #c: NodeRedisLike;
  readonly #owned: boolean;
  readonly #timeout: number;
  readonly #opts: object;
  readonly #bufOpts: object;

  constructor(c: NodeRedisLike, owned: boolean, commandTimeout: number) {
    this.#c = c;
    this.#owned = owned;
    this.#timeout = commandTimeout;
    this.address = nodeRedisAddress(c);
    this.#opts = { timeout: commandTimeout };
    this.#bufOpts = { ...BUFFERS, timeout: commandTimeout };
  }

  send(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.sendCommand(args, this.#opts);
  }

  sendBuffers(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.sendCommand(args, this.#bufOpts);
  }

  async duplicate(): Promise<RedisAdapter> {
    // Blocking commands: no command timeout (they carry their own), no offline queue.
    const d = this.#c.duplicate({ disableOfflineQueue: true });
    d.on('error', () => {
      // reported by the commands that fail; the client reconnects by itself
    });
    await d.connect();
    return new BlockingNodeRedis(d, this.address);
  }

  async close(): Promise<void> {
    if (!this.#owned) return;
    await closeNodeRedis(this.#c);
  }

  get timeout(): number {
    return this.#timeout;
  }
}

class BlockingNodeRedis implements RedisAdapter {
  readonly address: string;
  readonly #c: NodeRedisLike;
  constructor(c: NodeRedisLike, address: string) {
    this.#c = c;
    this.address = address;
  }
  send(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.sendCommand(args);
  }
  sendBuffers(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.sendCommand(args, BUFFERS);
  }
  async duplicate(): Promise<RedisAdapter> {
    throw new Error('not supported');
  }
  async close(): Promise<void> {
    await closeNodeRedis(this.#c);
  }
}

async function closeNodeRedis(c: NodeRedisLike): Promise<void> {
  // destroy(): at once, also mid-BLPOP and while reconnecting (quit would wait).
  if (typeof c.destroy === 'function') {
    try {
      c.destroy();
    } catch {
      // already closed
    }
    return;
  }
  try {
    await c.disconnect?.();
  } catch {
    // already closed
  }
}

class IORedisAdapter implements RedisAdapter {
  readonly address: string;
  readonly #c: IORedisLike;
  readonly #owned: boolean;
  constructor(c: IORedisLike, owned: boolean) {
    this.#c = c;
    this.#owned = owned;
    const o = c.options ?? {};
    this.address = o.path ?? `${o.host ?? 'localhost'}:${o.port ?? 6379}`;
  }
  send(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.call(args[0] as string, ...args.slice(1));
  }
  sendBuffers(args: readonly RedisArg[]): Promise<unknown> {
    return this.#c.callBuffer(args[0] as string, ...args.slice(1));
  }
  async duplicate(): Promise<RedisAdapter> {
    const d = this.#c.duplicate();
    d.on('error', () => {
      // reported by the commands that fail
    });
    if (d.status !== 'ready') {
      await new Promise<void>((resolve, reject) => {
        d.once('ready', () => resolve());
        d.once('end', () => reject(new Error('Connection is closed.')));
      });
    }
    return new IORedisAdapter(d, true);
  }
  async close(): Promise<void> {
    if (this.#owned) this.#c.disconnect();
  }
}

// --- scripts -----------------------------------------------------------------

/** A Lua script sent once per connection by EVALSHA, by EVAL when the server does not know it (NOSCRIPT). */
export class Script {
  readonly source: string;
  readonly sha: string;
  readonly keys: number;
  constructor(keys: number, source: string) {
    this.keys = keys;
    this.source = source;
    this.sha = createHash('sha1').update(source).digest('hex');
  }
}

// --- the connection ------------------------------------------------------------

/**
 * A connection to one Redis server (or a client you own, wrapped), with the
 * key prefix. Pass it as the `redis` option of every class. `close()` closes
 * the client only if `connect()` opened it from a URL.
 */
export class RedisConnection {
  readonly #client: RedisAdapter;
  /** The key prefix, `'pipc:'` by default. */
  readonly prefix: string;
  #closed = false;
  readonly #owned: Set<{ close(): unknown }> = new Set();

  /** @internal use {@link connect}. */
  constructor(client: RedisAdapter, prefix: string) {
    this.#client = client;
    this.prefix = prefix;
  }

  /** The server, as `host:port`. */
  get address(): string {
    return this.#client.address;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The keys of the object `name` (validated as a posix-ipc name) share `prefix{name}`: one hash slot. */
  keyBase(name: unknown): { name: string; base: string } {
    const n = validateName(name);
    return { name: n, base: `${this.prefix}{${n.slice(1)}}:` };
  }

  /** @internal */
  async command(args: readonly RedisArg[], name?: string): Promise<unknown> {
    try {
      return await this.#client.send(args);
    } catch (err) {
      throw redisError(err, this.address, String(args[0]), name);
    }
  }

  /** @internal Runs a script; bulk replies as Buffers when `buffers`. */
  async run(script: Script, keys: readonly string[], args: readonly RedisArg[], name?: string, buffers = false): Promise<unknown> {
    const send = (a: RedisArg[]): Promise<unknown> => (buffers ? this.#client.sendBuffers(a) : this.#client.send(a));
    try {
      try {
        return await send(['EVALSHA', script.sha, String(keys.length), ...keys, ...args]);
      } catch (err) {
        if (!String((err as Error)?.message ?? '').startsWith('NOSCRIPT')) throw err;
        return await send(['EVAL', script.source, String(keys.length), ...keys, ...args]);
      }
    } catch (err) {
      throw redisError(err, this.address, 'EVALSHA', name);
    }
  }

  /** @internal A connected duplicate for blocking commands, closed with this connection. */
  async blocking(name?: string): Promise<RedisAdapter> {
    try {
      const d = await this.#client.duplicate();
      this.#owned.add(d);
      return d;
    } catch (err) {
      throw redisError(err, this.address, 'CONNECT', name);
    }
  }

  /** @internal closes a duplicate from `blocking()`. */
  release(d: RedisAdapter): void {
    this.#owned.delete(d);
    void d.close().catch(() => {});
  }

  /** Closes the blocking connections and, if `connect()` opened it, the client. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const d of this.#owned) await Promise.resolve(d.close()).catch(() => {});
    this.#owned.clear();
    await this.#client.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/**
 * Connects to Redis. `urlOrClient` is a `redis://`, `rediss://` (TLS) or
 * `unix://` URL (user and password in it are sent as AUTH/ACL credentials:
 * `redis://app:secret@host:6379/0`), a node-redis client (connected or not),
 * an ioredis instance, or a {@link RedisAdapter}.
 *
 * From a URL, `connect()` fails (IPCError `ECONNREFUSED`, `WRONGPASS`,
 * `ENOTFOUND`...) instead of retrying when the first connection cannot be made;
 * later, the client reconnects by itself and operations reject with a clear
 * error while it cannot.
 * ```ts
 * import { connect, Lock } from 'posix-ipc/redis';
 * const redis = await connect('redis://localhost:6379');
 * await new Lock('db-migrate', { redis }).withAcquired(migrate);
 * ```
 */
export async function connect(urlOrClient: unknown, options?: ConnectOptions): Promise<RedisConnection> {
  const o = validateOptions<ConnectOptions>(options, ['prefix', 'connectTimeout', 'commandTimeout', 'clientOptions']);
  const prefix = o.prefix ?? 'pipc:';
  if (typeof prefix !== 'string') throw typeError('ERR_INVALID_ARG_TYPE', 'The "prefix" option must be of type string');
  const connectTimeout = validateInteger(o.connectTimeout, 'connectTimeout', 1, 2 ** 31 - 1, 5000);
  const commandTimeout = validateInteger(o.commandTimeout, 'commandTimeout', 1, 2 ** 31 - 1, 5000);
  if (typeof urlOrClient === 'string') {
    let url: URL;
    try {
      url = new URL(urlOrClient);
    } catch {
      throw typeError('ERR_INVALID_URL', `Invalid Redis URL: '${urlOrClient}'`);
    }
    if (!['redis:', 'rediss:', 'unix:'].includes(url.protocol)) {
      throw typeError('ERR_INVALID_URL', `A Redis URL starts with redis://, rediss:// or unix://. Received '${url.protocol}//...'`);
    }
    let mod: { createClient(o: object): NodeRedisLike };
    try {
      mod = (await import('redis' as string)) as typeof mod;
    } catch {
      throw Object.assign(new Error("posix-ipc/redis needs the 'redis' package (node-redis): npm install redis"), { code: 'ERR_MODULE_NOT_FOUND' });
    }
    let connected = false;
    const address = url.protocol === 'unix:' ? url.pathname : `${url.hostname}:${url.port || 6379}`;
    const extra = (o.clientOptions ?? {}) as { socket?: object };
    const client = mod.createClient({
      ...extra,
      url: url.protocol === 'unix:' ? undefined : urlOrClient,
      socket: {
        ...(url.protocol === 'unix:' ? { path: url.pathname } : {}),
        connectTimeout,
        ...(extra.socket ?? {}),
        // The first connection fails at once; after that, reconnect forever, soon.
        reconnectStrategy: (retries: number, cause: Error) => (connected ? Math.min(50 * (retries + 1), 500) : cause),
      },
      disableOfflineQueue: true,
    });
    let lastError: unknown;
    client.on('error', (err: unknown) => {
      lastError = err;
    });
    try {
      await client.connect();
      // A server that wants a password accepts the connection and refuses commands: say so now.
      await client.sendCommand(['PING']);
    } catch (err) {
      await closeNodeRedis(client);
      throw redisError(lastError ?? err, address, 'CONNECT');
    }
    connected = true;
    const adapter = new NodeRedisAdapter(client, true, commandTimeout);
    (adapter as { address: string }).address = address;
    return new RedisConnection(adapter, prefix);
  }
  if (isAdapter(urlOrClient)) return new RedisConnection(urlOrClient, prefix);
  if (isNodeRedis(urlOrClient)) {
    const c = urlOrClient;
    if (c.isOpen === false) {
      try {
        await c.connect();
      } catch (err) {
        throw redisError(err, nodeRedisAddress(c), 'CONNECT');
      }
    }
    return new RedisConnection(new NodeRedisAdapter(c, false, commandTimeout), prefix);
  }
  if (isIORedis(urlOrClient)) return new RedisConnection(new IORedisAdapter(urlOrClient, false), prefix);
  throw typeError(
    'ERR_INVALID_ARG_TYPE',
    'The "urlOrClient" argument must be a Redis URL, a node-redis client, an ioredis instance or a RedisAdapter',
  );
}

/** A random id for a lease, a waiter or a consumer. @internal */
export function randomId(): string {
  return randomBytes(9).toString('base64url');
}

/** Validates the `redis` option of every class. @internal */
export function validateConnection(value: unknown): RedisConnection {
  if (!(value instanceof RedisConnection)) {
    throw typeError('ERR_INVALID_ARG_TYPE', 'The "redis" option must be what connect() returned (a RedisConnection)');
  }
  if (value.closed) throw redisError(new Error('the connection is closed'), value.address, 'CONNECT');
  return value;
}

/** Milliseconds as the seconds a blocking command takes (at least 10 ms; 0 would mean forever). @internal */
export function blockSeconds(ms: number): string {
  return (Math.max(10, Math.ceil(ms)) / 1000).toFixed(3);
}
