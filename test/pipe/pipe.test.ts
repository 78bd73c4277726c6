import { closeSync, openSync, readFile, statSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { AbortError, Connection, IPCError, NamedPipe, Pipe } from '../../lib/index.js';
import { binding } from '../../lib/core/binding.js';
import { encodeHeader } from '../../lib/pipe/frame.js';
import { ROOT, fdCount, runNode, sleep, uniqueName, cleanupAfterEach } from '../helpers/index.js';

const later = cleanupAfterEach();

function pair<T = unknown>(options?: Parameters<typeof Pipe<T>>[0]): [Connection<T>, Connection<T>] {
  const p = Pipe<T>(options);
  later(() => p[0].close(), () => p[1].close());
  return p;
}

function fifoPath(tag: string): string {
  const p = join(tmpdir(), uniqueName(tag) + '.fifo');
  later(() => unlinkSync(p));
  return p;
}

describe('Pipe in one process', () => {
  it('carries objects, bytes and a 3 MiB frame both ways, in order', async () => {
    const [a, b] = pair();
    await a.send({ n: 1, s: 'é', list: [1, 2, 3] });
    await a.send('two');
    await b.send(null);
    expect(await b.recv()).toEqual({ n: 1, s: 'é', list: [1, 2, 3] });
    expect(await b.recv()).toBe('two');
    expect(await a.recv()).toBe(null);

    const big = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const got = b.recvBytes();
    await a.sendBytes(big);
    const r = await got;
    expect(r.length).toBe(big.length);
    expect(r.equals(big)).toBe(true);

    await b.sendBytes(new Uint16Array([1, 2, 3]), 2, 2);
    expect([...(await a.recvBytes())]).toEqual([2, 0]);
    await b.sendBytes(new ArrayBuffer(0));
    expect((await a.recvBytes()).length).toBe(0);
  });

  it('writes exactly multiprocessing.connection frames', async () => {
    const [a, b] = pair();
    const fd = b.fileno();
    await a.sendBytes(Buffer.from('hello'));
    await a.send({ k: 1 });
    await sleep(20);
    const raw = Buffer.alloc(64);
    const { readSync } = await import('node:fs');
    const n = readSync(fd, raw);
    expect(raw.subarray(0, n)).toEqual(
      Buffer.concat([Buffer.from([0, 0, 0, 5]), Buffer.from('hello'), Buffer.from([0, 0, 0, 7]), Buffer.from('{"k":1}')]),
    );
  });

  it('encodes the long header past 2 GiB - 1 and reads one from a peer', async () => {
    expect(encodeHeader(0x7fffffff)).toEqual(Buffer.from([0x7f, 0xff, 0xff, 0xff]));
    expect(encodeHeader(0x80000000)).toEqual(Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0x80, 0, 0, 0]));
    const [a, b] = pair();
    // A peer may use the long form for any size: Python's reader accepts it, so must we.
    writeSync(a.fileno(), Buffer.concat([encodeHeader(0x80000000).subarray(0, 4), Buffer.from([0, 0, 0, 0, 0, 0, 0, 3]), Buffer.from('abc')]));
    expect((await b.recvBytes()).toString()).toBe('abc');
    // Any other negative length is not multiprocessing.connection framing.
    writeSync(a.fileno(), Buffer.from([0xff, 0xff, 0xff, 0xfe, 1, 2, 3]));
    await expect(b.recvBytes()).rejects.toMatchObject({ name: 'IPCError', code: 'EPROTO' });
    await expect(b.recv()).rejects.toMatchObject({ code: 'EPROTO' });
  });

  it('refuses a frame over maxLength without consuming it, and one it could never hold without reading it', async () => {
    const [a, b] = pair();
    await a.sendBytes(Buffer.alloc(1000, 1));
    await expect(b.recvBytes(10)).rejects.toMatchObject({ name: 'IPCError', code: 'EMSGSIZE' });
    const into = Buffer.alloc(100);
    await expect(b.recvBytesInto(into)).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect((await b.recvBytes()).length).toBe(1000);
    const dst = Buffer.alloc(1010);
    await a.sendBytes(Buffer.from('xyz'));
    expect(await b.recvBytesInto(dst, 1007)).toBe(3);
    expect(dst.subarray(1007).toString()).toBe('xyz');
    // A header announcing 1 TiB: refused at once, nothing allocated.
    writeSync(a.fileno(), Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 1, 0, 0, 0, 0, 0]));
    const t0 = performance.now();
    await expect(b.recvBytes()).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect(performance.now() - t0).toBeLessThan(2000);
  });

  it('polls: false when empty, true once a message arrives, and waits up to the timeout', async () => {
    const [a, b] = pair();
    expect(await b.poll()).toBe(false);
    const t0 = performance.now();
    expect(await b.poll(80)).toBe(false);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(60);
    const waiting = b.poll(Infinity);
    setTimeout(() => void a.send('x'), 30);
    expect(await waiting).toBe(true);
    expect(await b.poll()).toBe(true);
    expect(await b.recv()).toBe('x');
    expect(await b.poll()).toBe(false);
    const ac = new AbortController();
    const aborted = b.poll(10_000, { signal: ac.signal });
    ac.abort();
    await expect(aborted).rejects.toBeInstanceOf(AbortError);
  });

  it('reports EOF after the peer closes, and again on every later recv', async () => {
    const [a, b] = pair();
    await a.send(1);
    a.close();
    expect(await b.recv()).toBe(1);
    await expect(b.recv()).rejects.toMatchObject({ name: 'IPCError', code: 'EOF', errno: -4095 });
    await expect(b.recvBytes()).rejects.toMatchObject({ code: 'EOF' });
    expect(await b.poll()).toBe(true);
  });

  it('tells a peer that vanished mid-frame from a clean end of stream', async () => {
    const [a, b] = pair();
    writeSync(a.fileno(), Buffer.concat([Buffer.from([0, 0, 0, 100]), Buffer.alloc(10)]));
    a.close();
    const err = await b.recvBytes().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IPCError);
    expect(err).toMatchObject({ code: 'ECONNRESET' });
    expect((err as Error).message).toMatch(/middle of a message/);
  });

  it('keeps a large frame whose receiver gave up halfway for the next receiver, and reports one cut short', async () => {
    const [a, b] = pair();
    const fd = a.fileno();
    // Written raw, in pieces small enough for the socket buffer, with the
    // event loop running in between (the reader is in this process).
    const feed = async (bytes: Buffer): Promise<void> => {
      for (let o = 0; o < bytes.length; o += 32 * 1024) {
        writeSync(fd, bytes.subarray(o, Math.min(o + 32 * 1024, bytes.length)));
        await sleep(2);
      }
    };
    const big = Buffer.alloc(1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 13) % 256;
    const header = Buffer.from([0, 0x10, 0, 0]);
    const ac = new AbortController();
    const first = b.recvBytes(undefined, { signal: ac.signal });
    await feed(Buffer.concat([header, big.subarray(0, 300 * 1024)]));
    expect(await b.poll()).toBe(true);
    ac.abort();
    await expect(first).rejects.toBeInstanceOf(AbortError);
    const second = b.recvBytes();
    await feed(big.subarray(300 * 1024));
    expect((await second).equals(big)).toBe(true);

    const cut = b.recvBytes();
    await feed(Buffer.concat([header, big.subarray(0, 200 * 1024)]));
    a.close();
    const err = await cut.catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'IPCError', code: 'ECONNRESET' });
    expect((err as Error).message).toMatch(/middle of a message \(204804 bytes/);
  });

  it('reassembles frames split across reads at every offset, short and long headers, small and large frames', async () => {
    const [a, b] = pair();
    const fd = a.fileno();
    // Raw writes of at most 32 KiB, each left for the reader (this process)
    // to take before the next, so every piece is a read of its own.
    const feed = async (bytes: Buffer): Promise<void> => {
      for (let o = 0; o < bytes.length; o += 32 * 1024) {
        writeSync(fd, bytes.subarray(o, Math.min(o + 32 * 1024, bytes.length)));
        await sleep(1);
      }
    };
    const payload = (n: number, seed: number): Buffer => {
      const p = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) p[i] = (i * 7 + seed) & 0xff;
      return p;
    };
    const longHeader = (n: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]), encodeHeader(n)]);
    // Sizes on both sides of the thresholds: copied out of the shared read
    // buffer (small), assembled and read straight into their own buffer
    // (64 KiB and up), that buffer prefaulted first (256 KiB and up).
    for (const [size, long] of [
      [5, false],
      [5, true],
      [64 * 1024, false],
      [64 * 1024 + 3, true],
      [256 * 1024, false],
      [256 * 1024 + 1, false],
    ] as const) {
      const p1 = payload(size, size);
      const p2 = payload(size, size + 1);
      const h1 = long ? longHeader(size) : encodeHeader(size);
      const stream = Buffer.concat([h1, p1, encodeHeader(size), p2]);
      const f1 = h1.length + size;
      const splits = new Set<number>();
      if (size < 100) for (let s = 1; s < stream.length; s++) splits.add(s);
      else for (const s of [1, 2, 3, 4, 5, 11, 12, 13, 4096, f1 >> 1, f1 - 1, f1, f1 + 1, f1 + 3, f1 + 4, f1 + 5, stream.length - 1]) splits.add(s);
      for (const s of splits) {
        // A receiver waiting from the start (large frames are assembled), or
        // arriving once the first part is in.
        const early = s % 2 === 1;
        let r1 = early ? b.recvBytes() : undefined;
        await feed(stream.subarray(0, s));
        r1 ??= b.recvBytes();
        const r2 = b.recvBytes();
        await feed(stream.subarray(s));
        const [g1, g2] = await Promise.all([r1, r2]);
        expect({ size, long, s, ok: g1.equals(p1) && g2.equals(p2) }).toEqual({ size, long, s, ok: true });
      }
    }
    expect(await b.poll()).toBe(false);
  });

  it('prefaults a buffer without changing a byte of it or of its neighbours', () => {
    const whole = Buffer.allocUnsafe(3 * 1024 * 1024 + 123);
    for (let i = 0; i < whole.length; i++) whole[i] = (i * 29 + 7) & 0xff;
    const copy = Buffer.from(whole);
    binding.pipePrefault(whole.subarray(4097, whole.length - 5000));
    binding.pipePrefault(whole.subarray(10, 20));
    binding.pipePrefault(Buffer.alloc(0));
    expect(whole.equals(copy)).toBe(true);
  });

  it('refuses, and gives up on, a frame being read straight into its own buffer without losing it', async () => {
    const [a, b] = pair();
    const fd = a.fileno();
    const big = Buffer.alloc(128 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = (i * 11) % 256;
    const frame = Buffer.concat([encodeHeader(big.length), big]);
    const ac = new AbortController();
    const first = b.recvBytes(undefined, { signal: ac.signal });
    writeSync(fd, frame.subarray(0, 40 * 1024));
    await sleep(5);
    writeSync(fd, frame.subarray(40 * 1024, 70 * 1024));
    await sleep(5);
    ac.abort();
    await expect(first).rejects.toBeInstanceOf(AbortError);
    // Too long for this receiver: refused, still first in line.
    await expect(b.recvBytes(1000)).rejects.toMatchObject({ code: 'EMSGSIZE' });
    await expect(b.recvBytesInto(Buffer.alloc(1000))).rejects.toMatchObject({ code: 'EMSGSIZE' });
    const into = Buffer.alloc(big.length + 2);
    const second = b.recvBytesInto(into, 2);
    writeSync(fd, frame.subarray(70 * 1024));
    expect(await second).toBe(big.length);
    expect(into.subarray(2).equals(big)).toBe(true);
  });

  it('rejects send after close (EBADF) and send to a vanished peer (EPIPE)', async () => {
    const [a, b] = pair();
    a.close();
    a.close();
    await expect(a.send(1)).rejects.toMatchObject({ name: 'IPCError', code: 'EBADF', syscall: 'send' });
    await expect(a.recv()).rejects.toMatchObject({ code: 'EBADF' });
    expect(() => a.fileno()).toThrow(expect.objectContaining({ code: 'EBADF' }));
    let err: unknown;
    for (let i = 0; i < 5 && err === undefined; i++) {
      await b.sendBytes(Buffer.alloc(1024)).catch((e: unknown) => (err = e));
    }
    expect(err).toMatchObject({ name: 'IPCError', code: 'EPIPE' });
  });

  it('delivers what was sent just before close()', async () => {
    const [a, b] = pair();
    const big = Buffer.alloc(4 * 1024 * 1024, 9);
    const sent = a.sendBytes(big);
    a.close();
    const got = b.recvBytes();
    await sent;
    expect((await got).equals(big)).toBe(true);
    await expect(b.recv()).rejects.toMatchObject({ code: 'EOF' });
  });

  it('one-way pipes are [reader, writer]', async () => {
    const [r, w] = pair({ duplex: false });
    expect([r.readable, r.writable, w.readable, w.writable]).toEqual([true, false, false, true]);
    await w.send({ one: 'way' });
    expect(await r.recv()).toEqual({ one: 'way' });
    await expect(r.send(1)).rejects.toMatchObject({ code: 'EBADF', message: expect.stringMatching(/read-only/) });
    await expect(w.recv()).rejects.toMatchObject({ code: 'EBADF', message: expect.stringMatching(/write-only/) });
  });

  it('iterates with for await until the peer closes', async () => {
    const [a, b] = pair();
    for (const x of ['a', 'b', 'c']) await a.send(x);
    a.close();
    const seen: unknown[] = [];
    for await (const x of b) seen.push(x);
    expect(seen).toEqual(['a', 'b', 'c']);
  });

  it('uses the v8, raw and custom codecs', async () => {
    const [a, b] = pair<unknown>({ codec: 'v8' });
    const m = new Map<string, unknown>([['d', new Date(5)], ['n', 10n]]);
    await a.send(m);
    expect(await b.recv()).toEqual(m);
    const [c, d] = pair<Buffer>({ codec: 'raw' });
    await c.send(Buffer.from('raw!'));
    expect((await d.recv()).toString()).toBe('raw!');
    const upper = { encode: (s: string) => Buffer.from(s.toUpperCase()), decode: (x: Buffer) => x.toString() };
    const [e, f] = pair<string>({ codec: upper });
    await e.send('shout');
    expect(await f.recv()).toBe('SHOUT');
    await expect(e.send((() => 1) as unknown as string)).rejects.toThrow();
    const [g] = pair();
    await expect(g.send(undefined)).rejects.toMatchObject({ code: 'ERR_IPC_ENCODE' });
    // Issue 16.11: before, BigInt and circular items threw a TypeError without a code.
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    for (const bad of [1n, circular, { big: 'x'.repeat(20_000), n: 1n }]) {
      await expect(g.send(bad)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_IPC_ENCODE' });
    }
  });

  it('times out and aborts a recv without consuming the message that arrives later', async () => {
    const [a, b] = pair();
    await expect(b.recv({ timeout: 30 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const pending = b.recv({ signal: ac.signal });
    ac.abort(new Error('stop'));
    const err = await pending.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AbortError);
    expect((err as AbortError).cause).toMatchObject({ message: 'stop' });
    await a.send('kept');
    expect(await b.recv()).toBe('kept');
    await expect(b.recv({ signal: AbortSignal.abort() })).rejects.toBeInstanceOf(AbortError);
  });

  it('serves concurrent receivers first come, first served', async () => {
    const [a, b] = pair();
    const r = [b.recv(), b.recv(), b.recv()];
    for (const x of [1, 2, 3]) await a.send(x);
    expect(await Promise.all(r)).toEqual([1, 2, 3]);
  });

  it('a pending recv keeps the event loop free', async () => {
    const [a, b] = pair();
    const pending = b.recv();
    let ticks = 0;
    const t = setInterval(() => ticks++, 5);
    await sleep(200);
    clearInterval(t);
    expect(ticks).toBeGreaterThan(10);
    await a.send('done');
    expect(await pending).toBe('done');
  });

  it('rejects bad input with specific errors', async () => {
    const [a, b] = pair();
    await expect(a.sendBytes('text' as unknown as Buffer)).rejects.toMatchObject({ name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' });
    await expect(a.sendBytes(Buffer.alloc(4), -1)).rejects.toMatchObject({ name: 'RangeError', code: 'ERR_OUT_OF_RANGE' });
    await expect(a.sendBytes(Buffer.alloc(4), 0, -2)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(a.sendBytes(Buffer.alloc(4), 2, 3)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.recvBytes(-1)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.recvBytes(1.5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.recvBytesInto(Buffer.alloc(4), 5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.recvBytesInto({} as Buffer)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(b.recv({ timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(b.poll(-5)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    expect(() => Pipe({ duplex: 'yes' as unknown as boolean })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => Pipe({ codec: 'yaml' as 'json' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Connection(-1)).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Connection('3' as unknown as number)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Connection(1_000_000)).toThrow(expect.objectContaining({ name: 'IPCError', code: 'EBADF' }));
    const file = join(tmpdir(), uniqueName('file'));
    writeFileSync(file, 'x');
    const fd = openSync(file, 'r');
    try {
      expect(() => new Connection(fd)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_FD_TYPE' }));
    } finally {
      closeSync(fd);
      unlinkSync(file);
    }
  });

  it('rebuilds an end from its descriptor, with the access mode it has', async () => {
    const [r, w] = Pipe({ duplex: false });
    later(() => r.close());
    const w2 = new Connection(w.fileno());
    later(() => w2.close());
    expect([w2.readable, w2.writable]).toEqual([false, true]);
    await w2.send('via fd');
    expect(await r.recv()).toBe('via fd');
  });

  it('closes every descriptor and leaves no thread busy', async () => {
    const before = fdCount();
    for (let i = 0; i < 20; i++) {
      const [a, b] = Pipe();
      await a.send(i);
      await b.recv();
      a.close();
      b.close();
      const [c, d] = Pipe({ duplex: false });
      c.close();
      d.close();
    }
    await sleep(20);
    expect(fdCount()).toBe(before);
    expect(binding.engineStats().pending).toBe(0);
  });

  it('works in a worker thread', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}).then(async ({ Pipe }) => {
        const [a, b] = Pipe();
        await a.send({ from: 'worker' });
        const got = await b.recv();
        a.close(); b.close();
        parentPort.postMessage(got);
      });`;
    const w = new Worker(code, { eval: true });
    const msg = await new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(msg).toEqual({ from: 'worker' });
    await w.terminate();
  });
});

describe('worker thread teardown', () => {
  it('closes the descriptors of ends a finished worker never used', async () => {
    const before = fdCount();
    const code = `
      const { parentPort } = require('node:worker_threads');
      const { readdirSync } = require('node:fs');
      import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}).then(({ Pipe }) => {
        globalThis.kept = [Pipe(), Pipe(), Pipe({ duplex: false })];
        parentPort.postMessage(readdirSync('/proc/self/fd').length);
      });`;
    const w = new Worker(code, { eval: true });
    // Listen for 'exit' from the start: a worker that exits while this thread
    // is busy has its message drained and 'exit' emitted in one go, before an
    // await after the message could add the listener (the test then hung).
    const exited = new Promise((resolve) => w.once('exit', resolve));
    const during = await new Promise<number>((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    });
    expect(during).toBeGreaterThanOrEqual(before + 6);
    await exited;
    await sleep(50);
    expect(fdCount()).toBe(before);
  });
});

describe('NamedPipe', () => {
  it('creates a FIFO 0600, and EEXIST the second time', () => {
    const p = fifoPath('mk');
    NamedPipe.create(p);
    const st = statSync(p);
    expect(st.isFIFO()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    expect(() => NamedPipe.create(p)).toThrow(expect.objectContaining({ name: 'IPCError', code: 'EEXIST', syscall: 'mkfifo', path: p }));
    const q = fifoPath('mode');
    NamedPipe.create(q, { mode: 0o640 });
    expect(statSync(q).mode & 0o777).toBe(0o640);
    expect(() => NamedPipe.create(fifoPath('bad'), { mode: 0o1777 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => NamedPipe.create(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('open times out when nobody opens the other side, leaving nothing open', async () => {
    const p = fifoPath('timeout');
    NamedPipe.create(p);
    const before = fdCount();
    for (const mode of ['r', 'w'] as const) {
      const t0 = performance.now();
      await expect(NamedPipe.open(p, mode, { timeout: 150 })).rejects.toMatchObject({ name: 'IPCError', code: 'ETIMEDOUT', path: p });
      const dt = performance.now() - t0;
      expect(dt).toBeGreaterThanOrEqual(120);
      expect(dt).toBeLessThan(3000);
    }
    await sleep(100);
    expect(fdCount()).toBe(before);
  });

  it('open aborts promptly, keeps the event loop and the libuv pool free, and leaves nothing open', async () => {
    const paths = [0, 1, 2, 3, 4, 5].map((i) => {
      const p = fifoPath('abort' + i);
      NamedPipe.create(p);
      return p;
    });
    const before = fdCount();
    const ac = new AbortController();
    const opens = paths.map((p, i) => NamedPipe.open(p, i % 2 ? 'r' : 'w', { signal: ac.signal }));
    // Six waits pending; the 4-thread pool still serves fs at once.
    const t0 = performance.now();
    await Promise.all([0, 1, 2, 3, 4, 5, 6, 7].map(() => new Promise((res, rej) => readFile(join(ROOT, 'package.json'), (e, d) => (e ? rej(e) : res(d))))));
    expect(performance.now() - t0).toBeLessThan(1000);
    ac.abort();
    for (const o of opens) await expect(o).rejects.toBeInstanceOf(AbortError);
    await sleep(200);
    expect(fdCount()).toBe(before);
    expect(binding.engineStats().pending).toBe(0);
  });

  it('connects a reader and a writer in one process, either opening first', async () => {
    const p = fifoPath('pair');
    NamedPipe.create(p);
    const r = NamedPipe.open(p, 'r');
    await sleep(50);
    const w = await NamedPipe.open(p, 'w', { timeout: 5000 });
    const rc = await r;
    later(() => rc.close(), () => w.close());
    expect([rc.readable, rc.writable, w.readable, w.writable]).toEqual([true, false, false, true]);
    await w.send({ hello: 'fifo' });
    expect(await rc.recv()).toEqual({ hello: 'fifo' });
    w.close();
    await expect(rc.recv()).rejects.toMatchObject({ code: 'EOF' });
  });

  it('rejects paths that are not FIFOs and bad modes', async () => {
    const file = join(tmpdir(), uniqueName('plain'));
    writeFileSync(file, '');
    later(() => unlinkSync(file));
    await expect(NamedPipe.open(file, 'r')).rejects.toMatchObject({ code: 'EINVAL', path: file });
    await expect(NamedPipe.open(file + '.missing', 'w')).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(NamedPipe.open(file, 'rw' as 'r')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
    await expect(NamedPipe.open(file, 'r', { timeout: 'soon' as unknown as number })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });
});

describe('garbage collection', () => {
  it('closes the descriptors of ends dropped unused', async () => {
    const r = await runNode('pipe/gc.mjs', [], { timeoutMs: 20_000 });
    expect(r.code, r.stderr).toBe(0);
    const { before, peak, after } = JSON.parse(r.stdout);
    expect(peak).toBe(before + 100);
    expect(after).toBe(before);
  });
});
