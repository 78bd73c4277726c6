// Every test file must leave /dev/shm as it found it: no semaphore, segment or
// queue side file named by this test process may survive the file.
import { afterAll } from 'vitest';
import { ourShmEntries } from './helpers.js';

afterAll(() => {
  const left = ourShmEntries();
  if (left.length > 0) {
    throw new Error(`test file leaked names in /dev/shm: ${left.join(', ')}`);
  }
});
