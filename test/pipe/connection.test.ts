// Connections across real processes: Pipe ends handed to python3 and node
// children through spawn's stdio, and FIFOs opened by a python3 process.
import { spawn } from 'node:child_process';
import { statSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { NamedPipe, Pipe, RECV_MAX_LENGTH } from '../../lib/index.js';
import { FIXTURES, PYTHON, expectOk, fdCount, runNode, runPython, uniqueName, cleanupAfterEach } from '../helpers/index.js';
import type { RunResult } from '../helpers/index.js';

const later = cleanupAfterEach();

/** Spawns `cmd` with `fd` as the child's fd 3; resolves with its output when it exits. */
function withFd3(cmd: string, args: string[], fd: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

describe('a Pipe end in a python3 child (multiprocessing.connection.Connection(3))', () => {
  it('exchanges bytes, JSON and 5 MiB frames both ways, and sees EOFError when we close', async () => {
    const before = fdCount();
    const [ours, theirs] = Pipe();
    const done = withFd3(PYTHON, [join(FIXTURES, 'pipe/py-conn.py')], theirs.fileno());
    theirs.close();

    await ours.sendBytes(Buffer.from('stressed'));
    expect((await ours.recvBytes()).toString()).toBe('desserts');

    await ours.send({ numbers: [1, 2, 3, 4], text: 'ünïcode' });
    expect(await ours.recv()).toEqual({ numbers: [1, 2, 3, 4], text: 'ünïcode', seen_by: 'python', sum: 10 });

    const big = Buffer.alloc(5 * 1024 * 1024);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const sending = ours.sendBytes(big);
    const back = await ours.recvBytes();
    await sending;
    expect(back.length).toBe(5 * 1024 * 1024);
    let same = true;
    for (let i = 0; i < back.length; i++) {
      if (back[i] !== (i * 7) % 253) {
        same = false;
        break;
      }
    }
    expect(same).toBe(true);
    expect((await ours.recvBytes()).toString()).toBe('23456');

    ours.close();
    const r = expectOk(await done, 'python child');
    expect(JSON.parse(r.stdout)).toEqual({ big_ok: true, eof: true });
    expect(fdCount()).toBe(before);
  });

  it('a python3 child that dies is an EOF here, not a hang', async () => {
    const [ours, theirs] = Pipe();
    later(() => ours.close());
    const done = withFd3(PYTHON, ['-c', 'from multiprocessing.connection import Connection; Connection(3).send_bytes(b"bye")'], theirs.fileno());
    theirs.close();
    expect((await ours.recvBytes()).toString()).toBe('bye');
    await expect(ours.recv()).rejects.toMatchObject({ code: 'EOF' });
    expectOk(await done);
  });
});

describe('a Pipe end in a node child (new Connection(3))', () => {
  it('echoes JSON messages and ends cleanly when we close', async () => {
    const [ours, theirs] = Pipe();
    const done = withFd3(process.execPath, [join(FIXTURES, 'pipe/node-conn.mjs')], theirs.fileno());
    theirs.close();
    for (let i = 0; i < 50; i++) {
      await ours.send({ i });
      const r = (await ours.recv()) as { echo: { i: number }; n: number };
      expect(r.echo).toEqual({ i });
      expect(r.n).toBe(i + 1);
    }
    ours.close();
    const r = expectOk(await done, 'node child');
    expect(JSON.parse(r.stdout)).toEqual({ received: 50 });
  });

  it('carries the v8 codec across processes', async () => {
    const [ours, theirs] = Pipe({ codec: 'v8' });
    const done = withFd3(process.execPath, [join(FIXTURES, 'pipe/node-conn.mjs'), '3', 'v8'], theirs.fileno());
    theirs.close();
    const item = { when: new Date(1e12), set: new Set([1, 2]), big: 2n ** 70n };
    await ours.send(item);
    expect(((await ours.recv()) as { echo: unknown }).echo).toEqual(item);
    ours.close();
    expectOk(await done);
  });
});

describe('NamedPipe between python3 and node', () => {
  it('carries framed messages from python3 to node and back through two FIFOs', async () => {
    const toNode = join(tmpdir(), uniqueName('to-node') + '.fifo');
    const fromNode = join(tmpdir(), uniqueName('from-node') + '.fifo');
    NamedPipe.create(toNode);
    later(() => unlinkSync(toNode));
    NamedPipe.create(fromNode);
    later(() => unlinkSync(fromNode));
    expect(statSync(toNode).mode & 0o777).toBe(0o600);

    const py = runPython('pipe/py-fifo.py', [toNode, fromNode]);
    const r = await NamedPipe.open(toNode, 'r', { timeout: 20_000 });
    const got: unknown[] = [];
    for await (const m of r) got.push(m);
    r.close();
    expect(got).toEqual([0, 1, 2].map((i) => ({ i, from: 'python' })));

    const w = await NamedPipe.open(fromNode, 'w', { timeout: 20_000 });
    for (const m of got) await w.send({ ack: (m as { i: number }).i });
    w.close();
    const out = expectOk(await py, 'python fifo peer');
    expect(JSON.parse(out.stdout)).toEqual([{ ack: 0 }, { ack: 1 }, { ack: 2 }]);
  });
});

describe('frame sizes from a hostile or careless peer (issue 16.4)', () => {
  it('a peer announcing 2^31 - 1 (or 2^32 - 1) bytes does not make the receiver commit them', async () => {
    for (const form of ['short', 'long']) {
      const r = expectOk(await runNode('pipe/huge-header.mjs', [form]), form);
      const { before, during, outcome } = JSON.parse(r.stdout.trim()) as { before: number; during: number; outcome: string };
      // Before the fix: about +2048 MiB (short) and +4096 MiB (long), committed at once.
      expect(during - before, `${form}: RSS ${before} -> ${during} MiB`).toBeLessThan(64);
      expect(outcome).toBe('ECONNRESET');
    }
  });

  it('a frame of exactly maxLength passes; one byte more is refused and stays first in line', async () => {
    const [a, b] = Pipe<unknown>();
    later(() => {
      a.close();
      b.close();
    });
    await a.sendBytes(Buffer.alloc(10, 1));
    expect((await b.recvBytes(10)).length).toBe(10);
    await a.sendBytes(Buffer.alloc(11, 1));
    await expect(b.recvBytes(10)).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect((await b.recvBytes(11)).length).toBe(11);
    await a.send('abcdefgh'); // 10 bytes of JSON text
    expect(await b.recv({ maxLength: 10 })).toBe('abcdefgh');
    await a.send('abcdefghi');
    await expect(b.recv({ maxLength: 10 })).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect(await b.recv({ maxLength: 11 })).toBe('abcdefghi');
    const into = Buffer.alloc(12);
    await a.sendBytes(Buffer.alloc(12, 2));
    expect(await b.recvBytesInto(into)).toBe(12);
    await a.sendBytes(Buffer.alloc(12, 2));
    await expect(b.recvBytesInto(into, 1)).rejects.toMatchObject({ code: 'EMSGSIZE' });
  });

  it('recv() has a default maxLength of 64 MiB: exactly that passes, one byte more is refused', async () => {
    expect(RECV_MAX_LENGTH).toBe(64 * 1024 * 1024);
    const [a, b] = Pipe<Buffer>({ codec: 'raw' });
    later(() => {
      a.close();
      b.close();
    });
    const sent = a.sendBytes(Buffer.alloc(RECV_MAX_LENGTH, 3));
    expect((await b.recv()).length).toBe(RECV_MAX_LENGTH);
    await sent;
    // Not awaited: the OS takes the rest only as it is received.
    const over = a.sendBytes(Buffer.alloc(RECV_MAX_LENGTH + 1, 3));
    await expect(b.recv()).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect((await b.recv({ maxLength: RECV_MAX_LENGTH + 1 })).length).toBe(RECV_MAX_LENGTH + 1);
    await over;
  });
});
