// Recovery benchmark peer: takes a lock, says "held", and keeps it until killed.
// Usage: node sem-hold.mjs lock <name> | lockfile <file>
import { createRequire } from 'node:module';
import { Lock } from '../../dist/index.js';

const [kind, target] = process.argv.slice(2);
if (kind === 'lock') {
  const lock = new Lock(target, { create: false });
  await lock.acquire();
} else {
  const lockfile = createRequire(import.meta.url)('proper-lockfile');
  await lockfile.lock(target, { realpath: false });
}
process.stdout.write('held\n');
setInterval(() => {}, 1000);
