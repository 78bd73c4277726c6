// Fuzzes the pickle decoder in a child node process with a 128 MiB heap for a
// bounded time (~6 s): random bytes, random opcode sequences, and mutations of
// python3's own pickles of every case and protocol. Only values and
// UnpicklingErrors may come out: no other error, no crash (the child's exit),
// no call over 1 s, no allocation past the small heap.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, expectOk, run, runPython } from '../helpers/index.js';

describe('pickle decoder fuzz', () => {
  it('random and mutated pickles give a value or an UnpicklingError, quickly, in a small heap', async () => {
    const vectors = JSON.parse(expectOk(await runPython('core/pickle-vectors.py', ['dump'], { timeoutMs: 40_000 }), 'vectors').stdout) as Array<{ hex?: string }>;
    const seeds = vectors.map((v) => v.hex).filter((h): h is string => h !== undefined && h.length < 8192);
    expect(seeds.length).toBeGreaterThan(300);
    const r = await run(process.execPath, ['--max-old-space-size=128', join(FIXTURES, 'core/pickle-fuzz.mjs'), '6000'], {
      input: JSON.stringify(seeds),
      timeoutMs: 40_000,
    });
    expect(r.signal, r.stderr).toBeNull();
    expectOk(r, 'fuzzer');
    const out = JSON.parse(r.stdout) as { inputs: number; values: number; refused: number; slowestMs: number; seed: number; failures: unknown[] };
    expect(out.failures, `seed ${out.seed}`).toEqual([]);
    expect(out.inputs).toBeGreaterThan(10_000);
    expect(out.values).toBeGreaterThan(100);
    expect(out.refused).toBeGreaterThan(1000);
    expect(out.slowestMs).toBeLessThan(1000);
  });
});
