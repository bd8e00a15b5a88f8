/**
 * The device's update lifecycle as one declarative table: (state, event) → next state, the
 * ACK_REQ step the transition acknowledges, and whether the new state is written to disk before
 * the agent acts on it. `docs/device.md` ("The lifecycle") draws the same table.
 *
 * Every transition is reported as a STATUS message. Resting states (idle, committed,
 * rolled_back, failed) accept a new manifest; a manifest that arrives during an update waits
 * until it rests (the server keeps it retained, so nothing is lost).
 */
import type { AckStep } from '@fetchback/shared';

export const LIFECYCLE_STATES = [
  'idle',
  'checking',
  'downloading',
  'verifying',
  'downloaded',
  'installing',
  'rebooting',
  'trial',
  'committed',
  'rolled_back',
  'failed',
] as const;
export type LifecycleState = (typeof LIFECYCLE_STATES)[number];

export const LIFECYCLE_EVENTS = [
  /** A manifest arrived and is not the one already accepted. */
  'manifest',
  /** The manifest passed every check of `ManifestVerifier`. */
  'accepted',
  /** The manifest was refused and its seq/rel are known: ACK "rejected". */
  'refused',
  /** The manifest was refused and not even its seq/rel could be read: STATUS only. */
  'unreadable',
  /** Every chunk is held. */
  'chunks_complete',
  /** Download gave up (stall, refusal, storage) or the deadline passed. */
  'download_failed',
  /** The image digest matched. */
  'image_verified',
  /** Some chunks on disk no longer match the chunk table: fetch them again. */
  'repair',
  /** The image does not match its digest although every chunk matches: the release is bad. */
  'image_failed',
  'install',
  'installed',
  'install_failed',
  /** The agent started after the reboot (or after a crash in trial): count a boot. */
  'booted',
  'healthy',
  'unhealthy',
  /** The boot counter passed its limit. */
  'boot_loop',
] as const;
export type LifecycleEvent = (typeof LIFECYCLE_EVENTS)[number];

export interface Transition {
  readonly from: readonly LifecycleState[];
  readonly event: LifecycleEvent;
  readonly to: LifecycleState;
  /** ACK_REQ step sent (through the outbox) when the transition happens. */
  readonly ack?: AckStep;
}

export const RESTING_STATES: readonly LifecycleState[] = [
  'idle',
  'committed',
  'rolled_back',
  'failed',
];

export const TRANSITIONS: readonly Transition[] = [
  { from: RESTING_STATES, event: 'manifest', to: 'checking' },
  { from: ['checking'], event: 'accepted', to: 'downloading' },
  { from: ['checking'], event: 'refused', to: 'idle', ack: 'rejected' },
  { from: ['checking'], event: 'unreadable', to: 'idle' },

  { from: ['downloading'], event: 'chunks_complete', to: 'verifying' },
  {
    from: ['downloading', 'verifying', 'downloaded'],
    event: 'download_failed',
    to: 'failed',
    ack: 'failed',
  },
  { from: ['verifying'], event: 'image_verified', to: 'downloaded', ack: 'downloaded' },
  { from: ['verifying'], event: 'repair', to: 'downloading' },
  { from: ['verifying'], event: 'image_failed', to: 'failed', ack: 'failed' },

  { from: ['downloaded'], event: 'install', to: 'installing' },
  { from: ['installing'], event: 'installed', to: 'rebooting', ack: 'installed' },
  { from: ['installing'], event: 'install_failed', to: 'failed', ack: 'failed' },

  { from: ['rebooting', 'trial'], event: 'booted', to: 'trial' },
  { from: ['trial'], event: 'healthy', to: 'committed', ack: 'committed' },
  { from: ['trial'], event: 'unhealthy', to: 'rolled_back', ack: 'rolled_back' },
  { from: ['trial'], event: 'boot_loop', to: 'rolled_back', ack: 'rolled_back' },
];

/**
 * States not written to disk: a crash in `checking` restarts in the state before it, and the
 * retained manifest arrives again.
 */
export const TRANSIENT_STATES: readonly LifecycleState[] = ['checking'];

/** The transition for `event` in `state`, or `undefined` when the table has none. */
export function transitionFor(
  state: LifecycleState,
  event: LifecycleEvent,
): Transition | undefined {
  return TRANSITIONS.find((t) => t.event === event && t.from.includes(state));
}

/** True when the agent may start a new update in `state`. */
export function isResting(state: LifecycleState): boolean {
  return RESTING_STATES.includes(state);
}
