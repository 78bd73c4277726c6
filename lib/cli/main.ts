#!/usr/bin/env node
/**
 * The `posix-ipc` command: see and clean up named objects.
 *
 *   posix-ipc ls [PREFIX] [--json] [--kind K]
 *   posix-ipc info NAME [--json]
 *   posix-ipc rm NAME... | --prefix P | --stale   [--dry-run] [--force]
 *   posix-ipc watch [NAME...] [--interval MS]
 *   posix-ipc doctor [--json]
 *   posix-ipc python-path
 *
 * Exit codes: 0 ok, 1 failure, 2 usage. Errors go to stderr; colour only on
 * a terminal and never with NO_COLOR.
 * @internal
 * @module
 */
import { unlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { IPCError } from '../core/errors.js';
import { Queue } from '../queue/queue.js';
import { SharedMemory } from '../shm/shared-memory.js';
import { Semaphore } from '../sync/semaphore.js';
import { doctor, type Check } from './doctor.js';
import { alive, inventory, type Entry, type Inventory, type Kind } from './inventory.js';

const KINDS: readonly Kind[] = ['semaphore', 'lock', 'segment', 'side-segment', 'queue', 'fifo', 'socket', 'symlink', 'directory', 'other'];

const HELP: Record<string, string> = {
  main: `posix-ipc: see and clean up the named objects of posix-ipc (and of any POSIX IPC user)

Usage: posix-ipc <command> [options]

Commands:
  ls [PREFIX]        every named object this user can see, with owner, mode, size and live state
  info NAME          everything about the objects at one name
  rm NAME...         remove objects by name (--prefix P, --stale; --dry-run first)
  watch [NAME...]    a live view (refreshes in place on a terminal)
  doctor             the limits that will bite, with the commands that raise them
  python-path        the folder to put on PYTHONPATH for the Python module

Run 'posix-ipc <command> --help' for a command's options.
Exit codes: 0 ok, 1 failure, 2 usage.`,
  ls: `Usage: posix-ipc ls [PREFIX] [--json] [--kind KIND]

Lists every named object this user can see in /dev/shm and, where they can be
listed, the POSIX message queues: kind, name, owner, mode, size and live state
(a semaphore's value, a queue's depth, a side segment's queue and writer).

  PREFIX         only names that start with PREFIX
  --kind KIND    only one kind: ${KINDS.join(', ')}
  --json         one JSON document: { entries: [...], queues: { source, hint } }`,
  info: `Usage: posix-ipc info NAME [--json]

Everything about the objects at NAME: the semaphore sem.NAME, the segment
NAME, the queue NAME and its side segments.`,
  rm: `Usage: posix-ipc rm NAME... [--dry-run] [--force]
       posix-ipc rm --prefix PREFIX [--dry-run] [--force]
       posix-ipc rm --stale [--dry-run]

Removes the named objects: every kind at each NAME (semaphore, segment, queue
and the queue's side segments). Objects owned by another user, and entries
that are not IPC objects (FIFOs, sockets, links), are left alone unless
--force is given.

  --prefix P   every object whose name starts with P
  --stale      objects whose every user is gone: side segments of queues that
               no longer exist
  --dry-run    print what would be removed, remove nothing
  --force      also remove other users' objects and unknown entries`,
  watch: `Usage: posix-ipc watch [NAME...] [--interval MS]

A live view of the objects (all, or those at NAME...): values, depths and
their rate of change. On a terminal it redraws in place; otherwise it prints
one line per object per refresh. Ctrl-C ends it.

  --interval MS   refresh period in milliseconds (default 1000)`,
  doctor: `Usage: posix-ipc doctor [--json]

Reports the limits that bite: fs.mqueue.msg_max / msgsize_max / queues_max,
RLIMIT_MSGQUEUE, RLIMIT_NOFILE, /dev/shm size and free space, whether
/dev/mqueue is mounted, and the kernel features the library uses, each with
its current value and the command that raises it.`,
  'python-path': `Usage: posix-ipc python-path

Prints the folder that holds the Python module, for
  PYTHONPATH=$(npx posix-ipc python-path) python3 -c 'import ...'`,
};

class UsageError extends Error {}

const useColour = (): boolean => process.stdout.isTTY === true && !('NO_COLOR' in process.env);
const paint = (code: string, s: string): string => (useColour() ? `\x1b[${code}m${s}\x1b[0m` : s);

function stateText(e: Entry): string {
  if (e.error !== undefined) return paint('31', `! ${e.error}`);
  switch (e.kind) {
    case 'semaphore':
      return `value=${String(e.state.value)}`;
    case 'lock': {
      const held = e.state.exclusive ? 'exclusive' : `shared=${String(e.state.shared)}`;
      return `${held} pending=${String(e.state.pending)} holders=${(e.state.holders as number[]).join(',') || '-'}`;
    }
    case 'queue':
      return `depth=${String(e.state.depth)}/${String(e.state.maxsize)} msgsize=${String(e.state.maxMessageSize)}`;
    case 'side-segment':
      return `queue=${e.queue} writer=${e.pid}${e.pid !== undefined && !alive(e.pid) ? ' (exited)' : ''}`;
    default:
      return '';
  }
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()).join('\n');
}

function printEntries(entries: Entry[]): void {
  if (entries.length === 0) return;
  const rows = [['KIND', 'NAME', 'OWNER', 'MODE', 'SIZE', 'STATE'], ...entries.map((e) => [e.kind, e.name, e.user, e.mode, String(e.size), stateText(e)])];
  const text = table(rows).split('\n');
  console.log(paint('1', text[0]!));
  for (const line of text.slice(1)) console.log(line);
}

function select(inv: Inventory, prefix: string | undefined, kind: string | undefined): Entry[] {
  if (kind !== undefined && !KINDS.includes(kind as Kind)) throw new UsageError(`unknown kind '${kind}': one of ${KINDS.join(', ')}`);
  return inv.entries.filter((e) => (prefix === undefined || e.name.startsWith(prefix.replace(/^\//, ''))) && (kind === undefined || e.kind === kind));
}

/** The entries that make up the object(s) at `name`: its semaphore, segment, queue and side segments. */
function atName(inv: Inventory, name: string): Entry[] {
  const bare = name.replace(/^\//, '');
  const found = inv.entries.filter((e) => (e.name === bare && e.kind !== 'side-segment') || (e.kind === 'side-segment' && e.queue === bare));
  // Queues that could not be listed may still be found by opening the name.
  if (inv.queues.source === 'none' && !found.some((e) => e.kind === 'queue')) {
    const q = queueAt(bare);
    if (q !== null) found.push(q);
  }
  return found;
}

function hintQueues(inv: Inventory): void {
  if (inv.queues.hint !== undefined) console.error(paint('33', `note: ${inv.queues.hint}`));
}

function cmdLs(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, kind: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return help('ls');
  if (positionals.length > 1) throw new UsageError('ls takes at most one PREFIX');
  const inv = inventory();
  const entries = select(inv, positionals[0], values.kind);
  if (values.json) {
    console.log(JSON.stringify({ entries, queues: inv.queues }, null, 2));
    return 0;
  }
  printEntries(entries);
  if (entries.length === 0) console.log('no objects');
  hintQueues(inv);
  return 0;
}

function cmdInfo(args: string[]): number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return help('info');
  if (positionals.length !== 1) throw new UsageError('info takes exactly one NAME');
  const inv = inventory();
  const entries = atName(inv, positionals[0]!);
  if (values.json) {
    console.log(JSON.stringify({ name: positionals[0]!.replace(/^\//, ''), entries, queues: inv.queues }, null, 2));
  } else {
    for (const e of entries) {
      console.log(paint('1', `${e.kind} ${e.name}`));
      const fields: Array<[string, unknown]> = [
        ['path', e.path],
        ['owner', `${e.user} (uid ${e.uid})`],
        ['mode', e.mode],
        ['size', e.size],
        ['modified', e.modified],
        ...Object.entries(e.state),
        ...(e.queue !== undefined ? ([['queue', e.queue], ['writer pid', `${e.pid} (${alive(e.pid!) ? 'running' : 'exited'})`]] as Array<[string, unknown]>) : []),
        ...(e.error !== undefined ? ([['error', e.error]] as Array<[string, unknown]>) : []),
      ];
      for (const [k, v] of fields) if (v !== null && v !== undefined) console.log(`  ${k.padEnd(14)} ${String(v)}`);
    }
    hintQueues(inv);
  }
  if (entries.length === 0) {
    console.error(`posix-ipc: nothing at '${positionals[0]}'`);
    return 1;
  }
  return 0;
}

/** Removes one entry; throws IPCError / fs errors. */
function remove(e: Entry): void {
  switch (e.kind) {
    case 'semaphore':
      Semaphore.unlink(e.name);
      return;
    case 'queue':
      Queue.unlink(e.name);
      return;
    case 'segment':
      SharedMemory.unlink(e.name);
      return;
    default:
      unlinkSync(e.path!);
  }
}

/** Why `e` must not be removed without --force, or null. */
function refusal(e: Entry, stale: boolean): string | null {
  const uid = process.getuid?.() ?? -1;
  if (e.kind === 'side-segment' && stale) return null; // identifiably ours, and its queue is gone
  if (!['semaphore', 'lock', 'segment', 'side-segment', 'queue', 'event', 'barrier', 'condition', 'rlock', 'joinable'].includes(e.kind)) return `${e.kind} ${e.name} is not an IPC object`;
  if (e.uid !== uid && e.uid !== -1) return `${e.kind} ${e.name} belongs to ${e.user} (uid ${e.uid})`;
  return null;
}

function cmdRm(args: string[]): number {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { prefix: { type: 'string' }, stale: { type: 'boolean' }, 'dry-run': { type: 'boolean' }, force: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } },
  });
  if (values.help) return help('rm');
  const modes = [positionals.length > 0, values.prefix !== undefined, values.stale === true].filter(Boolean).length;
  if (modes !== 1) throw new UsageError('rm takes NAME..., --prefix P or --stale (one of them)');
  if (values.prefix === '') throw new UsageError('--prefix must not be empty');
  const inv = inventory();
  let targets: Entry[];
  const missing: string[] = [];
  if (values.stale) {
    // A side segment in flight belongs to a live queue even after its writer
    // exited: only the queue's absence makes it stale.
    targets = inv.entries.filter((e) => e.kind === 'side-segment' && e.queue !== undefined && !queueExists(e.queue));
  } else if (values.prefix !== undefined) {
    targets = select(inv, values.prefix, undefined);
  } else {
    targets = [];
    for (const name of positionals) {
      const at = atName(inv, name);
      if (at.length === 0) missing.push(name);
      targets.push(...at);
    }
  }
  let failed = missing.length;
  for (const m of missing) console.error(`posix-ipc: nothing at '${m}'`);
  for (const e of targets) {
    const why = values.force ? null : refusal(e, values.stale === true);
    if (why !== null) {
      console.error(`posix-ipc: not removing ${why} (--force to remove anyway)`);
      failed += 1;
      continue;
    }
    if (values['dry-run']) {
      console.log(`would remove ${e.kind} ${e.name}`);
      continue;
    }
    try {
      remove(e);
      console.log(`removed ${e.kind} ${e.name}`);
    } catch (err) {
      if (err instanceof IPCError && err.code === 'ENOENT') continue; // gone meanwhile
      console.error(`posix-ipc: ${e.kind} ${e.name}: ${(err as Error).message}`);
      failed += 1;
    }
  }
  if (targets.length === 0 && missing.length === 0) console.log('nothing to remove');
  return failed === 0 ? 0 : 1;
}

/** A queue at `name` found by opening it (when queues cannot be listed). */
function queueAt(name: string): Entry | null {
  try {
    const q = new Queue(name, { create: false, owner: 'any' });
    const a = q.attributes();
    q.close();
    return { kind: 'queue', name: name.replace(/^\//, ''), path: null, uid: -1, user: '?', mode: '?', size: 0, modified: null, state: { depth: a.size, maxsize: a.maxsize, maxMessageSize: a.maxMessageSize } };
  } catch {
    return null;
  }
}

function queueExists(name: string): boolean {
  try {
    new Queue(name, { create: false, owner: 'any' }).close();
    return true;
  } catch (err) {
    return !(err instanceof IPCError && err.code === 'ENOENT');
  }
}

function cmdWatch(args: string[]): Promise<number> | number {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { interval: { type: 'string' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return help('watch');
  const interval = values.interval === undefined ? 1000 : Number(values.interval);
  if (!Number.isInteger(interval) || interval < 50 || interval > 3_600_000) throw new UsageError('--interval must be a whole number of milliseconds from 50 to 3600000');
  const tty = process.stdout.isTTY === true;
  let previous = new Map<string, { at: number; level: number }>();
  const level = (e: Entry): number | null => (typeof e.state.value === 'number' ? e.state.value : typeof e.state.depth === 'number' ? e.state.depth : null);
  const tick = (): void => {
    const inv = inventory();
    const entries = positionals.length === 0 ? inv.entries : positionals.flatMap((n) => atName(inv, n));
    const now = Date.now();
    const next = new Map<string, { at: number; level: number }>();
    const rows = [['KIND', 'NAME', 'OWNER', 'SIZE', 'STATE', 'RATE/s']];
    for (const e of entries) {
      const key = `${e.kind}:${e.name}`;
      const l = level(e);
      let rate = '';
      if (l !== null) {
        const p = previous.get(key);
        if (p !== undefined && now > p.at) rate = (((l - p.level) * 1000) / (now - p.at)).toFixed(1);
        next.set(key, { at: now, level: l });
      }
      rows.push([e.kind, e.name, e.user, String(e.size), stateText(e), rate]);
    }
    previous = next;
    const stamp = new Date(now).toISOString();
    if (tty) {
      process.stdout.write('\x1b[H\x1b[2J');
      console.log(paint('1', `posix-ipc watch  ${stamp}  every ${interval} ms  (Ctrl-C to stop)`));
      console.log(table(rows));
      if (entries.length === 0) console.log('no objects');
    } else {
      for (const r of rows.slice(1)) console.log([stamp, ...r].join('\t'));
      if (entries.length === 0) console.log(`${stamp}\tno objects`);
    }
  };
  return new Promise<number>((resolve) => {
    tick();
    const timer = setInterval(tick, interval);
    const stop = (): void => {
      clearInterval(timer);
      if (tty) process.stdout.write('\n');
      resolve(0);
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

function cmdDoctor(args: string[]): number {
  const { values } = parseArgs({ args, options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } } });
  if (values.help) return help('doctor');
  const checks = doctor();
  if (values.json) {
    console.log(JSON.stringify(checks, null, 2));
    return 0;
  }
  const mark = (c: Check): string => (c.status === 'warn' ? paint('33', 'warn') : c.status === 'ok' ? paint('32', 'ok  ') : 'info');
  for (const c of checks) {
    console.log(`${mark(c)}  ${c.name} = ${String(c.value)}`);
    console.log(`      ${c.note}`);
    if (c.fix !== undefined && c.status !== 'ok') console.log(`      fix: ${c.fix}`);
  }
  return 0;
}

/** The package's python/ folder (dist/cli/main.js -> ../../python). */
export function pythonPath(): string {
  return join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'python');
}

function cmdPythonPath(args: string[]): number {
  const { values } = parseArgs({ args, options: { help: { type: 'boolean', short: 'h' } } });
  if (values.help) return help('python-path');
  console.log(pythonPath());
  return 0;
}

function help(topic: string): number {
  console.log(HELP[topic]);
  return 0;
}

const COMMANDS: Record<string, (args: string[]) => number | Promise<number>> = {
  ls: cmdLs,
  list: cmdLs,
  info: cmdInfo,
  rm: cmdRm,
  watch: cmdWatch,
  doctor: cmdDoctor,
  'python-path': cmdPythonPath,
};

/** Runs the command line `argv` (without node and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '--help' || command === '-h' || command === 'help') {
    if (command === 'help' && rest[0] !== undefined && HELP[rest[0]] !== undefined) return help(rest[0]);
    console.log(HELP.main);
    return command === undefined ? 2 : 0;
  }
  const run = COMMANDS[command];
  if (run === undefined) {
    console.error(`posix-ipc: unknown command '${command}'\n\n${HELP.main}`);
    return 2;
  }
  try {
    return await run(rest);
  } catch (err) {
    const e = err as Error & { code?: string };
    if (err instanceof UsageError || (typeof e.code === 'string' && e.code.startsWith('ERR_PARSE_ARGS'))) {
      console.error(`posix-ipc ${command}: ${e.message}\n\n${HELP[command === 'list' ? 'ls' : command]}`);
      return 2;
    }
    console.error(`posix-ipc ${command}: ${e.message}`);
    return 1;
  }
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === (await import('node:fs')).realpathSync(process.argv[1])) {
  process.exitCode = await main(process.argv.slice(2));
}
