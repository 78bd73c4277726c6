/**
 * `Queue` over Redis lists, with reliable delivery.
 *
 * Keys (`P` the prefix, `N` the name):
 * - `P{N}:q`            the items, LPUSH'ed, taken from the right (FIFO)
 * - `P{N}:proc:<id>`    each consumer's processing list: what it took and has not acknowledged
 * - `P{N}:consumers`    sorted set: consumer id -> expiry of its heartbeat (server clock)
 * - `P{N}:space`        wake list for putters of a full queue; `P{N}:putwait` says one waits
 *
 * A get moves an item atomically into the consumer's processing list (LMOVE in
 * a script, or BLMOVE when it has to wait). The item is acknowledged (removed
 * from that list) when the same Queue object next calls `get`/`getNowait`, or
 * calls `taskDone()` or `close()`. A consumer whose heartbeat (renewed every
 * `visibilityTimeout / 3`) expires is dead: the next get by anyone moves its
 * unacknowledged items back to the head of the queue. So delivery is
 * at-least-once; exactly-once while no consumer dies or stalls past its
 * visibility timeout.
 * @module
 */
import { randomBytes } from 'node:crypto';
import { resolveCodec } from '../core/codec.js';
import type { Codec, CodecOption } from '../core/codec.js';
import { abortError, closedError } from '../core/errors.js';
import { Empty, Full } from '../queue/queue.js';
import {
  throwIfAborted,
  typeError,
  validateInteger,
  validateOptions,
  validateSignal,
  validateTimeout,
} from '../core/validate.js';
import { blockSeconds, isUnavailable, randomId, redisError, Script, validateConnection } from './client.js';
import type { RedisAdapter, RedisConnection } from './client.js';
import { RedisWaiters } from './waiters.js';

export { Empty, Full };

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

// Moves every dead consumer's processing list back to the head of the queue (oldest first out).
const REAP = `for _, c in ipairs(redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now, 'LIMIT', 0, 16)) do
  local p = ARGV[1] .. c
  for _, m in ipairs(redis.call('LRANGE', p, 0, -1)) do redis.call('RPUSH', KEYS[1], m) end
  redis.call('DEL', p)
  redis.call('ZREM', KEYS[3], c)
end
`;

/** KEYS q proc consumers space putwait; ARGV procPrefix id visibility nAcks acks... -> item | nil */
const TAKE = new Script(
  5,
  NOW +
    `redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
for i = 1, tonumber(ARGV[4]) do redis.call('LREM', KEYS[2], -1, ARGV[4 + i]) end
` +
    REAP +
    `local m = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
if m and redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('LPUSH', KEYS[4], '1')
  redis.call('LTRIM', KEYS[4], 0, 63)
  redis.call('PEXPIRE', KEYS[4], 10000)
end
return m`,
);

/** KEYS q proc consumers space putwait; ARGV procPrefix id visibility -> heartbeat, reap, wake putters */
const HEARTBEAT = new Script(
  5,
  NOW +
    `redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[2])
` +
    REAP +
    `return 1`,
);

/** KEYS q proc consumers space putwait; ARGV final nAcks acks... (final: give back the rest, leave) */
const ACK = new Script(
  5,
  `for i = 1, tonumber(ARGV[2]) do redis.call('LREM', KEYS[2], -1, ARGV[2 + i]) end
if ARGV[1] == '1' then
  for _, m in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do redis.call('RPUSH', KEYS[1], m) end
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[3 + tonumber(ARGV[2])])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('LPUSH', KEYS[4], '1')
  redis.call('LTRIM', KEYS[4], 0, 63)
  redis.call('PEXPIRE', KEYS[4], 10000)
end
return 1`,
);

/** KEYS q proc; ARGV m: an item taken for a getter that left, back to the head */
const UNGET = new Script(
  2,
  `if redis.call('LREM', KEYS[2], 1, ARGV[1]) == 1 then redis.call('RPUSH', KEYS[1], ARGV[1]) end
return 1`,
);

/** KEYS q putwait; ARGV maxsize item -> 1 put | 0 full */
const PUT = new Script(
  2,
  `local max = tonumber(ARGV[1])
if max > 0 and redis.call('LLEN', KEYS[1]) >= max then
  redis.call('SET', KEYS[2], '1', 'PX', 5000)
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[2])
return 1`,
);

/** Bytes of the id that starts every stored item (makes each one unique, so an ack removes exactly it). */
const ID_BYTES = 16;

/** Options for a Redis Queue. */
export interface RedisQueueOptions<T = unknown> {
  /** What `connect()` returned. Required. */
  redis: RedisConnection;
  /** Puts by this object wait (or fail with `Full`) while the queue holds this many items. 0 (default): unbounded, as Python's. */
  maxsize?: number;
  /** `'json'` (default), `'v8'`, `'raw'`, `'pickle'`, or `{ encode, decode }`. */
  codec?: CodecOption<T>;
  /**
   * How long (ms) this consumer may go without a heartbeat before its
   * unacknowledged items are given to others. Heartbeats go every third of it
   * while the object is open. Default 10000.
   */
  visibilityTimeout?: number;
}

/** Options for `put`. */
export interface RedisPutOptions {
  /** Give up after this many ms: rejects with `Full`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, and the item is not put. */
  signal?: AbortSignal;
}

/** Options for `get`. */
export interface RedisGetOptions {
  /** Give up after this many ms: rejects with `Empty`. Default: wait forever. */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, and nothing is taken. */
  signal?: AbortSignal;
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(done, ms);
    function done(): void {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }
    function onAbort(): void {
      clearTimeout(t);
      reject(abortError(signal!));
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/**
 * A FIFO queue between processes on any host, through Redis: Python's
 * `Queue` (`put`/`get` with `Full`/`Empty`, `putNowait`, `getNowait`,
 * `qsize`), with `for await`. `Empty` and `Full` are the local classes, so
 * `instanceof` works for both backends.
 *
 * ```ts
 * const q = new Queue<Job>('jobs', { redis });
 * await q.put({ id: 1 });
 * for await (const job of q) await work(job); // each job acked when the loop asks for the next
 * ```
 * Delivery is at-least-once: see the module notes. Priorities are not
 * supported (a `priority` option is a TypeError); there are no Sync forms.
 */
export class Queue<T = unknown> implements AsyncDisposable, AsyncIterable<T> {
  readonly #redis: RedisConnection;
  readonly #name: string;
  readonly #codec: Codec<T>;
  readonly #maxsize: number;
  readonly #vis: number;
  readonly #id = randomId();
  readonly #k: { q: string; proc: string; consumers: string; space: string; putwait: string; procPrefix: string };
  readonly #waiters: RedisWaiters<Buffer>;
  /** Delivered, not acknowledged yet: acked by the next get, taskDone() or close(). */
  #delivered: Buffer[] = [];
  #getConn: Promise<RedisAdapter> | undefined;
  #putConn: Promise<RedisAdapter> | undefined;
  #heartbeat: ReturnType<typeof setInterval> | undefined;
  #closed = false;

  constructor(name: string, options: RedisQueueOptions<T>) {
    const o = validateOptions<RedisQueueOptions<T>>(options, ['redis', 'maxsize', 'codec', 'visibilityTimeout']);
    this.#redis = validateConnection(o.redis);
    const { name: n, base } = this.#redis.keyBase(name);
    this.#name = n;
    this.#codec = resolveCodec<T>(o.codec);
    this.#maxsize = validateInteger(o.maxsize, 'maxsize', 0, 2 ** 31 - 1, 0);
    this.#vis = validateInteger(o.visibilityTimeout, 'visibilityTimeout', 30, 2 ** 31 - 1, 10_000);
    this.#k = {
      q: base + 'q',
      proc: base + 'proc:' + this.#id,
      consumers: base + 'consumers',
      space: base + 'space',
      putwait: base + 'putwait',
      procPrefix: base + 'proc:',
    };
    this.#waiters = new RedisWaiters<Buffer>(
      {
        attempt: async () => {
          const m = await this.#take();
          return m === null ? { retryIn: 1000 } : { value: m };
        },
        block: async (ms) => {
          const c = await this.#conn('get');
          let m: unknown;
          try {
            m = await c.sendBuffers(['BLMOVE', this.#k.q, this.#k.proc, 'RIGHT', 'LEFT', blockSeconds(ms)]);
          } catch (err) {
            if (this.#closed) throw closedError('queue', 'redis BLMOVE', this.#name);
            throw redisError(err, this.#redis.address, 'BLMOVE', this.#name);
          }
          if (!Buffer.isBuffer(m)) return undefined;
          this.#delivered.push(m);
          this.#wakePutters();
          return m;
        },
        giveBack: async (m) => {
          this.#forget(m);
          await this.#redis.run(UNGET, [this.#k.q, this.#k.proc], [m], this.#name, true);
        },
      },
      1000,
    );
  }

  /** The name, with its leading slash. */
  get name(): string {
    return this.#name;
  }

  /** This object's bound on puts (0: none). */
  get maxsize(): number {
    return this.#maxsize;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  #check(syscall: string): void {
    if (this.#closed) throw closedError('queue', syscall, this.#name);
  }

  #keys(): string[] {
    const k = this.#k;
    return [k.q, k.proc, k.consumers, k.space, k.putwait];
  }

  #conn(which: 'get' | 'put'): Promise<RedisAdapter> {
    let p = which === 'get' ? this.#getConn : this.#putConn;
    if (p === undefined) {
      p = this.#redis.blocking(this.#name);
      p.catch(() => {
        if (which === 'get') this.#getConn = undefined;
        else this.#putConn = undefined;
      });
      if (which === 'get') this.#getConn = p;
      else this.#putConn = p;
    }
    return p;
  }

  #startHeartbeat(): void {
    if (this.#heartbeat !== undefined || this.#closed) return;
    this.#heartbeat = setInterval(() => {
      void this.#redis.run(HEARTBEAT, this.#keys(), [this.#k.procPrefix, this.#id, String(this.#vis)], this.#name).catch(() => {});
    }, Math.max(10, Math.floor(this.#vis / 3)));
    this.#heartbeat.unref();
  }

  #forget(m: Buffer): void {
    const i = this.#delivered.indexOf(m);
    if (i >= 0) this.#delivered.splice(i, 1);
  }

  /** One TAKE: acknowledges what was delivered before, reaps the dead, moves one item. */
  async #take(): Promise<Buffer | null> {
    const acks = this.#delivered;
    this.#delivered = [];
    let m: unknown;
    try {
      m = await this.#redis.run(TAKE, this.#keys(), [this.#k.procPrefix, this.#id, String(this.#vis), String(acks.length), ...acks], this.#name, true);
    } catch (err) {
      this.#delivered = acks.concat(this.#delivered);
      throw err;
    }
    this.#startHeartbeat();
    if (!Buffer.isBuffer(m)) return null;
    this.#delivered.push(m);
    return m;
  }

  #wakePutters(): void {
    void this.#redis.run(ACK, this.#keys(), ['0', '0'], this.#name).catch(() => {});
  }

  #decode(m: Buffer): T {
    return this.#codec.decode(m.subarray(ID_BYTES));
  }

  #encode(item: T): Buffer {
    const bytes = this.#codec.encode(item);
    const id = randomBytes(ID_BYTES / 2).toString('hex');
    return Buffer.concat([Buffer.from(id, 'latin1'), bytes]);
  }

  /** Items waiting in the queue now (not counting those delivered and not yet acknowledged). */
  async qsize(): Promise<number> {
    this.#check('redis LLEN');
    return Number(await this.#redis.command(['LLEN', this.#k.q], this.#name));
  }

  /** True if no item waits now. */
  async empty(): Promise<boolean> {
    return (await this.qsize()) === 0;
  }

  /** True if this object's `maxsize` is reached now (never for an unbounded queue). */
  async full(): Promise<boolean> {
    return this.#maxsize > 0 && (await this.qsize()) >= this.#maxsize;
  }

  async #putOnce(msg: Buffer): Promise<boolean> {
    const r = await this.#redis.run(PUT, [this.#k.q, this.#k.putwait], [String(this.#maxsize), msg], this.#name, true);
    return Number(r) === 1;
  }

  /**
   * Puts `item`, waiting while the queue is full (`maxsize`). Rejects with
   * `Full` after `timeout` ms, `AbortError` when `signal` aborts (the item is
   * then not put), an IPCError when Redis cannot be reached.
   */
  async put(item: T, options?: RedisPutOptions): Promise<void> {
    const o = validateOptions<RedisPutOptions & { priority?: unknown }>(options, ['timeout', 'signal', 'priority']);
    if (o.priority !== undefined) {
      throw typeError('ERR_INVALID_ARG_VALUE', 'The "priority" option is not supported by the Redis Queue');
    }
    const timeout = validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    throwIfAborted(signal);
    this.#check('redis put');
    const msg = this.#encode(item);
    const deadline = timeout < 0 ? Infinity : performance.now() + timeout;
    let lastError: unknown;
    for (;;) {
      try {
        if (await this.#putOnce(msg)) return;
        lastError = undefined;
      } catch (err) {
        if (!isUnavailable(err)) throw err;
        lastError = err;
      }
      this.#check('redis put');
      const left = deadline - performance.now();
      if (left <= 0 || timeout === 0) throw lastError ?? new Full(`queue ${this.#name} is full`);
      if (lastError !== undefined) {
        await sleep(Math.min(200, left), signal);
        continue;
      }
      const c = await this.#conn('put');
      const blpop = c.send(['BLPOP', this.#k.space, blockSeconds(Math.min(1000, left))]).catch(() => {});
      if (signal === undefined) await blpop;
      else {
        let onAbort!: () => void;
        const aborted = new Promise<never>((_, reject) => {
          onAbort = () => reject(abortError(signal));
          signal.addEventListener('abort', onAbort, { once: true });
        });
        try {
          await Promise.race([blpop, aborted]);
        } finally {
          signal.removeEventListener('abort', onAbort);
        }
      }
    }
  }

  /** Puts `item` now or throws `Full`. */
  async putNowait(item: T): Promise<void> {
    return this.put(item, { timeout: 0 });
  }

  /**
   * Takes the next item, waiting while the queue is empty. Rejects with
   * `Empty` after `timeout` ms, `AbortError` when `signal` aborts (nothing is
   * taken), an IPCError when Redis could not be reached until the deadline.
   * The item is acknowledged by this object's next get, `taskDone()` or
   * `close()`; until then a crash of this process gives it to another
   * consumer after `visibilityTimeout`.
   */
  async get(options?: RedisGetOptions): Promise<T> {
    const o = validateOptions<RedisGetOptions>(options, ['timeout', 'signal']);
    const timeout = validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    throwIfAborted(signal);
    this.#check('redis get');
    if (this.#waiters.idle) {
      const m = await this.#take();
      if (m !== null) {
        if (signal?.aborted) {
          this.#forget(m);
          await this.#redis.run(UNGET, [this.#k.q, this.#k.proc], [m], this.#name, true);
          throwIfAborted(signal);
        }
        return this.#decode(m);
      }
      if (timeout === 0) throw new Empty(`queue ${this.#name} is empty`);
    }
    const m = await this.#waiters.wait(timeout, signal);
    if (m === false) throw new Empty(`queue ${this.#name} is empty`);
    return this.#decode(m);
  }

  /** Takes an item now or throws `Empty`. */
  async getNowait(): Promise<T> {
    return this.get({ timeout: 0 });
  }

  /** Acknowledges every item this object got so far (done with them: no redelivery). */
  async taskDone(): Promise<void> {
    this.#check('redis ack');
    const acks = this.#delivered;
    if (acks.length === 0) return;
    this.#delivered = [];
    try {
      await this.#redis.run(ACK, this.#keys(), ['0', String(acks.length), ...acks], this.#name, true);
    } catch (err) {
      this.#delivered = acks.concat(this.#delivered);
      throw err;
    }
  }

  /** Yields items until the queue object is closed; each is acknowledged when the next is asked for. */
  async *[Symbol.asyncIterator](): AsyncIterator<T> {
    while (!this.#closed) {
      let item: T;
      try {
        item = await this.get();
      } catch (err) {
        if (this.#closed) return;
        throw err;
      }
      yield item;
    }
  }

  /**
   * Acknowledges what this object got, gives back anything it took for
   * nobody, stops its heartbeat, rejects pending gets with EBADF and closes
   * its blocking connections. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close(closedError('queue', 'redis get', this.#name));
    clearInterval(this.#heartbeat);
    for (const p of [this.#getConn, this.#putConn]) {
      if (p !== undefined) void p.then((c) => this.#redis.release(c), () => {});
    }
    this.#getConn = this.#putConn = undefined;
    const acks = this.#delivered.splice(0);
    if (this.#heartbeat !== undefined || acks.length > 0) {
      await this.#redis.run(ACK, this.#keys(), ['1', String(acks.length), ...acks, this.#id], this.#name, true).catch(() => {});
    }
    this.#heartbeat = undefined;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Removes the queue's items and keys (consumers' processing lists expire with them gone). */
  static async unlink(name: string, options: { redis: RedisConnection }): Promise<void> {
    const redis = validateConnection(validateOptions<{ redis: RedisConnection }>(options, ['redis']).redis);
    const { base } = redis.keyBase(name);
    const procs = (await redis.command(['ZRANGE', base + 'consumers', '0', '-1'], name)) as string[];
    await redis.command(['DEL', base + 'q', base + 'consumers', base + 'space', base + 'putwait', ...procs.map((c) => base + 'proc:' + c)], name);
  }
}
