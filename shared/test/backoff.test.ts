import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { Backoff, backoffDelayMs, isFetchbackError } from '@fetchback/shared';

describe('exponential backoff with full jitter (docs/protocol.md §8)', () => {
  it('draws every delay from [0, min(cap, base * 2^attempt))', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 0, max: 1_000_000 }),
        fc.integer({ min: 0, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, extraCapMs, attempt, r) => {
          const capMs = baseMs + extraCapMs;
          const delay = backoffDelayMs(attempt, { baseMs, capMs, random: () => r });
          const ceiling = Math.min(capMs, baseMs * 2 ** attempt);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThan(ceiling);
        },
      ),
    );
  });

  it('reaches the top of its range with the largest random draw and 0 with the smallest', () => {
    const options = { baseMs: 100, capMs: 10_000 };
    expect(backoffDelayMs(3, { ...options, random: () => 0 })).toBe(0);
    expect(backoffDelayMs(3, { ...options, random: () => 0.999_999 })).toBe(799);
    expect(backoffDelayMs(0, { ...options, random: () => 0.5 })).toBe(50);
  });

  it('never exceeds the cap however many attempts were made', () => {
    const options = { baseMs: 100, capMs: 5_000, random: () => 0.999_999_9 };
    for (const attempt of [6, 7, 10, 52, 53, 1000]) {
      expect(backoffDelayMs(attempt, options)).toBe(4_999);
    }
  });

  it('spreads delays over the whole range rather than clustering (full jitter)', () => {
    const delays = Array.from({ length: 2000 }, () =>
      backoffDelayMs(4, { baseMs: 100, capMs: 100_000 }),
    );
    const ceiling = 1600;
    expect(Math.max(...delays)).toBeLessThan(ceiling);
    expect(Math.max(...delays)).toBeGreaterThan(ceiling * 0.9);
    expect(Math.min(...delays)).toBeLessThan(ceiling * 0.1);
  });

  it('hands out maxAttempts delays, then throws FB_ERR_RETRIES_EXHAUSTED', () => {
    const backoff = new Backoff({ baseMs: 10, capMs: 1000, maxAttempts: 3, random: () => 0.5 });
    expect([backoff.next(), backoff.next(), backoff.next()]).toEqual([5, 10, 20]);
    expect(backoff.attempts).toBe(3);
    expect(backoff.canRetry).toBe(false);
    let caught: unknown;
    try {
      backoff.next();
    } catch (err) {
      caught = err;
    }
    expect(isFetchbackError(caught, 'FB_ERR_RETRIES_EXHAUSTED')).toBe(true);
    expect((caught as { retryable: boolean }).retryable).toBe(true);
  });

  it('starts over from the base delay after reset', () => {
    const backoff = new Backoff({ baseMs: 10, capMs: 1000, maxAttempts: 2, random: () => 0.5 });
    backoff.next();
    backoff.next();
    backoff.reset();
    expect(backoff.attempts).toBe(0);
    expect(backoff.canRetry).toBe(true);
    expect(backoff.next()).toBe(5);
  });

  it('allows unbounded attempts with maxAttempts Infinity', () => {
    const backoff = new Backoff({ baseMs: 1, capMs: 8, maxAttempts: Infinity, random: () => 0.5 });
    for (let i = 0; i < 1000; i++) backoff.next();
    expect(backoff.canRetry).toBe(true);
  });

  const badOptions = [
    { baseMs: 0, capMs: 10, maxAttempts: 1 },
    { baseMs: -1, capMs: 10, maxAttempts: 1 },
    { baseMs: 10, capMs: 5, maxAttempts: 1 },
    { baseMs: 10, capMs: 100, maxAttempts: 0 },
    { baseMs: Number.NaN, capMs: 100, maxAttempts: 1 },
  ];
  for (const options of badOptions) {
    it(`refuses the options ${JSON.stringify(options)} with FB_ERR_ARGUMENT`, () => {
      expect(() => new Backoff(options)).toThrow(
        expect.objectContaining({ code: 'FB_ERR_ARGUMENT' }),
      );
    });
  }
});
