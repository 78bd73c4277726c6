#!/usr/bin/env node
// `npm run demo`: runs every scene in examples/scenes/ in order. Each scene
// starts real, separate processes (node and python3) that coordinate through
// named OS objects, prints what they did, checks the outcome, and removes the
// names it made. Run one scene with `npm run demo -- <scene-name-part>`.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), 'scenes');
const filter = process.argv[2];
const all = readdirSync(dir)
  .filter((f) => /^\d+-.*\.mjs$/.test(f))
  .sort();
const scenes = all.filter((f) => !filter || f.includes(filter));
if (scenes.length === 0) {
  const names = all.map((f) => f.replace(/^\d+-/, '').replace(/\.mjs$/, ''));
  console.error(`No scene matches '${filter}'. Scenes: ${names.join(', ')} (npm run demo -- <scene>).`);
  process.exit(2);
}

let failed = 0;
for (const scene of scenes) {
  console.log(`\n=== ${scene.replace(/\.mjs$/, '')} ${'='.repeat(Math.max(0, 60 - scene.length))}`);
  const r = spawnSync(process.execPath, [join(dir, scene)], { stdio: 'inherit' });
  if (r.status !== 0) {
    failed += 1;
    console.log(`scene ${scene} FAILED (${r.status ?? r.signal})`);
  }
}
console.log(`\n${scenes.length - failed} of ${scenes.length} scenes ran as expected.`);
process.exit(failed === 0 ? 0 : 1);
