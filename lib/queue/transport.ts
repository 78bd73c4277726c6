/**
 * The seam between `Queue` (Python's semantics, codecs, waiters, side
 * segments) and what carries its messages. The POSIX message queue
 * (mq.ts) implements it now; a shared-memory ring or a Redis list is another
 * implementation of the same interface.
 *
 * Every call is non-blocking except the `...Sync` ones; readiness is
 * reported through `watch`, on the event loop.
 * @internal
 * @module
 */

/** `watch` interest: a message may be received. */
export const READABLE = 1;
/** `watch` interest: a message may be sent. */
export const WRITABLE = 2;

/** Called on the event loop when the transport may be ready (status < 0: -errno of a failure). */
export type ReadyCallback = (status: number) => void;

export interface TransportAttributes {
  /** Capacity in messages. */
  maxsize: number;
  /** The largest message in bytes. */
  maxMessageSize: number;
  /** Messages in it now, from every process. */
  size: number;
}

export interface QueueTransport {
  /** Capacity in messages. */
  readonly maxsize: number;
  /** The largest message in bytes; larger items travel in side segments. */
  readonly maxMessageSize: number;
  /** Permission bits of the object: side segments are made with them. */
  readonly mode: number;
  /** The uid that owns the object, when the transport knows it (side segments of that uid are read). */
  readonly uid: number | undefined;
  attributes(): TransportAttributes;
  /** Messages in it now. */
  size(): number;
  /** True when not even an empty item fits now; without it, `size() >= maxsize`. */
  full?(): boolean;
  /**
   * How long (ms) a get that finds the transport empty may spin on the event
   * loop's thread, looking with `readable()`, before it waits (0 or absent:
   * it waits at once).
   */
  readonly spinMs?: number;
  /** A cheap look (no system call): true when an item seems there now. Only with `spinMs`. */
  readable?(): boolean;
  /** Only with `spinMs`: a number that changes with every item put (by any process). */
  putSeq?(): number;
  /** Sends one message; false when full. */
  send(bytes: Uint8Array, priority: number): boolean;
  /** Sends the UTF-8 of `text` (the caller ensures it fits); false when full. */
  sendText(text: string, priority: number): boolean;
  /**
   * Sends the JSON text parts[0] + literal(strings[0]) + parts[1] + ...
   * (codec jsonParts), quoting the long strings natively: 1 sent, 0 full,
   * -1 not done (the caller sends the joined text instead).
   */
  sendJsonParts?(parts: string[], strings: string[]): number;
  /** Sends bytes[start..] in order until full; how many were sent. */
  sendMany(bytes: Uint8Array[], priority: number, start: number): number;
  /**
   * Receives one message into `into`: its length, or -1 when empty. A
   * transport whose messages may be longer than `into` returns -2 - length
   * and keeps the message (mq: `into` always has maxMessageSize bytes).
   */
  receiveInto(into: Buffer): number;
  /** Optional: receives one message into a Buffer of its own (one copy; for the raw codec); null when empty. */
  receiveBytes?(): Buffer | null;
  /** The priority of the message received last. */
  lastPriority(): number;
  /** Blocks up to timeoutMs (< 0: forever); false when it timed out. */
  sendSync(bytes: Uint8Array, priority: number, timeoutMs: number): boolean;
  /** Blocks up to timeoutMs (< 0: forever); null when it timed out. */
  receiveSync(timeoutMs: number): Buffer | null;
  /**
   * Tells the transport what the waiters need now (READABLE | WRITABLE; 0:
   * nothing). `onReady` runs when that may be possible; the loop is kept
   * alive only while there is interest.
   */
  watch(events: number, onReady: ReadyCallback): void;
  /** Releases it (idempotent for the transport's own state; Queue calls it once). */
  close(): void;
}

/** What a queue asks of a transport when it opens. */
export interface TransportOpenRequest {
  /** The OS name, with its leading slash. */
  name: string;
  create: boolean;
  exclusive: boolean;
  mode: number;
  /** Requested capacity, or undefined: the existing one or the system default. */
  maxsize: number | undefined;
  /** Requested message size, or undefined: the existing one or the system default. */
  maxMessageSize: number | undefined;
  /** Whose existing object to open (validateOwner's number): -1 any uid, otherwise only that uid's (EPERM). */
  owner: number;
}
