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
import { closeSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync, constants as fsConstants } from 'node:fs';
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
 * Reads and unlinks the segment a descriptor names. Only segments of this
 * queue are accepted: a forged descriptor cannot make the reader unlink
 * another file.
 */
export function readLarge(queueName: string, descriptor: Buffer): Buffer {
  const length = descriptor.readBigUInt64LE(8);
  const segment = descriptor.toString('utf8', LARGE_HEADER);
  const file = segment.slice(1);
  if (!segment.startsWith('/') || !isSegmentOf(queueName, file)) {
    throw ipcError('EINVAL', `descriptor names '${segment}', not a side segment of this queue`, 'mq_receive', queueName);
  }
  let data: Buffer;
  try {
    data = readFileSync(`${SHM_DIR}/${file}`);
  } catch (err) {
    throw fsError(err, 'open', segment);
  } finally {
    removeSegment(segment);
  }
  if (BigInt(data.length) !== length) {
    throw ipcError('EIO', `side segment holds ${data.length} bytes, the descriptor announced ${length}`, 'read', segment);
  }
  return data;
}

/** Unlinks one segment; a segment already gone is fine. */
export function removeSegment(segment: string): void {
  try {
    unlinkSync(`${SHM_DIR}/${segment.slice(1)}`);
  } catch {
    // Already taken by a reader or removed by unlink(): nothing left to do.
  }
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
