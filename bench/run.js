#!/usr/bin/env node
// `npm run bench`: runs every benchmark in bench/ (files named *.bench.mjs), in
// order, each in its own process. Each prints a table of our figures beside
// its peers' (C, Node's child_process IPC and sockets, Python), with ratios
// and medians. `npm run bench -- semaphore` runs the ones whose name matches.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = dirname(fileURLToPath(import.meta.url));
const filter = process.argv[2];
const benches = readdirSync(dir)
  .filter((f) => f.endsWith('.bench.mjs'))
  .filter((f) => !filter || f.includes(filter))
  .sort();
let failed = 0;
for (const b of benches) {
  console.log(`\n### ${b}`);
  const r = spawnSync(process.execPath, ['--expose-gc', join(dir, b)], { stdio: 'inherit' });
  if (r.status !== 0) failed += 1;
}
process.exit(failed === 0 ? 0 : 1);
