/**
 * Time and randomness, injectable so that tests and the simulator control them. The agent never
 * calls `Date.now`, `setTimeout` or `Math.random` directly.
 */

/** An opaque timer handle returned by `Clock.setTimeout`. */
export type TimerHandle = unknown;

/** A source of time and timers. */
export interface Clock {
  /** Unix milliseconds. */
  now(): number;
  setTimeout(callback: () => void, delayMs: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** A uniform source of numbers in [0, 1), for backoff jitter. */
export type Random = () => number;

/** The real clock. Timers are unref'd so that a pending retry never keeps a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, delayMs) => {
    const handle = setTimeout(callback, delayMs);
    handle.unref();
    return handle;
  },
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** Resolves after `delayMs` on `clock`, or at once when `signal` aborts. */
export function sleep(clock: Clock, delayMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const handle = clock.setTimeout(done, delayMs);
    signal?.addEventListener('abort', done, { once: true });
    function done(): void {
      clock.clearTimeout(handle);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}
