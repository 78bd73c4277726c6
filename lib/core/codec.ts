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
  if (codec === (json as Codec<T>)) return JSON.parse(utf8(scratch, n)) as T;
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
