/**
 * What devices report, applied to the rollouts they are in: ACKs move a device's state (or its
 * rollback's), status reports keep the last lifecycle state and code, a registered device that
 * matches a running rollout joins it, a decommissioned one leaves.
 */
import type { AckStep } from '@fetchback/shared';

import type { RolloutDriver } from './driver.js';
import { FAILED, IN_FLIGHT, advances, stateForAck } from './outcomes.js';
import type { DeviceState } from './outcomes.js';
import type { Logger } from './ports.js';
import type { RolloutStore } from './store.js';
import { loadDevice, loadRelease, matchesTarget, previousReleaseId } from './target.js';

const TERMINAL_ACKS: readonly DeviceState[] = ['committed', 'rolled_back', 'rejected', 'failed'];

export interface DeviceEventDeps {
  readonly store: RolloutStore;
  readonly driver: RolloutDriver;
  readonly log: Logger;
  readonly changed: (rolloutId: string, state: string) => void;
}

export class DeviceEvents {
  private readonly store: RolloutStore;
  private readonly driver: RolloutDriver;

  constructor(private readonly deps: DeviceEventDeps) {
    this.store = deps.store;
    this.driver = deps.driver;
  }

  /** Counts an ACK against the rollout (or its rollback) whose assignment it acknowledges. */
  onAck(e: { deviceId: string; seq: number; step: AckStep; code: string }): void {
    const hit = this.store.deviceBySeq(e.deviceId, e.seq);
    if (hit === undefined) return;
    const { record: d, kind } = hit;
    const rollout = this.store.getRollout(d.rolloutId);
    if (rollout === undefined) return;
    const to = stateForAck(e.step);
    const now = this.driver.now;
    if (kind === 'rollback') {
      if (advances(d.rollbackState ?? '', to)) {
        this.store.updateDevice(d.rolloutId, d.deviceId, {
          rollbackState: to as never,
          lastCode: e.code,
          updatedAt: now,
        });
        this.deps.changed(d.rolloutId, rollout.state);
      }
      return;
    }
    // A late final ACK of the latest assignment beats the engine's own timeout verdict: the
    // counts must equal what the devices really did.
    const late =
      (d.state === 'timed_out' || d.state === 'retry_wait') && TERMINAL_ACKS.includes(to);
    if (!advances(d.state, to) && !late) return;
    this.driver.tx(() => {
      if (IN_FLIGHT.includes(to)) {
        this.store.updateDevice(d.rolloutId, d.deviceId, {
          state: to,
          lastCode: e.code,
          updatedAt: now,
        });
      } else {
        this.driver.recordOutcome(rollout, d, to, e.code, now);
      }
    });
    this.deps.changed(d.rolloutId, rollout.state);
    this.driver.step(d.rolloutId);
  }

  /** Keeps the last reported lifecycle state and result code for the devices view. */
  onStatus(e: { deviceId: string; state: string; code: string | null }): void {
    const d = this.store.activeRolloutOf(e.deviceId);
    if (d === undefined) return;
    this.store.updateDevice(d.rolloutId, d.deviceId, {
      lastStatus: e.state,
      ...(e.code !== null && e.code !== 'OK' && { lastCode: e.code }),
      updatedAt: this.driver.now,
    });
  }

  /** A new device that matches a running or paused rollout's target joins its last wave. */
  onRegistered(deviceId: string): void {
    if (this.store.activeRolloutOf(deviceId) !== undefined) return;
    const device = loadDevice(this.store.db, deviceId);
    if (device === undefined) return;
    for (const id of this.store.liveRolloutIds()) {
      const record = this.store.getRollout(id);
      if (record === undefined || (record.state !== 'running' && record.state !== 'paused'))
        continue;
      const release = loadRelease(this.store.db, record.releaseId);
      if (!matchesTarget(device, record.target, release)) continue;
      const lastWave = this.store.waves(id).length - 1;
      this.driver.tx(() => {
        this.store.insertDevice({
          rolloutId: id,
          deviceId,
          wave: lastWave,
          previousReleaseId: previousReleaseId(this.store.db, device, release),
          at: this.driver.now,
        });
        this.store.growWave(id, lastWave);
      });
      this.deps.log.info({ rolloutId: id, deviceId, wave: lastWave }, 'device joined rollout');
      this.deps.changed(id, record.state);
      this.driver.step(id);
      return;
    }
  }

  /** A decommissioned device leaves its active rollout. */
  onDecommissioned(deviceId: string): void {
    const d = this.store.activeRolloutOf(deviceId);
    if (d === undefined || ['committed', ...FAILED, 'cancelled'].includes(d.state)) return;
    this.store.updateDevice(d.rolloutId, deviceId, {
      state: 'cancelled',
      lastCode: 'FB_ERR_DEVICE_DECOMMISSIONED',
      updatedAt: this.driver.now,
    });
    this.deps.changed(d.rolloutId, this.store.getRollout(d.rolloutId)?.state ?? 'unknown');
  }
}
