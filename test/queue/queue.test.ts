import { readFile } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { statSync } from 'node:fs';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { binding } from '../../lib/core/binding.js';
import type { Handle } from '../../lib/core/binding.js';
import { AbortError, Empty, Full, IPCError, Queue } from '../../lib/index.js';
import { fdCount, ourShmEntries, run, ROOT, sleep, threadCount, uniqueName, queueExists } from '../helpers/index.js';

const made: string[] = [];
const opened: Queue<any>[] = [];

type Kind = 'mq' | 'shm';
/** Every behaviour below runs on both transports; what only 'mq' has is in its own block at the end. */
const TRANSPORTS: Kind[] = ['mq', 'shm'];
/** The transport of the block running now (each block's beforeEach sets it). */
let KIND: Kind = 'mq';
const RING_DEFAULT = 8 * 1024 * 1024;

/** Opens (creating) a queue whose name is removed after the test. */
function fresh<T = unknown>(options: ConstructorParameters<typeof Queue<T>>[1] = {}, tag = 'q'): Queue<T> {
  const name = uniqueName(tag);
  made.push(name);
  const q = new Queue<T>(name, { transport: KIND, ...options } as ConstructorParameters<typeof Queue<T>>[1]);
  opened.push(q);
  return q;
}

/** Another handle on the same queue. */
function other<T = unknown>(q: Queue<any>, options: ConstructorParameters<typeof Queue<T>>[1] = {}): Queue<T> {
  const h = new Queue<T>(q.name, { create: false, ...options });
  opened.push(h);
  return h;
}

afterEach(() => {
  for (const q of opened.splice(0)) q.close();
  for (const n of made.splice(0)) {
    try {
      Queue.unlink(n);
    } catch (err) {
      if ((err as IPCError).code !== 'ENOENT') throw err;
    }
    expect(queueExists(n)).toBe(false);
  }
  expect(ourShmEntries()).toEqual([]);
});

/** Runs fn on a raw native handle of the queue (for what the public API hides). */
function withHandle<R>(q: Queue<any>, fn: (h: Handle) => R): R {
  const h = binding.mqOpen(q.name, false, false, 0, 0, 0);
  try {
    return fn(h);
  } finally {
    binding.mqClose(h);
  }
}

describe.each(TRANSPORTS)('Queue on %s', (transport) => {
  beforeEach(() => {
    KIND = transport;
  });
  /** The largest item: mq_msgsize, or the default ring minus its record header. */
  const MSG = transport === 'mq' ? 8192 : RING_DEFAULT - 8;
  const sized = (maxsize: number, msgsize: number) =>
    transport === 'mq' ? { maxsize, maxMessageSize: msgsize } : { maxsize, capacity: msgsize + 8 };

  describe('Queue basics', () => {
    it('puts and gets JSON items in FIFO order, with exact qsize/empty/full', async () => {
      const q = fresh<{ n: number }>({ maxsize: 3 });
      expect(q.maxsize).toBe(3);
      expect(q.maxMessageSize).toBe(MSG);
      expect(q.transport).toBe(transport);
      expect(q.name.startsWith('/pipc-test-')).toBe(true);
      expect(q.empty()).toBe(true);
      await q.put({ n: 1 });
      q.putNowait({ n: 2 });
      q.putSync({ n: 3 });
      expect(q.qsize()).toBe(3);
      expect(q.full()).toBe(true);
      expect(await q.get()).toEqual({ n: 1 });
      expect(q.getNowait()).toEqual({ n: 2 });
      expect(q.getSync()).toEqual({ n: 3 });
      expect(q.empty()).toBe(true);
      expect(q.attributes()).toEqual({ maxsize: 3, maxMessageSize: MSG, size: 0 });
    });

    it('uses the system defaults when no size is given', () => {
      const q = fresh();
      // mq: the system's msg_default and msgsize_default; shm: unbounded items in an 8 MiB ring.
      expect(q.maxsize).toBe(transport === 'mq' ? 10 : Infinity);
      expect(q.maxMessageSize).toBe(MSG);
      expect(q.capacity).toBe(transport === 'mq' ? undefined : RING_DEFAULT);
    });

    it('message bytes are exactly the UTF-8 JSON (raw view of a json queue)', async () => {
      const q = fresh<unknown>();
      const raw = other<Buffer>(q, { codec: 'raw' });
      await q.put({ héllo: [1, 'two', null] });
      expect(raw.getNowait().toString('utf8')).toBe('{"héllo":[1,"two",null]}');
    });

    it('"name" and "/name" are the same queue; an existing queue reports its real attributes', () => {
      const q = fresh(sized(4, 256));
      const same = new Queue(q.name.slice(1));
      opened.push(same);
      expect(same.maxsize).toBe(4);
      expect(same.maxMessageSize).toBe(256);
    });

    it('options that disagree with an existing queue are an error that says so', () => {
      const q = fresh({ maxsize: 4 });
      if (transport === 'mq') {
        expect(() => new Queue(q.name, { maxsize: 5 })).toThrow(/exists with maxsize 4 and maxMessageSize 8192, not the requested maxsize 5/);
        expect(() => new Queue(q.name, { maxMessageSize: 100 })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'mq_open' }));
      } else {
        expect(() => new Queue(q.name, { maxsize: 5 })).toThrow(
          /exists with capacity 8388608 and maxsize 4, not the requested capacity 8388608 and maxsize 5/,
        );
        expect(() => new Queue(q.name, { capacity: 1024 })).toThrow(expect.objectContaining({ code: 'EINVAL', syscall: 'ring_open' }));
        // maxMessageSize is an mq attribute: on a ring it is a mistake, said as such.
        expect(() => new Queue(q.name, { maxMessageSize: 100 })).toThrow(
          expect.objectContaining({ name: 'TypeError', message: expect.stringMatching(/is a 'shm' queue/) }),
        );
      }
    });

    it('create: false on a missing name is ENOENT; exclusive on an existing one is EEXIST', () => {
      const name = uniqueName('missing');
      expect(() => new Queue(name, { create: false, transport })).toThrow(
        expect.objectContaining({ name: 'IPCError', code: 'ENOENT', syscall: transport === 'mq' ? 'mq_open' : 'open', path: '/' + name }),
      );
      const q = fresh();
      expect(() => new Queue(q.name, { exclusive: true })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
      expect(() => new Queue(q.name, { exclusive: true, transport })).toThrow(expect.objectContaining({ code: 'EEXIST' }));
    });

    it('creates with mode 0o600 by default', () => {
      const q = fresh();
      const mode =
        transport === 'mq' ? withHandle(q, (h) => binding.mqAttr(h).mode) : statSync(`/dev/shm/pipc.${q.name.slice(1)}.queue`).mode & 0o7777;
      expect(mode).toBe(0o600);
    });

    it('static unlink removes the name; ENOENT afterwards', () => {
      const name = uniqueName('unl');
      new Queue(name, { transport }).close();
      expect(queueExists(name)).toBe(true);
      Queue.unlink(name);
      expect(queueExists(name)).toBe(false);
      expect(() => Queue.unlink(name)).toThrow(expect.objectContaining({ code: 'ENOENT', syscall: 'mq_unlink' }));
    });
  });

  describe('Queue timeouts, nowait, priorities', () => {
    it('get with timeout rejects Empty after about the timeout; getNowait/getSync throw Empty', async () => {
      const q = fresh();
      const t0 = performance.now();
      const err = await q.get({ timeout: 80 }).catch((e: unknown) => e);
      const dt = performance.now() - t0;
      expect(err).toBeInstanceOf(Empty);
      expect((err as Empty).code).toBe('ERR_IPC_EMPTY');
      expect(dt).toBeGreaterThanOrEqual(70);
      expect(dt).toBeLessThan(2000);
      expect(() => q.getNowait()).toThrow(Empty);
      await expect(q.get({ timeout: 0 })).rejects.toBeInstanceOf(Empty);
      const s0 = performance.now();
      expect(() => q.getSync({ timeout: 60 })).toThrow(Empty);
      expect(performance.now() - s0).toBeGreaterThanOrEqual(50);
    });

    it('put with timeout rejects Full; putNowait/putSync throw Full; nothing extra is queued', async () => {
      const q = fresh({ maxsize: 2 });
      q.putNowait(1);
      q.putNowait(2);
      expect(() => q.putNowait(3)).toThrow(Full);
      await expect(q.put(3, { timeout: 50 })).rejects.toBeInstanceOf(Full);
      await expect(q.put(3, { timeout: 0 })).rejects.toMatchObject({ name: 'Full', code: 'ERR_IPC_FULL' });
      expect(() => q.putSync(3, { timeout: 40 })).toThrow(Full);
      expect(q.qsize()).toBe(2);
      expect([q.getNowait(), q.getNowait()]).toEqual([1, 2]);
    });

    it('a waiting get is woken by a put from another handle; a waiting put by a get', async () => {
      const q = fresh({ maxsize: 1 });
      const w = other(q);
      const pending = q.get({ timeout: 5000 });
      await sleep(20);
      w.putNowait('hello');
      expect(await pending).toBe('hello');
      w.putNowait('a');
      const putting = w.put('b', { timeout: 5000 });
      await sleep(20);
      expect(q.getNowait()).toBe('a');
      await putting;
      expect(q.getNowait()).toBe('b');
    });

    it('waiters in one process are served in arrival order', async () => {
      const q = fresh<number>();
      const w = other<number>(q);
      const order: number[] = [];
      const gets = [0, 1, 2, 3, 4].map((i) => q.get({ timeout: 5000 }).then((v) => order.push(i * 100 + v)));
      await sleep(10);
      for (let i = 0; i < 5; i++) w.putNowait(i);
      await Promise.all(gets);
      expect(order).toEqual([0, 101, 202, 303, 404]);
    });

    it('one message wakes one receive attempt, not one per waiter (no thundering herd)', async () => {
      const q = fresh<number>();
      const w = other<number>(q);
      const gets = Array.from({ length: 20 }, () => q.get({ timeout: 10_000 }));
      await sleep(10);
      // Count every receive, whichever native form the queue uses.
      const b = binding as unknown as Record<string, (...args: unknown[]) => unknown>;
      const forms = transport === 'mq' ? ['mqReceive', 'mqReceiveInto'] : ['ringReceiveInto', 'ringReceiveSync'];
      const originals = forms.map((f) => b[f]!);
      let attempts = 0;
      forms.forEach((f, i) => {
        b[f] = (...args: unknown[]) => {
          attempts += 1;
          return originals[i]!(...args);
        };
      });
      try {
        w.putNowait(0);
        expect(await gets[0]).toBe(0);
        await sleep(30);
      } finally {
        forms.forEach((f, i) => {
          b[f] = originals[i]!;
        });
      }
      // One receive takes the message; at most one more finds the queue empty.
      expect(attempts).toBeGreaterThanOrEqual(1);
      expect(attempts).toBeLessThanOrEqual(2);
      for (let i = 1; i < 20; i++) await w.put(i, { timeout: 10_000 });
      expect(await Promise.all(gets.slice(1))).toEqual(Array.from({ length: 19 }, (_, i) => i + 1));
    });

    it('abort rejects with AbortError and consumes nothing', async () => {
      const q = fresh<string>({ maxsize: 1 });
      const ac = new AbortController();
      const pending = q.get({ signal: ac.signal });
      ac.abort(new Error('stop'));
      const err = await pending.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortError);
      expect((err as AbortError).cause).toEqual(new Error('stop'));
      q.putNowait('kept');
      expect(q.qsize()).toBe(1);
      // A full queue: an aborted put sends nothing.
      const ac2 = new AbortController();
      const put = q.put('dropped', { signal: ac2.signal });
      await sleep(10);
      ac2.abort();
      await expect(put).rejects.toBeInstanceOf(AbortError);
      expect(q.getNowait()).toBe('kept');
      expect(q.qsize()).toBe(0);
      await expect(q.get({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
    });

    it('32 pending gets keep timers and fs responsive, add no thread, then are all served', async () => {
      const q = fresh<number>();
      const w = other<number>(q);
      const threads = threadCount();
      const gets = Array.from({ length: 32 }, () => q.get({ timeout: 20_000 }));
      const t0 = performance.now();
      await sleep(20);
      const timerLag = performance.now() - t0;
      const f0 = performance.now();
      await readFile(`${ROOT}/package.json`);
      const fsTime = performance.now() - f0;
      expect(timerLag).toBeLessThan(1000);
      expect(fsTime).toBeLessThan(1000);
      expect(threadCount()).toBe(threads);
      for (let i = 0; i < 32; i++) await w.put(i);
      expect(await Promise.all(gets)).toEqual(Array.from({ length: 32 }, (_, i) => i));
    });

    it('an idle queue does not keep a process alive; a pending get does until it times out', async () => {
      const name = uniqueName('alive');
      made.push(name);
      const url = new URL('../../dist/index.js', import.meta.url).href;
      const idle = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `import { Queue } from '${url}'; new Queue('${name}', { transport: '${transport}' }); console.log('opened');`,
      ]);
      expect(idle).toMatchObject({ code: 0, stdout: 'opened\n' });
      const t0 = performance.now();
      const waiting = await run(process.execPath, [
        '--input-type=module',
        '-e',
        `import { Queue } from '${url}'; const q = new Queue('${name}', { transport: '${transport}' }); q.get({ timeout: 300 }).catch((e) => console.log(e.name));`,
      ]);
      expect(waiting).toMatchObject({ code: 0, stdout: 'Empty\n' });
      expect(performance.now() - t0).toBeGreaterThanOrEqual(300);
    });
  });

  describe('Queue wake-ups and receive buffers', () => {
    it('after a served wait, messages that arrive with nobody waiting neither spin the loop nor keep the process alive', async () => {
      const name = uniqueName('lazy');
      made.push(name);
      const url = new URL('../../dist/index.js', import.meta.url).href;
      const script = `
      import { Queue } from '${url}';
      const q = new Queue('${name}', { transport: '${transport}' });
      const w = new Queue('${name}', { create: false });
      setTimeout(() => w.putNowait(1), 20);
      const first = await q.get(); // served through the poll
      w.putNowait(2);
      w.putNowait(3); // readable now, and nobody waits
      const c0 = process.cpuUsage();
      await new Promise((r) => setTimeout(r, 300));
      const c = process.cpuUsage(c0);
      console.log(first, c.user + c.system < 150000 ? 'calm' : 'busy ' + (c.user + c.system));
      setTimeout(() => w.putNowait(4), 20);
      console.log(await q.get(), q.getNowait(), await q.get({ timeout: 2000 }));
      w.putNowait(5); // left in the queue: the process must still exit
    `;
      const t0 = performance.now();
      const r = await run(process.execPath, ['--input-type=module', '-e', script], { timeoutMs: 10_000 });
      expect(r).toMatchObject({ code: 0, stdout: '1 calm\n2 3 4\n' });
      expect(performance.now() - t0).toBeLessThan(8000);
    });

    it('a ping-pong of waiting gets and puts between two handles loses no wake-up', async () => {
      const a = fresh<number>({ maxsize: 1 }, 'pa');
      const b = fresh<number>({ maxsize: 1 }, 'pb');
      const a2 = other<number>(a);
      const b2 = other<number>(b);
      const echo = (async () => {
        for (let i = 0; i < 300; i++) await b2.put((await a2.get({ timeout: 5000 })) + 1);
      })();
      for (let i = 0; i < 300; i++) {
        await a.put(i * 2, { timeout: 5000 });
        expect(await b.get({ timeout: 5000 })).toBe(i * 2 + 1);
      }
      await echo;
    });

    it("received raw buffers and v8 typed arrays are the caller's own, not views of a reused buffer", async () => {
      const q = fresh<Buffer>({ codec: 'raw' });
      q.putNowait(Buffer.from('first'));
      q.putNowait(Buffer.from('SECOND!'));
      const one = q.getNowait();
      const two = await q.get();
      expect(one.toString()).toBe('first');
      expect(two.toString()).toBe('SECOND!');
      const v = fresh<Uint8Array>({ codec: 'v8' });
      v.putNowait(new Uint8Array([1, 2, 3, 4]));
      v.putNowait(new Uint8Array([9, 9, 9, 9]));
      const x = v.getNowait();
      v.getNowait();
      expect([...x]).toEqual([1, 2, 3, 4]);
    });
  });

  describe('Queue iteration and batches', () => {
    it('for await yields items as they arrive and ends when the queue is closed', async () => {
      const q = fresh<number>();
      const w = other<number>(q);
      const seen: number[] = [];
      const loop = (async () => {
        for await (const n of q) {
          seen.push(n);
          if (seen.length === 3) setTimeout(() => q.close(), 10);
        }
      })();
      for (const n of [1, 2, 3]) await w.put(n);
      await loop;
      expect(seen).toEqual([1, 2, 3]);
      expect(q.closed).toBe(true);
    });

    it('iterate({ signal }) rejects with AbortError when aborted', async () => {
      const q = fresh<number>();
      const ac = new AbortController();
      setTimeout(() => ac.abort(), 30);
      const err = await (async () => {
        for await (const _ of q.iterate({ signal: ac.signal })) {
          // nothing arrives
        }
      })().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(AbortError);
    });

    it('putMany and getMany move batches in order, waiting for room', async () => {
      const q = fresh<number>({ maxsize: 4 });
      const w = other<number>(q);
      const items = Array.from({ length: 10 }, (_, i) => i);
      const putting = w.putMany(items, { timeout: 5000 });
      const got: number[] = [];
      while (got.length < 10) got.push(...(await q.getMany(3, { timeout: 5000 })));
      await putting;
      expect(got).toEqual(items);
      await expect(q.getMany(3, { timeout: 0 })).rejects.toBeInstanceOf(Empty);
      const full = await w.putMany([1, 2, 3, 4, 5, 6], { timeout: 30 }).catch((e: unknown) => e);
      expect(full).toBeInstanceOf(Full);
      expect((full as Full).sent).toBe(4);
      expect(q.qsize()).toBe(4);
    });
  });

  describe('Queue codecs and large items', () => {
    it('v8 keeps Map, Set, Date, BigInt and typed arrays', async () => {
      const q = fresh<unknown>({ codec: 'v8' });
      const item = { m: new Map([['a', 1]]), s: new Set([1, 2]), d: new Date(1_700_000_000_000), b: 2n ** 70n, u: new Uint16Array([1, 65535]) };
      await q.put(item);
      expect(await q.get()).toEqual(item);
    });

    it('raw keeps bytes exactly, including an empty item and one starting with the descriptor magic', async () => {
      const q = fresh<Buffer>({ codec: 'raw', ...sized(10, 512) });
      const bytes = Buffer.from([0, 1, 2, 255, 254, 0]);
      const magic = Buffer.concat([Buffer.from('\0PIPCBIG', 'latin1'), Buffer.alloc(20, 7)]);
      q.putNowait(bytes);
      q.putNowait(Buffer.alloc(0));
      q.putNowait(new Uint8Array([9, 8, 7]) as Buffer);
      q.putNowait(magic);
      expect(q.getNowait()).toEqual(bytes);
      expect(q.getNowait()).toEqual(Buffer.alloc(0));
      expect(q.getNowait()).toEqual(Buffer.from([9, 8, 7]));
      expect(q.getNowait()).toEqual(magic);
      expect(() => q.putNowait('text' as unknown as Buffer)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    });

    it('a custom codec is used both ways', async () => {
      const q = fresh<string>({
        codec: { encode: (s: string) => Buffer.from(s.toUpperCase()), decode: (b: Buffer) => b.toString().toLowerCase() + '!' },
      });
      await q.put('hi');
      expect(await q.get()).toBe('hi!');
    });

    it('an item that cannot be encoded is rejected before anything is sent', async () => {
      const q = fresh<unknown>();
      const circular: Record<string, unknown> = { a: 1 };
      circular.self = circular;
      await expect(q.put(circular)).rejects.toThrow(TypeError);
      expect(() => q.putNowait(() => 1)).toThrow(expect.objectContaining({ code: 'ERR_IPC_ENCODE' }));
      await expect(q.putMany([1, 2, circular])).rejects.toThrow(TypeError);
      expect(q.qsize()).toBe(0);
      const v8q = other<unknown>(q, { codec: 'v8' });
      expect(() => v8q.putNowait({ f: () => 1 })).toThrow(expect.objectContaining({ code: 'ERR_IPC_ENCODE' }));
      expect(q.qsize()).toBe(0);
    });

    it('a BigInt or circular item with the json codec is a TypeError with code ERR_IPC_ENCODE (issue 16.11)', async () => {
      // Before: a TypeError from JSON.stringify, without a code.
      const q = fresh<unknown>();
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      const encode = expect.objectContaining({ name: 'TypeError', code: 'ERR_IPC_ENCODE' });
      for (const bad of [1n, { n: 2n }, circular]) {
        expect(() => q.putNowait(bad)).toThrow(encode);
        await expect(q.put(bad)).rejects.toThrow(encode);
        await expect(q.put(bad, { timeout: 10 })).rejects.toThrow(encode);
        await expect(q.putMany([1, bad])).rejects.toThrow(encode);
        expect(() => q.putSync(bad)).toThrow(encode);
      }
      expect(q.qsize()).toBe(0);
    });
  });

  describe('Queue validation and lifecycle', () => {
    it('rejects bad options with specific errors', () => {
      const name = uniqueName('bad');
      expect(() => new Queue(name, { maxsize: 0 })).toThrow(expect.objectContaining({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' }));
      expect(() => new Queue(name, { maxsize: -3 })).toThrow(RangeError);
      expect(() => new Queue(name, { maxsize: 1.5 })).toThrow(RangeError);
      expect(() => new Queue(name, { maxsize: '3' as unknown as number })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      expect(() => new Queue(name, { maxMessageSize: 0 })).toThrow(RangeError);
      expect(() => new Queue(name, { codec: 'pickle' as 'json' })).toThrow(
        expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE' }),
      );
      expect(() => new Queue(name, { mode: 0o1777 })).toThrow(RangeError);
      expect(() => new Queue(name, 5 as unknown as object)).toThrow(TypeError);
      expect(() => new Queue('a/b')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
      expect(() => new Queue('')).toThrow(TypeError);
      expect(() => new Queue('x'.repeat(300))).toThrow(RangeError);
      expect(() => new Queue(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
      expect(queueExists(name)).toBe(false);
    });

    it('rejects bad call arguments', async () => {
      const q = fresh();
      await expect(q.get({ timeout: -1 })).rejects.toThrow(RangeError);
      await expect(q.get({ signal: 'no' as unknown as AbortSignal })).rejects.toThrow(TypeError);
      await expect(q.put(1, { priority: 1.5 })).rejects.toThrow(RangeError);
      await expect(q.put(1, { priority: -1 })).rejects.toThrow(RangeError);
      await expect(q.getMany(0)).rejects.toThrow(RangeError);
      expect(() => q.getSync({ timeout: Number.NaN })).toThrow(RangeError);
    });

    it('every call after close throws IPCError EBADF; pending waits reject with it; close is idempotent', async () => {
      const q = fresh<number>();
      const pending = q.get();
      q.close();
      q.close();
      await expect(pending).rejects.toMatchObject({ name: 'IPCError', code: 'EBADF', syscall: 'mq_receive' });
      const ebadf = expect.objectContaining({ code: 'EBADF' });
      expect(() => q.qsize()).toThrow(ebadf);
      expect(() => q.getNowait()).toThrow(ebadf);
      expect(() => q.putNowait(1)).toThrow(ebadf);
      expect(() => q.putSync(1)).toThrow(ebadf);
      expect(() => q.getSync()).toThrow(ebadf);
      expect(() => q.attributes()).toThrow(ebadf);
      await expect(q.get()).rejects.toMatchObject({ code: 'EBADF' });
      await expect(q.put(1)).rejects.toMatchObject({ code: 'EBADF' });
      await expect(q.getMany(2)).rejects.toMatchObject({ code: 'EBADF' });
    });

    it('using closes the handle; opening and closing leaks no descriptor', () => {
      const q = fresh();
      const before = fdCount();
      for (let i = 0; i < 50; i++) {
        using h = new Queue(q.name);
        h.qsize();
      }
      expect(fdCount()).toBe(before);
    });

    it('a Queue dropped without close() is closed by its finalizer (descriptor released), not unlinked', async () => {
      const name = uniqueName('gc');
      made.push(name);
      const url = new URL('../../dist/index.js', import.meta.url).href;
      const code = `
      import { readdirSync } from 'node:fs';
      import { Queue } from '${url}';
      const fds = () => readdirSync('/proc/self/fd').length;
      const before = fds();
      // Held until counted (a collection during the loop would finalize some early), then dropped.
      let held = Array.from({ length: 20 }, () => new Queue('${name}', { transport: '${transport}' }));
      const opened = fds();
      held = null;
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); }
      console.log(JSON.stringify({ opened: opened - before, after: fds() - before }));`;
      const r = await run(process.execPath, ['--expose-gc', '--input-type=module', '-e', code]);
      expect(r.code).toBe(0);
      const { opened, after } = JSON.parse(r.stdout);
      expect(opened).toBe(20);
      expect(after).toBe(0);
      expect(queueExists(name)).toBe(true);
    });

    it('works in a worker thread, and a worker terminated mid-wait tears down cleanly', async () => {
      const q = fresh<string>();
      const url = new URL('../../dist/index.js', import.meta.url).href;
      const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.url).then(async ({ Queue }) => {
        const q = new Queue(workerData.name, { create: false });
        parentPort.postMessage('ready');
        const item = await q.get({ timeout: 10000 });
        parentPort.postMessage(item);
        await q.get(); // still pending when the worker is terminated
      });`;
      const worker = new Worker(code, { eval: true, workerData: { url, name: q.name } });
      const messages: string[] = [];
      await new Promise<void>((resolve, reject) => {
        worker.on('error', reject);
        worker.on('message', (m: string) => {
          messages.push(m);
          if (m === 'ready') q.putNowait('to the worker');
          else resolve();
        });
      });
      await sleep(20);
      expect(await worker.terminate()).toBe(1);
      expect(messages).toEqual(['ready', 'to the worker']);
      q.putNowait('after');
      expect(q.getNowait()).toBe('after');
    });
  });
});

describe('Queue on mq only: priorities, mq attributes and limits, side segments', () => {
  beforeEach(() => {
    KIND = 'mq';
  });

  it('higher priorities are received first, equal priorities in order', async () => {
    const q = fresh<string>();
    q.putNowait('low1');
    await q.put('high', { priority: 10 });
    q.putNowait('mid', { priority: 5 });
    q.putSync('low2');
    q.putNowait('top', { priority: 32767 });
    expect([q.getNowait(), q.getNowait(), q.getNowait(), q.getNowait(), q.getNowait()]).toEqual(['top', 'high', 'mid', 'low1', 'low2']);
    expect(() => q.putNowait('x', { priority: 32768 })).toThrow(RangeError);
    expect(() => q.putNowait('x', { priority: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('json items around the message size keep their exact UTF-8 bytes, by put, putNowait and a put that waited', async () => {
    const q = fresh<string>({ maxsize: 2, maxMessageSize: 128 });
    const raw = other<Buffer>(q, { codec: 'raw' });
    // 3 * JSON length < 128 goes to mq_send as text; longer ones as a Buffer (if the bytes fit) or a side segment.
    const items = ['é'.repeat(40), '😀'.repeat(20), 'é'.repeat(41), 'a'.repeat(124), 'é'.repeat(100), 'x', ''];
    for (const item of items) {
      await q.put(item);
      q.putNowait(item);
      expect(raw.getNowait()).toEqual(Buffer.from(JSON.stringify(item)));
      expect(q.getNowait()).toBe(item);
    }
    q.putNowait('a');
    q.putNowait('b');
    const waited = q.put('ü', { timeout: 5000 });
    expect(() => q.putNowait('c')).toThrow(Full);
    expect([q.getNowait(), q.getNowait()]).toEqual(['a', 'b']);
    await waited;
    expect(raw.getNowait()).toEqual(Buffer.from('"ü"'));
    expect(() => q.putNowait(undefined as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_IPC_ENCODE' }));
    await expect(q.put(undefined as unknown as string)).rejects.toMatchObject({ code: 'ERR_IPC_ENCODE' });
    expect(q.qsize()).toBe(0);
  });

  it('an item larger than maxMessageSize travels through a side segment that the receiver removes', async () => {
    const q = fresh<Buffer>({ codec: 'raw', maxMessageSize: 1024 });
    const big = Buffer.alloc(300_000, 0xab);
    big.write('start', 0);
    await q.put(big);
    expect(ourShmEntries()).toHaveLength(1);
    expect(ourShmEntries()[0]).toMatch(new RegExp(`^pipc-mq\\.${q.name.slice(1)}\\.\\d+-\\d+-[0-9a-f]+$`));
    const raw = other<Buffer>(q, { codec: 'raw' });
    expect(raw.qsize()).toBe(1);
    const got = await q.get();
    expect(got.equals(big)).toBe(true);
    expect(ourShmEntries()).toEqual([]);
  });

  it('a large item whose put fails (full, aborted) or that was never received leaves no segment after unlink', async () => {
    const q = fresh<string>({ maxsize: 1, maxMessageSize: 512 });
    q.putNowait('x'.repeat(2000));
    expect(ourShmEntries()).toHaveLength(1);
    expect(() => q.putNowait('y'.repeat(2000))).toThrow(Full);
    await expect(q.put('y'.repeat(2000), { timeout: 20 })).rejects.toBeInstanceOf(Full);
    expect(() => q.putSync('y'.repeat(2000), { timeout: 10 })).toThrow(Full);
    expect(ourShmEntries()).toHaveLength(1);
    q.unlink();
    expect(ourShmEntries()).toEqual([]);
  });

  it('a forged descriptor cannot make the reader touch another file', () => {
    const q = fresh<unknown>({ codec: 'raw' });
    const forged = Buffer.concat([Buffer.from('\0PIPCBIG', 'latin1'), Buffer.alloc(8), Buffer.from('/../../etc/passwd')]);
    withHandle(q, (h) => binding.mqSend(h, forged, 0));
    expect(() => q.getNowait()).toThrow(
      expect.objectContaining({ code: 'EINVAL', message: expect.stringMatching(/not a side segment of this queue/) }),
    );
  });

  it('an oversized maxsize names the limit, its value and how to raise it (root lacks CAP_SYS_RESOURCE here)', () => {
    const name = uniqueName('lim');
    made.push(name);
    try {
      new Queue(name, { maxsize: 50, transport: 'mq' }).close();
      throw new Error('a queue of 50 messages was created: this machine allows it, the test assumes msg_max 10');
    } catch (err) {
      expect(err).toMatchObject({ name: 'IPCError', code: 'EINVAL', syscall: 'mq_open', limit: 'fs.mqueue.msg_max', limitValue: 10 });
      expect((err as Error).message).toMatch(/fs\.mqueue\.msg_max = 10.*sysctl -w fs\.mqueue\.msg_max=50/);
    }
    expect(() => new Queue(name, { maxMessageSize: 9000 })).toThrow(/fs\.mqueue\.msgsize_max = 8192/);
  });
});
