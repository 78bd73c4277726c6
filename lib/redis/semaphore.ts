/**
 * `Semaphore`, `BoundedSemaphore` and `Lock` over Redis: every unit held is a
 * lease with a TTL on the server's clock, renewed while held, and every
 * acquire gets a fencing token from one INCR per name.
 *
 * Keys (`P` the prefix, `N` the name without its slash):
 * - `P{N}:leases`  sorted set: lease id -> expiry, ms on the server's clock (TIME)
 * - `P{N}:fence`   the fencing counter (INCR; never expires; created at the server's
 *                  time in µs, so tokens keep increasing even if Redis loses its data)
 * - `P{N}:meta`    hash: `limit`, the number of units, set by the first opener
 * - `P{N}:wake`    list: one entry per release, popped by a waiter's BLPOP
 * @module
 */
import { closedError, ipcError } from '../core/errors.js';
import type { IPCError } from '../core/errors.js';
import {
  rangeError,
  throwIfAborted,
  validateFunction,
  validateInteger,
  validateOptions,
  validateSignal,
  validateTimeout,
  typeError,
} from '../core/validate.js';
import { blockSeconds, randomId, redisError, Script, validateConnection } from './client.js';
import type { RedisAdapter, RedisConnection } from './client.js';
import { RedisWaiters } from './waiters.js';

const NOW = `local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** KEYS leases fence meta; ARGV id ttl limit -> {1, token} | {0, ms until the first lease expires} */
const ACQUIRE = new Script(
  3,
  NOW +
    `local limit = tonumber(redis.call('HGET', KEYS[3], 'limit'))
if not limit then
  limit = tonumber(ARGV[3])
  redis.call('HSET', KEYS[3], 'limit', limit)
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < limit then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
  if redis.call('EXISTS', KEYS[2]) == 0 then
    -- A new (or lost) counter starts at the server's time in microseconds:
    -- tokens still increase after Redis lost its data, unless the clock went back.
    redis.call('SET', KEYS[2], t[1] .. string.format('%06d', tonumber(t[2])))
  end
  return {1, redis.call('INCR', KEYS[2])}
end
local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
return {0, tonumber(first[2]) - now}`,
);

/** KEYS leases wake; ARGV id ttl -> 1 renewed | 0 lost (expired or gone) */
const RENEW = new Script(
  2,
  NOW +
    `local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s or tonumber(s) <= now then
  if s then
    redis.call('ZREM', KEYS[1], ARGV[1])
    redis.call('LPUSH', KEYS[2], '1')
    redis.call('PEXPIRE', KEYS[2], 60000)
  end
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[2]), ARGV[1])
return 1`,
);

/** KEYS leases wake; ARGV id... -> how many of those leases were still held */
const RELEASE = new Script(
  2,
  `local n = 0
for i = 1, #ARGV do n = n + redis.call('ZREM', KEYS[1], ARGV[i]) end
if n > 0 then
  for i = 1, n do redis.call('LPUSH', KEYS[2], '1') end
  redis.call('LTRIM', KEYS[2], 0, 255)
  redis.call('PEXPIRE', KEYS[2], 60000)
end
return n`,
);

/** KEYS leases meta; ARGV default limit -> free units now */
const VALUE = new Script(
  2,
  NOW +
    `redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(redis.call('HGET', KEYS[2], 'limit')) or tonumber(ARGV[1])
return limit - redis.call('ZCARD', KEYS[1])`,
);

const SEM_KEYS = ['redis', 'initialValue', 'ttl', 'onLost'];

/** Options shared by the Redis semaphores. */
export interface RedisSemaphoreOptions {
  /** What `connect()` returned. Required. */
  redis: RedisConnection;
  /**
   * Units of a semaphore this call creates (the first opener of a name sets
   * it; later values are ignored, as POSIX `sem_open` does). Default 1.
   */
  initialValue?: number;
  /** Lifetime of a lease in ms: a holder that stops renewing loses its unit after this. Default 10000. */
  ttl?: number;
  /**
   * Called when a lease of this object is lost (not renewed in time: the
   * process stalled, the server was unreachable or restarted without its
   * data). The Held's `signal` aborts at the same moment.
   */
  onLost?: (held: RedisHeld, err: IPCError) => void;
}

/** Options for a wait. */
export interface RedisAcquireOptions {
  /** Give up after this many ms: `acquire` resolves `false` (rejects with the connection error if Redis was unreachable). */
  timeout?: number;
  /** Abort the wait: rejects with `AbortError`, nothing is held. */
  signal?: AbortSignal;
}

/** One unit held: a lease, renewed until released or lost. */
export interface RedisHeld extends Disposable, AsyncDisposable {
  /** The fencing token: greater than every token handed out before for this name. Pass it to the resource you guard. */
  readonly token: bigint;
  /** Aborts (reason: IPCError `ERR_IPC_LEASE_LOST`) when the lease is lost. Pass it to the work you do while holding. */
  readonly signal: AbortSignal;
  /** True once the lease was lost. */
  readonly lost: boolean;
  /** True once released. */
  readonly released: boolean;
  /** Gives the unit back (idempotent). `[Symbol.dispose]` does the same without waiting for the reply. */
  release(): Promise<void>;
}

class Lease implements RedisHeld {
  readonly id: string;
  readonly token: bigint;
  readonly #ac = new AbortController();
  readonly #owner: Semaphore;
  readonly #ttl: number;
  /** performance.now() by which the lease surely expired on the server, if not renewed. */
  #validUntil: number;
  #renewTimer: ReturnType<typeof setTimeout> | undefined;
  #watchdog: ReturnType<typeof setTimeout> | undefined;
  #state: 'held' | 'lost' | 'released' = 'held';

  constructor(owner: Semaphore, id: string, token: bigint, ttl: number, sentAt: number) {
    this.#owner = owner;
    this.id = id;
    this.token = token;
    this.#ttl = ttl;
    this.#validUntil = sentAt + ttl;
    this.#arm(ttl / 3);
  }

  get signal(): AbortSignal {
    return this.#ac.signal;
  }
  get lost(): boolean {
    return this.#state === 'lost';
  }
  get released(): boolean {
    return this.#state === 'released';
  }

  #arm(renewIn: number): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#watchdog);
    this.#renewTimer = setTimeout(() => void this.#renew(), renewIn);
    this.#renewTimer.unref();
    this.#watchdog = setTimeout(() => this.#check(), Math.max(0, this.#validUntil - performance.now()));
    this.#watchdog.unref();
  }

  /** Lost if the time by which it surely expired has come (after a stall, timers fire late: check the clock). */
  #check(): boolean {
    if (this.#state !== 'held') return false;
    if (performance.now() < this.#validUntil) return true;
    this.lose('not renewed within its ttl');
    return false;
  }

  async #renew(): Promise<void> {
    if (!this.#check()) return;
    const sentAt = performance.now();
    let ok: boolean;
    try {
      ok = (await this.#owner.renewLease(this.id)) === 1;
    } catch {
      // Unreachable: try again soon; the watchdog tells when it is too late.
      if (this.#state === 'held') {
        clearTimeout(this.#renewTimer);
        this.#renewTimer = setTimeout(() => void this.#renew(), Math.max(50, this.#ttl / 10));
        this.#renewTimer.unref();
      }
      return;
    }
    if (this.#state !== 'held') return;
    if (!ok) {
      this.lose('expired on the server');
      return;
    }
    this.#validUntil = sentAt + this.#ttl;
    if (!this.#check()) return;
    this.#arm(this.#ttl / 3);
  }

  lose(why: string): void {
    if (this.#state !== 'held') return;
    this.#state = 'lost';
    this.#stop();
    const err = ipcError('ERR_IPC_LEASE_LOST', `lease lost (${why}); token ${this.token}`, 'redis lease', this.#owner.name);
    this.#owner.forget(this, true);
    this.#ac.abort(err);
    this.#owner.reportLost(this, err);
  }

  #stop(): void {
    clearTimeout(this.#renewTimer);
    clearTimeout(this.#watchdog);
  }

  /** Marks released locally; the caller removes it on the server. */
  markReleased(): boolean {
    if (this.#state !== 'held') return false;
    this.#state = 'released';
    this.#stop();
    return true;
  }

  release(): Promise<void> {
    return this.#owner.releaseLease(this);
  }

  [Symbol.dispose](): void {
    void this.release().catch(() => {});
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}

/**
 * A counting semaphore shared by name through Redis, across hosts.
 *
 * ```ts
 * const gpu = new Semaphore('gpu', { redis, initialValue: 2 });
 * await gpu.withAcquired(async (held) => render(held.signal)); // at most 2, cluster-wide
 * ```
 * Differences from the local class: a unit is a lease held by the object
 * that acquired it (`release()` gives back this object's oldest lease, and
 * throws `ERR_IPC_OVER_RELEASE` when it holds none); `tryAcquire`, `release`
 * and `getValue` return Promises; there are no Sync forms.
 */
export class Semaphore implements AsyncDisposable {
  readonly #redis: RedisConnection;
  readonly #name: string;
  readonly #keys: { leases: string; fence: string; meta: string; wake: string };
  readonly #limit: number;
  readonly #ttl: number;
  readonly #onLost: RedisSemaphoreOptions['onLost'];
  readonly #leases: Lease[] = [];
  readonly #waiters: RedisWaiters<Lease>;
  #blocking: Promise<RedisAdapter> | undefined;
  #closed = false;

  constructor(name: string, options: RedisSemaphoreOptions) {
    const o = validateOptions<RedisSemaphoreOptions>(options, new.target === Semaphore ? SEM_KEYS : [...SEM_KEYS, 'maxValue']);
    this.#redis = validateConnection(o.redis);
    const { name: n, base } = this.#redis.keyBase(name);
    this.#name = n;
    this.#keys = { leases: base + 'leases', fence: base + 'fence', meta: base + 'meta', wake: base + 'wake' };
    this.#limit = validateInteger(o.initialValue, 'initialValue', 1, 2 ** 31 - 1, 1);
    this.#ttl = validateInteger(o.ttl, 'ttl', 30, 2 ** 31 - 1, 10_000);
    if (o.onLost !== undefined) validateFunction(o.onLost, 'onLost');
    this.#onLost = o.onLost;
    this.#waiters = new RedisWaiters<Lease>(
      {
        attempt: () => this.#attempt(),
        block: async (ms) => {
          const b = await this.#blockingClient();
          try {
            await b.send(['BLPOP', this.#keys.wake, blockSeconds(ms)]);
          } catch (err) {
            if (this.#closed) throw closedError('semaphore', 'redis BLPOP', this.#name);
            throw redisError(err, this.#redis.address, 'BLPOP', this.#name);
          }
          return undefined;
        },
        giveBack: (lease) => this.releaseLease(lease),
      },
      1000,
    );
  }

  /** The name, with its leading slash. */
  get name(): string {
    return this.#name;
  }

  /** True after `close()`. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The lease TTL in ms. */
  get ttl(): number {
    return this.#ttl;
  }

  /** Leases this object holds now. */
  get held(): readonly RedisHeld[] {
    return [...this.#leases];
  }

  #blockingClient(): Promise<RedisAdapter> {
    if (this.#blocking === undefined) {
      this.#blocking = this.#redis.blocking(this.#name);
      this.#blocking.catch(() => {
        this.#blocking = undefined;
      });
    }
    return this.#blocking;
  }

  async #attempt(): Promise<{ value: Lease } | { retryIn: number }> {
    const id = randomId();
    const sentAt = performance.now();
    const r = (await this.#redis.run(
      ACQUIRE,
      [this.#keys.leases, this.#keys.fence, this.#keys.meta],
      [id, String(this.#ttl), String(this.#limit)],
      this.#name,
    )) as [number, number];
    if (Number(r[0]) !== 1) return { retryIn: Number(r[1]) };
    const lease = new Lease(this, id, BigInt(r[1]), this.#ttl, sentAt);
    if (this.#closed) {
      await this.releaseLease(lease);
      throw closedError('semaphore', 'redis acquire', this.#name);
    }
    this.#leases.push(lease);
    return { value: lease };
  }

  #check(syscall: string): void {
    if (this.#closed) throw closedError('semaphore', syscall, this.#name);
  }

  /**
   * Takes one unit (a lease), waiting if none is free. Resolves `true` when
   * taken, `false` when `timeout` ms passed first; rejects with `AbortError`
   * when `signal` aborts, and with an IPCError when Redis could not be reached
   * until the deadline. A waiter blocks on the name's wake list (BLPOP on its
   * own connection), re-checking at least every second, so an expired lease
   * is found without a release.
   */
  async acquire(options?: RedisAcquireOptions): Promise<boolean> {
    return (await this.#acquire(options)) !== false;
  }

  async #acquire(options?: RedisAcquireOptions): Promise<Lease | false> {
    const o = validateOptions<RedisAcquireOptions>(options, ['timeout', 'signal']);
    const timeout = validateTimeout(o.timeout);
    const signal = validateSignal(o.signal);
    throwIfAborted(signal);
    this.#check('redis acquire');
    if (this.#waiters.idle) {
      const a = await this.#attempt();
      if ('value' in a) {
        if (signal?.aborted) {
          await this.releaseLease(a.value);
          throwIfAborted(signal);
        }
        return a.value;
      }
      if (timeout === 0) return false;
    }
    return this.#waiters.wait(timeout, signal);
  }

  /** Takes one unit if one is free now (one round trip); never waits. */
  async tryAcquire(): Promise<boolean> {
    this.#check('redis acquire');
    return 'value' in (await this.#attempt());
  }

  /**
   * Gives back this object's oldest lease. Throws RangeError
   * `ERR_IPC_OVER_RELEASE` when it holds none (a lost lease is no longer held).
   */
  async release(): Promise<void> {
    this.#check('redis release');
    const lease = this.#leases[0];
    if (lease === undefined) {
      throw rangeError('ERR_IPC_OVER_RELEASE', `Semaphore released too many times: this object holds no unit of ${this.#name}`);
    }
    await this.releaseLease(lease);
  }

  /** @internal */
  async releaseLease(lease: Lease): Promise<void> {
    if (!lease.markReleased()) return;
    this.forget(lease, false);
    await this.#redis.run(RELEASE, [this.#keys.leases, this.#keys.wake], [lease.id], this.#name);
  }

  /** @internal */
  renewLease(id: string): Promise<unknown> {
    return this.#redis.run(RENEW, [this.#keys.leases, this.#keys.wake], [id, String(this.#ttl)], this.#name);
  }

  /** @internal */
  forget(lease: Lease, lost: boolean): void {
    const i = this.#leases.indexOf(lease);
    if (i >= 0) this.#leases.splice(i, 1);
    // Lost here may not be lost there yet (an outage): remove it, so the unit frees at once.
    if (lost) void this.#redis.run(RELEASE, [this.#keys.leases, this.#keys.wake], [lease.id], this.#name).catch(() => {});
  }

  /** @internal */
  reportLost(lease: Lease, err: IPCError): void {
    if (this.#onLost === undefined) return;
    try {
      this.#onLost(lease, err);
    } catch (e) {
      queueMicrotask(() => {
        throw e;
      });
    }
  }

  /** Free units now (leases past their expiry are not counted). */
  async getValue(): Promise<number> {
    this.#check('redis value');
    return Number(await this.#redis.run(VALUE, [this.#keys.leases, this.#keys.meta], [String(this.#limit)], this.#name));
  }

  /**
   * Acquires and returns the lease: `await using held = await sem.hold()` is
   * Python's `with sem:`. `held.token` is the fencing token, `held.signal`
   * aborts if the lease is lost. Rejects with IPCError `ETIMEDOUT` if
   * `timeout` passes first.
   */
  async hold(options?: RedisAcquireOptions): Promise<RedisHeld> {
    const lease = await this.#acquire(options);
    if (lease === false) throw ipcError('ETIMEDOUT', 'timed out waiting for semaphore', 'redis acquire', this.#name);
    return lease;
  }

  /**
   * Runs `fn(held)` while holding one unit and releases it when `fn` settles.
   * Pass `held.signal` to the work: it aborts if the lease is lost, and then
   * `withAcquired` rejects with the `ERR_IPC_LEASE_LOST` error even if `fn`
   * resolved.
   */
  async withAcquired<T>(fn: (held: RedisHeld) => T | Promise<T>, options?: RedisAcquireOptions): Promise<T> {
    validateFunction(fn, 'fn');
    const held = await this.hold(options);
    try {
      const out = await fn(held);
      if (held.lost) throw held.signal.reason;
      return out;
    } finally {
      await held.release().catch(() => {});
    }
  }

  /**
   * Releases the leases this object holds, rejects its pending acquires with
   * IPCError `EBADF` and closes its blocking connection. The semaphore lives
   * on in Redis. Idempotent.
   */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#waiters.close(closedError('semaphore', 'redis acquire', this.#name));
    const leases = this.#leases.splice(0);
    const ids = leases.filter((l) => l.markReleased()).map((l) => l.id);
    const b = this.#blocking;
    this.#blocking = undefined;
    if (b !== undefined) void b.then((c) => this.#redis.release(c), () => {});
    if (ids.length > 0) await this.#redis.run(RELEASE, [this.#keys.leases, this.#keys.wake], ids, this.#name).catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /** Removes the semaphore's keys but its fencing counter (tokens keep increasing if the name is reused). */
  static async unlink(name: string, options: { redis: RedisConnection }): Promise<void> {
    const redis = validateConnection(validateOptions<{ redis: RedisConnection }>(options, ['redis']).redis);
    const { base } = redis.keyBase(name);
    await redis.command(['DEL', base + 'leases', base + 'meta', base + 'wake'], name);
  }
}

/** Options for a bounded semaphore. */
export interface RedisBoundedSemaphoreOptions extends RedisSemaphoreOptions {
  /** The bound: must equal `initialValue` here (units are leases; none can be added). Default `initialValue`. */
  maxValue?: number;
}

/**
 * A semaphore that cannot be released above its bound. Over Redis every
 * semaphore is bounded (a release gives back a lease held), so this differs
 * from `Semaphore` only by its `maxValue`.
 */
export class BoundedSemaphore extends Semaphore {
  readonly #max: number;
  constructor(name: string, options: RedisBoundedSemaphoreOptions) {
    const o = validateOptions<RedisBoundedSemaphoreOptions>(options, [...SEM_KEYS, 'maxValue']);
    const initialValue = validateInteger(o.initialValue, 'initialValue', 1, 2 ** 31 - 1, 1);
    const max = validateInteger(o.maxValue, 'maxValue', 1, 2 ** 31 - 1, initialValue);
    if (max !== initialValue) {
      throw rangeError('ERR_OUT_OF_RANGE', `maxValue (${max}) must equal initialValue (${initialValue}) over Redis`);
    }
    super(name, options);
    this.#max = max;
  }

  /** The bound. */
  get maxValue(): number {
    return this.#max;
  }
}

/**
 * A lock across hosts: a semaphore of one unit, held as a lease with a
 * fencing token.
 * ```ts
 * const lock = new Lock('db-migrate', { redis, ttl: 10_000 });
 * await using held = await lock.hold();
 * await db.migrate({ fencingToken: held.token, signal: held.signal });
 * ```
 */
export class Lock extends BoundedSemaphore {
  constructor(name: string, options: Omit<RedisSemaphoreOptions, 'initialValue'>) {
    const o = validateOptions<RedisSemaphoreOptions>(options, SEM_KEYS);
    if (o.initialValue !== undefined && o.initialValue !== 1) {
      throw typeError('ERR_INVALID_ARG_VALUE', 'A Lock has one unit: the "initialValue" option does not apply');
    }
    super(name, { ...o, initialValue: 1, maxValue: 1 } as RedisBoundedSemaphoreOptions);
  }

  /** True if the lock is held now (by anyone). */
  async locked(): Promise<boolean> {
    return (await this.getValue()) <= 0;
  }
}
