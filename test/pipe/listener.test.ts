// Listener and Client over AF_UNIX: node to node (the {sha256} handshake of
// Python 3.12+), python3 3.11 to node and node to python3 (its HMAC-MD5
// handshake), permissions as an unprivileged user.
import { spawn } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { existsSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import type { Socket } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AbortError, AuthenticationError, Client, Listener, NamedPipe } from '../../lib/index.js';
import { FIXTURES, PYTHON, expectOk, fdCount, runNodeUnprivileged, runPython, sleep, uniqueName, cleanupAfterEach } from '../helpers/index.js';

const later = cleanupAfterEach();

function sockPath(tag: string): string {
  const p = join(tmpdir(), uniqueName(tag) + '.sock');
  later(() => {
    if (existsSync(p)) unlinkSync(p);
  });
  return p;
}

function listen(address: string, options?: ConstructorParameters<typeof Listener>[1]): Listener {
  const l = new Listener(address, options);
  later(() => l.close());
  return l;
}

async function rawClient(path: string): Promise<Socket> {
  const s = connect(path);
  s.on('error', () => {});
  s.resume(); // read (and drop) what the listener says, to see it hang up
  later(() => s.destroy());
  await once(s, 'connect');
  return s;
}

describe('Listener and Client, node to node', () => {
  it('creates the socket file 0600, connects with the right key, and removes the file on close', async () => {
    const before = fdCount();
    const path = sockPath('basic');
    const l = new Listener(path, { authkey: Buffer.from('sekrit') });
    expect(l.address).toBe(path);
    const st = statSync(path);
    expect(st.isSocket()).toBe(true);
    expect(st.mode & 0o777).toBe(0o600);
    const [c, s] = await Promise.all([Client(path, { authkey: 'sekrit' }), l.accept()]);
    await c.send({ q: 'ping' });
    expect(await s.recv()).toEqual({ q: 'ping' });
    await s.sendBytes(Buffer.from('pong'));
    expect((await c.recvBytes()).toString()).toBe('pong');
    expect(c.fileno()).toBeGreaterThan(2);
    c.close();
    await expect(s.recv()).rejects.toMatchObject({ code: 'EOF' });
    s.close();
    l.close();
    l.close();
    expect(existsSync(path)).toBe(false);
    await expect(l.accept()).rejects.toMatchObject({ code: 'EBADF' });
    await sleep(20);
    expect(fdCount()).toBe(before);
  });

  it('rejects a wrong key on both sides and keeps serving others', async () => {
    const path = sockPath('wrong');
    const l = listen(path, { authkey: 'right' });
    const [bad, refused] = await Promise.allSettled([Client(path, { authkey: 'wrong' }), l.accept()]);
    expect(bad.status).toBe('rejected');
    expect((bad as PromiseRejectedResult).reason).toBeInstanceOf(AuthenticationError);
    expect((refused as PromiseRejectedResult).reason).toBeInstanceOf(AuthenticationError);
    expect((refused as PromiseRejectedResult).reason).toMatchObject({ code: 'ERR_IPC_AUTHENTICATION' });
    const [c, s] = await Promise.all([Client(path, { authkey: 'right' }), l.accept()]);
    await c.send(1);
    expect(await s.recv()).toBe(1);
    c.close();
    s.close();
  });

  it('for await over a listener skips clients that fail the handshake', async () => {
    const path = sockPath('iter');
    const l = listen(path, { authkey: 'k' });
    const clients = (async () => {
      await Client(path, { authkey: 'nope' }).catch(() => undefined);
      for (const n of [1, 2]) {
        const c = await Client(path, { authkey: 'k' });
        await c.send(n);
        c.close();
      }
    })();
    const got: unknown[] = [];
    for await (const conn of l) {
      got.push(await conn.recv());
      conn.close();
      if (got.length === 2) break;
    }
    await clients;
    expect(got).toEqual([1, 2]);
  });

  it('speaks the exact bytes of both handshake forms, in both roles', async () => {
    const path = sockPath('bytes');
    const key = Buffer.from('k3y');
    const l = listen(path, { authkey: key });
    // Our listener challenges in the 3.12+ form; a peer may answer with any
    // allowed digest (the MAC covers our prefix), or with a bare HMAC-MD5 (<= 3.11).
    for (const [digest, answer] of [
      ['sha384', (m: Buffer) => Buffer.concat([Buffer.from('{sha384}'), createHmac('sha384', key).update(m).digest()])],
      ['md5', (m: Buffer) => createHmac('md5', key).update(m).digest()],
    ] as const) {
      const served = l.accept({ timeout: 5000 });
      const raw = await Client(path);
      const challenge = await raw.recvBytes(256);
      expect(challenge.subarray(0, 11).toString()).toBe('#CHALLENGE#');
      const message = challenge.subarray(11);
      expect(message.subarray(0, 8).toString()).toBe('{sha256}');
      expect(message.length).toBe(8 + 40);
      await raw.sendBytes(answer(message));
      expect((await raw.recvBytes(256)).toString()).toBe('#WELCOME#');
      // Then it answers our challenge: legacy 20 bytes get a bare MD5, a
      // {digest} prefix gets that digest back with its prefix.
      const mine = digest === 'md5' ? Buffer.alloc(20, 7) : Buffer.concat([Buffer.from('{sha256}'), Buffer.alloc(40, 9)]);
      await raw.sendBytes(Buffer.concat([Buffer.from('#CHALLENGE#'), mine]));
      const reply = await raw.recvBytes(256);
      const expected =
        digest === 'md5'
          ? createHmac('md5', key).update(mine).digest()
          : Buffer.concat([Buffer.from('{sha256}'), createHmac('sha256', key).update(mine).digest()]);
      expect(reply.equals(expected)).toBe(true);
      await raw.sendBytes(Buffer.from('#WELCOME#'));
      const conn = await served;
      await raw.send('after handshake');
      expect(await conn.recv()).toBe('after handshake');
      raw.close();
      conn.close();
    }
    // A wrong bare-MD5 answer is refused with #FAILURE#, and accept() says why.
    const accepting = l.accept({ timeout: 5000 }).catch((e: unknown) => e);
    const raw = await Client(path);
    await raw.recvBytes(256);
    await raw.sendBytes(Buffer.alloc(16));
    expect((await raw.recvBytes(256)).toString()).toBe('#FAILURE#');
    expect(await accepting).toBeInstanceOf(AuthenticationError);
    raw.close();
  });

  it('a silent client does not block an honest one: handshakes run concurrently, each with a deadline (issue 16.5)', async () => {
    const path = sockPath('silent');
    const l = listen(path, { authkey: 'k', handshakeTimeout: 600 });
    // One client sends nothing, another half a frame; both come first.
    const silent = await rawClient(path);
    const half = await rawClient(path);
    half.write(Buffer.from([0, 0, 0, 50, 1, 2, 3]));
    await sleep(50);
    const t0 = performance.now();
    const serve = (async () => {
      for await (const conn of l) return conn;
      return undefined;
    })();
    const c = await Client(path, { authkey: 'k', timeout: 3000 });
    const s = (await serve)!;
    // Before: the loop sat in the silent client's handshake and the honest one timed out.
    expect(performance.now() - t0).toBeLessThan(500);
    await c.send('through');
    expect(await s.recv()).toBe('through');
    c.close();
    s.close();
    // The deadline disconnects the other two, and accept() hears why.
    await expect(l.accept({ timeout: 2000 })).rejects.toMatchObject({ code: 'ETIMEDOUT', message: expect.stringContaining('handshake') });
    await Promise.all([once(silent, 'close'), once(half, 'close')]);
    expect(performance.now() - t0).toBeLessThan(1500);
  });

  it('holds at most maxPending clients that accept() has not taken', async () => {
    const path = sockPath('cap');
    const l = listen(path, { maxPending: 2 });
    const clients = [await rawClient(path), await rawClient(path), await rawClient(path)];
    // The third is disconnected at once; the first two wait for accept().
    await once(clients[2]!, 'close');
    const a = await l.accept({ timeout: 1000 });
    const b = await l.accept({ timeout: 1000 });
    clients[0]!.write(Buffer.from([0, 0, 0, 1, 0x31]));
    expect(await a.recv()).toBe(1);
    // Taking them made room again.
    const d = await rawClient(path);
    const e = await l.accept({ timeout: 1000 });
    d.write(Buffer.from([0, 0, 0, 1, 0x32]));
    expect(await e.recv()).toBe(2);
    for (const x of [a, b, e]) x.close();
    expect(() => new Listener(sockPath('cap0'), { maxPending: 0 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });

  it('uses Linux abstract names', async () => {
    const name = '\0' + uniqueName('abstract');
    const l = listen(name, { authkey: 'a' });
    const [c, s] = await Promise.all([Client(name, { authkey: 'a' }), l.accept()]);
    await s.send('abstract ok');
    expect(await c.recv()).toBe('abstract ok');
    c.close();
    s.close();
  });

  it('fails clearly: address in use, nobody listening, timeouts, aborts, bad arguments', async () => {
    const path = sockPath('errors');
    writeFileSync(path, '');
    expect(() => new Listener(path)).toThrow(expect.objectContaining({ name: 'IPCError', code: 'EADDRINUSE', syscall: 'bind', path }));
    unlinkSync(path);
    await expect(Client(path)).rejects.toMatchObject({ name: 'IPCError', code: 'ENOENT', syscall: 'connect' });
    const l = listen(path);
    const t0 = performance.now();
    await expect(l.accept({ timeout: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(40);
    const ac = new AbortController();
    const pending = l.accept({ signal: ac.signal });
    ac.abort();
    await expect(pending).rejects.toBeInstanceOf(AbortError);
    const closing = l.accept();
    l.close();
    await expect(closing).rejects.toMatchObject({ code: 'EBADF' });
    // A listener that never answers the handshake: the client's timeout.
    const mute = sockPath('mute');
    const server = createServer(() => {}).listen(mute);
    await new Promise((r) => server.once('listening', r));
    later(() => server.close());
    await expect(Client(mute, { authkey: 'x', timeout: 100 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    expect(() => new Listener(42 as unknown as string)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Listener('/tmp/' + 'x'.repeat(200))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(() => new Listener(sockPath('k'), { authkey: 5 as unknown as string })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => new Listener(sockPath('e'), { authkey: '' })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(() => new Listener(sockPath('b'), { backlog: -1 })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    await expect(Client('a\0b')).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
  });

  it('an idle listener does not keep the process alive; a pending accept does', async () => {
    const path = sockPath('alive');
    const code = `
      import(${JSON.stringify(join(FIXTURES, '..', '..', 'dist', 'index.js'))}).then(async ({ Listener }) => {
        const l = new Listener(${JSON.stringify(path)});
        process.on('exit', () => { l.close(); console.log('exited'); });
        if (process.argv[1] === 'wait') l.accept({ timeout: 300 }).catch((e) => console.log(e.code));
      });`;
    const run = (arg: string) =>
      new Promise<string>((resolve) => {
        const child = spawn(process.execPath, ['-e', code, arg], { stdio: ['ignore', 'pipe', 'inherit'] });
        let out = '';
        child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
        child.on('close', () => resolve(out.trim()));
      });
    expect(await run('idle')).toBe('exited');
    expect(await run('wait')).toBe('ETIMEDOUT\nexited');
  });
});

describe('Listener and Client with python3 (multiprocessing.connection)', () => {
  it("our Listener accepts Python's Client with the right key and rejects a wrong one on both sides", async () => {
    const path = sockPath('py-client');
    const l = listen(path, { authkey: 'py-key' });
    const good = runPython('pipe/py-client.py', [path, 'py-key']);
    const s = await l.accept({ timeout: 20_000 });
    const msg = JSON.parse((await s.recvBytes()).toString());
    expect(msg.from).toBe('python');
    await s.sendBytes(Buffer.from(JSON.stringify({ from: 'node', got: msg })));
    const out = JSON.parse(expectOk(await good, 'python client').stdout);
    expect(out.reply.from).toBe('node');
    s.close();

    const bad = runPython('pipe/py-client.py', [path, 'not-the-key']);
    await expect(l.accept({ timeout: 20_000 })).rejects.toBeInstanceOf(AuthenticationError);
    const badOut = JSON.parse(expectOk(await bad, 'python client (wrong key)').stdout);
    expect(badOut.auth_error).toMatch(/rejected/);
  });

  it("our Listener on an abstract name serves Python's Client", async () => {
    const name = uniqueName('py-abstract');
    const l = listen('\0' + name, { authkey: 'k' });
    const py = runPython('pipe/py-client.py', ['@' + name, 'k']);
    const s = await l.accept({ timeout: 20_000 });
    await s.sendBytes(await s.recvBytes());
    expect(JSON.parse(expectOk(await py).stdout).reply.from).toBe('python');
    s.close();
  });

  it("our Client connects to Python's Listener, and a wrong key fails on both sides", async () => {
    const path = sockPath('py-listener');
    const py = spawn(PYTHON, [join(FIXTURES, 'pipe/py-listener.py'), path, 'shared', '2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    py.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const ready = new Promise<void>((resolve, reject) => {
      py.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('READY')) resolve();
      });
      py.on('close', () => reject(new Error(`python listener exited early: ${err}`)));
    });
    const exited = new Promise<number | null>((resolve) => py.on('close', resolve));
    later(() => py.kill('SIGKILL'));
    await ready;

    const c = await Client(path, { authkey: 'shared', timeout: 20_000 });
    await c.sendBytes(Buffer.from(JSON.stringify({ from: 'node' })));
    expect(JSON.parse((await c.recvBytes()).toString())).toEqual({ echo: { from: 'node' }, from: 'python' });
    c.close();

    await expect(Client(path, { authkey: 'other', timeout: 20_000 })).rejects.toBeInstanceOf(AuthenticationError);
    expect(await exited).toBe(0);
    const results = JSON.parse(out.slice(out.indexOf('\n') + 1));
    expect(results[0]).toEqual({ served: { from: 'node' } });
    expect(results[1].auth_error).toMatch(/wrong/);
  });
});

describe('permissions (as uid 65534)', () => {
  it("an unprivileged user cannot reach root's 0600 socket or FIFO, and its own are 0600", async () => {
    const path = sockPath('root-only');
    listen(path, { authkey: 'x' });
    const fifo = join(tmpdir(), uniqueName('root-fifo') + '.fifo');
    NamedPipe.create(fifo);
    later(() => unlinkSync(fifo));
    const r = expectOk(await runNodeUnprivileged('pipe/unpriv.mjs', [path, fifo]), 'unprivileged child');
    const out = JSON.parse(r.stdout);
    if (process.getuid?.() === 0) {
      expect(out.uid).toBe(65534);
      expect(out.client).toBe('EACCES');
      expect(out.fifo).toBe('EACCES');
    }
    expect(out.fifoMode).toBe(0o600);
    expect(out.sockMode).toBe(0o600);
    expect(out.sockRemoved).toBe(true);
  });
});
