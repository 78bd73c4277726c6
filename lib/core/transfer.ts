/**
 * How an IPC object tells another process to reopen it. Each class that can
 * travel (as an argument of a `Process`) has one method, `[kReopen]()`,
 * returning a {@link ReopenSpec}: its kind, its name and the options it was
 * opened with. lib/process/ holds the registry that turns a spec back into an
 * object in the child; a new family adds the method and one reopener there.
 * @internal
 * @module
 */
import { resolveCodec } from './codec.js';
import type { Codec } from './codec.js';
import { typeError } from './validate.js';

/**
 * The method an object that can be reopened elsewhere has. A registered
 * symbol, so that two copies of this module (say, the TypeScript sources and
 * dist/ in a test) agree on it.
 */
export const kReopen: unique symbol = Symbol.for('posix-ipc.reopen') as never;

/** What `[kReopen]()` returns. Everything in it is structured-cloneable, or itself reopenable. */
export interface ReopenSpec {
  /** The reopener's key: `'Semaphore'`, `'Queue'`, `'Connection'`... */
  kind: string;
  /** The object's name, for the families found by name. */
  name?: string;
  /** Positional constructor arguments after the name (a Value's typecode...). */
  args?: unknown[];
  /** The options to reopen with (the object's own, made open-only). */
  options?: Record<string, unknown>;
  /** A descriptor to hand to the child (a pipe end): it arrives as another descriptor. */
  fd?: number;
}

/** An object that can be reopened in another process. */
export interface Reopenable {
  [kReopen](): ReopenSpec;
}

/** True if `value` can be reopened in another process. */
export function isReopenable(value: unknown): value is Reopenable {
  return typeof value === 'object' && value !== null && typeof (value as Partial<Reopenable>)[kReopen] === 'function';
}

/**
 * The option value that names a built-in codec, for an object whose codec
 * must be recreated elsewhere; a custom codec (functions) cannot travel.
 */
export function codecOption(codec: Codec<any>, what: string): 'json' | 'v8' | 'raw' | 'pickle' {
  for (const name of ['json', 'v8', 'raw', 'pickle'] as const) {
    if (codec === resolveCodec(name)) return name;
  }
  throw typeError('ERR_IPC_UNCLONEABLE', `A ${what} with a custom codec cannot be sent to another process: its functions cannot be cloned; open it there with the same codec`);
}
