/**
 * Exponential backoff with full jitter: the delay before retry `attempt` (0-based) is drawn
 * uniformly from [0, min(capMs, baseMs * 2^attempt)). Full jitter spreads a fleet's retries
 * after a common outage instead of synchronising them.
 */
import { fbError } from './errors.js';

export interface BackoffOptions {
  /** Upper bound of the first delay, in milliseconds. */
  readonly baseMs: number;
  /** Largest delay, in milliseconds. */
  readonly capMs: number;
  /** Most attempts; `Infinity` for none. */
  readonly maxAttempts: number;
  /** Source of uniform numbers in [0, 1); injectable for tests. */
  readonly random?: () => number;
}

/** The delay before retry `attempt` (0-based), with full jitter. */
export function backoffDelayMs(
  attempt: number,
  options: Pick<BackoffOptions, 'baseMs' | 'capMs' | 'random'>,
): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 52));
  return Math.floor((options.random ?? Math.random)() * ceiling);
}

/** Counts attempts and hands out delays until the attempt budget is spent. */
export class Backoff {
  private attempt = 0;
  private readonly options: BackoffOptions;

  /** @throws FetchbackError `FB_ERR_ARGUMENT` for a non-positive base, cap or budget. */
  constructor(options: BackoffOptions) {
    if (!(options.baseMs > 0) || !(options.capMs >= options.baseMs) || !(options.maxAttempts > 0)) {
      throw fbError('FB_ERR_ARGUMENT', 'backoff needs 0 < baseMs <= capMs and maxAttempts > 0');
    }
    this.options = options;
  }

  /** Attempts made so far. */
  get attempts(): number {
    return this.attempt;
  }

  /** True while another attempt is allowed. */
  get canRetry(): boolean {
    return this.attempt < this.options.maxAttempts;
  }

  /**
   * Records an attempt and returns the delay to wait before it.
   *
   * @throws FetchbackError `FB_ERR_RETRIES_EXHAUSTED` once `maxAttempts` attempts were made.
   */
  next(): number {
    if (!this.canRetry) {
      throw fbError('FB_ERR_RETRIES_EXHAUSTED', `${this.attempt} attempts`);
    }
    return backoffDelayMs(this.attempt++, this.options);
  }

  /** Starts over after a success. */
  reset(): void {
    this.attempt = 0;
  }
}
