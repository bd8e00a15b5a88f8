/**
 * What the API and the CLI see of a rollout: its stored fields plus device counts per state,
 * per wave and for the rollback. Built from the store on every read, so it is never stale.
 */
import type { RolloutStrategy, RolloutTarget } from './model.js';
import { DEVICE_STATES, ROLLBACK_STATES } from './outcomes.js';
import type { DeviceState, RollbackState } from './outcomes.js';
import type { RolloutDeviceRecord, RolloutRecord, RolloutStore, WaveState } from './store.js';
import type { RolloutState } from './transitions.js';

export type StateCounts = Record<DeviceState, number>;

export interface WaveView {
  readonly wave: number;
  readonly size: number;
  readonly state: WaveState;
  readonly startedAt: number | null;
  readonly soakStartedAt: number | null;
  readonly finishedAt: number | null;
  readonly counts: StateCounts;
}

export interface RolloutView {
  readonly id: string;
  readonly name: string;
  readonly releaseId: string;
  readonly target: RolloutTarget;
  readonly strategy: RolloutStrategy;
  readonly state: RolloutState;
  readonly reason: string | null;
  readonly currentWave: number;
  readonly startAt: number | null;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
  readonly totalDevices: number;
  readonly counts: StateCounts;
  readonly rollback: Record<RollbackState, number>;
  readonly waves: readonly WaveView[];
}

export interface RolloutDeviceView {
  readonly deviceId: string;
  readonly wave: number;
  readonly state: DeviceState;
  readonly attempts: number;
  readonly seq: number | null;
  readonly assignedAt: number | null;
  readonly nextAttemptAt: number | null;
  readonly lastCode: string | null;
  readonly lastStatus: string | null;
  readonly previousReleaseId: string | null;
  readonly rollbackState: RollbackState | null;
  readonly rollbackSeq: number | null;
  readonly updatedAt: number;
}

function zeroCounts(): StateCounts {
  return Object.fromEntries(DEVICE_STATES.map((s) => [s, 0])) as StateCounts;
}

/** Assembles the view of `record` with fresh counts. */
export function rolloutView(store: RolloutStore, record: RolloutRecord): RolloutView {
  const { byWave, rollback } = store.counts(record.id);
  const counts = zeroCounts();
  const perWave = new Map<number, StateCounts>();
  for (const row of byWave) {
    counts[row.state] += row.n;
    const c = perWave.get(row.wave) ?? zeroCounts();
    c[row.state] += row.n;
    perWave.set(row.wave, c);
  }
  const rollbackCounts = Object.fromEntries(ROLLBACK_STATES.map((s) => [s, 0])) as Record<
    RollbackState,
    number
  >;
  for (const row of rollback) rollbackCounts[row.state] += row.n;
  const { failureBaseFailed: _f, failureBaseTerminal: _t, ...fields } = record;
  return {
    ...fields,
    totalDevices: Object.values(counts).reduce((a, b) => a + b, 0),
    counts,
    rollback: rollbackCounts,
    waves: store
      .waves(record.id)
      .map((w) => ({ ...w, counts: perWave.get(w.wave) ?? zeroCounts() })),
  };
}

export function deviceView(d: RolloutDeviceRecord): RolloutDeviceView {
  return {
    deviceId: d.deviceId,
    wave: d.wave,
    state: d.state,
    attempts: d.attempts,
    seq: d.assignedSeq,
    assignedAt: d.assignedAt,
    nextAttemptAt: d.nextAttemptAt,
    lastCode: d.lastCode,
    lastStatus: d.lastStatus,
    previousReleaseId: d.previousReleaseId,
    rollbackState: d.rollbackState,
    rollbackSeq: d.rollbackSeq,
    updatedAt: d.updatedAt,
  };
}
