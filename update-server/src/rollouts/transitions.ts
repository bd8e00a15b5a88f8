/**
 * The rollout lifecycle as one declarative table: (state, event) -> next state. Nothing else in
 * the engine decides a rollout's state; an event not in the table for the current state is
 * refused with FB_ERR_ROLLOUT_TRANSITION.
 *
 *   draft --start--> scheduled --schedule-due--> running --all-done--> completed
 *                                                 |  ^
 *                                 pause, failure- |  | resume
 *                                 threshold/pause v  |
 *                                                paused
 *   draft, scheduled, running, paused --abort (or failure-threshold/abort)--> aborted
 */
import { fbError } from '@fetchback/shared';

import type { FailureAction } from './model.js';

export const ROLLOUT_STATES = [
  'draft',
  'scheduled',
  'running',
  'paused',
  'completed',
  'aborted',
] as const;
export type RolloutState = (typeof ROLLOUT_STATES)[number];

export const ROLLOUT_EVENTS = [
  'start',
  'schedule-due',
  'pause',
  'resume',
  'abort',
  'wave-succeeded',
  'failure-threshold',
  'all-done',
] as const;
export type RolloutEvent = (typeof ROLLOUT_EVENTS)[number];

/** States in which a rollout owns its devices: a device is in at most one of these. */
export const ACTIVE_STATES: readonly RolloutState[] = ['scheduled', 'running', 'paused'];

export interface Transition {
  readonly from: RolloutState;
  readonly event: RolloutEvent;
  /** Only for `failure-threshold`: the row applies when the strategy's action is this one. */
  readonly onFailure?: FailureAction;
  readonly to: RolloutState;
}

export const TRANSITIONS: readonly Transition[] = Object.freeze([
  { from: 'draft', event: 'start', to: 'scheduled' },
  { from: 'draft', event: 'abort', to: 'aborted' },
  { from: 'scheduled', event: 'schedule-due', to: 'running' },
  { from: 'scheduled', event: 'abort', to: 'aborted' },
  { from: 'running', event: 'pause', to: 'paused' },
  { from: 'running', event: 'abort', to: 'aborted' },
  { from: 'running', event: 'wave-succeeded', to: 'running' },
  { from: 'running', event: 'failure-threshold', onFailure: 'pause', to: 'paused' },
  { from: 'running', event: 'failure-threshold', onFailure: 'abort', to: 'aborted' },
  { from: 'running', event: 'all-done', to: 'completed' },
  { from: 'paused', event: 'resume', to: 'running' },
  { from: 'paused', event: 'abort', to: 'aborted' },
] satisfies Transition[]);

/** The state `event` leads to from `from`, or undefined when the table has no such row. */
export function nextState(
  from: RolloutState,
  event: RolloutEvent,
  onFailure?: FailureAction,
): RolloutState | undefined {
  const row = TRANSITIONS.find(
    (t) =>
      t.from === from &&
      t.event === event &&
      (t.onFailure === undefined || t.onFailure === onFailure),
  );
  return row?.to;
}

/**
 * The state `event` leads to from `from`.
 *
 * @throws FetchbackError `FB_ERR_ROLLOUT_TRANSITION` when the table has no such row.
 */
export function transition(
  from: RolloutState,
  event: RolloutEvent,
  onFailure?: FailureAction,
): RolloutState {
  const to = nextState(from, event, onFailure);
  if (to === undefined) {
    throw fbError('FB_ERR_ROLLOUT_TRANSITION', `${event} from ${from}`, { from, event });
  }
  return to;
}
