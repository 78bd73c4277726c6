// Every native function with every wrong handle, in a child process: a wrong
// or foreign handle is a TypeError "Illegal invocation", never a crash.
import { describe, expect, it } from 'vitest';
import { runNode } from '../helpers/index.js';

describe('native handles', () => {
  it('every function refuses every other family\'s handle, a plain object, a number, null and undefined', async () => {
    const r = await runNode('core/handles.mjs');
    expect({ code: r.code, signal: r.signal, stderr: r.stderr }).toEqual({ code: 0, signal: null, stderr: '' });
    const { calls, failures } = JSON.parse(r.stdout) as { calls: number; failures: string[] };
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(150);
  });
});
