/**
 * Arguments that travel to a child process: posix-ipc objects found among
 * them (at any depth of plain arrays and objects) are replaced by how to
 * reopen them (their `[kReopen]()` spec), pipe ends by a descriptor the child
 * inherits; everything else is structured-cloned (`v8.serialize`).
 * @internal
 * @module
 */
import * as v8 from 'node:v8';
import { isReopenable, kReopen } from '../core/transfer.js';
import type { ReopenSpec } from '../core/transfer.js';
import { typeError } from '../core/validate.js';
import { Semaphore, BoundedSemaphore, Lock } from '../sync/semaphore.js';
import { Queue } from '../queue/queue.js';
import { SharedMemory, Value, SharedArray } from '../shm/shared-memory.js';
import { Connection } from '../pipe/connection.js';

type Key = string | number;

/** One reopenable object in a packed value: where it goes and how to reopen it. */
interface Ref {
  path: Key[];
  kind: string;
  name?: string;
  args?: unknown[];
  /** Index into the descriptors handed to the child. */
  fd?: number;
  /** The options, packed in turn (a Value's `lock` may be a Lock). */
  options?: Packed;
}

/** A value with holes where reopenable objects were, and the list of them. */
export interface Packed {
  value: unknown;
  refs: Ref[];
}

/** Anything the child gets back that must be closed when the target returns. */
export interface Closable {
  close(): void;
}

type Reopener = (spec: ReopenSpec) => Closable;

/** Kind -> how to reopen it in the child. A new family adds one line here. */
const reopeners = new Map<string, Reopener>([
  ['Semaphore', (s) => new Semaphore(s.name!, s.options)],
  ['BoundedSemaphore', (s) => new BoundedSemaphore(s.name!, s.options)],
  ['Lock', (s) => new Lock(s.name!, s.options)],
  ['Queue', (s) => new Queue(s.name!, s.options)],
  ['SharedMemory', (s) => new SharedMemory(s.name!, s.options)],
  ['Value', (s) => new Value(s.args![0] as never, undefined, { ...s.options, name: s.name })],
  ['SharedArray', (s) => new SharedArray(s.args![0] as never, s.args![1] as number, { ...s.options, name: s.name })],
  ['Connection', (s) => new Connection(s.fd!, s.options)],
]);

function isPlain(v: object): boolean {
  if (Array.isArray(v)) return true;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function where(path: Key[], root: string): string {
  return root + path.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k}`)).join('');
}

function uncloneable(what: string, path: Key[], root: string): TypeError {
  return typeError('ERR_IPC_UNCLONEABLE', `${where(path, root)} cannot be sent to another process: ${what} cannot be cloned`);
}

/**
 * Packs `value` for a child. `fds` collects the descriptors of pipe ends
 * (each Ref's `fd` is an index into it). Throws TypeError `ERR_IPC_UNCLONEABLE`
 * naming the first argument that cannot travel; nothing is sent then.
 */
export function pack(value: unknown, fds: number[], root = 'args'): Packed {
  const refs: Ref[] = [];
  const seen = new Map<object, unknown>();
  const walk = (v: unknown, path: Key[]): unknown => {
    if (typeof v === 'function') throw uncloneable(`a function (${v.name || 'anonymous'})`, path, root);
    if (typeof v === 'symbol') throw uncloneable('a symbol', path, root);
    if (typeof v !== 'object' || v === null) return v;
    if (isReopenable(v)) {
      const spec = v[kReopen]();
      const ref: Ref = { path, kind: spec.kind };
      if (spec.name !== undefined) ref.name = spec.name;
      if (spec.args !== undefined) ref.args = spec.args;
      if (spec.fd !== undefined) {
        let i = fds.indexOf(spec.fd);
        if (i < 0) i = fds.push(spec.fd) - 1;
        ref.fd = i;
      }
      if (spec.options !== undefined) ref.options = pack(spec.options, fds, `${where(path, root)} (options)`);
      refs.push(ref);
      return null;
    }
    if (!isPlain(v)) return v; // v8 clones it (Map, Date, typed arrays...) or says why not
    if (seen.has(v)) return seen.get(v);
    const copy: Record<Key, unknown> = Array.isArray(v) ? new Array(v.length) : Object.create(Object.getPrototypeOf(v));
    seen.set(v, copy);
    for (const k of Object.keys(v)) {
      const key: Key = Array.isArray(v) ? Number(k) : k;
      copy[key] = walk((v as Record<string, unknown>)[k], [...path, key]);
    }
    return copy;
  };
  return { value: walk(value, []), refs };
}

/** v8.serialize with a clear error for what structured clone refuses. */
export function serialize(message: unknown, what = 'args'): Buffer {
  try {
    return v8.serialize(message);
  } catch (err) {
    throw Object.assign(new TypeError(`${what} cannot be sent to another process: ${(err as Error).message}`, { cause: err }), {
      code: 'ERR_IPC_UNCLONEABLE',
    });
  }
}

/**
 * Rebuilds a packed value in the child: each reopened object is pushed to
 * `opened` (to close when the target returns). `fdBase` is the child's
 * descriptor of the first handed-over descriptor.
 */
export function unpack(packed: Packed, fdBase: number, opened: Closable[]): unknown {
  let value = packed.value;
  for (const ref of packed.refs) {
    const reopen = reopeners.get(ref.kind);
    if (reopen === undefined) throw new TypeError(`Cannot reopen a ${ref.kind} here: this posix-ipc has no reopener for it`);
    const spec: ReopenSpec = { kind: ref.kind };
    if (ref.name !== undefined) spec.name = ref.name;
    if (ref.args !== undefined) spec.args = ref.args;
    if (ref.fd !== undefined) spec.fd = fdBase + ref.fd;
    if (ref.options !== undefined) spec.options = unpack(ref.options, fdBase, opened) as Record<string, unknown>;
    const obj = reopen(spec);
    opened.push(obj);
    if (ref.path.length === 0) {
      value = obj;
      continue;
    }
    let at = value as Record<Key, unknown>;
    for (const k of ref.path.slice(0, -1)) at = at[k] as Record<Key, unknown>;
    at[ref.path[ref.path.length - 1]!] = obj;
  }
  return value;
}
