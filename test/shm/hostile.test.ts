// Use after close through ArrayBuffer.prototype.transfer() (issue 16.7): the
// moved buffer escapes close()'s detach, so close() must not leave it over
// unmapped memory. Runs in a child: the failure is a SIGSEGV.
import { readFileSync, rmSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { cleanupAfterEach, run, FIXTURES, uniqueName } from '../helpers/index.js';
import { join } from 'node:path';

const later = cleanupAfterEach();

describe('a transferred mapping after close() (issue 16.7)', () => {
  for (const kind of ['shm', 'array']) {
    it(`${kind}: buffer.transfer() then close(): reads zeros, writes go nowhere, no SIGSEGV`, async () => {
      const n = uniqueName('transfer');
      later(() => rmSync(`/dev/shm/${n}`, { force: true }));
      // Node 20 needs the flag for transfer(); later versions have it by default.
      const r = await run(process.execPath, ['--harmony-rab-gsab-transfer', join(FIXTURES, 'shm', 'transfer.mjs'), n, kind]);
      expect(r.signal, r.stderr).toBeNull();
      expect(r.code, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual({ before: 42, after: 0, length: 4096, wrote: 9, stillMapped: false });
      // The stray write after close() did not reach the segment.
      expect([...readFileSync(`/dev/shm/${n}`).subarray(0, 2)]).toEqual([42, 0]);
    });
  }
});
