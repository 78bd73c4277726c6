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

/**
 * Decides, per handle, whether a wait spins first. A spin that finds the
 * answer keeps spinning on; after two empty spins in a row the next waits
 * skip it for a random count below 2^(misses-1) (at most 63), so a handle
 * whose peer takes longer than the spin (or is descheduled on a busy
 * machine) burns little, while two peers in a ping-pong that fell out of
 * step (each sleeping while the other spins) fall back into it: a fixed
 * skip count would keep both in lock-step, each always missing the other.
 */
export class SpinGate {
  #misses = 0;
  #skip = 0;

  /** Whether this wait should spin (counts a skipped one). */
  open(): boolean {
    if (this.#skip === 0) return true;
    this.#skip--;
    return false;
  }

  /** The spin found what it waited for. */
  hit(): void {
    this.#misses = 0;
  }

  /** The spin ran out. */
  miss(): void {
    const m = ++this.#misses;
    if (m >= 2) this.#skip = Math.floor(Math.random() * Math.min(64, 2 ** (m - 1)));
  }
}
