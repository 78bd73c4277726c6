/** Child processes of the Event/Barrier/Condition/RLock/JoinableQueue tests (test/fixtures/sync/sync11.mjs). */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { FIXTURES } from '../helpers/index.js';

export const FIXTURE = join(FIXTURES, 'sync/sync11.mjs');

/** A running child whose stdout is read line by line. */
export interface Child {
  proc: ChildProcess;
  /** The next line (waits for it); rejects if the child exits first. */
  line(): Promise<string>;
  /** Every line so far and to come, once the child has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>;
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** The lines printed so far (without consuming them). */
  seen(): string[];
}

export function child(mode: string, ...args: Array<string | number>): Child {
  return lineChild(process.execPath, [FIXTURE, mode, ...args.map(String)], mode);
}

/** Runs `cmd argv` (any program: node, python3) as a line-reading Child; `mode` names it in errors. */
export function lineChild(cmd: string, argv: string[], mode: string): Child {
  const proc = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const pending: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  let read = 0;
  let buf = '';
  let stderr = '';
  let done = false;
  proc.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    while (pending.length > 0 && read < lines.length) pending.shift()!.resolve(lines[read++]!);
  });
  proc.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>((resolve) => {
    // A program that cannot start (python3 missing) fails the test, never skips it.
    proc.on('error', (err) => (stderr += `${cmd}: ${err.message}`));
    proc.on('close', (code, signal) => {
      done = true;
      while (pending.length > 0) pending.shift()!.reject(new Error(`child ${mode} exited (${code ?? signal}) before a line: ${stderr}`));
      resolve({ code, signal, lines, stderr });
    });
  });
  return {
    proc,
    exited,
    seen: () => [...lines],
    line: () =>
      new Promise<string>((resolve, reject) => {
        if (read < lines.length) resolve(lines[read++]!);
        else if (done) reject(new Error(`child ${mode} exited before a line: ${stderr}`));
        else pending.push({ resolve, reject });
      }),
    kill: async (signal = 'SIGKILL') => {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      await exited;
    },
  };
}
