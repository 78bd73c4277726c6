/**
 * multiprocessing.connection's frame format, and the conversion of Node's
 * stream errors into IPCErrors.
 *
 * A frame is a 4-byte big-endian signed length followed by that many bytes;
 * a payload over 2 GiB - 1 has the length -1 and then an 8-byte big-endian
 * unsigned length. Python's `Connection.send_bytes`/`recv_bytes` read and
 * write exactly this. (Errors: core/errors.ts.)
 * @internal
 * @module
 */
import { constants } from 'node:buffer';

/** The largest payload that fits the short (4-byte) header. */
export const SHORT_MAX = 0x7fffffff;

/** The largest frame this process can hold in one Buffer. */
export const MAX_FRAME: number = constants.MAX_LENGTH;

/** The header for a payload of `size` bytes: 4 bytes, or 12 past 2 GiB - 1. */
export function encodeHeader(size: number): Buffer {
  if (size <= SHORT_MAX) {
    const h = Buffer.allocUnsafe(4);
    h.writeInt32BE(size, 0);
    return h;
  }
  const h = Buffer.allocUnsafe(12);
  h.writeInt32BE(-1, 0);
  h.writeBigUInt64BE(BigInt(size), 4);
  return h;
}

