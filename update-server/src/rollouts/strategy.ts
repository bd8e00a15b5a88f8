/**
 * The strategy's arithmetic, as pure functions: wave sizes, the maintenance window, retry delays
 * and the thresholds. The engine decides when to ask; these decide the answer.
 */
import type { FailureThreshold, MaintenanceWindow, WaveSpec } from './model.js';

/**
 * Splits a target of `total` devices into waves. Specs are cumulative; the last wave takes
 * whatever is left; a wave that would be empty is dropped. Returns each wave's own size.
 */
export function waveSizes(specs: readonly WaveSpec[], total: number): number[] {
  const sizes: number[] = [];
  let covered = 0;
  specs.forEach((spec, i) => {
    const last = i === specs.length - 1;
    const reach = last
      ? total
      : 'percent' in spec
        ? Math.ceil((spec.percent * total) / 100)
        : spec.count;
    const upTo = Math.min(total, Math.max(covered, reach));
    if (upTo > covered) sizes.push(upTo - covered);
    covered = upTo;
  });
  return sizes;
}

function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number) as [number, number];
  return h * 60 + m;
}

/** True when `nowMs` lies inside the daily UTC window (or there is no window). */
export function inMaintenanceWindow(window: MaintenanceWindow | null, nowMs: number): boolean {
  if (window === null) return true;
  const date = new Date(nowMs);
  const minute = date.getUTCHours() * 60 + date.getUTCMinutes();
  const start = minutesOf(window.start);
  const end = minutesOf(window.end);
  // start > end wraps midnight: 22:00-04:00 holds from 22:00 to 23:59 and 00:00 to 03:59.
  return start < end ? minute >= start && minute < end : minute >= start || minute < end;
}

/** Ceiling on the growth of retry delays, as a multiple of the base delay. */
export const RETRY_BACKOFF_CAP_FACTOR = 16;

/**
 * Delay before retry number `retry` (1-based): base, 2x base, 4x base … capped at 16x. No jitter:
 * a rollout retries a handful of devices at a time, not a fleet at once, and tests stay exact.
 */
export function retryDelayMs(retry: number, baseMs: number): number {
  const factor = Math.min(RETRY_BACKOFF_CAP_FACTOR, 2 ** Math.max(0, retry - 1));
  return baseMs * factor;
}

export interface FailureStats {
  /** Devices that failed for good since the threshold was last reset. */
  readonly failed: number;
  /** Devices started (assigned at least once) that had not finished when it was last reset. */
  readonly started: number;
}

/** True when failures reached both the minimum count and the percentage of started devices. */
export function failureThresholdReached(stats: FailureStats, threshold: FailureThreshold): boolean {
  if (stats.failed < threshold.minCount || stats.started <= 0) return false;
  return (stats.failed * 100) / stats.started >= threshold.percent;
}

/** True when enough of a wave's devices committed. */
export function successThresholdReached(committed: number, size: number, percent: number): boolean {
  if (size <= 0) return true;
  return (committed * 100) / size >= percent;
}
