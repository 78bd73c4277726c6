// posix-ipc/redis as a user loads it: the subpath export, from import and
// require; and the core package never loads the redis client.
import { mkdtempSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectOk, ROOT, run } from '../helpers/index.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pipc-pkg-redis-'));
  mkdirSync(join(dir, 'node_modules'));
  symlinkSync(ROOT, join(dir, 'node_modules', 'posix-ipc'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const probe = `
const names = ['connect', 'Lock', 'Semaphore', 'BoundedSemaphore', 'Queue', 'Event', 'Empty', 'Full', 'IPCError'];
console.log(JSON.stringify(names.filter((n) => typeof m[n] !== 'function')));
`;

describe('posix-ipc/redis entry point', () => {
  it('loads with import and with require', async () => {
    const a = expectOk(await run(process.execPath, ['--input-type=module', '-e', `import * as m from 'posix-ipc/redis';${probe}`], { cwd: dir }));
    expect(JSON.parse(a.stdout)).toEqual([]);
    const b = expectOk(await run(process.execPath, ['-e', `const m = require('posix-ipc/redis');${probe}`], { cwd: dir }));
    expect(JSON.parse(b.stdout)).toEqual([]);
  });

  it('Empty and Full are the core classes (instanceof works for both backends)', async () => {
    const r = expectOk(
      await run(
        process.execPath,
        ['--input-type=module', '-e', `import * as c from 'posix-ipc'; import * as r from 'posix-ipc/redis'; console.log(c.Empty === r.Empty && c.Full === r.Full)`],
        { cwd: dir },
      ),
    );
    expect(r.stdout.trim()).toBe('true');
  });

  it('nothing outside dist/redis imports the redis client', () => {
    const offenders: string[] = [];
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) {
          if (e.name !== 'redis') walk(p);
        } else if (e.name.endsWith('.js') && /from ['"](redis|ioredis)['"]|import\(['"](redis|ioredis)['"]/.test(readFileSync(p, 'utf8'))) {
          offenders.push(p);
        }
      }
    };
    walk(join(ROOT, 'dist'));
    expect(offenders).toEqual([]);
  });
});
