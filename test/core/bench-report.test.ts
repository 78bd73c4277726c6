// bench/lib/report.mjs: a table's footer says what its ratio column is, in the
// column's own words, and which side of 1 is faster; no footer without one.
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOk, ROOT, run } from '../helpers/index.js';

async function printTable(options: object): Promise<string[]> {
  const code = `
    import { table } from ${JSON.stringify(join(ROOT, 'bench', 'lib', 'report.mjs'))};
    table('t', [{ name: 'ours', value: 2, unit: 'us' }, { name: 'peer', value: 4, unit: 'us' }, { name: 'absent', unit: 'us' }], ${JSON.stringify(options)});
  `;
  const r = expectOk(await run(process.execPath, ['--input-type=module', '-e', code]));
  return r.stdout.trim().split('\n');
}

describe('bench tables', () => {
  it('times: the footer names the "vs" column of the header and says below 1 is faster', async () => {
    const lines = await printTable({ ref: 'peer' });
    expect(lines[1]).toContain('vs peer');
    expect(lines.find((l) => l.startsWith('ours'))).toContain('0.50x');
    expect(lines.find((l) => l.startsWith('absent'))).toMatch(/-\s*$/);
    expect(lines.at(-1)).toBe("(vs peer: this row's time / its time; below 1 is faster)");
  });

  it('rates: the footer says above 1 is faster', async () => {
    const lines = await printTable({ ref: 'peer', lowerIsBetter: false });
    expect(lines.at(-1)).toBe("(vs peer: this row's rate / its rate; above 1 is faster)");
  });

  it('without a reference row: no ratio column and no footer', async () => {
    const lines = await printTable({});
    expect(lines[1]).not.toContain('vs');
    expect(lines.at(-1)).toMatch(/^absent/);
  });

  it('a reference that names no row is an error, not an empty column', async () => {
    const code = `import { table } from ${JSON.stringify(join(ROOT, 'bench', 'lib', 'report.mjs'))}; table('t', [{ name: 'a', value: 1, unit: 'x' }], { ref: 'b' });`;
    const r = await run(process.execPath, ['--input-type=module', '-e', code]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('no row named "b"');
  });
});
