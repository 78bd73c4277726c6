/**
 * `Event` over Redis: Python's `Event` (set, clear, isSet, wait) across hosts.
 *
 * Keys: `P{N}:event` the flag; `P{N}:event:waiters` a sorted set of waiting
 * objects (id -> registration expiry, server clock); `P{N}:event:w:<id>` each
 * waiter's wake list. `set()` raises the flag and pushes one wake-up into the
 * list of every registered waiter, so all of them return, none polls.
 * @module
 */
import { closedError } from '../core/errors.js';
import { throwIfAborted, validateOptions, validateSignal, validateTimeout } from '../core/validate.js';
import { blockSeconds, randomId, redisError, Script, validateConnection } from './client.js';
import type { RedisAdapter, RedisConnection } from './client.js';
import type { RedisAcquireOptions } from './semaphore.js';
import { RedisWaiters } from './waiters.js';

/** KEYS flag waiters; ARGV wake-list prefix */
const SET = new Script(
  2,
  `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('SET', KEYS[1], '1')
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')) do
  redis.call('LPUSH', ARGV[1] .. id, '1')
  redis.call('PEXPIRE', ARGV[1] .. id, 10000)
end
redis.call('DEL', KEYS[2])
return 1`,
);

/** KEYS flag waiters; ARGV id -> 1 set | 0 registered as a waiter (for 10 s) */
const CHECK = new Script(
  2,
  `if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZADD', KEYS[2], now + 10000, ARGV[1])
redis.call('PEXPIRE', KEYS[2], 10000)
return 0`,
);

/** Options for a Redis Event. */
export interface RedisEventOptions {
  /** What `connect()` returned. Required. */
  redis: RedisConnection;
}

/**
 * A flag that processes on any host can set, clear and wait for (Python's
 * `threading.Event`). `isSet()` returns a Promise; there is no Sync form.
 * ```ts
 * const go = new Event('start', { redis });
 * await go.wait({ timeout: 5000 }); // true once someone called go.set()
 * ```
 */
export class Event implements AsyncDisposable {
  readonly #redis: RedisConnection;
  readonly #name: string;
  readonly #flag: string;
  readonly #waitersKey: string;
  readonly #wakePrefix: string;
  readonly #id = randomId();
  readonly #waiters: RedisWaiters<true>;
  #blocking: Promise<RedisAdapter> | undefined;
  #closed = false;

  constructor(name: string, options: RedisEventOptions) {
    const o = validateOptions<RedisEventOptions>(options, ['redis']);
    this.#redis = validateConnection(o.redis);
    const { name: n, base } = this.#redis.keyBase(name);
    this.#name = n;
    this.#flag = base + 'event';
    this.#waitersKey = base + 'event:waiters';
    this.#wakePrefix = base + 'event:w:';
    this.#waiters = new RedisWaiters<true>(
      {
        attempt: async () => {
          const r = await this.#redis.run(CHECK, [this.#flag, this.#waitersKey], [this.#id], this.#name);
          return Number(r) === 1 ? { value: true } : { retryIn: 1000 };
        },
        block: async (ms) => {
          if (this.#blocking === undefined) {
            this.#blocking = this.#redis.blocking(this.#name);
            this.#blocking.catch(() => (this.#blocking = undefined));
          }
          const b = await this.#blocking;
          try {
            await b.send(['BLPOP', this.#wakePrefix + this.#id, blockSeconds(ms)]);
          } catch (err) {
            if (this.#closed) throw closedError('event', 'redis BLPOP', this.#name);
            throw redisError(err, this.#redis.address, 'BLPOP', this.#name);
          }
          return undefined;
        },
        giveBack: async () => {},
      },
      1000,
    );
  }

  /** The name, with its leading slash. */
  get name(): string {
    return this.#name;
  }

  #check(): void {
    if (this.#closed) throw closedError('event', 'redis event', this.#name);
  }

  /** True if the flag is set. */
  async isSet(): Promise<boolean> {
    this.#check();
    return Number(await this.#redis.command(['EXISTS', this.#flag], this.#name)) === 1;
  }

  /** Sets the flag and wakes every waiter, in every process. */
  async set(): Promise<void> {
    this.#check();
    await this.#redis.run(SET, [this.#flag, this.#waitersKey], [this.#wakePrefix], this.#name);
  }

  /** Clears the flag. */
  async clear(): Promise<void> {
    this.#check();
    await this.#redis.command(['DEL', this.#flag], this.#name);
  }

  /**
   * Waits until the flag is set: `true`, or `false` after `timeout` ms;
   * rejects with `AbortError` when `signal` aborts.
   */
  async wait(options?: RedisAcquireOptions): Promise<boolean> {
    const o = validateOptions<RedisAcquireOptions>(options, ['timeout', 'signal']);
    const timeout = validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    throwIfAborted(signal);
    this.#check();
    if (this.#waiters.idle && (await this.isSet())) return true;
    if (timeout === 0) return false;
    return (await this.#waiters.wait(timeout, signal)) === true;
  }

  /** Rejects pending waits with EBADF and closes the blocking connection. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close(closedError('event', 'redis BLPOP', this.#name));
    const b = this.#blocking;
    this.#blocking = undefined;
    if (b !== undefined) void b.then((c) => this.#redis.release(c), () => {});
    await this.#redis.command(['ZREM', this.#waitersKey, this.#id], this.#name).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Removes the event's keys. */
  static async unlink(name: string, options: { redis: RedisConnection }): Promise<void> {
    const redis = validateConnection(validateOptions<{ redis: RedisConnection }>(options, ['redis']).redis);
    const { base } = redis.keyBase(name);
    await redis.command(['DEL', base + 'event', base + 'event:waiters'], name);
  }
}
