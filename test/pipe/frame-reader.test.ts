// FrameReader without sockets: multiprocessing.connection frames fed in every
// split, the assembly buffer that grows with the bytes (issue 16.4), and
// corrupt headers.
import { describe, expect, it } from 'vitest';
import { ASSEMBLE_MIN, FrameReader, PREFAULT_WINDOW } from '../../lib/pipe/frame-reader.js';

function frame(payload: Buffer, long = false): Buffer {
  if (!long) {
    const h = Buffer.alloc(4);
    h.writeInt32BE(payload.length);
    return Buffer.concat([h, payload]);
  }
  const h = Buffer.alloc(12);
  h.writeInt32BE(-1);
  h.writeBigUInt64BE(BigInt(payload.length), 4);
  return Buffer.concat([h, payload]);
}

/** Takes every complete frame, as Connection's pump does for a receiver that accepts any size. */
function drain(r: FrameReader): Buffer[] {
  const out: Buffer[] = [];
  while (r.header() && r.complete()) out.push(Buffer.from(r.take()));
  return out;
}

const payloads = [
  Buffer.from('a'),
  Buffer.alloc(0),
  Buffer.from(JSON.stringify({ hello: 'world' })),
  Buffer.alloc(ASSEMBLE_MIN + 3, 7),
  Buffer.alloc(300, 9),
];
const stream = Buffer.concat(payloads.map((p, i) => frame(p, i === 4)));

describe('FrameReader', () => {
  it('cuts the same frames out of the stream however it is split', () => {
    for (const step of [1, 3, 4, 5, 11, 12, 13, 4096, 65536, stream.length]) {
      for (const owned of [true, false]) {
        const r = new FrameReader();
        const got: Buffer[] = [];
        for (let i = 0; i < stream.length; i += step) {
          const piece = stream.subarray(i, i + step);
          r.push(owned ? Buffer.from(piece) : piece, piece.length, owned);
          got.push(...drain(r));
        }
        expect(got.map((b) => b.toString('hex'))).toEqual(payloads.map((b) => b.toString('hex')));
        expect(r.hasData).toBe(false);
        expect(r.partial).toBe(0);
      }
    }
  });

  it('lets reads land straight in the frame being assembled', () => {
    const big = Buffer.alloc(3 * ASSEMBLE_MIN, 5);
    const bytes = frame(big);
    const r = new FrameReader();
    r.push(bytes.subarray(0, 100), 100, false);
    expect(r.readTarget()).toBeNull();
    expect(r.header() && r.complete()).toBe(false);
    let at = 100;
    while (at < bytes.length) {
      const t = r.readTarget()!;
      expect(r.isTarget(t)).toBe(true);
      const n = Math.min(t.length, 10_000, bytes.length - at);
      bytes.copy(t, 0, at, at + n);
      r.filled(n);
      at += n;
    }
    expect(r.readTarget()).toBeNull();
    expect(drain(r)[0]!.equals(big)).toBe(true);
  });

  it('grows the assembly buffer with the bytes: an announced 2 GiB costs what arrived', () => {
    let committed = 0;
    const r = new FrameReader({ prefault: (b) => (committed += b.length) });
    const h = Buffer.alloc(4);
    h.writeInt32BE(0x7fffffff);
    r.push(h, 4, false);
    expect(r.header()).toBe(true);
    expect(r.frameSize).toBe(0x7fffffff);
    expect(r.complete()).toBe(false);
    const chunk = Buffer.alloc(256 * 1024, 1);
    for (let i = 0; i < 16; i++) r.push(chunk, chunk.length, false);
    expect(r.partial).toBe(4 + 16 * chunk.length);
    // The buffer's capacity is its bytes plus the rest a read may fill.
    const capacity = 16 * chunk.length + r.readTarget()!.length;
    expect(capacity).toBeLessThanOrEqual(64 * 1024 * 1024);
    expect(committed).toBeLessThanOrEqual(16 * chunk.length + PREFAULT_WINDOW);
    r.clear();
    expect(r.hasData).toBe(false);
  });

  it('doubles a small first buffer up to the frame size, keeping every byte', () => {
    const payload = Buffer.alloc(1_000_003);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 31) & 0xff;
    const bytes = frame(payload, true);
    const r = new FrameReader({ firstCapacity: ASSEMBLE_MIN });
    const capacities: number[] = [];
    let at = 0;
    for (const step of [7, 70_000, 1, 33_333]) {
      r.push(bytes.subarray(at, at + step), step, false);
      at += step;
      if (r.header()) r.complete();
    }
    while (at < bytes.length) {
      const t = r.readTarget();
      if (t !== null) {
        capacities.push(r.partial - 12 + t.length);
        const n = Math.min(t.length, 50_000, bytes.length - at);
        bytes.copy(t, 0, at, at + n);
        r.filled(n);
        at += n;
      } else {
        const n = Math.min(50_000, bytes.length - at);
        r.push(bytes.subarray(at, at + n), n, false);
        at += n;
      }
    }
    expect(drain(r)[0]!.equals(payload)).toBe(true);
    expect(capacities[0]).toBeLessThan(payload.length);
    expect(Math.max(...capacities)).toBe(payload.length);
    for (let i = 1; i < capacities.length; i++) expect(capacities[i]! >= capacities[i - 1]!).toBe(true);
  });

  it('refuses a length no multiprocessing peer sends', () => {
    const r = new FrameReader({ path: '/x' });
    const h = Buffer.alloc(4);
    h.writeInt32BE(-2);
    r.push(h, 4, false);
    expect(() => r.header()).toThrow(expect.objectContaining({ code: 'EPROTO', path: '/x' }));
  });
});
