/**
 * Argument validation shared by every family: friendly TypeError/RangeError
 * with Node's error codes, before anything reaches the native layer.
 * @internal
 * @module
 */
import { abortError, describeValue, rangeError, typeError } from './errors.js';

export { rangeError, typeError };
// Naming rules live in names.ts; re-exported for the callers that import them from here.
export { NAME_MAX, validateName } from './names.js';

/**
 * The option keys of an options type, for `validateOptions`: the compiler
 * checks that the list names every key of `T` and nothing else, so an option
 * added to the type cannot be forgotten here.
 * ```ts
 * const KEYS = keysOf<PipeOptions>()('duplex', 'codec');
 * ```
 */
export function keysOf<T extends object>() {
  return <const K extends keyof T & string>(
    ...keys: [Exclude<keyof T, K>] extends [never] ? K[] : ['missing option key', Exclude<keyof T, K>]
  ): readonly string[] => keys as readonly string[];
}

/** Levenshtein distance, for "did you mean" hints. */
function distance(a: string, b: string): number {
  const al = a.toLowerCase();
  const bl = b.toLowerCase();
  let prev = Array.from({ length: bl.length + 1 }, (_, i) => i);
  for (let i = 1; i <= al.length; i++) {
    const cur = [i];
    for (let j = 1; j <= bl.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (al[i - 1] === bl[j - 1] ? 0 : 1));
    }
    prev = cur;
  }
  return prev[bl.length]!;
}

/** The known key closest to `key`, if it is close enough to be a typo. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(key, k);
    if (d < bestD) {
      bestD = d;
      best = k;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(best.length / 3)) ? best : undefined;
}

/**
 * Validates that `value` is a plain options object (or undefined/null). With
 * `knownKeys`, a key that is not one of them is a TypeError
 * (`ERR_INVALID_ARG_VALUE`) naming the nearest known key: a misspelt option
 * (`{ intialValue: 3 }`, `{ timeOut: 50 }`) must not be silently ignored.
 */
export function validateOptions<T extends object>(value: unknown, knownKeys?: readonly string[], argName = 'options'): Partial<T> {
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type object. Received ${describeValue(value)}`);
  }
  if (knownKeys !== undefined) {
    for (const key in value) {
      if (!knownKeys.includes(key)) {
        const near = nearestKey(key, knownKeys);
        const hint = near === undefined ? `known options are ${knownKeys.join(', ')}` : `did you mean ${near}?`;
        throw typeError('ERR_INVALID_ARG_VALUE', `The "${argName}" argument has an unknown option "${key}": ${hint}`);
      }
    }
  }
  return value as Partial<T>;
}

export function validateBoolean(value: unknown, argName: string, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== 'boolean') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be of type boolean. Received ${describeValue(value)}`);
  }
  return value;
}

/** Validates an integer in [min, max]; undefined gives `fallback`. */
export function validateInteger(value: unknown, argName: string, min: number, max: number, fallback?: number): number {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'number') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type number. Received ${describeValue(value)}`);
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
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be of type number (milliseconds). Received ${describeValue(value)}`);
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
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" option must be an instance of AbortSignal. Received ${describeValue(value)}`);
  }
  return value;
}

/** Throws (synchronously) the AbortError of an already aborted signal. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

export function validateFunction(value: unknown, argName: string): void {
  if (typeof value !== 'function') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be a function. Received ${describeValue(value)}`);
  }
}
