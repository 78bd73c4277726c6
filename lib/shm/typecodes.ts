/**
 * Python `array` typecodes as used by `Value` and `SharedArray`: element size,
 * typed-array class, native element type for the atomics, and value checks.
 * Sizes are those of CPython on 64-bit Linux (`l`/`L` are 8 bytes there).
 * @internal
 * @module
 */
import { describeValue, rangeError, typeError } from '../core/errors.js';

/** A Python `array` typecode supported by `Value` and `SharedArray`. */
export type Typecode = 'b' | 'B' | 'h' | 'H' | 'i' | 'I' | 'l' | 'L' | 'q' | 'Q' | 'f' | 'd';

/** The typecodes whose elements are 64-bit integers, read and written as `bigint`. */
export type BigIntTypecode = 'l' | 'L' | 'q' | 'Q';

/** The JavaScript type of one element: `bigint` for 64-bit integers, `number` otherwise. */
export type ScalarOf<T extends Typecode> = T extends BigIntTypecode ? bigint : number;

/** The typed-array class that views elements of typecode `T`. */
export type TypedArrayOf<T extends Typecode> = T extends 'b'
  ? Int8Array
  : T extends 'B'
    ? Uint8Array
    : T extends 'h'
      ? Int16Array
      : T extends 'H'
        ? Uint16Array
        : T extends 'i'
          ? Int32Array
          : T extends 'I'
            ? Uint32Array
            : T extends 'l' | 'q'
              ? BigInt64Array
              : T extends 'L' | 'Q'
                ? BigUint64Array
                : T extends 'f'
                  ? Float32Array
                  : Float64Array;

type AnyTypedArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array
  | Float32Array
  | Float64Array;

/** Everything the classes need to know about one typecode. */
export interface TypeInfo {
  readonly code: Typecode;
  /** Bytes per element. */
  readonly size: number;
  /** native/shm.h ElemType for the atomics, or -1 for floating point. */
  readonly elem: number;
  readonly bigint: boolean;
  /** Builds a view of `length` elements at offset 0 of `buffer`. */
  view(buffer: ArrayBuffer, length: number): AnyTypedArray;
  /** Builds a zeroed array of `length` elements (for initial contents). */
  make(length: number): AnyTypedArray;
  /** Throws TypeError / RangeError unless `value` fits one element. */
  check(value: unknown, argName: string): void;
  /** The zero of this type (0 or 0n). */
  readonly zero: number | bigint;
}

function numberCheck(code: Typecode, min: number, max: number): (value: unknown, argName: string) => void {
  return (value, argName) => {
    if (typeof value !== 'number') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type number for typecode '${code}'. Received ${describeValue(value)}`);
    }
    if (!Number.isInteger(value) || value < min || value > max) {
      throw rangeError('ERR_OUT_OF_RANGE', `The value of "${argName}" is out of range for typecode '${code}'. It must be an integer >= ${min} and <= ${max}. Received ${String(value)}`);
    }
  };
}

function bigintCheck(code: Typecode, signed: boolean): (value: unknown, argName: string) => void {
  // Comparisons with constants allocate nothing (BigInt.asIntN would).
  const min = signed ? -(2n ** 63n) : 0n;
  const max = signed ? 2n ** 63n - 1n : 2n ** 64n - 1n;
  return (value, argName) => {
    if (typeof value !== 'bigint') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type bigint for typecode '${code}'. Received ${describeValue(value)}`);
    }
    if (value < min || value > max) {
      throw rangeError('ERR_OUT_OF_RANGE', `The value of "${argName}" is out of range for typecode '${code}'. It must be >= ${min}n and <= ${max}n. Received ${String(value)}n`);
    }
  };
}

function floatCheck(code: Typecode): (value: unknown, argName: string) => void {
  return (value, argName) => {
    if (typeof value !== 'number') {
      throw typeError('ERR_INVALID_ARG_TYPE', `The "${argName}" argument must be of type number for typecode '${code}'. Received ${describeValue(value)}`);
    }
  };
}

type Ctor = { new (buffer: ArrayBuffer, byteOffset: number, length: number): AnyTypedArray; new (length: number): AnyTypedArray };

function info(code: Typecode, size: number, elem: number, ctor: Ctor, check: TypeInfo['check']): TypeInfo {
  const bigint = ctor === BigInt64Array || ctor === BigUint64Array;
  return {
    code,
    size,
    elem,
    bigint,
    view: (buffer, length) => new ctor(buffer, 0, length),
    make: (length) => new ctor(length),
    check,
    zero: bigint ? 0n : 0,
  };
}

const TYPES: Record<Typecode, TypeInfo> = {
  b: info('b', 1, 0, Int8Array, numberCheck('b', -128, 127)),
  B: info('B', 1, 1, Uint8Array, numberCheck('B', 0, 255)),
  h: info('h', 2, 2, Int16Array, numberCheck('h', -32768, 32767)),
  H: info('H', 2, 3, Uint16Array, numberCheck('H', 0, 65535)),
  i: info('i', 4, 4, Int32Array, numberCheck('i', -2147483648, 2147483647)),
  I: info('I', 4, 5, Uint32Array, numberCheck('I', 0, 4294967295)),
  l: info('l', 8, 6, BigInt64Array, bigintCheck('l', true)),
  L: info('L', 8, 7, BigUint64Array, bigintCheck('L', false)),
  q: info('q', 8, 6, BigInt64Array, bigintCheck('q', true)),
  Q: info('Q', 8, 7, BigUint64Array, bigintCheck('Q', false)),
  f: info('f', 4, -1, Float32Array, floatCheck('f')),
  d: info('d', 8, -1, Float64Array, floatCheck('d')),
};

/** Returns the TypeInfo of a typecode, or throws TypeError `ERR_INVALID_ARG_VALUE`. */
export function typeInfo(typecode: unknown): TypeInfo {
  if (typeof typecode !== 'string') {
    throw typeError('ERR_INVALID_ARG_TYPE', `The "typecode" argument must be of type string. Received ${describeValue(typecode)}`);
  }
  if (!Object.prototype.hasOwnProperty.call(TYPES, typecode)) {
    throw typeError('ERR_INVALID_ARG_VALUE', `The "typecode" argument must be one of 'b', 'B', 'h', 'H', 'i', 'I', 'l', 'L', 'q', 'Q', 'f', 'd'. Received '${typecode}'`);
  }
  return TYPES[typecode as Typecode];
}
