/** Shared test helpers: unique names, leak snapshots, child processes. */
import { spawn, type SpawnOptions } from 'node:child_process';
import { afterEach } from 'vitest';
import { Queue, type IPCError } from '../../lib/index.js';
import { readdirSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { NAME_PREFIX, noteQueueName } from './mqueue.js';

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = join(ROOT, 'test', 'fixtures');
export const PYTHON = process.env.PYTHON ?? 'python3';
export const IS_ROOT = process.getuid?.() === 0;

let counter = 0;
/** A name unique to this test process and call: "pipc-test-<pid>-<tag>-<n>". */
export function uniqueName(tag = 'x'): string {
  counter += 1;
  const name = `${NAME_PREFIX}${tag}-${counter}`;
  // Any of them may name a queue (made here or by a child): the leak check probes each.
  noteQueueName(name);
  return name;
}

/**
 * Registers undo steps that run after each test, newest first, whatever the
 * test did; a step that fails because its object is already gone is fine.
 * Returns the function that registers them.
 */
export function cleanupAfterEach(): (...undo: Array<() => void>) => void {
  const steps: Array<() => void> = [];
  afterEach(() => {
    for (const step of steps.splice(0).reverse()) {
      try {
        step();
      } catch {
        // already gone
      }
    }
  });
  return (...undo) => {
    steps.push(...undo);
  };
}

/**
 * Unique names for one test file, each removed after every test by trying
 * each of `removers` on it (a name the test already removed is fine).
 * `name(tag)` makes one; `track(name)` adds one the test derived itself.
 */
export function namesRemovedAfterEach(
  defaultTag: string,
  ...removers: Array<(name: string) => void>
): { name: (tag?: string) => string; track: (name: string) => void } {
  const later = cleanupAfterEach();
  const track = (n: string): void => {
    for (const remove of removers) later(() => remove(n));
  };
  return {
    name: (tag = defaultTag) => {
      const n = uniqueName(tag);
      track(n);
      return n;
    },
    track,
  };
}

/** True if a message queue of that name exists (open-only mq_open: /dev/mqueue is not mounted here). */
export function queueExists(name: string): boolean {
  try {
    new Queue(name, { create: false, owner: 'any' }).close();
    return true;
  } catch (err) {
    if ((err as IPCError).code === 'ENOENT') return false;
    throw err;
  }
}

export { NAME_PREFIX };

/** Entries of /dev/shm (semaphores appear as sem.NAME). */
export function shmEntries(): string[] {
  return readdirSync('/dev/shm').sort();
}

/** Entries of /dev/shm that this test process's names made. */
export function ourShmEntries(): string[] {
  return shmEntries().filter((e) => e.includes(NAME_PREFIX));
}

/** Number of open file descriptors of this process. */
export function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** Number of threads of this process. */
export function threadCount(pid: number | 'self' = 'self'): number {
  return readdirSync(`/proc/${pid}/task`).length;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion and collects its output. */
export function run(cmd: string, args: string[], options: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 50_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    else child.stdin!.end();
  });
}

/** Runs test/fixtures/<fixture> with node. */
export function runNode(fixture: string, args: string[] = [], options: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(process.execPath, [join(FIXTURES, fixture), ...args], options);
}

/** Runs test/fixtures/<fixture> with python3 (fails, never skips, when python3 is missing). */
export function runPython(fixture: string, args: string[] = [], options: SpawnOptions & { input?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return run(PYTHON, [join(FIXTURES, fixture), ...args], options);
}

/**
 * Runs a node fixture as an unprivileged user (uid/gid 65534) when we are
 * root, through setpriv; as ourselves otherwise (we already are unprivileged).
 */
export function runNodeUnprivileged(fixture: string, args: string[] = [], options: SpawnOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  if (!IS_ROOT) return runNode(fixture, args, options);
  if (!existsSync('/usr/bin/setpriv')) throw new Error('setpriv (util-linux) is required to run unprivileged tests as root');
  return run('/usr/bin/setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, join(FIXTURES, fixture), ...args], {
    cwd: '/',
    ...options,
  });
}

/** Fails with the child's output when it did not exit 0. */
export function expectOk(r: RunResult, what = 'child'): RunResult {
  if (r.code !== 0) {
    throw new Error(`${what} exited with ${r.code ?? r.signal}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
  }
  return r;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
