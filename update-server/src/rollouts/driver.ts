/**
 * Drives rollouts: applies lifecycle events from the transition table with their side effects,
 * advances waves, expires timed-out devices, schedules retries and assigns within the window and
 * the concurrency limit. Each decision is one transaction with the rows that record it.
 */
import { fbError, isFetchbackError } from '@fetchback/shared';

import { FAILED, isRetryable, MOVED } from './outcomes.js';
import type { DeviceState } from './outcomes.js';
import type { AssignmentPort, Clock, Logger } from './ports.js';
import type { RolloutDeviceRecord, RolloutRecord, RolloutStore } from './store.js';
import {
  failureThresholdReached,
  inMaintenanceWindow,
  retryDelayMs,
  successThresholdReached,
  waveSizes,
} from './strategy.js';
import { loadDevice, loadRelease, previousReleaseId, resolveTarget } from './target.js';
import { transition } from './transitions.js';
import type { RolloutEvent } from './transitions.js';

export interface DriverDeps {
  readonly store: RolloutStore;
  readonly assignments: AssignmentPort;
  readonly clock: Clock;
  readonly log: Logger;
  /** Emits `rollout.changed`; called after the change is committed. */
  readonly changed: (rolloutId: string, state: string) => void;
  readonly audit: (action: string, target: string, details?: Record<string, unknown>) => void;
}

/** Errors of one device that make it leave the rollout rather than be tried again. */
const DEVICE_GONE = new Set(['FB_ERR_DEVICE_UNKNOWN', 'FB_ERR_DEVICE_DECOMMISSIONED']);

export class RolloutDriver {
  private readonly store: RolloutStore;

  constructor(private readonly deps: DriverDeps) {
    this.store = deps.store;
  }

  get now(): number {
    return this.deps.clock.now();
  }

  tx<T>(fn: () => T): T {
    return this.store.db.transaction(fn)();
  }

  /** @throws FetchbackError `FB_ERR_ROLLOUT_CONFLICT` naming each device and its rollout. */
  refuseConflicts(rolloutId: string, deviceIds: readonly string[]): void {
    const conflicts = this.store.conflicts(deviceIds, rolloutId);
    if (conflicts.size === 0) return;
    const devices = [...conflicts].map(([deviceId, other]) => ({ deviceId, rolloutId: other }));
    throw fbError(
      'FB_ERR_ROLLOUT_CONFLICT',
      devices
        .slice(0, 10)
        .map((d) => d.deviceId)
        .join(', '),
      {
        devices,
      },
    );
  }

  /** draft -> scheduled: fixes the target's devices and the waves, in one transaction. */
  start(record: RolloutRecord): void {
    this.tx(() => {
      const to = transition(record.state, 'start');
      const release = loadRelease(this.store.db, record.releaseId);
      const ids = resolveTarget(this.store.db, record.id, record.target, release);
      this.refuseConflicts(record.id, ids);
      const sizes = waveSizes(record.strategy.waves, ids.length);
      this.store.insertWaves(record.id, sizes);
      let next = 0;
      sizes.forEach((size, wave) => {
        for (const deviceId of ids.slice(next, next + size)) {
          const device = loadDevice(this.store.db, deviceId);
          const previous =
            device === undefined ? null : previousReleaseId(this.store.db, device, release);
          this.store.insertDevice({
            rolloutId: record.id,
            deviceId,
            wave,
            previousReleaseId: previous,
            at: this.now,
          });
        }
        next += size;
      });
      this.store.updateRollout(record.id, { state: to, updatedAt: this.now });
    });
    this.report(record.id, 'scheduled', { devices: this.store.countDevices(record.id) });
  }

  /**
   * Applies `event` to a rollout with its side effects, in one transaction.
   *
   * @throws FetchbackError `FB_ERR_ROLLOUT_TRANSITION` when the table has no such row.
   */
  apply(record: RolloutRecord, event: RolloutEvent, opts: { reason: string | null }): void {
    const now = this.now;
    const to = this.tx(() => {
      const current = this.store.getRollout(record.id) ?? record;
      const next = transition(current.state, event, current.strategy.failureThreshold.action);
      this.store.updateRollout(record.id, { state: next, reason: opts.reason, updatedAt: now });
      if (event === 'schedule-due') this.beginRunning(current, now);
      if (event === 'resume') this.resetFailureBase(current);
      if (next === 'aborted' || next === 'completed') {
        this.store.updateRollout(record.id, { finishedAt: now });
      }
      if (next === 'aborted') this.settleOnAbort(current, now);
      return next;
    });
    this.report(record.id, to, { event, reason: opts.reason });
  }

  private beginRunning(record: RolloutRecord, now: number): void {
    this.store.updateRollout(record.id, { startedAt: now, currentWave: 0 });
    this.store.updateWave(record.id, 0, { state: 'running', startedAt: now });
  }

  /** After a resume the failure threshold judges only what finishes from now on. */
  private resetFailureBase(record: RolloutRecord): void {
    const counts = this.store.failureCounts(record.id);
    this.store.updateRollout(record.id, {
      failureBaseFailed: counts.failed,
      failureBaseTerminal: counts.terminal,
    });
  }

  /** Devices never reached leave; a device waiting for a retry keeps the failure it had. */
  private settleOnAbort(record: RolloutRecord, now: number): void {
    for (const d of this.store.devicesInStates(record.id, ['pending', 'retry_wait'])) {
      const state: DeviceState =
        d.state === 'pending'
          ? 'cancelled'
          : d.lastCode === 'FB_ERR_TIMEOUT'
            ? 'timed_out'
            : 'failed';
      this.store.updateDevice(record.id, d.deviceId, {
        state,
        nextAttemptAt: null,
        updatedAt: now,
      });
    }
  }

  private report(rolloutId: string, state: string, fields: Record<string, unknown>): void {
    this.deps.log.info({ rolloutId, state, ...fields }, 'rollout transition');
    this.deps.changed(rolloutId, state);
  }

  /** One pass over a live rollout: schedule, timeouts, thresholds, waves, completion, assign. */
  step(rolloutId: string): void {
    let record = this.store.getRollout(rolloutId);
    if (record === undefined) return;
    const now = this.now;
    if (record.state === 'scheduled' && (record.startAt === null || record.startAt <= now)) {
      this.apply(record, 'schedule-due', { reason: null });
      record = this.store.getRollout(rolloutId) as RolloutRecord;
    }
    if (record.state !== 'running' && record.state !== 'paused') return;
    this.expireTimeouts(record, now);
    if (record.state !== 'running') return;
    if (this.checkFailureThreshold(record)) return;
    if (this.advanceWaves(record, now)) return;
    if (this.store.unfinished(rolloutId) === 0) {
      this.finishLastWave(record, now);
      this.apply(record, 'all-done', { reason: 'every device finished' });
      return;
    }
    this.assignNext(this.store.getRollout(rolloutId) as RolloutRecord, now);
  }

  private expireTimeouts(record: RolloutRecord, now: number): void {
    const deadline = now - record.strategy.deviceTimeoutMs;
    for (const d of this.store.inFlight(record.id)) {
      if (d.assignedAt !== null && d.assignedAt <= deadline) {
        this.tx(() => this.recordOutcome(record, d, 'timed_out', 'FB_ERR_TIMEOUT', now));
        this.deps.log.warn({ rolloutId: record.id, deviceId: d.deviceId }, 'device timed out');
        this.deps.changed(record.id, record.state);
      }
    }
  }

  /** Stores a device's failure or success, turning a retryable failure into a retry wait. */
  recordOutcome(
    record: RolloutRecord,
    d: RolloutDeviceRecord,
    outcome: DeviceState,
    code: string | null,
    now: number,
  ): void {
    const retry = isRetryable(outcome) && d.attempts <= record.strategy.maxRetries;
    this.store.updateDevice(record.id, d.deviceId, {
      state: retry ? 'retry_wait' : outcome,
      nextAttemptAt: retry ? now + retryDelayMs(d.attempts, record.strategy.retryBackoffMs) : null,
      lastCode: code ?? d.lastCode,
      updatedAt: now,
    });
  }

  private checkFailureThreshold(record: RolloutRecord): boolean {
    const counts = this.store.failureCounts(record.id);
    const stats = {
      failed: counts.failed - record.failureBaseFailed,
      started: counts.started - record.failureBaseTerminal,
    };
    const threshold = record.strategy.failureThreshold;
    if (!failureThresholdReached(stats, threshold)) return false;
    const reason = `failure threshold: ${stats.failed} of ${stats.started} started devices failed`;
    this.apply(record, 'failure-threshold', { reason });
    this.deps.audit(`rollout.${threshold.action}`, record.id, { reason, ...stats });
    if (threshold.action === 'abort') this.rollBack(record.id);
    return true;
  }

  /**
   * Moves the current wave to soaking once it meets its success threshold, and to the next wave
   * once it soaked. Returns true when the rollout had to pause (a finished wave below threshold).
   */
  private advanceWaves(record: RolloutRecord, now: number): boolean {
    const { strategy } = record;
    const waves = this.store.waves(record.id);
    for (let index = record.currentWave; index < waves.length; index++) {
      const wave = waves[index];
      if (wave === undefined) return false;
      const committed = this.store.countDevices(record.id, { wave: index, state: 'committed' });
      const met = successThresholdReached(committed, wave.size, strategy.successThresholdPercent);
      const last = index === waves.length - 1;
      if (wave.state === 'running' && met) {
        this.store.updateWave(record.id, index, { state: 'soaking', soakStartedAt: now });
        this.deps.changed(record.id, record.state);
        if (last) return false;
      } else if (wave.state === 'running') {
        return !last && this.pauseIfWaveStuck(record, index);
      }
      const soakStart = wave.soakStartedAt ?? now;
      if (last || now < soakStart + strategy.soakMs) return false;
      this.tx(() => {
        this.store.updateWave(record.id, index, { state: 'succeeded', finishedAt: now });
        this.store.updateWave(record.id, index + 1, { state: 'running', startedAt: now });
        this.store.updateRollout(record.id, { currentWave: index + 1, updatedAt: now });
      });
      this.apply(record, 'wave-succeeded', { reason: null });
      this.deps.audit('rollout.wave', record.id, { wave: index + 1 });
    }
    return false;
  }

  /** A wave whose devices all finished below the success threshold can never advance. */
  private pauseIfWaveStuck(record: RolloutRecord, wave: number): boolean {
    const open = this.store
      .devices(record.id, { wave })
      .some((d) => !['committed', ...FAILED, 'cancelled'].includes(d.state));
    if (open) return false;
    const reason = `wave ${wave + 1} finished below its success threshold`;
    this.apply(record, 'pause', { reason });
    this.deps.audit('rollout.pause', record.id, { reason });
    return true;
  }

  private finishLastWave(record: RolloutRecord, now: number): void {
    const waves = this.store.waves(record.id);
    const last = waves[waves.length - 1];
    if (last?.state === 'soaking') {
      this.store.updateWave(record.id, last.wave, { state: 'succeeded', finishedAt: now });
    }
  }

  /** Assigns due retries and pending devices of started waves, within window and limit. */
  private assignNext(record: RolloutRecord, now: number): void {
    const { strategy } = record;
    if (!inMaintenanceWindow(strategy.maintenanceWindow, now)) return;
    const slots = strategy.maxConcurrent - this.store.inFlight(record.id).length;
    if (slots <= 0) return;
    const next = this.store.nextToAssign(record.id, record.currentWave, now, slots);
    for (const d of next) this.assignOne(record, d, now);
    if (next.length > 0) this.deps.changed(record.id, record.state);
  }

  private assignOne(record: RolloutRecord, d: RolloutDeviceRecord, now: number): void {
    try {
      this.tx(() => {
        const current = this.store.device(record.id, d.deviceId);
        if (current?.state !== 'pending' && current?.state !== 'retry_wait') return;
        const { seq } = this.assign(d.deviceId, record.releaseId, record.id);
        this.store.updateDevice(record.id, d.deviceId, {
          state: 'assigned',
          attempts: current.attempts + 1,
          assignedSeq: seq,
          assignedAt: now,
          nextAttemptAt: null,
          updatedAt: now,
        });
      });
    } catch (err) {
      this.assignFailed(record, d, err, now);
    }
  }

  /** The one call that assigns; synchronous so that its sequence number commits with our row. */
  private assign(deviceId: string, releaseId: string, rolloutId: string): { seq: number } {
    const result = this.deps.assignments.assign(deviceId, releaseId, { rolloutId });
    if (result instanceof Promise) {
      throw fbError('FB_ERR_INTERNAL', 'the assignment port must answer synchronously');
    }
    return result;
  }

  private assignFailed(
    record: RolloutRecord,
    d: RolloutDeviceRecord,
    err: unknown,
    now: number,
  ): void {
    const code = isFetchbackError(err) ? err.code : 'FB_ERR_INTERNAL';
    const fields = { rolloutId: record.id, deviceId: d.deviceId, code };
    if (DEVICE_GONE.has(code)) {
      this.store.updateDevice(record.id, d.deviceId, {
        state: 'cancelled',
        lastCode: code,
        updatedAt: now,
      });
      this.deps.log.warn(fields, 'device left the rollout');
      return;
    }
    // Anything else (broker down, a bug) leaves the device where it was for the next tick.
    this.deps.log.error({ ...fields, err }, 'assignment failed');
  }

  /** Rollouts aborted with rollbackOnAbort that still have moved devices to roll back. */
  pendingRollbacks(): string[] {
    const moved = MOVED.map((s) => `'${s}'`).join(', ');
    const rows = this.store.db
      .prepare(
        `SELECT DISTINCT d.rollout_id AS id FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
         WHERE r.state = 'aborted' AND json_extract(r.strategy, '$.rollbackOnAbort') = 1
         AND d.rollback_state IS NULL AND d.state IN (${moved})`,
      )
      .all() as { id: string }[];
    return rows.map((r) => r.id);
  }

  /**
   * Fleet rollback after an abort: every device that moved (or may be moving) gets the release
   * it ran before, at once, outside the window and the concurrency limit: it is a recovery.
   */
  rollBack(rolloutId: string): void {
    const record = this.store.getRollout(rolloutId);
    if (record?.state !== 'aborted' || !record.strategy.rollbackOnAbort) return;
    const now = this.now;
    let count = 0;
    for (const d of this.store.devicesInStates(rolloutId, MOVED)) {
      if (d.rollbackState !== null) continue;
      this.rollBackOne(record, d, now);
      count++;
    }
    if (count > 0) this.report(rolloutId, record.state, { rollbacks: count });
  }

  private rollBackOne(record: RolloutRecord, d: RolloutDeviceRecord, now: number): void {
    if (d.previousReleaseId === null) {
      this.store.updateDevice(record.id, d.deviceId, {
        rollbackState: 'unavailable',
        updatedAt: now,
      });
      return;
    }
    const previous = d.previousReleaseId;
    try {
      this.tx(() => {
        const current = this.store.device(record.id, d.deviceId);
        if (current === undefined || current.rollbackState !== null) return;
        const { seq } = this.assign(d.deviceId, previous, record.id);
        this.store.updateDevice(record.id, d.deviceId, {
          rollbackState: 'assigned',
          rollbackSeq: seq,
          updatedAt: now,
        });
      });
    } catch (err) {
      const code = isFetchbackError(err) ? err.code : 'FB_ERR_INTERNAL';
      this.store.updateDevice(record.id, d.deviceId, {
        rollbackState: 'failed',
        lastCode: code,
        updatedAt: now,
      });
      this.deps.log.error(
        { rolloutId: record.id, deviceId: d.deviceId, code },
        'rollback assignment failed',
      );
    }
  }
}
