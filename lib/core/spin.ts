/**
 * How long a wait that finds nothing first spins on the event loop's thread
 * (milliseconds) before it hands over to an engine thread: an answer from
 * another process within that time is seen with no thread wake-up and no hop
 * back to the loop. POSIX_IPC_WAIT_SPIN_US (microseconds, default 30; 0:
 * never spin), read at load. Used by Semaphore.acquire() and the waits of
 * Event, Barrier, Condition and JoinableQueue.
 */
let spinMs = Math.max(0, Number(process.env.POSIX_IPC_WAIT_SPIN_US ?? 30) || 0) / 1000;

/** The spin before a wait, in milliseconds. */
export function waitSpinMs(): number {
  return spinMs;
}

/** @internal For benchmarks: sets this thread's spin before a wait (microseconds). */
export function setWaitSpinUs(us: number): void {
  spinMs = Math.max(0, us) / 1000;
}
