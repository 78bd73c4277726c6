/**
 * `posix-ipc doctor`: the limits that bite users of named IPC objects, each
 * with its current value, whether it is likely to hurt, and the command that
 * raises it.
 * @internal
 * @module
 */
import { readFileSync, statfsSync } from 'node:fs';
import { release } from 'node:os';
import { binding } from '../core/binding.js';
import { MQUEUE_DIR, SHM_DIR } from '../core/names.js';
import { mqueueDir } from './inventory.js';

export interface Check {
  /** What is checked (a sysctl, a limit, a feature). */
  name: string;
  /** Its current value, as the OS reports it. */
  value: string | number | boolean | null;
  /** 'ok', 'warn' (likely to bite) or 'info'. */
  status: 'ok' | 'warn' | 'info';
  /** What it means for this library. */
  note: string;
  /** The command that changes it, if any. */
  fix?: string;
}

function readNumber(path: string): number | null {
  try {
    const n = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(n) ? n : null;
  } catch {
    return null;
  }
}

/** [soft, hard] of a limit named as in /proc/self/limits ("Max msgqueue size"). */
function limit(label: string): [number | 'unlimited', number | 'unlimited'] | null {
  try {
    for (const line of readFileSync('/proc/self/limits', 'utf8').split('\n')) {
      if (!line.startsWith(label)) continue;
      const f = line.slice(label.length).trim().split(/\s+/);
      const v = (s: string | undefined): number | 'unlimited' => (s === 'unlimited' ? 'unlimited' : Number(s));
      return [v(f[0]), v(f[1])];
    }
  } catch {
    // no /proc
  }
  return null;
}

/** The kernel's version as [major, minor]. */
function kernel(): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(release());
  return m === null ? [0, 0] : [Number(m[1]), Number(m[2])];
}

const atLeast = (k: [number, number], major: number, minor: number): boolean => k[0] > major || (k[0] === major && k[1] >= minor);

const MiB = 1024 * 1024;

export function doctor(): Check[] {
  const checks: Check[] = [];
  const root = process.getuid?.() === 0;
  const mq = (f: string): number | null => readNumber(`/proc/sys/fs/mqueue/${f}`);

  const msgMax = mq('msg_max');
  checks.push({
    name: 'fs.mqueue.msg_max',
    value: msgMax,
    status: msgMax !== null && msgMax <= 10 ? 'warn' : 'ok',
    note: 'most messages one POSIX queue may hold for a process without CAP_SYS_RESOURCE (Queue maxsize with transport mq)',
    fix: 'sysctl -w fs.mqueue.msg_max=1000  (persist in /etc/sysctl.d/)',
  });
  const sizeMax = mq('msgsize_max');
  checks.push({
    name: 'fs.mqueue.msgsize_max',
    value: sizeMax,
    status: sizeMax !== null && sizeMax <= 8192 ? 'warn' : 'ok',
    note: 'largest message of a POSIX queue without CAP_SYS_RESOURCE (bigger items go through side segments)',
    fix: 'sysctl -w fs.mqueue.msgsize_max=65536',
  });
  const queuesMax = mq('queues_max');
  checks.push({
    name: 'fs.mqueue.queues_max',
    value: queuesMax,
    status: queuesMax !== null && queuesMax < 64 ? 'warn' : 'ok',
    note: 'POSIX queues on the whole host',
    fix: 'sysctl -w fs.mqueue.queues_max=1024',
  });
  const mqLimit = limit('Max msgqueue size');
  const mqSoft = mqLimit?.[0] ?? null;
  checks.push({
    name: 'RLIMIT_MSGQUEUE',
    value: mqSoft,
    status: typeof mqSoft === 'number' && mqSoft < 8 * MiB ? 'warn' : 'ok',
    note:
      typeof mqSoft === 'number' && msgMax !== null && sizeMax !== null
        ? `bytes of queues per user: about ${Math.floor(mqSoft / (msgMax * (sizeMax + 48)))} queues of the default size`
        : 'bytes of POSIX queues one user may create',
    fix: 'ulimit -q unlimited (or LimitMSGQUEUE= in a systemd unit, --ulimit msgqueue= for docker)',
  });
  const nofile = limit('Max open files');
  checks.push({
    name: 'RLIMIT_NOFILE',
    value: nofile?.[0] ?? null,
    status: typeof nofile?.[0] === 'number' && nofile[0] < 4096 ? 'warn' : 'ok',
    note: 'descriptors per process: every open Queue, Pipe end and Listener client holds one',
    fix: 'ulimit -n 65536 (or LimitNOFILE=)',
  });
  try {
    const fs = statfsSync(SHM_DIR);
    const size = fs.blocks * fs.bsize;
    const free = fs.bavail * fs.bsize;
    checks.push({
      name: `${SHM_DIR} size`,
      value: size,
      status: size <= 64 * MiB ? 'warn' : 'ok',
      note: `${(size / MiB).toFixed(0)} MiB in all, ${(free / MiB).toFixed(0)} MiB free: every SharedMemory, Value and queue side segment lives here (Docker's default is 64 MiB)`,
      fix: 'mount -o remount,size=1G /dev/shm (docker run --shm-size=1g)',
    });
    checks.push({ name: `${SHM_DIR} free`, value: free, status: free < 16 * MiB ? 'warn' : 'ok', note: 'bytes free in /dev/shm' });
  } catch (err) {
    checks.push({ name: `${SHM_DIR}`, value: null, status: 'warn', note: `cannot statfs ${SHM_DIR}: ${(err as Error).message}` });
  }
  const mounted = mqueueDir();
  checks.push({
    name: `${MQUEUE_DIR} mounted`,
    value: mounted !== null,
    status: mounted !== null ? 'ok' : 'info',
    note: mounted !== null ? `queues are listed from ${mounted}` : `'ls' cannot list POSIX queues${root ? ' (as root it mounts one privately to look)' : ''}`,
    fix: mounted !== null ? undefined : 'mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue',
  });
  const k = kernel();
  checks.push({
    name: 'open file description locks (F_OFD_SETLK)',
    value: atLeast(k, 3, 15),
    status: atLeast(k, 3, 15) ? 'ok' : 'warn',
    note: `kernel ${release()}: crash-safe locks tell a dead holder by its released OFD lock (Linux >= 3.15)`,
  });
  checks.push({
    name: 'futex_waitv',
    value: atLeast(k, 5, 16),
    status: 'info',
    note: `kernel ${release()}: one thread can wait on many futex words (Linux >= 5.16)`,
  });
  const ring = binding.engineStats().ringAvailable;
  checks.push({
    name: 'io_uring futex waits',
    value: ring,
    status: 'info',
    note: ring
      ? 'waits on many distinct objects are queued in the kernel once each (Linux >= 6.7)'
      : `not used (kernel ${release()} before 6.7, io_uring disabled by sysctl or seccomp, or POSIX_IPC_NO_URING set): futex_waitv threads instead`,
  });
  checks.push({
    name: 'user',
    value: process.getuid?.() ?? null,
    status: root ? 'info' : 'ok',
    note: root ? 'root: permission problems and queue limits that ordinary users hit are hidden from you' : 'an ordinary user',
  });
  return checks;
}
