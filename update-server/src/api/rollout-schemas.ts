/**
 * JSON schemas of the rollout routes (request and response), and the mapping of engine views to
 * API bodies (times as ISO 8601 strings, like every other resource of the API).
 */
import { DEVICE_STATES, ROLLBACK_STATES } from '../rollouts/outcomes.js';
import { ROLLOUT_STATES } from '../rollouts/transitions.js';
import type { RolloutDeviceView, RolloutView } from '../rollouts/view.js';

const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;
const time = { type: 'string', format: 'date-time' } as const;
const countsOf = (states: readonly string[]) =>
  ({
    type: 'object',
    required: [...states],
    properties: Object.fromEntries(states.map((s) => [s, { type: 'integer' }])),
  }) as const;

const token = { type: 'string', minLength: 1, maxLength: 128 } as const;

export const targetSchema = {
  type: 'object',
  additionalProperties: false,
  description: 'Every given criterion must hold; the release hardware class always applies.',
  properties: {
    deviceIds: { type: 'array', items: token, minItems: 1, maxItems: 10_000 },
    hwClass: { type: 'string', minLength: 1, maxLength: 64 },
    tags: { type: 'object', additionalProperties: { type: 'string', maxLength: 200 } },
    currentVersion: { type: 'string', minLength: 1, maxLength: 64 },
  },
} as const;

const hhmm = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' } as const;

export const strategySchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    waves: {
      type: 'array',
      minItems: 1,
      maxItems: 20,
      description: 'Cumulative: each wave brings coverage up to its count or percent.',
      items: {
        oneOf: [
          {
            type: 'object',
            additionalProperties: false,
            required: ['count'],
            properties: { count: { type: 'integer', minimum: 1 } },
          },
          {
            type: 'object',
            additionalProperties: false,
            required: ['percent'],
            properties: { percent: { type: 'number', exclusiveMinimum: 0, maximum: 100 } },
          },
        ],
      },
    },
    soakMs: { type: 'integer', minimum: 0 },
    successThresholdPercent: { type: 'number', minimum: 0, maximum: 100 },
    failureThreshold: {
      type: 'object',
      additionalProperties: false,
      properties: {
        percent: { type: 'number', minimum: 0, maximum: 100 },
        minCount: { type: 'integer', minimum: 1 },
        action: { type: 'string', enum: ['pause', 'abort'] },
      },
    },
    maxConcurrent: { type: 'integer', minimum: 1 },
    deviceTimeoutMs: { type: 'integer', minimum: 1000 },
    maxRetries: { type: 'integer', minimum: 0, maximum: 20 },
    retryBackoffMs: { type: 'integer', minimum: 0 },
    maintenanceWindow: {
      type: ['object', 'null'],
      additionalProperties: false,
      required: ['start', 'end'],
      properties: { start: hhmm, end: hhmm },
      description: 'Daily, UTC; start after end wraps midnight.',
    },
    rollbackOnAbort: { type: 'boolean' },
  },
} as const;

export const createRolloutBody = {
  type: 'object',
  additionalProperties: false,
  required: ['releaseId'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 200 },
    releaseId: token,
    target: targetSchema,
    strategy: strategySchema,
    startAt: { type: 'string', format: 'date-time', description: 'start no earlier than this' },
  },
} as const;

const waveSchema = {
  type: 'object',
  required: ['wave', 'size', 'state', 'counts'],
  properties: {
    wave: { type: 'integer', description: '0-based' },
    size: { type: 'integer' },
    state: { type: 'string', enum: ['pending', 'running', 'soaking', 'succeeded'] },
    startedAt: nullableTime,
    soakStartedAt: nullableTime,
    finishedAt: nullableTime,
    counts: countsOf(DEVICE_STATES),
  },
} as const;

export const rolloutSchema = {
  type: 'object',
  required: ['id', 'releaseId', 'state', 'counts', 'waves', 'totalDevices'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    releaseId: { type: 'string' },
    target: targetSchema,
    strategy: strategySchema,
    state: { type: 'string', enum: [...ROLLOUT_STATES] },
    reason: { type: ['string', 'null'] },
    currentWave: { type: 'integer' },
    startAt: nullableTime,
    createdBy: { type: 'string' },
    createdAt: time,
    updatedAt: time,
    startedAt: nullableTime,
    finishedAt: nullableTime,
    totalDevices: { type: 'integer' },
    counts: countsOf(DEVICE_STATES),
    rollback: countsOf(ROLLBACK_STATES),
    waves: { type: 'array', items: waveSchema },
  },
} as const;

export const rolloutDeviceSchema = {
  type: 'object',
  required: ['deviceId', 'wave', 'state', 'attempts'],
  properties: {
    deviceId: { type: 'string' },
    wave: { type: 'integer' },
    state: { type: 'string', enum: [...DEVICE_STATES] },
    attempts: { type: 'integer' },
    seq: { type: ['integer', 'null'] },
    assignedAt: nullableTime,
    nextAttemptAt: nullableTime,
    lastCode: { type: ['string', 'null'] },
    lastStatus: { type: ['string', 'null'] },
    previousReleaseId: { type: ['string', 'null'] },
    rollbackState: { type: ['string', 'null'], enum: [...ROLLBACK_STATES, null] },
    rollbackSeq: { type: ['integer', 'null'] },
    updatedAt: time,
  },
} as const;

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function rolloutBody(v: RolloutView) {
  return {
    ...v,
    startAt: isoOrNull(v.startAt),
    createdAt: iso(v.createdAt),
    updatedAt: iso(v.updatedAt),
    startedAt: isoOrNull(v.startedAt),
    finishedAt: isoOrNull(v.finishedAt),
    waves: v.waves.map((w) => ({
      ...w,
      startedAt: isoOrNull(w.startedAt),
      soakStartedAt: isoOrNull(w.soakStartedAt),
      finishedAt: isoOrNull(w.finishedAt),
    })),
  };
}

export function rolloutDeviceBody(d: RolloutDeviceView) {
  return {
    ...d,
    assignedAt: isoOrNull(d.assignedAt),
    nextAttemptAt: isoOrNull(d.nextAttemptAt),
    updatedAt: iso(d.updatedAt),
  };
}
