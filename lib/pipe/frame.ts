/**
 * multiprocessing.connection's frame format, and the conversion of Node's
 * stream errors into IPCErrors.
 *
 * A frame is a 4-byte big-endian signed length followed by that many bytes;
 * a payload over 2 GiB - 1 has the length -1 and then an 8-byte big-endian
 * unsigned length. Python's `Connection.send_bytes`/`recv_bytes` read and
 * write exactly this.
 * @internal
 * @module
 */
import { constants } from 'node:buffer';
import { binding } from '../core/binding.js';
import { IPCError } from '../core/errors.js';

/** The largest payload that fits the short (4-byte) header. */
export const SHORT_MAX = 0x7fffffff;

/** The largest frame this process can hold in one Buffer. */
export const MAX_FRAME: number = constants.MAX_LENGTH;

/** errno of libuv's UV_EOF, which Node reports as code 'EOF'. */
const UV_EOF = -4095;

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

/** An IPCError for an errno (positive) detected outside the addon. */
export function sysError(errno: number, syscall: string, path?: string, description?: string): IPCError {
  const { code, description: text } = binding.strerror(errno);
  const where = path === undefined ? syscall : `${syscall} '${path}'`;
  return new IPCError(`${code}: ${description ?? text}, ${where}`, code, -errno, syscall, path);
}

/** The error a read at a clean end of stream rejects with: code 'EOF'. */
export function eofError(path?: string): IPCError {
  const where = path === undefined ? 'recv' : `recv '${path}'`;
  return new IPCError(`EOF: end of file, ${where}`, 'EOF', UV_EOF, 'recv', path);
}

/** True for the clean end-of-stream error. */
export function isEof(err: unknown): boolean {
  return err instanceof IPCError && err.code === 'EOF';
}

/**
 * Converts an error from a net.Socket (Node's SystemError-like errors carry a
 * negative errno) into an IPCError; others (stream state errors) pass as they are.
 */
export function fromNodeError(err: unknown, syscall: string, path?: string): unknown {
  if (err instanceof IPCError) return err;
  const e = err as { code?: unknown; errno?: unknown; syscall?: unknown };
  if (typeof e?.code === 'string' && typeof e.errno === 'number' && e.errno < 0 && e.errno !== UV_EOF) {
    const s = typeof e.syscall === 'string' ? e.syscall : syscall;
    return sysError(-e.errno, s, path);
  }
  return err;
}
