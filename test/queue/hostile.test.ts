// The large-item reader trusts nothing at the name a descriptor gives (issue
// 16.3), and a consumer of another user's item frees its memory (issue 16.8).
// Each receive runs in a child (test/fixtures/queue/get-one.mjs): a FIFO that
// blocks the reader's thread is a killed child, not a hung test runner.
import { chownSync, existsSync, linkSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Queue } from '../../lib/index.js';
import { binding } from '../../lib/core/binding.js';
import { IS_ROOT, cleanupAfterEach, runNode, runNodeUnprivileged, uniqueName } from '../helpers/index.js';

const later = cleanupAfterEach();
const MAGIC = Buffer.from('\0PIPCBIG', 'latin1');

interface Got {
  ok: boolean;
  code?: string;
  message?: string;
  text?: string;
  length?: number;
  ms: number;
  maxRssMiB: number;
}

function makeQueue(mode = 0o600): { name: string; q: Queue } {
  const name = uniqueName('hq');
  const old = process.umask(0);
  let q: Queue;
  try {
    q = new Queue(name, { codec: 'raw', mode, maxMessageSize: 256, maxsize: 4, transport: 'mq' });
  } finally {
    process.umask(old);
  }
  later(
    () => q.close(),
    () => Queue.unlink(name),
  );
  return { name, q };
}

/** A segment path of queue `name` as a sender would make it. */
function segmentFor(name: string): { segment: string; path: string } {
  const segment = `/pipc-mq.${name}.${process.pid}-1-abcdef012345`;
  const path = `/dev/shm${segment}`;
  later(() => rmSync(path, { force: true, recursive: true }));
  return { segment, path };
}

/** Sends a descriptor announcing `length` bytes at `segment`, bypassing the sender's own checks. */
function sendDescriptor(name: string, segment: string, length: number | bigint): void {
  const d = Buffer.alloc(16 + Buffer.byteLength(segment));
  MAGIC.copy(d, 0);
  d.writeBigUInt64LE(BigInt(length), 8);
  d.write(segment, 16, 'utf8');
  const h = binding.mqOpen('/' + name, false, false, 0, 0, 0);
  try {
    expect(binding.mqSend(h, d, 0)).toBe(true);
  } finally {
    binding.mqClose(h);
  }
}

async function getInChild(name: string, options: object = {}, unprivileged = false): Promise<Got> {
  const args = [name, '1000', JSON.stringify(options)];
  const r = unprivileged
    ? await runNodeUnprivileged('queue/get-one.mjs', args, { timeoutMs: 10_000 })
    : await runNode('queue/get-one.mjs', args, { timeoutMs: 10_000 });
  if (r.code !== 0) throw new Error(`receiver ended with ${r.code ?? r.signal}\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout) as Got;
}

describe('forged large-item descriptors (issue 16.3)', () => {
  it('a FIFO at the segment name: get() fails at once with EINVAL, no hang', async () => {
    const { name } = makeQueue();
    const { segment, path } = segmentFor(name);
    execFileSync('mkfifo', ['-m', '600', path]);
    sendDescriptor(name, segment, 10);
    const got = await getInChild(name);
    expect(got).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(got.message).toMatch(/FIFO/);
  });

  it('a symlink to /etc/shadow: nothing of it is delivered', async () => {
    const { name } = makeQueue();
    const { segment, path } = segmentFor(name);
    symlinkSync('/etc/shadow', path);
    sendDescriptor(name, segment, statSync('/etc/shadow').size);
    const got = await getInChild(name);
    expect(got).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(got.message).toMatch(/symbolic link/);
    expect(got.text).toBeUndefined();
  });

  it('a sparse 1.5 GiB file announced as 1 byte is refused without being read', async () => {
    const { name } = makeQueue();
    const { segment, path } = segmentFor(name);
    writeFileSync(path, '');
    truncateSync(path, 1.5 * 2 ** 30);
    sendDescriptor(name, segment, 1);
    const got = await getInChild(name);
    expect(got).toMatchObject({ ok: false, code: 'EIO' });
    expect(got.message).toMatch(/holds 1610612736 bytes, the descriptor announced 1/);
    expect(got.maxRssMiB).toBeLessThan(400); // it read nothing of the 1.5 GiB
  });

  it('a hard link to another file is refused', async () => {
    const { name } = makeQueue();
    const { segment, path } = segmentFor(name);
    const other = `/dev/shm/${uniqueName('secret')}`;
    writeFileSync(other, 'secret', { mode: 0o600 });
    later(() => rmSync(other, { force: true }));
    linkSync(other, path);
    sendDescriptor(name, segment, 6);
    const got = await getInChild(name);
    expect(got).toMatchObject({ ok: false, code: 'EINVAL' });
    expect(got.message).toMatch(/2 links/);
  });

  it("on a queue only its owner may write, a segment of another uid is refused (EPERM); on a 0o666 queue it is read", async () => {
    if (!IS_ROOT) return; // needs root to stage another uid's file
    for (const mode of [0o600, 0o666]) {
      const { name } = makeQueue(mode);
      const { segment, path } = segmentFor(name);
      writeFileSync(path, 'hello');
      chownSync(path, 65534, 65534);
      sendDescriptor(name, segment, 5);
      const got = await getInChild(name);
      if (mode === 0o600) {
        expect(got).toMatchObject({ ok: false, code: 'EPERM' });
        expect(got.message).toContain('owned by uid 65534');
      } else {
        expect(got).toMatchObject({ ok: true, text: 'hello' });
      }
    }
  });

  it('a genuine large item still arrives, and its segment is removed', async () => {
    const { name, q } = makeQueue();
    await q.put(Buffer.alloc(100_000, 7));
    const got = await getInChild(name);
    expect(got).toMatchObject({ ok: true, length: 100_000 });
  });
});

describe('a large put still waiting when its process exits (issue 16.8)', () => {
  it('leaves no side segment behind', async () => {
    const name = uniqueName('hq-exit');
    const q = new Queue(name, { codec: 'raw', maxsize: 1, maxMessageSize: 256, transport: 'mq' });
    later(
      () => q.close(),
      () => Queue.unlink(name),
    );
    const r = await runNode('queue/exit-pending.mjs', [name], { timeoutMs: 10_000 });
    expect(r.code, r.stderr).toBe(0);
    const made = JSON.parse(r.stdout) as string[];
    expect(made).toHaveLength(1); // it was there while the put waited
    expect(existsSync(`/dev/shm/${made[0]}`)).toBe(false);
    expect(q.qsize()).toBe(1); // the small item, not a descriptor of a removed segment
  });
});

describe('a large item received by another user (issue 16.8)', () => {
  it("uid 65534 consuming root's item on a 0o666 queue empties the segment it may not remove", async () => {
    if (!IS_ROOT) return;
    const { name, q } = makeQueue(0o666);
    const old = process.umask(0o022); // the sender's umask must not narrow the segment's mode
    try {
      await q.put(Buffer.alloc(1 << 20, 1));
    } finally {
      process.umask(old);
    }
    const seg = execFileSync('ls', ['/dev/shm']).toString().split('\n').find((e) => e.startsWith(`pipc-mq.${name}.`))!;
    later(() => rmSync(`/dev/shm/${seg}`, { force: true }));
    expect(statSync(`/dev/shm/${seg}`).mode & 0o777).toBe(0o666);
    const got = await getInChild(name, { owner: 'any' }, true);
    expect(got).toMatchObject({ ok: true, length: 1 << 20 });
    // Sticky /dev/shm keeps the name (root's), but its megabyte is freed.
    expect(statSync(`/dev/shm/${seg}`).size).toBe(0);
  });
});
