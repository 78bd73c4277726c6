// Issue 16.16: new Queue<string>(n, { codec: 'raw' }) used to type-check while
// get() returned a Buffer. test/fixtures/queue/codec-types.ts states what the
// types must allow and refuse (@ts-expect-error); this compiles it.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, ROOT, run } from '../helpers/index.js';

describe('the codec drives the item type', () => {
  it('codec-types.ts compiles, with an error on every @ts-expect-error line', async () => {
    const tsc = join(ROOT, 'node_modules', '.bin', 'tsc');
    const r = await run(tsc, [
      '--ignoreConfig', '--noEmit', '--strict', '--skipLibCheck',
      '--target', 'ES2022', '--module', 'NodeNext', '--moduleResolution', 'NodeNext',
      '--lib', 'ES2022,ESNext.Disposable', '--types', 'node',
      join(FIXTURES, 'queue', 'codec-types.ts'),
    ], { cwd: ROOT });
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });
});
