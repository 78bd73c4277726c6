/**
 * Codecs turn items into message bytes and back, for Queue and Connection.
 *
 * - `'json'` (default): the bytes are exactly the UTF-8 JSON text, so Python
 *   reads them with `json.loads`. Rules are `JSON.stringify`'s (as
 *   `process.send`): nested functions and undefined are dropped; a top-level
 *   value JSON cannot express (undefined, a function, a symbol) and circular
 *   structures or BigInts are rejected with a TypeError before anything is sent.
 * - `'v8'`: the structured clone format of `v8.serialize` (Map, Set, Date,
 *   BigInt, typed arrays, errors...). Node to Node only.
 * - `'raw'`: a Buffer / TypedArray / DataView / ArrayBuffer in, a Buffer out.
 * - `'pickle'`: Python's pickle (protocol 4) of plain data, so Python's
 *   `multiprocessing.connection` `send()`/`recv()` are the peer; nothing that
 *   names or calls a Python object is ever decoded (see pickle.ts).
 * - `{ encode, decode }`: your own.
 * @module
 */
import { isUtf8 } from 'node:buffer';
import * as v8 from 'node:v8';
import { binding } from './binding.js';
import { encodeError, ErrorCode, typeError } from './errors.js';
import { pickleCodec } from './pickle.js';

/** A custom codec. `encode` must return bytes; `decode` receives a Buffer. */
export interface Codec<T = unknown> {
  encode(item: T): Uint8Array;
  decode(bytes: Buffer): T;
}

/**
 * How items are encoded: a built-in name or a custom codec. `'raw'` gives
 * Buffers, so it is accepted only where the item type admits a Buffer
 * (`Queue<Buffer>`, `Queue<unknown>`), never for `Queue<string>`.
 */
export type CodecOption<T = unknown> = 'json' | 'v8' | 'pickle' | Codec<T> | ([Buffer] extends [T] ? 'raw' : never);

/** The JSON text of `item`, as the json codec encodes it (TypeError if JSON cannot express it). @internal */
export function jsonText(item: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(item);
  } catch (err) {
    // A BigInt, a circular structure, or a toJSON() that threw.
    throw encodeError(`Cannot encode item as JSON: ${(err as Error).message}`, err);
  }
  if (text === undefined) throw encodeError(`Cannot encode ${typeof item} as JSON`);
  return text;
}

/** Strings at least this long are handed to the native side whole by {@link jsonParts}. @internal */
export const LONG_STRING = 2048;
/** What stands for a long string in jsonParts' JSON.stringify (a string or key equal to it makes jsonParts give up). */
const PLACEHOLDER = '\u0000posix-ipc long string\u0000';
const PLACEHOLDER_JSON = JSON.stringify(PLACEHOLDER);

/**
 * The JSON text of `item` split around its long strings (LONG_STRING UTF-16
 * units or more): `[parts, strings]` with the text being parts[0], the
 * JSON literal of strings[0], parts[1], ... JSON.stringify writes the parts
 * (with a replacer that swaps each long string for a placeholder, so toJSON,
 * dropped members and every other rule are its own); the caller quotes the
 * long strings, which JSON.stringify would scan one character at a time.
 * null when a string or key of the item is the placeholder itself.
 * @throws TypeError as jsonText
 * @internal
 */
export function jsonParts(item: unknown): [string[], string[]] | null {
  const strings: string[] = [];
  let text: string | undefined;
  try {
    text = JSON.stringify(item, (_key, value: unknown) => {
      if (typeof value === 'string' && value.length >= LONG_STRING) {
        strings.push(value);
        return PLACEHOLDER;
      }
      return value;
    });
  } catch (err) {
    throw encodeError(`Cannot encode item as JSON: ${(err as Error).message}`, err);
  }
  if (text === undefined) throw encodeError(`Cannot encode ${typeof item} as JSON`);
  if (strings.length === 0) return [[text], strings];
  const parts = text.split(PLACEHOLDER_JSON);
  return parts.length === strings.length + 1 ? [parts, strings] : null;
}

/** A json text this long is looked at for long strings (jsonParts, parseLong). @internal */
export const LONG_TEXT = 4 * LONG_STRING;

/**
 * JSON.parse of bytes[0..n] (checked UTF-8 first, as utf8() does) where the
 * long string literals with no escape are cut out natively (jsonSplitLong)
 * and put back by a reviver: JSON.parse reads them one character at a time.
 */
function parseLong(bytes: Buffer, n: number): unknown {
  const view = n === bytes.length ? bytes : bytes.subarray(0, n);
  if (!isUtf8(view)) throw new TypeError(`The message is not valid UTF-8 (${n} bytes)`);
  const split = binding.jsonSplitLong(bytes, n, LONG_STRING);
  if (split === null) return JSON.parse(bytes.toString('utf8', 0, n));
  const strings = split[1];
  return JSON.parse(split[0], (_key, value: unknown) =>
    typeof value === 'string' && value.charCodeAt(0) === 0 && value.startsWith(PIPC_MARK) ? strings[Number(value.slice(PIPC_MARK.length))] : value,
  );
}
/** What jsonSplitLong leaves in place of a string (and an index). */
const PIPC_MARK = '\u0000pipc:';

/** The text jsonParts' pieces stand for. @internal */
export function joinJsonParts(parts: string[], strings: string[]): string {
  let text = parts[0]!;
  for (let i = 0; i < strings.length; i++) text += JSON.stringify(strings[i]) + parts[i + 1]!;
  return text;
}

const json: Codec = {
  encode(item) {
    return Buffer.from(jsonText(item), 'utf8');
  },
  decode(bytes) {
    return JSON.parse(utf8(bytes, bytes.length));
  },
};

/** The text of bytes[0..n]; invalid UTF-8 is an error (as Python's decode), never U+FFFD. */
function utf8(bytes: Buffer, n: number): string {
  const view = n === bytes.length ? bytes : bytes.subarray(0, n);
  if (!isUtf8(view)) throw new TypeError(`The message is not valid UTF-8 (${n} bytes)`);
  return bytes.toString('utf8', 0, n);
}

const structured: Codec = {
  encode(item) {
    try {
      return v8.serialize(item);
    } catch (err) {
      throw encodeError(`Cannot encode item with the v8 codec: ${(err as Error).message}`, err);
    }
  },
  decode(bytes) {
    return v8.deserialize(bytes);
  },
};

const pickle: Codec = pickleCodec();

/** Returns the bytes of a Buffer-like item without copying. */
export function toBuffer(item: unknown, argName = 'item'): Buffer {
  if (Buffer.isBuffer(item)) return item;
  if (ArrayBuffer.isView(item)) return Buffer.from(item.buffer, item.byteOffset, item.byteLength);
  if (item instanceof ArrayBuffer || item instanceof SharedArrayBuffer) return Buffer.from(item);
  throw typeError(
    'ERR_INVALID_ARG_TYPE',
    `The "${argName}" argument must be a Buffer, TypedArray, DataView or ArrayBuffer with the raw codec. Received ${item === null ? 'null' : typeof item}`,
  );
}

const raw: Codec<Buffer> = {
  encode: (item) => toBuffer(item),
  decode: (bytes) => bytes,
};

/** True for the built-in raw codec. @internal */
export function isRawCodec(codec: Codec<any>): boolean {
  return codec === raw;
}

/** True for the built-in json codec. @internal */
export function isJsonCodec(codec: Codec<any>): boolean {
  return codec === json;
}

/**
 * Decodes the first `n` bytes of a scratch buffer that the next receive will
 * overwrite: JSON straight from it (the text is a copy), the other codecs
 * from a copy of the bytes, since they may keep them (raw returns them; the
 * v8 deserializer returns typed arrays that view its input). The copy comes
 * from Node's Buffer pool when small, as `Buffer.allocUnsafe` does.
 * @internal
 */
export function decodeScratch<T>(codec: Codec<T>, scratch: Buffer, n: number): T {
  if (codec === (json as Codec<T>)) return (n >= LONG_TEXT ? parseLong(scratch, n) : JSON.parse(utf8(scratch, n))) as T;
  const copy = Buffer.allocUnsafe(n);
  scratch.copy(copy, 0, 0, n);
  return codec.decode(copy);
}

/** Resolves a codec option to a codec; TypeError for unknown names or shapes. */
export function resolveCodec<T>(option: unknown): Codec<T> {
  if (option === undefined || option === 'json') return json as Codec<T>;
  if (option === 'v8') return structured as Codec<T>;
  if (option === 'raw') return raw as unknown as Codec<T>;
  if (option === 'pickle') return pickle as Codec<T>;
  if (
    option !== null &&
    typeof option === 'object' &&
    typeof (option as Codec).encode === 'function' &&
    typeof (option as Codec).decode === 'function'
  ) {
    const custom = option as Codec<T>;
    return {
      encode(item) {
        const bytes = custom.encode(item);
        if (!(bytes instanceof Uint8Array)) {
          throw typeError(ErrorCode.ENCODE, 'A custom codec\'s encode() must return a Uint8Array or Buffer');
        }
        return bytes;
      },
      decode: (bytes) => custom.decode(bytes),
    };
  }
  throw typeError(
    'ERR_INVALID_ARG_VALUE',
    `The "codec" option must be 'json', 'v8', 'raw', 'pickle' or an object with encode() and decode(). Received ${typeof option === 'string' ? `'${option}'` : typeof option}`,
  );
}
