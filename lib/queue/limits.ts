/**
 * The kernel's message-queue limits, read where they live, and the errors
 * that name them. An ordinary process (without CAP_SYS_RESOURCE) may not ask
 * for more than fs.mqueue.msg_max messages or fs.mqueue.msgsize_max bytes per
 * message, and all of a user's queues share the RLIMIT_MSGQUEUE byte budget.
 * @internal
 * @module
 */
import { readFileSync } from 'node:fs';
import { IPCError, reworded } from '../core/errors.js';

/** Linux's HARD_MSGMAX: no process may ask for more messages per queue. */
export const HARD_MSGMAX = 65536;
/** Linux's HARD_MSGSIZEMAX: no process may ask for larger messages. */
export const HARD_MSGSIZEMAX = 16 * 1024 * 1024;

/** Reads /proc/sys/fs/mqueue/<setting>, or `fallback` where it is not readable. */
export function mqueueSetting(setting: 'msg_max' | 'msgsize_max' | 'msg_default' | 'msgsize_default' | 'queues_max', fallback: number): number {
  try {
    const v = Number.parseInt(readFileSync(`/proc/sys/fs/mqueue/${setting}`, 'utf8'), 10);
    return Number.isFinite(v) ? v : fallback;
  } catch {
    return fallback;
  }
}

/** The soft RLIMIT_MSGQUEUE of this process in bytes, undefined if unknown or unlimited. */
export function msgqueueRlimit(): number | undefined {
  try {
    const line = readFileSync('/proc/self/limits', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('Max msgqueue size'));
    const v = Number.parseInt(line?.slice('Max msgqueue size'.length).trim() ?? '', 10);
    return Number.isFinite(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What the kernel charges a queue against RLIMIT_MSGQUEUE (mqueue_get_inode,
 * x86-64): per message a 48-byte msg_msg, a 48-byte tree node and its size.
 */
export function queueBudget(maxmsg: number, msgsize: number): number {
  return maxmsg * (48 + msgsize) + Math.min(maxmsg, 32768) * 48;
}

function limitError(err: IPCError, description: string, limit: string, value: number | undefined): IPCError {
  const e = reworded(err, description);
  return Object.assign(e, { limit, limitValue: value });
}

/**
 * Turns mq_open's terse EINVAL/EMFILE/ENOSPC into an error that names the
 * limit, its value and how to raise it. Other errors pass through.
 */
export function explainOpenError(err: unknown, create: boolean, maxmsg: number, msgsize: number): unknown {
  if (!(err instanceof IPCError) || !create) return err;
  if (err.code === 'EINVAL') {
    const msgMax = mqueueSetting('msg_max', 10);
    const sizeMax = mqueueSetting('msgsize_max', 8192);
    if (maxmsg > msgMax) {
      return limitError(
        err,
        `maxsize ${maxmsg} exceeds the system limit fs.mqueue.msg_max = ${msgMax} (/proc/sys/fs/mqueue/msg_max), which binds every process without CAP_SYS_RESOURCE; use maxsize <= ${msgMax} or raise it as root: sysctl -w fs.mqueue.msg_max=${maxmsg}`,
        'fs.mqueue.msg_max',
        msgMax,
      );
    }
    if (msgsize > sizeMax) {
      return limitError(
        err,
        `maxMessageSize ${msgsize} exceeds the system limit fs.mqueue.msgsize_max = ${sizeMax} (/proc/sys/fs/mqueue/msgsize_max), which binds every process without CAP_SYS_RESOURCE; use maxMessageSize <= ${sizeMax} (larger items still travel, through side segments) or raise it as root: sysctl -w fs.mqueue.msgsize_max=${msgsize}`,
        'fs.mqueue.msgsize_max',
        sizeMax,
      );
    }
    return err;
  }
  if (err.code === 'EMFILE') {
    const rlimit = msgqueueRlimit();
    const need = queueBudget(maxmsg, msgsize);
    return limitError(
      err,
      `a queue of ${maxmsg} x ${msgsize} bytes needs about ${need} bytes of the per-user message-queue budget RLIMIT_MSGQUEUE = ${rlimit ?? 'unknown'} bytes, shared by all of this user's queues, and it is exhausted (or the process is out of file descriptors); remove unused queues, create smaller ones, or raise it: ulimit -q <bytes> in the shell that starts the process, prlimit --msgqueue=<bytes> --pid <pid>, or LimitMSGQUEUE= in a systemd unit`,
      'RLIMIT_MSGQUEUE',
      rlimit,
    );
  }
  if (err.code === 'ENOSPC') {
    const max = mqueueSetting('queues_max', 256);
    return limitError(
      err,
      `the system-wide number of message queues reached fs.mqueue.queues_max = ${max}; remove unused queues or raise it as root: sysctl -w fs.mqueue.queues_max=<n>`,
      'fs.mqueue.queues_max',
      max,
    );
  }
  return err;
}
