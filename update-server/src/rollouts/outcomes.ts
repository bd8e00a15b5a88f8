/**
 * A device's state inside one rollout, and how the device's ACKs move it. Outcomes are counted
 * from ACK steps (docs/protocol.md, ACK_REQ) plus the engine's own `timed_out`.
 *
 *   pending -> assigned -> downloaded -> installed -> committed
 *                 \-----------\--------------\-----> rolled_back | rejected | failed | timed_out
 *   failed | timed_out with retries left -> retry_wait -> assigned (a new assignment)
 *   decommissioned, or never reached before an abort -> cancelled
 */
import type { AckStep } from '@fetchback/shared';

export const DEVICE_STATES = [
  'pending',
  'assigned',
  'downloaded',
  'installed',
  'retry_wait',
  'committed',
  'rolled_back',
  'rejected',
  'failed',
  'timed_out',
  'cancelled',
] as const;
export type DeviceState = (typeof DEVICE_STATES)[number];

/** States of the rollback assignment made on abort, kept apart from the rollout's own states. */
export const ROLLBACK_STATES = [
  'assigned',
  'downloaded',
  'installed',
  'committed',
  'rolled_back',
  'rejected',
  'failed',
  'unavailable',
] as const;
export type RollbackState = (typeof ROLLBACK_STATES)[number];

/** Devices that hold an assignment and have not finished it: these count against maxConcurrent. */
export const IN_FLIGHT: readonly DeviceState[] = ['assigned', 'downloaded', 'installed'];

/** Final failures. A device that failed with retries left is in `retry_wait` instead. */
export const FAILED: readonly DeviceState[] = ['rolled_back', 'rejected', 'failed', 'timed_out'];

/** Nothing more will happen to these devices in this rollout. */
export const TERMINAL: readonly DeviceState[] = ['committed', ...FAILED, 'cancelled'];

/**
 * Devices that may run (or be about to run) the rollout's release: on abort with rollback they
 * get the previous release. Devices that rolled back, rejected or failed still run the old one.
 */
export const MOVED: readonly DeviceState[] = [...IN_FLIGHT, 'committed', 'timed_out'];

/**
 * Failures worth another attempt: `failed` and `timed_out` can be transient (power, network).
 * A rejected manifest or a failed health check gives the same answer again, so they are final.
 */
export function isRetryable(outcome: DeviceState): boolean {
  return outcome === 'failed' || outcome === 'timed_out';
}

const ACK_TO_STATE: Readonly<Record<AckStep, DeviceState>> = {
  downloaded: 'downloaded',
  installed: 'installed',
  committed: 'committed',
  rolled_back: 'rolled_back',
  rejected: 'rejected',
  failed: 'failed',
};

/** The device state an ACK step reports. */
export function stateForAck(step: AckStep): DeviceState {
  return ACK_TO_STATE[step];
}

/** Progress order, so that an ACK that arrives late (downloaded after installed) is ignored. */
const PROGRESS: Partial<Record<DeviceState, number>> = { assigned: 0, downloaded: 1, installed: 2 };

/** True when an ACK moving `from` to `to` is news rather than a late, superseded report. */
export function advances(from: string, to: DeviceState): boolean {
  const a = PROGRESS[from as DeviceState];
  const b = PROGRESS[to];
  if (a === undefined) return false; // `from` is terminal or not in flight
  return b === undefined || b > a;
}
