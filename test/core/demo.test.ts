// npm run demo -- <scene>: a name that matches no scene lists the scenes and fails.
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROOT, run } from '../helpers/index.js';

it('npm run demo -- nope lists the scene names and exits non-zero, running nothing', async () => {
  const r = await run(process.execPath, [join(ROOT, 'examples', 'demo.js'), 'nope']);
  expect(r.code).toBe(2);
  const scenes = readdirSync(join(ROOT, 'examples', 'scenes')).filter((f) => /^\d+-.*\.mjs$/.test(f));
  expect(scenes.length).toBeGreaterThan(0);
  for (const f of scenes) expect(r.stderr).toContain(f.replace(/^\d+-/, '').replace(/\.mjs$/, ''));
  expect(r.stdout).not.toContain('===');
});
