// Line-oriented child processes for the JoinableQueue and Web Locks
// cross-language tests: python3 (test/fixtures/python/jq_locks_peer.py) and
// node (test/fixtures/python/jq-node.mjs, test/fixtures/sync/*.mjs) peers
// that print one line per step.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES, PYTHON } from '../helpers/index.js';

export const PY_PEER = join(FIXTURES, 'python/jq_locks_peer.py');

export interface Child {
  proc: ChildProcess;
  pid: number;
  /** Every line printed so far. */
  lines: string[];
  /** Resolves with the first line starting with `prefix` not yet taken by line() (seen or to come). */
  line(prefix: string, timeout?: number): Promise<string>;
  /** Writes a line to its stdin (the peers end a held lock's block on it). */
  send(): void;
  kill(): Promise<void>;
  exited: Promise<number | null>;
}

/** Starts `python3 jq_locks_peer.py ...args` (lang 'python') or `node FILE ...args` (lang 'node', args[0] = fixture path). */
export function child(lang: 'python' | 'node', args: string[]): Child {
  const argv = lang === 'python' ? [PYTHON, PY_PEER, ...args] : [process.execPath, ...args];
  const proc = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const taken = new Set<number>();
  const waiters: Array<() => void> = [];
  let rest = '';
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop()!;
    lines.push(...parts);
    for (const w of waiters.splice(0)) w();
  });
  let closed = false;
  // A missing python3 is a failure (with CI=true or not), never a skip: line() rejects saying so.
  let spawnError: Error | undefined;
  const exited = new Promise<number | null>((r) => {
    proc.once('error', (err) => {
      spawnError = new Error(`cannot start ${argv[0]}: ${err.message}`);
      closed = true;
      for (const w of waiters.splice(0)) w();
      r(null);
    });
    proc.once('close', (code) => {
      closed = true;
      for (const w of waiters.splice(0)) w();
      r(code);
    });
  });
  return {
    proc,
    pid: proc.pid!,
    lines,
    exited,
    line: (prefix, timeout = 15_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no "${prefix}" line; got ${JSON.stringify(lines)}`)), timeout);
        const look = (): void => {
          const i = lines.findIndex((l, k) => !taken.has(k) && l.startsWith(prefix));
          if (i >= 0) {
            taken.add(i);
            clearTimeout(timer);
            resolve(lines[i]!);
          } else if (closed) {
            clearTimeout(timer);
            reject(spawnError ?? new Error(`exited without a "${prefix}" line; got ${JSON.stringify(lines)}`));
          } else waiters.push(look);
        };
        look();
      }),
    send: () => {
      if (!closed) proc.stdin!.write('\n');
    },
    kill: async () => {
      if (!closed) proc.kill('SIGKILL');
      await exited;
    },
  };
}
