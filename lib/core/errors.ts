/**
 * Errors raised by posix-ipc.
 *
 * Operating-system failures are {@link IPCError}s shaped like Node's own
 * `SystemError` (`code`, `errno`, `syscall`, `path`). Bad arguments are
 * `TypeError`/`RangeError` with Node's `code`s (see `validate.ts`).
 * @module
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';

/**
 * An operating-system failure, or misuse of an IPC object's state (calls after
 * `close()` fail with `code: 'EBADF'`).
 *
 * The message reads like Node's fs errors:
 * `EEXIST: file already exists, sem_open '/jobs'`.
 */
export class IPCError extends Error {
  /** The errno name, such as `'EEXIST'`, `'ENOENT'`, `'EACCES'`. */
  readonly code: string;
  /** The negated errno number, as in Node's `SystemError` (`-17` for EEXIST). */
  readonly errno: number;
  /** The system call that failed, such as `'sem_open'`. */
  readonly syscall: string;
  /**
   * The name of the IPC object involved as the OS sees it (`'/jobs'`), or a
   * file-system path for FIFOs and sockets. Undefined when there is none.
   */
  readonly path: string | undefined;

  constructor(message: string, code: string, errno: number, syscall: string, path?: string) {
    super(message);
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
    this.path = path;
  }

  override get name(): string {
    return 'IPCError';
  }
}

/** Thrown (rejected) when an `AbortSignal` stops a wait. Same shape as Node's. */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
  override get name(): string {
    return 'AbortError';
  }
}

/**
 * Every `code` starting with `ERR_IPC_` that posix-ipc throws, in one place
 * (documented in docs/api.md). Bad arguments use Node's own codes
 * (`ERR_INVALID_ARG_TYPE`, `ERR_INVALID_ARG_VALUE`, `ERR_OUT_OF_RANGE`) and OS
 * failures their errno name (`EEXIST`, ...).
 */
export const ErrorCode = Object.freeze({
  /** `Queue` `get` found nothing in time (`Empty`). */
  EMPTY: 'ERR_IPC_EMPTY',
  /** `Queue` `put` found no room in time (`Full`). */
  FULL: 'ERR_IPC_FULL',
  /** An item the codec cannot encode (TypeError): a BigInt or circular structure for json... */
  ENCODE: 'ERR_IPC_ENCODE',
  /** A message the codec cannot decode (`DecodeError`). */
  DECODE: 'ERR_IPC_DECODE',
  /** A Listener/Client handshake failed (`AuthenticationError`). */
  AUTHENTICATION: 'ERR_IPC_AUTHENTICATION',
  /** A bounded semaphore or Lock released past its bound (RangeError). */
  OVER_RELEASE: 'ERR_IPC_OVER_RELEASE',
  /** An integer-only operation (`add`, `compareExchange`...) on a floating-point Value (TypeError). */
  NOT_INTEGER: 'ERR_IPC_NOT_INTEGER',
  /** `getLock()` on a Value or SharedArray made with `lock: false` (TypeError). */
  NO_LOCK: 'ERR_IPC_NO_LOCK',
});

/** One of the {@link ErrorCode} values. */
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

const ERRNO = osConstants.errno as Readonly<Record<string, number>>;
const SYSTEM_ERRORS = getSystemErrorMap();

/** The (positive) errno of an errno name, from the OS's table; 0 when it has none (like 'EOF'). */
export function errnoOf(code: string): number {
  return ERRNO[code] ?? 0;
}

/** What Node and libuv call a (positive) errno: its name and description. */
function describeErrno(errno: number): [code: string, description: string] {
  return SYSTEM_ERRORS.get(-errno) ?? [`Unknown system error ${errno}`, 'unknown error'];
}

function message(code: string, description: string, syscall: string, path: string | undefined): string {
  return `${code}: ${description}, ${path === undefined ? syscall : `${syscall} '${path}'`}`;
}

/**
 * Builds an IPCError for a failure detected in JavaScript, by errno name
 * (`'EBADF'`, `'ETIMEDOUT'`...): the errno comes from `os.constants.errno`.
 */
export function ipcError(code: string, description: string, syscall: string, path?: string): IPCError {
  return new IPCError(message(code, description, syscall, path), code, -errnoOf(code), syscall, path);
}

/** An IPCError for a (positive) errno number, with the OS's description unless one is given. */
export function sysError(errno: number, syscall: string, path?: string, description?: string): IPCError {
  const [code, text] = describeErrno(errno);
  return new IPCError(message(code, description ?? text, syscall, path), code, -errno, syscall, path);
}

/** The same failure as `err`, described better (its code, errno, syscall and path kept). */
export function reworded(err: IPCError, description: string): IPCError {
  return new IPCError(message(err.code, description, err.syscall, err.path), err.code, err.errno, err.syscall, err.path);
}

/** errno of libuv's UV_EOF, which Node reports as code 'EOF'. */
const UV_EOF = -4095;

/** The error a read at a clean end of stream rejects with: code 'EOF'. */
export function eofError(syscall: string, path?: string): IPCError {
  return new IPCError(message('EOF', 'end of file', syscall, path), 'EOF', UV_EOF, syscall, path);
}

/** True for the clean end-of-stream error. */
export function isEof(err: unknown): boolean {
  return err instanceof IPCError && err.code === 'EOF';
}

/**
 * Converts an error from Node (a net.Socket's or fs call's SystemError-like
 * error, which carries a negative errno) into an IPCError naming `path`;
 * others (stream state errors) pass as they are.
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

/** How a wrong argument is shown in a message, as Node's own `Received ...`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `type string ('${value.length > 28 ? value.slice(0, 25) + '...' : value}')`;
  if (typeof value === 'function') return `function ${value.name || '<anonymous>'}`;
  if (typeof value === 'object') return `an instance of ${value.constructor?.name ?? 'Object'}`;
  if (typeof value === 'bigint') return `type bigint (${value}n)`;
  return `type ${typeof value} (${String(value)})`;
}

/** A TypeError carrying a `code` (Node's `ERR_INVALID_ARG_TYPE`, or one of {@link ErrorCode}). */
export function typeError(code: string, message: string, options?: { cause?: unknown }): TypeError {
  return Object.assign(new TypeError(message, options), { code });
}

/** A RangeError carrying a `code` (Node's `ERR_OUT_OF_RANGE`, or one of {@link ErrorCode}). */
export function rangeError(code: string, message: string): RangeError {
  return Object.assign(new RangeError(message), { code });
}

/** The TypeError for an item a codec cannot encode: code `ERR_IPC_ENCODE`. */
export function encodeError(message: string, cause?: unknown): TypeError {
  return typeError(ErrorCode.ENCODE, message, cause === undefined ? undefined : { cause });
}

/** The error every call on a closed object throws. */
export function closedError(what: string, syscall: string, path?: string): IPCError {
  return ipcError('EBADF', `${what} is closed`, syscall, path);
}

/** The rejection for an aborted wait: an AbortError whose cause is the signal's reason. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}
