// Size limits tested at the limit: a frame of exactly maxLength (or exactly
// the room left in a buffer) is received; one byte more is refused, and stays
// first in line for a call that can take it.
import { describe, expect, it } from 'vitest';
import { type Connection, Pipe } from '../../lib/index.js';
import { cleanupAfterEach } from '../helpers/index.js';

const later = cleanupAfterEach();

function pair(): [Connection, Connection] {
  const [a, b] = Pipe();
  later(
    () => a.close(),
    () => b.close(),
  );
  return [a, b];
}

describe('maxLength at the boundary', () => {
  for (const max of [1, 100, 65_536, 300_000]) {
    it(`recvBytes(${max}) takes a frame of ${max} bytes and refuses one of ${max + 1}`, async () => {
      const [a, b] = pair();
      const exact = Buffer.alloc(max, 7);
      void a.sendBytes(exact);
      expect((await b.recvBytes(max)).equals(exact)).toBe(true);
      const over = Buffer.alloc(max + 1, 8);
      void a.sendBytes(over);
      await expect(b.recvBytes(max)).rejects.toMatchObject({ name: 'IPCError', code: 'EMSGSIZE' });
      expect((await b.recvBytes(max + 1)).equals(over)).toBe(true);
    });
  }

  it('recvBytesInto fills the exact room left after offset, and refuses one byte more', async () => {
    const [a, b] = pair();
    const buf = Buffer.alloc(1000);
    await a.sendBytes(Buffer.alloc(990, 1));
    expect(await b.recvBytesInto(buf, 10)).toBe(990);
    await a.sendBytes(Buffer.alloc(991, 2));
    await expect(b.recvBytesInto(buf, 10)).rejects.toMatchObject({ code: 'EMSGSIZE' });
    expect(await b.recvBytesInto(buf, 9)).toBe(991);
  });
});
