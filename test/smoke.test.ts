import { describe, expect, it } from 'vitest';
import { Semaphore } from '../lib/index.js';
import { uniqueName } from './helpers.js';

describe('smoke', () => {
  it('opens, takes and gives back a semaphore', () => {
    const name = uniqueName('smoke');
    const s = new Semaphore(name, { initialValue: 2 });
    try {
      expect(s.tryAcquire()).toBe(true);
      expect(s.value).toBe(1);
      s.release();
      expect(s.value).toBe(2);
    } finally {
      s.unlink();
      s.close();
    }
  });
});
