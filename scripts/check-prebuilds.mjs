#!/usr/bin/env node
// Is there a prebuilt addon to ship? prebuilds/<platform>-<arch>/*.node, made
// by `npm run prebuildify`. Without one every user compiles at install time
// (node-gyp, a C++ compiler, python3).
//   node scripts/check-prebuilds.mjs          fail (exit 1) when there is none: prepublishOnly
//   node scripts/check-prebuilds.mjs --warn   only warn: prepack, which also runs when
//                                             someone installs the package from git, where
//                                             building from source is the expected path
import { readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dir = join(dirname(fileURLToPath(import.meta.url)), '..', 'prebuilds');
const found = [];
let platforms = [];
try {
  platforms = readdirSync(dir);
} catch {
  // no prebuilds/ at all
}
for (const platform of platforms) {
  try {
    for (const f of readdirSync(join(dir, platform))) {
      if (f.endsWith('.node') && statSync(join(dir, platform, f)).size > 0) found.push(`${platform}/${f}`);
    }
  } catch {
    // not a directory
  }
}
if (found.length > 0) {
  console.log(`prebuilds: ${found.join(', ')}`);
  process.exit(0);
}
const message =
  'prebuilds/ holds no addon: this package would make every user compile it. Run `npm run prebuildify` first (CONTRIBUTING.md, "Releasing").';
if (process.argv.includes('--warn')) {
  console.warn(`warning: ${message}`);
  process.exit(0);
}
console.error(`error: ${message}`);
process.exit(1);
