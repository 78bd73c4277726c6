/**
 * The POSIX message queue transport (`mq_open`): what Python (posix_ipc,
 * ctypes) and C programs open by the same name. The descriptor is pollable
 * on Linux, so waiting costs no thread: `watch` is a `uv_poll`.
 * @internal
 * @module
 */
import { binding } from '../core/binding.js';
import type { Handle } from '../core/binding.js';
import { ipcError } from '../core/errors.js';
import { explainOpenError, mqueueSetting } from './limits.js';
import type { QueueTransport, ReadyCallback, TransportAttributes, TransportOpenRequest } from './transport.js';

export class MqTransport implements QueueTransport {
  readonly #h: Handle;
  readonly maxsize: number;
  readonly maxMessageSize: number;
  readonly mode: number;
  readonly uid: number | undefined;

  /**
   * Opens (or creates) the queue. @throws IPCError from mq_open (with the
   * limit explained), or EINVAL when an existing queue's attributes differ
   * from the requested ones.
   */
  constructor(req: TransportOpenRequest) {
    const { name, create, exclusive, mode, maxsize, maxMessageSize: msgsize } = req;
    let wantMax = 0;
    let wantSize = 0;
    if (maxsize !== undefined || msgsize !== undefined) {
      wantMax = maxsize ?? mqueueSetting('msg_default', 10);
      wantSize = msgsize ?? mqueueSetting('msgsize_default', 8192);
    }
    let h: Handle;
    try {
      h = binding.mqOpen(name, create, exclusive, mode, wantMax, wantSize);
    } catch (err) {
      throw explainOpenError(err, create, wantMax || mqueueSetting('msg_default', 10), wantSize || mqueueSetting('msgsize_default', 8192));
    }
    const attr = binding.mqAttr(h);
    if (req.owner >= 0 && attr.uid !== undefined && attr.uid !== req.owner) {
      binding.mqClose(h);
      throw ipcError(
        'EPERM',
        `the queue is owned by uid ${attr.uid}, not uid ${req.owner} (pass owner: 'any' or owner: ${attr.uid} to accept it)`,
        'mq_open',
        name,
      );
    }
    if ((maxsize !== undefined && attr.maxmsg !== maxsize) || (msgsize !== undefined && attr.msgsize !== msgsize)) {
      binding.mqClose(h);
      throw ipcError(
        'EINVAL',
        `the queue exists with maxsize ${attr.maxmsg} and maxMessageSize ${attr.msgsize}, not the requested ` +
          `maxsize ${maxsize ?? attr.maxmsg} and maxMessageSize ${msgsize ?? attr.msgsize}; open it without them or unlink it first`,
        'mq_open',
        name,
      );
    }
    this.#h = h;
    this.maxsize = attr.maxmsg;
    this.maxMessageSize = attr.msgsize;
    this.mode = attr.mode ?? mode;
    this.uid = attr.uid;
  }

  /** Opens the existing queue `name` and closes it again. @throws IPCError (ENOENT when there is none) */
  static probe(name: string): void {
    binding.mqClose(binding.mqOpen(name, false, false, 0, 0, 0));
  }

  /** Removes the queue `name` (mq_unlink). */
  static unlink(name: string): void {
    binding.mqUnlink(name);
  }

  attributes(): TransportAttributes {
    const a = binding.mqAttr(this.#h);
    return { maxsize: a.maxmsg, maxMessageSize: a.msgsize, size: a.curmsgs };
  }

  size(): number {
    return binding.mqCurmsgs(this.#h);
  }

  send(bytes: Uint8Array, priority: number): boolean {
    return binding.mqSend(this.#h, bytes, priority);
  }

  sendText(text: string, priority: number): boolean {
    return binding.mqSendText(this.#h, text, priority);
  }

  sendMany(bytes: Uint8Array[], priority: number, start: number): number {
    return binding.mqSendMany(this.#h, bytes, priority, start);
  }

  receiveInto(into: Buffer): number {
    return binding.mqReceiveInto(this.#h, into);
  }

  lastPriority(): number {
    return binding.mqLastPriority(this.#h);
  }

  sendSync(bytes: Uint8Array, priority: number, timeoutMs: number): boolean {
    return binding.mqSendSync(this.#h, bytes, priority, timeoutMs);
  }

  receiveSync(timeoutMs: number): Buffer | null {
    return binding.mqReceiveSync(this.#h, timeoutMs);
  }

  watch(events: number, onReady: ReadyCallback): void {
    binding.mqWatch(this.#h, events, onReady);
  }

  close(): void {
    binding.mqClose(this.#h);
  }
}
