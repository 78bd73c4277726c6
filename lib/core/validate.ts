/**
 * Argument validation shared by every family: friendly TypeError/RangeError
 * with Node's error codes, before anything reaches the native layer.
 * @internal
 * @module
 */
import { abortError } from './errors.js';

/** A TypeError carrying Node's `code` (e.g. `ERR_INVALID_ARG_TYPE`). */
export function typeError(code: string, message: string): TypeError {
  return Object.assign(new TypeError(message), { code });
}

/** A RangeError carrying Node's `code` (e.g. `ERR_OUT_OF_RANGE`). */
export function rangeError(code: string, message: string): RangeError {
  return Object.assign(new RangeError(message), { code });
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `type string ('${value.length > 28 ? value.slice(0, 25) + '...' : value}')`;
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  return `type ${typeof value} (${String(value)})`;
}

/** NAME_MAX on Linux: the longest file name under /dev/shm or /dev/mqueue. */
export const NAME_MAX = 255;

/**
 * Validates an IPC object name and returns it with its one leading slash, as
 * the OS functions take it. `"jobs"` and `"/jobs"` are the same object.
 * `reserved` is what the OS adds to the file name (4 for glibc's "sem.").
 */
export function validateName(name: unknown, argName = 'name', reserved = 0): string {
  if (typeof name !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type string. Received ${describe(name)}`);
  }
  const bare = name.startsWith('/') ? name.slice(1) : name;
  if (bare.length === 0) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not be empty (nor a lone "/")`);
  }
  if (bare.includes('/')) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument may have one leading "/" and no other. Received '${name}'`);
  }
  if (bare.includes('\0')) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not contain null bytes`);
  }
  if (bare === '.' || bare === '..') {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument must not be "." or ".."`);
  }
  const max = NAME_MAX - reserved;
  const bytes = Buffer.byteLength(bare);
  if (bytes > max) {
    throw rangeError('ERR_OUT_OF_RANGE', `The "${argName}" argument is ${bytes} bytes long; at most ${max} are allowed`);
  }
  return '/' + bare;
}

/** Validates that `value` is a plain options object (or undefined/null). */
export function validateOptions<T extends object>(value: unknown, argName = 'options'): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type object. Received ${describe(value)}`);
  }
  return value as Partial<T>;
}

export function validateBoolean(value: unknown, argName: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be of type boolean. Received ${describe(value)}`);
  }
  return value;
}

/** Validates an integer in [min, max]; undefined gives `fallback`. */
export function validateInteger(value: unknown, argName: string, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type number. Received ${describe(value)}`);
  }
  if (!Number.isInteger(value)) {
    throw rangeError('ERR_OUT_OF_RANGE', `The value of "${argName}" is out of range. It must be an integer. Received ${String(value)}`);
  }
  if (value < min || value > max) {
    throw rangeError('ERR_OUT_OF_RANGE', `The value of "${argName}" is out of range. It must be >= ${min} && <= ${max}. Received ${String(value)}`);
  }
  return value;
}

/** A file mode: an integer in [0, 0o777]. Defaults to 0o600. */
export function validateMode(value: unknown, fallback = 0o600): number {
  return validateInteger(value, 'mode', 0, 0o777, fallback);
}

/**
 * A timeout in milliseconds. undefined, null and Infinity mean "wait forever"
 * and come back as -1; otherwise a finite number >= 0.
 */
export function validateTimeout(value: unknown, argName = 'timeout'): number {
  if (value === undefined || value === null || value === Infinity) return -1;
  if (typeof value !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be of type number (milliseconds). Received ${describe(value)}`);
  }
  if (Number.isNaN(value) || value < 0) {
    throw rangeError('ERR_OUT_OF_RANGE', `The value of "${argName}" is out of range. It must be a number of milliseconds >= 0. Received ${String(value)}`);
  }
  return value;
}

/** Validates an AbortSignal option; throws its AbortError at once if already aborted. */
export function validateSignal(value: unknown, argName = 'signal'): AbortSignal | undefined {
  if (value === undefined || value === null) return undefined;
  if (!(value instanceof AbortSignal)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be an instance of AbortSignal. Received ${describe(value)}`);
  }
  return value;
}

/** Throws (synchronously) the AbortError of an already aborted signal. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

export function validateFunction(value: unknown, argName: string): void {
  if (typeof value !== 'function') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be a function. Received ${describe(value)}`);
  }
}

/**
 * Whose existing object an open may adopt: `'self'` (default) our effective
 * uid, `'any'` every uid, or a uid. Comes back as the number the native open
 * functions take: -1 for 'any', otherwise the uid.
 */
export type Owner = 'self' | 'any' | number;

export function validateOwner(value: unknown): number {
  if (value === undefined || value === 'self') return process.geteuid?.() ?? -1;
  if (value === 'any') return -1;
  if (typeof value === 'number') return validateInteger(value, 'owner', 0, 0xfffffffe);
  throw typeError('ERR_INVALID_ARG_VALUE', `The "owner" option must be 'self', 'any' or a uid (an integer >= 0). Received ${describe(value)}`);
}
