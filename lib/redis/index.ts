/**
 * posix-ipc/redis: the same Lock, Semaphore, BoundedSemaphore, Queue and
 * Event as posix-ipc, across hosts, through Redis. Held units are leases
 * (TTL on the server's clock, renewed while held, fencing tokens from INCR);
 * the Queue delivers at-least-once through per-consumer processing lists.
 * Needs the `redis` package (node-redis) or an ioredis instance; the core
 * package never imports it.
 * @module
 */
export { connect, RedisConnection, Script } from './client.js';
export type { ConnectOptions, RedisAdapter, RedisArg, RedisIPCError } from './client.js';
export { Semaphore, BoundedSemaphore, Lock } from './semaphore.js';
export type { RedisSemaphoreOptions, RedisBoundedSemaphoreOptions, RedisAcquireOptions, RedisHeld } from './semaphore.js';
export { Event } from './event.js';
export type { RedisEventOptions } from './event.js';
export { Queue, Empty, Full } from './queue.js';
export type { RedisQueueOptions, RedisPutOptions, RedisGetOptions } from './queue.js';
export { IPCError, AbortError } from '../core/errors.js';
