// docs/api.md documents every public export of lib/index.ts, and names no
// class, function or constant that is not exported any more.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as api from '../../lib/index.js';
import { ROOT } from '../helpers/index.js';

interface Exports {
  values: string[];
  types: string[];
}

/** The names lib/index.ts exports, from its `export { ... } from` and `export type { ... } from` lists. */
function parseIndex(source: string): Exports {
  const code = source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/\/\/.*$/gm, '');
  const values: string[] = [];
  const types: string[] = [];
  for (const m of code.matchAll(/export\s+(type\s+)?\{([^}]*)\}/g)) {
    for (const part of m[2]!.split(',')) {
      const spec = part.trim();
      if (spec === '') continue;
      const typeOnly = m[1] !== undefined || spec.startsWith('type ');
      const exported = spec.replace(/^type\s+/, '').split(/\s+as\s+/).pop()!.trim();
      (typeOnly ? types : values).push(exported);
    }
  }
  return { values, types };
}

/** docs/api.md without its fenced code blocks: an export shown only in an example is not documented. */
function prose(markdown: string): string {
  return markdown.replace(/^```[\s\S]*?^```/gm, '');
}

/** Every identifier inside an inline code span or a heading. */
function mentioned(markdown: string): Set<string> {
  const text = prose(markdown);
  const spans = [...text.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);
  const headings = text.split('\n').filter((l) => l.startsWith('#'));
  return new Set([...spans, ...headings].flatMap((s) => s.match(/[A-Za-z_$][\w$]*/g) ?? []));
}

/**
 * The exported-looking names the reference's headings are about: in each code
 * span of a heading, the leading identifier after `new ` or `class ` when it is
 * capitalised (`new Semaphore(...)`, `class Empty extends Error`,
 * `Pipe(options?)`, `NamedPipe.open(...)`, `PAGE_SIZE`). Lower-case receivers
 * (`q.put`) are instances; `POSIX_IPC_*` are environment variables.
 */
function headingSubjects(markdown: string): string[] {
  const subjects = new Set<string>();
  for (const line of prose(markdown).split('\n')) {
    if (!line.startsWith('#')) continue;
    for (const m of line.matchAll(/`([^`\n]+)`/g)) {
      const head = /^(?:new\s+|class\s+)?([A-Z][\w$]*)/.exec(m[1]!.trim());
      if (head && !head[1]!.startsWith('POSIX_IPC_')) subjects.add(head[1]!);
    }
  }
  return [...subjects].sort();
}

const index = parseIndex(readFileSync(join(ROOT, 'lib', 'index.ts'), 'utf8'));
const apiMd = readFileSync(join(ROOT, 'docs', 'api.md'), 'utf8');

describe('docs/api.md', () => {
  it('the parser of lib/index.ts finds every runtime export (so no export escapes the check)', () => {
    expect(index.values.length).toBeGreaterThan(0);
    expect(Object.keys(api).sort()).toEqual([...index.values].sort());
  });

  it('mentions every exported value and type in its prose (a heading or a `code` span)', () => {
    const words = mentioned(apiMd);
    const undocumented = [...index.values, ...index.types].filter((n) => !words.has(n));
    expect(undocumented, 'exports of lib/index.ts that docs/api.md never names').toEqual([]);
  });

  it('has no heading about a class, function or constant that lib/index.ts does not export', () => {
    const exported = new Set([...index.values, ...index.types]);
    const stale = headingSubjects(apiMd).filter((n) => !exported.has(n));
    expect(stale, 'headings of docs/api.md about names that are not exported').toEqual([]);
  });

  it('the checks see what they are meant to see', () => {
    const parsed = parseIndex(`
      // export { Commented } from './x.js';
      export { A, B as C } from './a.js';
      export type { T1,
        T2 } from './t.js';
      export { type T3, D } from './d.js';
    `);
    expect(parsed).toEqual({ values: ['A', 'C', 'D'], types: ['T1', 'T2', 'T3'] });
    const md = '# `new Gone(x)`\n\nSee `Kept` and `q.put()`.\n\n```ts\nconst onlyInCode = 1;\n```\n### Tuning: `POSIX_IPC_X`\n';
    expect(mentioned(md).has('Kept')).toBe(true);
    expect(mentioned(md).has('onlyInCode')).toBe(false);
    expect(headingSubjects(md)).toEqual(['Gone']);
  });
});
