/**
 * What a rollout is made of: a release, a target and a strategy, and the parser that turns
 * untrusted input (an HTTP body, CLI flags) into a validated, defaulted, frozen value before
 * anything is stored.
 */
import { fbError } from '@fetchback/shared';

/** Which devices a rollout is for. Every given criterion must hold (they are ANDed). */
export interface RolloutTarget {
  readonly deviceIds?: readonly string[];
  readonly hwClass?: string;
  /** Every tag must be present with this value. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Only devices that report running exactly this version. */
  readonly currentVersion?: string;
}

/**
 * One wave, as a cumulative share of the target: `{ percent: 50 }` brings coverage up to half
 * the target, `{ count: 20 }` up to 20 devices. The last wave always takes the rest.
 */
export type WaveSpec = { readonly count: number } | { readonly percent: number };

export type FailureAction = 'pause' | 'abort';

export interface FailureThreshold {
  /** Share of started devices that failed, in percent (0-100). */
  readonly percent: number;
  /** The threshold holds only once at least this many devices failed. */
  readonly minCount: number;
  readonly action: FailureAction;
}

/** Daily window in UTC, `HH:MM`; `start > end` wraps midnight (22:00-04:00). */
export interface MaintenanceWindow {
  readonly start: string;
  readonly end: string;
}

export interface RolloutStrategy {
  readonly waves: readonly WaveSpec[];
  /** How long a wave that met its success threshold must stay healthy before the next starts. */
  readonly soakMs: number;
  /** Share of a wave's devices that must have committed before it can succeed. */
  readonly successThresholdPercent: number;
  readonly failureThreshold: FailureThreshold;
  /** Most devices updating (assigned, downloading, installing) at once. */
  readonly maxConcurrent: number;
  /** Time from an assignment to a committed (or failed) ACK before the device is timed out. */
  readonly deviceTimeoutMs: number;
  /** Re-assignments after a failed or timed-out attempt. */
  readonly maxRetries: number;
  /** Delay before the first retry; doubled per retry, capped at 16 times. */
  readonly retryBackoffMs: number;
  readonly maintenanceWindow: MaintenanceWindow | null;
  /** On abort, assign each moved device the release it ran before the rollout. */
  readonly rollbackOnAbort: boolean;
}

export interface RolloutInput {
  readonly name: string;
  readonly releaseId: string;
  readonly target: RolloutTarget;
  readonly strategy: RolloutStrategy;
  /** Unix ms; a started rollout waits in `scheduled` until then. */
  readonly startAt: number | null;
}

export const DEFAULT_STRATEGY: RolloutStrategy = Object.freeze({
  waves: Object.freeze([{ percent: 100 }]),
  soakMs: 0,
  successThresholdPercent: 95,
  failureThreshold: Object.freeze({ percent: 20, minCount: 1, action: 'pause' as const }),
  maxConcurrent: 100,
  deviceTimeoutMs: 30 * 60_000,
  maxRetries: 2,
  retryBackoffMs: 60_000,
  maintenanceWindow: null,
  rollbackOnAbort: false,
});

/** Most waves in one rollout; a bound on stored and displayed rows. */
export const MAX_WAVES = 20;
/** Most explicit device ids in one target. */
export const MAX_TARGET_DEVICE_IDS = 10_000;

const WINDOW_TIME = /^([01]\d|2[0-3]):([0-5]\d)$/;

type Json = Record<string, unknown>;

function fail(field: string, rule: string, actual: unknown): never {
  const shown = typeof actual === 'string' ? JSON.stringify(actual.slice(0, 40)) : typeof actual;
  throw fbError('FB_ERR_ARGUMENT', `"${field}" expected ${rule}, got ${shown}`, { field });
}

function isObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function int(value: unknown, field: string, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    fail(field, `an integer in [${min}, ${max}]`, value);
  }
  return value as number;
}

function num(value: unknown, field: string, min: number, max: number): number {
  if (typeof value !== 'number' || !(value >= min && value <= max)) {
    fail(field, `a number in [${min}, ${max}]`, value);
  }
  return value;
}

function str(value: unknown, field: string, maxLength = 200): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > maxLength) {
    fail(field, `a non-empty string of at most ${maxLength} characters`, value);
  }
  return value;
}

/** Validates a target; an empty object targets every active device of the release's class. */
export function parseTarget(value: unknown): RolloutTarget {
  if (value === undefined) return Object.freeze({});
  if (!isObject(value)) fail('target', 'an object', value);
  const target: {
    deviceIds?: string[];
    hwClass?: string;
    tags?: Record<string, string>;
    currentVersion?: string;
  } = {};
  if (value.deviceIds !== undefined) {
    const ids = value.deviceIds;
    if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_TARGET_DEVICE_IDS) {
      fail('target.deviceIds', `1 to ${MAX_TARGET_DEVICE_IDS} device ids`, ids);
    }
    target.deviceIds = [...new Set(ids.map((id, i) => str(id, `target.deviceIds[${i}]`, 128)))];
  }
  if (value.hwClass !== undefined) target.hwClass = str(value.hwClass, 'target.hwClass', 64);
  if (value.tags !== undefined) {
    if (!isObject(value.tags)) fail('target.tags', 'an object of strings', value.tags);
    const tags: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.tags)) tags[k] = str(v, `target.tags.${k}`, 200);
    target.tags = tags;
  }
  if (value.currentVersion !== undefined) {
    target.currentVersion = str(value.currentVersion, 'target.currentVersion', 64);
  }
  return Object.freeze(target);
}

function parseWaves(value: unknown): WaveSpec[] {
  if (!Array.isArray(value) || value.length === 0 || value.length > MAX_WAVES) {
    fail('strategy.waves', `1 to ${MAX_WAVES} waves`, value);
  }
  const waves = value.map((w: unknown, i): WaveSpec => {
    const field = `strategy.waves[${i}]`;
    if (isObject(w) && w.percent !== undefined && w.count === undefined) {
      return Object.freeze({ percent: num(w.percent, `${field}.percent`, 0.01, 100) });
    }
    if (isObject(w) && w.count !== undefined && w.percent === undefined) {
      return Object.freeze({ count: int(w.count, `${field}.count`, 1, 1_000_000) });
    }
    return fail(field, 'either {count} or {percent}', w);
  });
  // Waves are cumulative, so within one kind each must reach at least as far as the one before.
  for (let i = 1; i < waves.length; i++) {
    const [a, b] = [waves[i - 1], waves[i]] as [Json, Json];
    const key = 'percent' in a ? 'percent' : 'count';
    if (key in b && (b[key] as number) < (a[key] as number)) {
      fail(`strategy.waves[${i}]`, `a cumulative ${key} not below the wave before`, b[key]);
    }
  }
  return waves;
}

function parseWindow(value: unknown): MaintenanceWindow | null {
  if (value === undefined || value === null) return null;
  if (!isObject(value)) fail('strategy.maintenanceWindow', 'an object {start, end}', value);
  const start = value.start;
  const end = value.end;
  if (typeof start !== 'string' || !WINDOW_TIME.test(start)) {
    fail('strategy.maintenanceWindow.start', 'HH:MM (UTC)', start);
  }
  if (typeof end !== 'string' || !WINDOW_TIME.test(end) || end === start) {
    fail('strategy.maintenanceWindow.end', 'HH:MM (UTC), not equal to start', end);
  }
  return Object.freeze({ start, end });
}

function parseFailureThreshold(value: unknown): FailureThreshold {
  const d = DEFAULT_STRATEGY.failureThreshold;
  if (value === undefined) return d;
  if (!isObject(value)) fail('strategy.failureThreshold', 'an object', value);
  const action = value.action ?? d.action;
  if (action !== 'pause' && action !== 'abort') {
    fail('strategy.failureThreshold.action', '"pause" or "abort"', action);
  }
  return Object.freeze({
    percent: num(value.percent ?? d.percent, 'strategy.failureThreshold.percent', 0, 100),
    minCount: int(value.minCount ?? d.minCount, 'strategy.failureThreshold.minCount', 1, 1e6),
    action,
  });
}

/** Validates a strategy and fills in defaults. */
export function parseStrategy(value: unknown): RolloutStrategy {
  if (value === undefined) return DEFAULT_STRATEGY;
  if (!isObject(value)) fail('strategy', 'an object', value);
  const d = DEFAULT_STRATEGY;
  const day = 24 * 3_600_000;
  const rollback = value.rollbackOnAbort ?? d.rollbackOnAbort;
  if (typeof rollback !== 'boolean') fail('strategy.rollbackOnAbort', 'a boolean', rollback);
  return Object.freeze({
    waves: Object.freeze(value.waves === undefined ? d.waves : parseWaves(value.waves)),
    soakMs: int(value.soakMs ?? d.soakMs, 'strategy.soakMs', 0, 30 * day),
    successThresholdPercent: num(
      value.successThresholdPercent ?? d.successThresholdPercent,
      'strategy.successThresholdPercent',
      0,
      100,
    ),
    failureThreshold: parseFailureThreshold(value.failureThreshold),
    maxConcurrent: int(value.maxConcurrent ?? d.maxConcurrent, 'strategy.maxConcurrent', 1, 1e6),
    deviceTimeoutMs: int(
      value.deviceTimeoutMs ?? d.deviceTimeoutMs,
      'strategy.deviceTimeoutMs',
      1_000,
      30 * day,
    ),
    maxRetries: int(value.maxRetries ?? d.maxRetries, 'strategy.maxRetries', 0, 20),
    retryBackoffMs: int(
      value.retryBackoffMs ?? d.retryBackoffMs,
      'strategy.retryBackoffMs',
      0,
      day,
    ),
    maintenanceWindow: parseWindow(value.maintenanceWindow),
    rollbackOnAbort: rollback,
  });
}

/** Validates a create request (HTTP body or CLI flags) and fills in defaults. */
export function parseRolloutInput(value: unknown): RolloutInput {
  if (!isObject(value)) fail('body', 'an object', value);
  const releaseId = str(value.releaseId, 'releaseId', 128);
  const startAt =
    value.startAt === undefined || value.startAt === null
      ? null
      : int(value.startAt, 'startAt', 0, Number.MAX_SAFE_INTEGER);
  return Object.freeze({
    name: value.name === undefined ? '' : str(value.name, 'name', 200),
    releaseId,
    target: parseTarget(value.target),
    strategy: parseStrategy(value.strategy),
    startAt,
  });
}
