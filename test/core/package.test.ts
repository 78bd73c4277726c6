// The package as a user loads it: by name, from import and from require.
import { mkdtempSync, mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, ROOT, run } from '../helpers/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipc-pkg-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'posix-ipc'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const probe = `
const names = ['Semaphore', 'BoundedSemaphore', 'Lock', 'IPCError', 'AbortError', 'Queue', 'Empty', 'Full',
  'Pipe', 'Connection', 'Listener', 'Client', 'NamedPipe', 'AuthenticationError', 'SharedMemory', 'Value', 'SharedArray'];
const missing = names.filter((n) => typeof m[n] !== 'function');
const s = new m.Semaphore('pipc-pkg-' + process.pid, { initialValue: 2 });
const ok = s.tryAcquire() && s.value === 1;
s.close(); s.unlink();
console.log(JSON.stringify({ missing, ok }));
`;

describe('package entry points', () => {
  it('loads with import by package name', async () => {
    const r = expectOk(await run(process.execPath, ['--input-type=module', '-e', `import * as m from 'posix-ipc';${probe}`], { cwd: dir }));
    expect(JSON.parse(r.stdout)).toEqual({ missing: [], ok: true });
    expect(r.stderr).toBe('');
  });

  it('loads with require by package name, without warnings', async () => {
    const r = expectOk(await run(process.execPath, ['-e', `const m = require('posix-ipc');${probe}`], { cwd: dir }));
    expect(JSON.parse(r.stdout)).toEqual({ missing: [], ok: true });
    expect(r.stderr).toBe('');
  });
});
