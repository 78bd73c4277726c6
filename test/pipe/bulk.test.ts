// Bulk traffic into a Pipe() end this module reads itself (issue 17.3): reads
// of 64 KiB or more go into fresh buffers that the frames keep, smaller ones
// into the shared read buffer (copied out), large frames straight into their
// own buffer. Whatever the mix, every frame arrives byte-exact and stays so
// while later reads reuse the shared buffer.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { Pipe } from '../../lib/index.js';
import { PIPE_SNDBUF } from '../../lib/pipe/pipe.js';
import { FIXTURES, expectOk } from '../helpers/index.js';
import type { RunResult } from '../helpers/index.js';
// @ts-expect-error: a plain .mjs fixture, shared with the child.
import { bulkFrame, bulkSizes } from '../fixtures/pipe/bulk-pattern.mjs';

const sizes = bulkSizes as () => number[];
const frameOf = bulkFrame as (i: number, size: number) => Buffer;

function sender(fd: number, rounds: number): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(FIXTURES, 'pipe/bulk-sender.mjs'), String(rounds)], { stdio: ['ignore', 'pipe', 'pipe', fd] });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** Frames as received, checked once all have arrived (a later read must not have overwritten one). */
function checkAll(got: Buffer[]): void {
  const list = sizes();
  got.forEach((b, i) => {
    const size = list[i % list.length]!;
    expect(b.length).toBe(size);
    // equals() rather than toEqual: a 5 MiB diff would be unreadable.
    expect(b.equals(frameOf(i, size)), `frame ${i} (${size} bytes) differs`).toBe(true);
  });
}

describe('bulk frames from a node child into Pipe()', () => {
  it('a slow reader (the sender blocked on a full socket) gets every frame byte-exact', async () => {
    const [ours, theirs] = Pipe({ codec: 'raw' });
    const rounds = 3;
    const done = sender(theirs.fileno(), rounds);
    theirs.close();
    const total = rounds * sizes().length;
    const got: Buffer[] = [];
    // Let the sender fill the socket and block, then read slowly for a while:
    // partial writes under back-pressure, reads at every offset of a frame.
    await sleep(300);
    for (let i = 0; i < total; i++) {
      if (i < 20 && i % 4 === 0) await sleep(20);
      got.push(await ours.recvBytes());
    }
    checkAll(got);
    await ours.send(Buffer.from('ok'));
    const r = expectOk(await done, 'bulk sender');
    expect(JSON.parse(r.stdout)).toEqual({ sent: total });
    ours.close();
  });

  it('recvBytesInto and a reader that keeps up get the same bytes', async () => {
    const [ours, theirs] = Pipe({ codec: 'raw' });
    const done = sender(theirs.fileno(), 2);
    theirs.close();
    const total = 2 * sizes().length;
    const got: Buffer[] = [];
    const into = Buffer.alloc(6 * 1024 * 1024);
    for (let i = 0; i < total; i++) {
      if (i % 2 === 0) {
        got.push(await ours.recvBytes());
      } else {
        const n = await ours.recvBytesInto(into, 8);
        got.push(Buffer.from(into.subarray(8, 8 + n)));
      }
    }
    checkAll(got);
    await ours.send(Buffer.from('ok'));
    expectOk(await done, 'bulk sender');
    ours.close();
  });
});

describe("Pipe()'s socket buffer", () => {
  it('holds at least PIPE_SNDBUF (or net.core.wmem_max) bytes of frames nobody reads yet, all delivered exact', async () => {
    const [a, b] = Pipe({ codec: 'raw' });
    const wmemMax = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8'));
    const pending: Promise<void>[] = [];
    let accepted = 0;
    for (let i = 0; i < 200; i++) {
      const p = a.sendBytes(frameOf(i, 64 * 1024));
      pending.push(p);
      const won = await Promise.race([p.then(() => true), sleep(100).then(() => false)]);
      if (!won) break;
      accepted += 4 + 64 * 1024;
    }
    // The default buffer (208 KiB) takes three frames; 1 MiB asked for is
    // 2 MiB granted (less the kernel's per-packet overhead).
    expect(accepted).toBeGreaterThanOrEqual(Math.min(PIPE_SNDBUF, wmemMax));
    for (let i = 0; i < pending.length; i++) {
      const got = await b.recvBytes();
      expect(got.equals(frameOf(i, 64 * 1024)), `frame ${i}`).toBe(true);
    }
    await Promise.all(pending);
    a.close();
    b.close();
  });
});
