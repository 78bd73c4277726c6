// core/names.ts: the one owner of every naming rule.
import { describe, expect, it } from 'vitest';
import {
  NAME_MAX,
  SEM_RESERVED,
  isSegmentOf,
  newSegmentFile,
  randomSegmentName,
  randomSocketPath,
  semaphoreFile,
  shownAddress,
  validateName,
  validateSemaphoreName,
  validateSocketAddress,
} from '../../lib/core/names.js';

describe('naming rules', () => {
  it('object names: one optional leading slash, NAME_MAX, glibc\'s "sem." for semaphores', () => {
    expect(validateName('jobs')).toBe('/jobs');
    expect(validateName('/jobs')).toBe('/jobs');
    expect(() => validateName('a/b')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE' }));
    expect(validateName('x'.repeat(NAME_MAX))).toBe('/' + 'x'.repeat(NAME_MAX));
    expect(() => validateSemaphoreName('x'.repeat(NAME_MAX - SEM_RESERVED + 1))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
    expect(semaphoreFile('/jobs')).toBe('/dev/shm/sem.jobs');
  });

  it('names the package makes', () => {
    expect(randomSegmentName()).toMatch(/^\/psm_[0-9a-f]{8}$/);
    const file = newSegmentFile('/jobs');
    expect(file).toMatch(new RegExp(`^pipc-mq\\.jobs\\.${process.pid}-\\d+-[0-9a-f]{12}$`));
    expect(isSegmentOf('/jobs', file)).toBe(true);
    expect(isSegmentOf('/job', file)).toBe(false);
    expect(isSegmentOf('/jobs', 'pipc-mq.jobs.../../etc')).toBe(false);
    expect(randomSocketPath()).toMatch(/pipc-listener-\d+-[0-9a-f]{12}\.sock$/);
  });

  it('socket addresses: paths and abstract names', () => {
    expect(validateSocketAddress('\0name')).toBe('\0name');
    expect(shownAddress('\0name')).toBe('@name');
    expect(() => validateSocketAddress('/tmp/' + 'x'.repeat(200))).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE' }));
  });
});
