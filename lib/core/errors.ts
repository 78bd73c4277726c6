/**
 * Errors raised by posix-ipc.
 *
 * Operating-system failures are {@link IPCError}s shaped like Node's own
 * `SystemError` (`code`, `errno`, `syscall`, `path`). Bad arguments are
 * `TypeError`/`RangeError` with Node's `code`s (see `validate.ts`).
 * @module
 */

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

const ERRNO: Record<string, number> = {
  EPERM: 1,
  EBADF: 9,
  EAGAIN: 11,
  EINVAL: 22,
  ETIMEDOUT: 110,
  EMSGSIZE: 90,
};

/** Builds an IPCError for a state error detected in JavaScript. */
export function ipcError(code: keyof typeof ERRNO | string, description: string, syscall: string, path?: string): IPCError {
  const errno = ERRNO[code] ?? 0;
  const where = path === undefined ? syscall : `${syscall} '${path}'`;
  return new IPCError(`${code}: ${description}, ${where}`, code, -errno, syscall, path);
}

/** The error every call on a closed object throws. */
export function closedError(what: string, syscall: string, path?: string): IPCError {
  return ipcError('EBADF', `${what} is closed`, syscall, path);
}

/** The rejection for an aborted wait: an AbortError whose cause is the signal's reason. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}
