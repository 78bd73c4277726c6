/** The live child processes of this process, from /proc (zombies excluded). */
import { readdirSync, readFileSync } from 'node:fs';
import { afterEach, expect } from 'vitest';
import { sleep } from '../helpers/index.js';

function stat(pid: number | string): { ppid: number; state: string } | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: rest[0]!, ppid: Number(rest[1]) };
  } catch {
    return null;
  }
}

/** Pids whose parent is `parent` (default: this process) and that have not exited. */
export function childPids(parent = process.pid): number[] {
  return readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      const s = stat(d);
      return s !== null && s.ppid === parent && s.state !== 'Z';
    })
    .map(Number);
}

/** True while `pid` exists and is not a zombie. */
export function isRunning(pid: number): boolean {
  const s = stat(pid);
  return s !== null && s.state !== 'Z';
}

/** Waits up to `ms` for `pids` to be gone; returns those still running. */
export async function waitGone(pids: number[], ms: number): Promise<number[]> {
  const until = Date.now() + ms;
  let left = pids.filter(isRunning);
  while (left.length > 0 && Date.now() < until) {
    await sleep(10);
    left = left.filter(isRunning);
  }
  return left;
}

/** After each test: no child process is left (stragglers are killed, and the test fails). */
export function noChildrenAfterEach(): void {
  afterEach(async () => {
    const left = await waitGone(childPids(), 2000);
    for (const pid of left) process.kill(pid, 'SIGKILL');
    expect(left, 'child processes left running after the test').toEqual([]);
  });
}
