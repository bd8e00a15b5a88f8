/**
 * Parsers of the `fetchback rollout create` flags: waves (`10%,50%,100%` or `5,20,100`),
 * durations (`90s`, `30m`, `2h`, `1d`, or milliseconds), percentages and the maintenance window
 * (`22:00-04:00`, UTC). Each returns the narrowed value or throws a coded error naming the flag.
 */
import { fbError } from '@fetchback/shared';

import type { WaveSpec } from './rollout-client.js';

function bad(flag: string, rule: string, got: string): never {
  throw fbError('FB_ERR_ARGUMENT', `"--${flag}" expected ${rule}, got ${JSON.stringify(got)}`);
}

/** `10%,50%,100%` (cumulative shares of the target) or `5,20,100` (cumulative counts). */
export function parseWaves(text: string): WaveSpec[] {
  const parts = text.split(',').map((p) => p.trim());
  return parts.map((part) => {
    const percent = /^(\d+(?:\.\d+)?)%$/.exec(part);
    if (percent) {
      const value = Number(percent[1]);
      if (value > 0 && value <= 100) return { percent: value };
    } else if (/^\d+$/.test(part) && Number(part) > 0) {
      return { count: Number(part) };
    }
    return bad('waves', 'a list like 10%,50%,100% or 5,20,100', text);
  });
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `90s`, `30m`, `2h`, `1d`, `500ms`, or a bare number of milliseconds. */
export function parseDuration(flag: string): (text: string) => number {
  return (text) => {
    const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(text.trim());
    if (!match) return bad(flag, 'a duration like 90s, 30m, 2h or 1d', text);
    return Math.round(Number(match[1]) * (UNIT_MS[match[2] ?? 'ms'] ?? 1));
  };
}

/** `95` or `95%`, in [0, 100]. */
export function parsePercent(flag: string): (text: string) => number {
  return (text) => {
    const value = Number(text.trim().replace(/%$/, ''));
    if (!(value >= 0 && value <= 100)) return bad(flag, 'a percentage from 0 to 100', text);
    return value;
  };
}

/** A positive integer (or zero when `allowZero`). */
export function parseCount(flag: string, allowZero = false): (text: string) => number {
  return (text) => {
    const value = Number(text);
    if (!Number.isSafeInteger(value) || value < (allowZero ? 0 : 1)) {
      return bad(flag, allowZero ? 'an integer of 0 or more' : 'a positive integer', text);
    }
    return value;
  };
}

/** `22:00-04:00`: a daily window in UTC; the start after the end wraps midnight. */
export function parseWindow(text: string): { start: string; end: string } {
  const match = /^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]):([0-5]\d)$/.exec(text.trim());
  if (!match) return bad('window', 'HH:MM-HH:MM in UTC, e.g. 22:00-04:00', text);
  return { start: `${match[1]}:${match[2]}`, end: `${match[3]}:${match[4]}` };
}

/** `k=v` into a record (repeatable flag). */
export function collectTag(text: string, previous: Record<string, string> = {}) {
  const eq = text.indexOf('=');
  if (eq <= 0) return bad('tag', 'key=value', text);
  return { ...previous, [text.slice(0, eq)]: text.slice(eq + 1) };
}
