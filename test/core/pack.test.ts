// What `npm pack` ships: the license, the changelog, and TypeScript sources
// that every source map in dist/ points at; README's relative links resolve.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { expectOk, ROOT, run } from '../helpers/index.js';

let files: Set<string>;
beforeAll(async () => {
  // A cache of its own: under `npm run` as another user, the inherited cache is root's.
  const cache = mkdtempSync(join(tmpdir(), 'pipc-npm-cache-'));
  try {
    const r = expectOk(await run('npm', ['pack', '--dry-run', '--json', '--ignore-scripts', '--cache', cache], { cwd: ROOT }), 'npm pack --dry-run');
    files = new Set((JSON.parse(r.stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path));
  } finally {
    rmSync(cache, { recursive: true, force: true });
  }
}, 60_000);

describe('the package', () => {
  it('ships LICENSE, CHANGELOG.md, README.md, docs and the addon sources', () => {
    for (const f of ['LICENSE', 'CHANGELOG.md', 'README.md', 'docs/api.md', 'binding.gyp', 'dist/index.js', 'dist/index.d.ts']) {
      expect(files.has(f), f).toBe(true);
    }
    expect([...files].some((f) => f.startsWith('native/') && f.endsWith('.cc'))).toBe(true);
  });

  it('every source map in dist/ points at a source that is in the package', () => {
    const maps = [...files].filter((f) => f.startsWith('dist/') && f.endsWith('.js.map'));
    expect(maps.length).toBeGreaterThan(0);
    const missing: string[] = [];
    for (const map of maps) {
      const { sources, sourcesContent } = JSON.parse(readFileSync(join(ROOT, map), 'utf8')) as { sources: string[]; sourcesContent?: string[] };
      sources.forEach((src, i) => {
        const target = normalize(join(dirname(map), src));
        if (!files.has(target) && sourcesContent?.[i] == null) missing.push(`${map} -> ${target}`);
      });
    }
    expect(missing).toEqual([]);
  });

  it("README.md's relative links name files that exist", () => {
    const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
    const links = [...readme.matchAll(/\]\(([^)\s]+)\)/g)].map((m) => m[1]!).filter((l) => !/^[a-z]+:|^#/.test(l));
    expect(links.length).toBeGreaterThan(0);
    const broken = links.filter((l) => !existsSync(join(ROOT, l.split('#')[0]!)));
    expect(broken).toEqual([]);
  });

  it('has repository, homepage and bugs, so npm resolves those links on its site', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.repository.url).toMatch(/^git\+https:\/\/github\.com\/posix-ipc\/posix-ipc\.git$/);
    expect(pkg.homepage).toMatch(/^https:\/\/github\.com\/posix-ipc\/posix-ipc/);
    expect(pkg.bugs.url).toBe('https://github.com/posix-ipc/posix-ipc/issues');
  });
});
