/**
 * The target every Pool worker runs (as a daemon `Process`): imports the
 * task module, runs the initializer, then answers tasks from its pipe until
 * it reads `null` or the pipe ends.
 * @internal
 * @module
 */
import type { Connection } from '../pipe/connection.js';

/** A task as the pool sends it: `fn(...args)` for each entry of `calls`, or `fn(item)` for each of `items`. */
export interface TaskMessage {
  id: number;
  fn: string;
  calls?: unknown[][];
  items?: unknown[];
}

/** The answer: every result in order, or the first error. */
export interface ReplyMessage {
  id: number;
  results?: unknown[];
  error?: { name: string; message: string; stack: string; code?: unknown };
}

function describe(err: unknown): NonNullable<ReplyMessage['error']> {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code;
    const out = { name: err.name, message: err.message, stack: err.stack ?? `${err.name}: ${err.message}` };
    return code === undefined ? out : { ...out, code };
  }
  return { name: 'Error', message: `the task threw a non-Error value: ${String(err)}`, stack: `thrown: ${String(err)}` };
}

function lookup(mod: Record<string, unknown>, href: string, name: string): (...a: unknown[]) => unknown {
  const f = mod[name];
  if (typeof f !== 'function') {
    throw Object.assign(new TypeError(`${href} has no export '${name}' that is a function`), { code: 'ERR_IPC_NO_SUCH_EXPORT' });
  }
  return f as (...a: unknown[]) => unknown;
}

export default async function poolWorker(href: string, conn: Connection<unknown>, initializer: string | null, initargs: unknown[]): Promise<void> {
  const mod = (await import(href)) as Record<string, unknown>;
  if (initializer !== null) await lookup(mod, href, initializer)(...initargs);
  for (;;) {
    let task: TaskMessage | null;
    try {
      task = (await conn.recv()) as TaskMessage | null;
    } catch {
      return; // the pool is gone
    }
    if (task === null) return;
    let reply: ReplyMessage;
    try {
      const f = lookup(mod, href, task.fn);
      let results: unknown[];
      if (task.items !== undefined) {
        const items = task.items;
        results = new Array<unknown>(items.length);
        for (let i = 0; i < items.length; i++) {
          const r = f(items[i]);
          results[i] = r instanceof Promise ? await r : r;
        }
      } else {
        const calls = task.calls!;
        results = new Array<unknown>(calls.length);
        for (let i = 0; i < calls.length; i++) {
          const r = f(...calls[i]!);
          results[i] = r instanceof Promise ? await r : r;
        }
      }
      reply = { id: task.id, results };
    } catch (err) {
      reply = { id: task.id, error: describe(err) };
    }
    try {
      await conn.send(reply);
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'ERR_IPC_ENCODE') return;
      await conn.send({ id: task.id, error: describe(err) });
    }
  }
}
