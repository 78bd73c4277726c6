// Issue 16.14: unknown option keys used to be ignored silently ({ intialValue: 3 }
// gave 1, { timeOut: 50 } waited forever). Now each is a TypeError that names
// the nearest known key.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  BoundedSemaphore,
  Client,
  Connection,
  Listener,
  Lock,
  NamedPipe,
  Pipe,
  Queue,
  Semaphore,
  SharedArray,
  SharedMemory,
  Value,
} from '../../lib/index.js';
import { nearestKey } from '../../lib/core/validate.js';
import { uniqueName } from '../helpers/index.js';

const unknown = (key: string, hint: string) =>
  expect.objectContaining({ name: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining(`"${key}": ${hint}`) });

describe('unknown option keys are rejected with the nearest known one', () => {
  it('suggests a near key, or lists the known ones', () => {
    expect(nearestKey('intialValue', ['initialValue', 'create', 'exclusive', 'mode'])).toBe('initialValue');
    expect(nearestKey('timeOut', ['timeout', 'signal'])).toBe('timeout');
    expect(nearestKey('banana', ['timeout', 'signal'])).toBeUndefined();
  });

  it('semaphores, before anything is opened', () => {
    const name = uniqueName('opts');
    expect(() => new Semaphore(name, { intialValue: 3 } as never)).toThrow(unknown('intialValue', 'did you mean initialValue?'));
    expect(() => new Semaphore(name, { maxValue: 3 } as never)).toThrow(unknown('maxValue', 'known options are'));
    expect(() => new BoundedSemaphore(name, { maxvalue: 3 } as never)).toThrow(unknown('maxvalue', 'did you mean maxValue?'));
    expect(() => new Lock(name, { exclusiv: true } as never)).toThrow(unknown('exclusiv', 'did you mean exclusive?'));
    expect(() => Semaphore.unlink(name)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('queues, their waits and their iteration', async () => {
    const name = uniqueName('opts');
    expect(() => new Queue(name, { maxSize: 3 } as never)).toThrow(unknown('maxSize', 'did you mean maxsize?'));
    const q = new Queue<number>(name);
    try {
      await expect(q.get({ timeOut: 50 } as never)).rejects.toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(q.getMany(2, { timeOut: 50 } as never)).rejects.toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(q.put(1, { priorty: 1 } as never)).rejects.toThrow(unknown('priorty', 'did you mean priority?'));
      await expect(q.putMany([1], { priorty: 1 } as never)).rejects.toThrow(unknown('priorty', 'did you mean priority?'));
      expect(() => q.putNowait(1, { timeout: 1 } as never)).toThrow(unknown('timeout', 'known options are priority'));
      expect(() => q.putSync(1, { signal: undefined } as never)).toThrow(unknown('signal', 'known options are'));
      expect(() => q.getSync({ timeOut: 1 } as never)).toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(q.iterate({ signa: undefined } as never).next()).rejects.toThrow(unknown('signa', 'did you mean signal?'));
      expect(q.qsize()).toBe(0);
    } finally {
      q.close();
      Queue.unlink(name);
    }
  });

  it('shared memory, values and arrays', () => {
    expect(() => new SharedMemory({ name: 'frame', size: 100 } as never)).toThrow(
      expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining('pass the name as the first argument') }),
    );
    expect(() => new SharedMemory(uniqueName('opts'), { create: true, sise: 100 } as never)).toThrow(unknown('sise', 'did you mean size?'));
    expect(() => new Value('i', 0, { nmae: 'x' } as never)).toThrow(unknown('nmae', 'did you mean name?'));
    expect(() => new SharedArray('d', 4, { readonly: true } as never)).toThrow(unknown('readonly', 'did you mean readOnly?'));
  });

  it('pipes, connections, listeners and clients', async () => {
    expect(() => Pipe({ duplx: false } as never)).toThrow(unknown('duplx', 'did you mean duplex?'));
    const [a, b] = Pipe();
    try {
      await expect(a.recv({ timeOut: 5 } as never)).rejects.toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(a.recvBytes(10, { timeOut: 5 } as never)).rejects.toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(a.poll(1, { timeout: 5 } as never)).rejects.toThrow(unknown('timeout', 'known options are signal'));
    } finally {
      a.close();
      b.close();
    }
    expect(() => new Connection(0, { codex: 'raw' } as never)).toThrow(unknown('codex', 'did you mean codec?'));
    expect(() => NamedPipe.create('/tmp/x', { mod: 0o600 } as never)).toThrow(unknown('mod', 'did you mean mode?'));
    await expect(NamedPipe.open('/tmp/x', 'r', { timout: 5 } as never)).rejects.toThrow(unknown('timout', 'did you mean timeout?'));
    const path = join(tmpdir(), uniqueName('opts') + '.sock');
    expect(() => new Listener(path, { authKey: 'k' } as never)).toThrow(unknown('authKey', 'did you mean authkey?'));
    const l = new Listener(path);
    try {
      await expect(l.accept({ timeOut: 5 } as never)).rejects.toThrow(unknown('timeOut', 'did you mean timeout?'));
      await expect(Client(path, { authKey: 'k' } as never)).rejects.toThrow(unknown('authKey', 'did you mean authkey?'));
    } finally {
      l.close();
    }
  });
});
