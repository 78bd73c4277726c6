// codec: 'pickle' with python3's own multiprocessing.connection send()/recv()
// (which pickle) on the other end: our Listener serving Python's Client, our
// Client reaching Python's Listener (both with the authkey handshake), a Pipe
// end in a python3 child, and a message queue that python3 reaches with ctypes.
import { spawn } from 'node:child_process';
import { existsSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Client, Listener, Pipe, Queue, UnpicklingError } from '../../lib/index.js';
import { FIXTURES, PYTHON, expectOk, fdCount, run, runPython, uniqueName, cleanupAfterEach } from '../helpers/index.js';

const later = cleanupAfterEach();
const peer = join(FIXTURES, 'core/pickle-peer.py');

/** What Python's {'a': 1, 'b': [1, 2.5, None, True, b'x', 2**70]} is here. */
const OBJ = { a: 1, b: [1, 2.5, null, true, Buffer.from('x'), 2n ** 70n] };
/** pickle-vectors-tag.py's tag() of OBJ. */
const OBJ_TAG = {
  dict: [
    [{ str: 'a' }, { int: '1' }],
    [{ str: 'b' }, { list: [{ int: '1' }, { float: '2.5' }, { none: null }, { bool: true }, { bytes: '78' }, { int: String(2n ** 70n) }] }],
  ],
};

function sockPath(tag: string): string {
  const p = join(tmpdir(), `${uniqueName(tag)}.sock`);
  later(() => {
    if (existsSync(p)) unlinkSync(p);
  });
  return p;
}

describe("codec: 'pickle' with python3's multiprocessing.connection", () => {
  it("Python's Client(addr, authkey=k).send({...}) arrives from our Listener's recv(), and our send() from its recv()", async () => {
    const path = sockPath('pk-listener');
    const l = new Listener(path, { authkey: 'pickle-key', codec: 'pickle' });
    later(() => l.close());
    const py = runPython('core/pickle-peer.py', ['client', path, 'pickle-key']);
    const conn = await l.accept({ timeout: 20_000 });
    later(() => conn.close());
    const got = await conn.recv({ timeout: 20_000 });
    expect(Object.getPrototypeOf(got)).toBe(Object.prototype);
    expect(got).toEqual(OBJ);
    await conn.send({ reply: [1n << 80n, 'é', new Map([[1, 'one']]), new Set(['s'])], ok: true });
    const out = JSON.parse(expectOk(await py, 'python client').stdout);
    expect(out).toEqual({
      dict: [
        [{ str: 'reply' }, { list: [{ int: String(1n << 80n) }, { str: 'é' }, { dict: [[{ int: '1' }, { str: 'one' }]] }, { set: [{ str: 's' }] }] }],
        [{ str: 'ok' }, { bool: true }],
      ],
    });
    conn.close();
  });

  it("our Client's send() arrives from Python's Listener recv(), and its send() from our recv()", async () => {
    const path = sockPath('pk-client');
    const py = spawn(PYTHON, [peer, 'listener', path, 'k2'], { stdio: ['ignore', 'pipe', 'pipe'] });
    later(() => py.kill('SIGKILL'));
    let out = '';
    let err = '';
    py.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => py.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      py.stdout.setEncoding('utf8').on('data', (d: string) => {
        out += d;
        if (out.includes('READY')) resolve();
      });
      py.on('close', () => reject(new Error(`python listener exited early: ${err}`)));
    });
    const c = await Client(path, { authkey: 'k2', codec: 'pickle', timeout: 20_000 });
    later(() => c.close());
    await c.send(OBJ);
    const back = (await c.recv({ timeout: 20_000 })) as unknown[];
    expect(back).toEqual([OBJ, 'python']);
    c.close();
    expect(await exited).toBe(0);
    expect(JSON.parse(out.slice(out.indexOf('\n') + 1))).toEqual(OBJ_TAG);
  });

  it('a Pipe end in python3 (Connection(3)): many objects both ways, a 1 MiB one in frames; a hostile reply is refused and the connection goes on', async () => {
    const before = fdCount();
    const evilPath = join(tmpdir(), uniqueName('pk-evil'));
    later(() => rmSync(evilPath, { force: true }));
    const [ours, theirs] = Pipe({ codec: 'pickle' });
    later(() => ours.close(), () => theirs.close());
    const done = run(PYTHON, [peer, 'fd', evilPath], { stdio: ['pipe', 'pipe', 'pipe', theirs.fileno()] });
    theirs.close();
    const items: unknown[] = [null, 0, -1, 2n ** 64n, 1.5, 'text', Buffer.alloc(1 << 20, 7), [], {}, { nested: { deep: [[1], [2, [3]]] } }, new Set([1, 2])];
    for (const item of items) {
      await ours.send(item);
      const back = (await ours.recv({ timeout: 20_000 })) as unknown[];
      // A 1 MiB Buffer compares faster by Buffer.equals than element by element.
      if (Buffer.isBuffer(item)) expect(Buffer.isBuffer(back[0]) && item.equals(back[0])).toBe(true);
      else expect(back, String(item)).toEqual([item, 'python']);
      expect(back[1]).toBe('python');
    }
    await ours.send('evil');
    const err = await ours.recv({ timeout: 20_000 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnpicklingError);
    expect((err as UnpicklingError).opcode).toMatch(/^(STACK_)?GLOBAL$/);
    expect(existsSync(evilPath)).toBe(false);
    await ours.send('after');
    expect(await ours.recv({ timeout: 20_000 })).toEqual(['after', 'python']);
    ours.close();
    const r = expectOk(await done, 'python fd peer');
    expect(JSON.parse(r.stdout)).toEqual({ echoed: items.length + 2 });
    expect(fdCount()).toBe(before);
  });
});

describe("Queue with codec: 'pickle' and python3 (pipc.Queue, message-queue transport)", () => {
  it("python3's pickle.dumps arrives from our get(), and our put() loads in python3", async () => {
    const name = uniqueName('pk-queue');
    const q = new Queue(name, { codec: 'pickle', transport: 'mq' });
    later(() => Queue.unlink(name), () => q.close());
    expectOk(await runPython('core/pickle-peer.py', ['queue-send', name]), 'python queue-send');
    expect(await q.get({ timeout: 20_000 })).toEqual(OBJ);
    await q.put(OBJ);
    expect(JSON.parse(expectOk(await runPython('core/pickle-peer.py', ['queue-recv', name]), 'python queue-recv').stdout)).toEqual(OBJ_TAG);
  });
});
