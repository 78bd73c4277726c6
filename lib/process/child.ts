/**
 * The program a `Process` child runs: reads the start message from fd 3,
 * reopens the arguments, imports the module, runs its export, reports the
 * outcome on fd 3, closes what it reopened. A daemon child also watches fd 4,
 * whose other end only the parent holds: when it reaches EOF the parent is
 * gone (however it died), and the child kills itself.
 * @internal
 * @module
 */
import { deserialize, serialize } from 'node:v8';
import { Worker } from 'node:worker_threads';
import { Connection } from '../pipe/connection.js';
import { setCurrentProcess } from './process.js';
import { unpack } from './transfer.js';
import type { Closable, Packed } from './transfer.js';

interface StartMessage {
  module: string;
  export: string;
  name: string;
  daemon: boolean;
  args: Packed;
  fdBase: number;
}

// The watcher runs on its own thread, so a target that never yields to the
// event loop (a busy loop, a blocking acquireSync) still dies with its parent.
const WATCHER = `
const { Socket } = require('node:net');
const s = new Socket({ fd: 4, readable: true, writable: false });
const die = () => process.kill(process.pid, 'SIGKILL');
s.on('data', () => {});
s.on('end', die);
s.on('error', die);
`;

function describeError(err: unknown): { name: string; message: string; stack: string; code?: unknown } {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    const out = { name: err.name, message: err.message, stack: err.stack ?? `${err.name}: ${err.message}` };
    return code === undefined ? out : { ...out, code };
  }
  return { name: 'Error', message: `the target threw a non-Error value: ${String(err)}`, stack: `thrown: ${String(err)}` };
}

/** Starts the watcher thread; resolves once it runs. */
function watch(): Promise<void> {
  const watcher = new Worker(WATCHER, { eval: true });
  return new Promise<void>((resolve, reject) => {
    watcher.once('online', () => {
      watcher.unref();
      resolve();
    });
    watcher.once('error', reject);
  });
}

async function main(): Promise<void> {
  // A daemon's watcher boots while this thread reads the start message and
  // imports the module (the parent says --daemon on the command line).
  const watching = process.argv.includes('--daemon') ? watch() : null;
  const control = new Connection(3, { codec: 'raw' });
  const start = deserialize(await control.recvBytes()) as StartMessage;
  setCurrentProcess({ name: start.name, pid: process.pid, daemon: start.daemon });
  const opened: Closable[] = [];
  let failure: unknown;
  let failed = false;
  try {
    const args = unpack(start.args, start.fdBase, opened) as unknown[];
    const mod = (await import(start.module)) as Record<string, unknown>;
    const target = mod[start.export];
    if (typeof target !== 'function') {
      const names = Object.keys(mod).filter((k) => typeof mod[k] === 'function');
      throw Object.assign(
        new TypeError(
          `${start.module} has no export '${start.export}' that is a function` +
            (names.length > 0 ? ` (its functions: ${names.join(', ')})` : ' (it exports no function)'),
        ),
        { code: 'ERR_IPC_NO_SUCH_EXPORT' },
      );
    }
    // The target runs once the watcher does: from then on, the parent's death is this process's death.
    if (watching !== null) await watching;
    await target(...args);
  } catch (err) {
    failed = true;
    failure = err;
  } finally {
    for (const o of opened.reverse()) {
      try {
        o.close();
      } catch {
        // already closed by the target
      }
    }
  }
  const reply = failed ? { error: describeError(failure) } : { ok: true };
  try {
    await control.sendBytes(serialize(reply));
  } catch {
    // the parent is gone
  }
  control.close();
  if (failed) {
    // As Python prints the traceback of a failed target.
    process.stderr.write(`Process ${start.name}:\n${describeError(failure).stack}\n`);
    process.exitCode = 1;
  }
}

main().catch((err) => {
  process.stderr.write(`posix-ipc Process bootstrap failed: ${(err as Error)?.stack ?? err}\n`);
  process.exitCode = 1;
});
