/**
 * Items larger than a queue's message size travel through a side segment: a
 * file in /dev/shm (what `shm_open` creates on Linux) named after the queue,
 * announced by a small descriptor message in the queue. The receiver reads the
 * segment, unlinks it and decodes the bytes as if they had come in the message.
 *
 * Descriptor message layout (all a Python or C reader must know):
 *
 * | offset | size | content                                                  |
 * | ------ | ---- | -------------------------------------------------------- |
 * | 0      | 8    | magic `00 50 49 50 43 42 49 47` (`"\0PIPCBIG"`)          |
 * | 8      | 8    | item length in bytes, unsigned little-endian             |
 * | 16     | rest | segment name, UTF-8, with its leading `/` (shm_open name) |
 *
 * Segment names are `/pipc-mq.<queue name without slash>.<pid>-<seq>-<hex>`.
 * An ordinary message never starts with the magic: an item whose encoded
 * bytes do (possible only with the raw or a custom codec) is sent through a
 * segment too, so "starts with the magic" always means "descriptor".
 * @internal
 * @module
 */
import { closeSync, fchmodSync, fstatSync, ftruncateSync, openSync, readdirSync, readSync, unlinkSync, writeSync, constants as fsConstants } from 'node:fs';
import { fromNodeError, ipcError } from '../core/errors.js';
import { isSegmentOf, NAME_MAX, newSegmentFile, SHM_DIR } from '../core/names.js';
import { rangeError } from '../core/validate.js';

/** The first 8 bytes of a descriptor message. */
export const LARGE_MAGIC: Buffer = Buffer.from('\0PIPCBIG', 'latin1');
/** Bytes before the segment name in a descriptor. */
export const LARGE_HEADER = 16;

/** An fs error as an IPCError, keeping errno and naming the segment. */
function fsError(err: unknown, syscall: string, name: string): unknown {
  return fromNodeError(err, syscall, name);
}

/** True if `bytes` starts with the descriptor magic. */
export function hasMagic(bytes: Uint8Array): boolean {
  if (bytes.length < LARGE_MAGIC.length || bytes[0] !== 0) return false;
  for (let i = 1; i < LARGE_MAGIC.length; i++) if (bytes[i] !== LARGE_MAGIC[i]) return false;
  return true;
}

/**
 * Writes `bytes` to a new side segment of queue `queueName` and returns the
 * descriptor message to send in its place, with the segment's name so the
 * sender can remove it if the descriptor is never sent.
 */
export function writeLarge(queueName: string, bytes: Uint8Array, mode: number, msgsize: number): { bytes: Buffer; segment: string } {
  const file = newSegmentFile(queueName);
  if (Buffer.byteLength(file) > NAME_MAX) {
    throw rangeError(
      'ERR_OUT_OF_RANGE',
      `An item of ${bytes.length} bytes is larger than the maxMessageSize (${msgsize}) of queue '${queueName}' and must travel through a side segment, but the segment name would be longer than ${NAME_MAX} bytes; use a queue name of at most ${NAME_MAX - (Buffer.byteLength(file) - Buffer.byteLength(queueName) + 1)} bytes`,
    );
  }
  const segment = '/' + file;
  const descriptorLength = LARGE_HEADER + Buffer.byteLength(segment);
  if (descriptorLength > msgsize) {
    throw rangeError(
      'ERR_OUT_OF_RANGE',
      `An item of ${bytes.length} bytes does not fit the maxMessageSize (${msgsize}) of queue '${queueName}', and neither does the ${descriptorLength}-byte descriptor of a side segment; use a queue with maxMessageSize >= ${descriptorLength}`,
    );
  }
  const path = `${SHM_DIR}/${file}`;
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL, mode);
  } catch (err) {
    throw fsError(err, 'open', segment);
  }
  try {
    // The queue's own mode, not what this process's umask leaves of it: a
    // receiver of another uid must be able to read it, and to empty it when
    // sticky /dev/shm does not let it remove the name.
    fchmodSync(fd, mode);
    let off = 0;
    while (off < bytes.length) off += writeSync(fd, bytes, off, bytes.length - off);
  } catch (err) {
    closeSync(fd);
    removeSegment(segment);
    throw fsError(err, 'write', segment);
  }
  closeSync(fd);
  const descriptor = Buffer.allocUnsafe(descriptorLength);
  LARGE_MAGIC.copy(descriptor, 0);
  descriptor.writeBigUInt64LE(BigInt(bytes.length), 8);
  descriptor.write(segment, LARGE_HEADER, 'utf8');
  return { bytes: descriptor, segment };
}

/**
 * Whose side segments a receiver reads: its own uid's, the queue owner's, and,
 * when the queue's mode lets group or others write to it, any uid's (any of
 * them may be the sender, and a message queue does not tell a receiver who
 * sent a message). `null`: any uid.
 */
export function segmentOwners(queueUid: number | undefined, queueMode: number | undefined): Set<number> | null {
  if (queueMode !== undefined && (queueMode & 0o022) !== 0) return null;
  const uids = new Set<number>();
  const self = process.geteuid?.();
  if (self !== undefined) uids.add(self);
  if (queueUid !== undefined) uids.add(queueUid);
  return uids;
}

function badSegment(code: 'EINVAL' | 'EPERM' | 'EIO', what: string, segment: string): Error {
  return ipcError(code, `side segment ${what}`, 'read', segment);
}

/**
 * Reads and unlinks the segment a descriptor names. Only segments of this
 * queue are accepted: a forged descriptor cannot make the reader unlink
 * another file. What is at the name is checked before a byte is read: it is
 * opened without following a symlink and without blocking on a FIFO, and must
 * be a regular file with one link (not a hard link to another file), owned
 * as `owners` allows (see segmentOwners), holding exactly the announced length.
 */
export function readLarge(queueName: string, descriptor: Buffer, owners: Set<number> | null = segmentOwners(undefined, undefined)): Buffer {
  const length = descriptor.readBigUInt64LE(8);
  const segment = descriptor.toString('utf8', LARGE_HEADER);
  const file = segment.slice(1);
  if (!segment.startsWith('/') || !isSegmentOf(queueName, file)) {
    throw ipcError('EINVAL', `descriptor names '${segment}', not a side segment of this queue`, 'mq_receive', queueName);
  }
  const path = `${SHM_DIR}/${file}`;
  const flags = fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
  let fd: number;
  let writable = true;
  try {
    try {
      // Read-write if we may: it lets us empty the segment when its name is
      // not ours to remove (another user's, in sticky /dev/shm).
      fd = openSync(path, fsConstants.O_RDWR | flags);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EACCES') throw err;
      writable = false;
      fd = openSync(path, fsConstants.O_RDONLY | flags);
    }
  } catch (err) {
    removeSegment(segment);
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ELOOP') throw badSegment('EINVAL', 'is a symbolic link, which is never followed', segment);
    if (e.code === 'EISDIR') throw badSegment('EINVAL', 'is a directory, not a regular file', segment);
    throw fsError(err, 'open', segment);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw badSegment('EINVAL', `is ${st.isFIFO() ? 'a FIFO' : 'not a regular file'}, not a regular file`, segment);
    if (st.nlink !== 1) throw badSegment('EINVAL', `has ${st.nlink} links: a hard link to some other file, not a segment`, segment);
    if (owners !== null && !owners.has(st.uid)) {
      throw badSegment('EPERM', `is owned by uid ${st.uid}, neither this process's nor the queue owner's`, segment);
    }
    if (BigInt(st.size) !== length) {
      throw badSegment('EIO', `holds ${st.size} bytes, the descriptor announced ${length}`, segment);
    }
    const data = Buffer.allocUnsafe(st.size);
    let off = 0;
    try {
      while (off < data.length) {
        const n = readSync(fd, data, off, data.length - off, off);
        if (n === 0) break;
        off += n;
      }
    } catch (err) {
      throw fsError(err, 'read', segment);
    }
    if (off !== data.length) throw badSegment('EIO', `holds ${off} bytes, the descriptor announced ${length}`, segment);
    return data;
  } finally {
    if (!removeSegment(segment) && writable) {
      // Not ours to unlink: empty it, so that its memory comes back now; the
      // empty name stays until its owner (or Queue.unlink() run by it or
      // root) removes it.
      try {
        ftruncateSync(fd, 0);
      } catch {
        // Nothing more we can do from here.
      }
    }
    closeSync(fd);
  }
}

/**
 * Segments written for puts that wait for room: not yet announced, so no
 * reader will ever take them if this process ends now. They are removed when
 * the process exits (process.exit(), the event loop's end, an uncaught
 * exception); a signal that kills the process, or terminating the worker
 * that made them, still leaves them (Queue.unlink() removes them).
 */
const unannounced = new Set<string>();
let exitHook = false;

/** Records a waiting put's segments (messages from index `from` on). */
export function waitingSegments(messages: ReadonlyArray<{ segment: string | undefined }>, from: number): void {
  for (let i = from; i < messages.length; i++) {
    const s = messages[i]!.segment;
    if (s !== undefined) unannounced.add(s);
  }
  if (!exitHook && unannounced.size > 0) {
    exitHook = true;
    process.once('exit', () => {
      for (const s of unannounced) removeSegment(s);
    });
  }
}

/** The descriptors of messages [from, to) were sent: their segments belong to the readers now. */
export function announcedSegments(messages: ReadonlyArray<{ segment: string | undefined }>, from: number, to: number): void {
  for (let i = from; i < to; i++) {
    const s = messages[i]!.segment;
    if (s !== undefined) unannounced.delete(s);
  }
}

/** Unlinks one segment; a segment already gone is fine. False when it is there but not ours to remove (EPERM). */
export function removeSegment(segment: string): boolean {
  unannounced.delete(segment);
  try {
    unlinkSync(`${SHM_DIR}/${segment.slice(1)}`);
  } catch (err) {
    // ENOENT: already taken by a reader or removed by unlink(): nothing left to do.
    const code = (err as NodeJS.ErrnoException).code;
    return code !== 'EPERM' && code !== 'EACCES';
  }
  return true;
}

/** Removes every side segment of queue `queueName` still pending; returns how many. */
export function removeAllSegments(queueName: string): number {
  let n = 0;
  let entries: string[];
  try {
    entries = readdirSync(SHM_DIR);
  } catch {
    return 0;
  }
  for (const e of entries) {
    if (isSegmentOf(queueName, e)) {
      removeSegment('/' + e);
      n += 1;
    }
  }
  return n;
}
