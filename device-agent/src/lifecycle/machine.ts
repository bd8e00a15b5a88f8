/**
 * Executes the transition table. `fire` looks the transition up, acknowledges it through the
 * outbox when the table says so, writes the new state to disk (unless it is transient) and only
 * then lets the caller act on it, and reports it as a STATUS.
 */
import { fbError } from '@fetchback/shared';

import type { StateStore } from '../storage/state-store.js';
import { type AgentState, type Job, STATE_DOCUMENT, type TrustRecord } from './agent-state.js';
import type { ReportSubject, Reporter } from './reporter.js';
import {
  type LifecycleEvent,
  type LifecycleState,
  TRANSIENT_STATES,
  transitionFor,
} from './transitions.js';

/** What a step produced: the event to fire and the changes that go with it. */
export interface Outcome {
  readonly event: LifecycleEvent;
  /** A new job (on `accepted`). */
  readonly job?: Job;
  /** Changes to the current job. */
  readonly jobChanges?: Partial<Job>;
  readonly trust?: TrustRecord;
  readonly firmwareVersion?: string;
  /** Result code; `OK` when absent. */
  readonly code?: string;
  readonly detail?: string;
  /** The assignment reported about when there is no job for it (a refused manifest). */
  readonly subject?: ReportSubject;
}

export interface TransitionRecord {
  readonly from: LifecycleState;
  readonly event: LifecycleEvent;
  readonly to: LifecycleState;
  readonly code: string;
  readonly detail?: string;
  readonly state: AgentState;
}

export class Machine {
  private current: AgentState;
  private readonly store: StateStore;
  private readonly reporter: Reporter;
  private readonly onTransition: (record: TransitionRecord) => void;
  private halted = false;

  constructor(
    initial: AgentState,
    store: StateStore,
    reporter: Reporter,
    onTransition: (record: TransitionRecord) => void,
  ) {
    this.current = initial;
    this.store = store;
    this.reporter = reporter;
    this.onTransition = onTransition;
  }

  get state(): AgentState {
    return this.current;
  }

  /** After `halt`, `fire` and `update` do nothing: a crashed or rebooting agent acts no more. */
  halt(): void {
    this.halted = true;
  }

  get isHalted(): boolean {
    return this.halted;
  }

  /**
   * Applies one transition of the table.
   *
   * @throws FetchbackError `FB_ERR_STATE` when the table has no transition for the event.
   */
  async fire(outcome: Outcome): Promise<void> {
    if (this.halted) return;
    const from = this.current.state;
    const transition = transitionFor(from, outcome.event);
    if (!transition) throw fbError('FB_ERR_STATE', `no transition for ${outcome.event} in ${from}`);

    const code = outcome.code ?? 'OK';
    const next = this.nextState(transition.to, outcome, code);
    const subject = outcome.subject ?? next.job;
    const version = runningVersion(next);
    const fields = { code, ...(outcome.detail ? { detail: outcome.detail } : {}) };

    if (transition.ack && subject)
      await this.reporter.ack(transition.ack, subject, version, fields);
    if (!TRANSIENT_STATES.includes(transition.to)) await this.store.writeJson(STATE_DOCUMENT, next);
    if (this.halted) return;
    this.current = next;
    await this.reporter.status(transition.to, subject, version, code === 'OK' ? {} : fields);
    this.onTransition({ from, event: outcome.event, to: transition.to, state: next, ...fields });
  }

  /** Persists a change that is not a transition (a boot count, the settled flag). */
  async update(changes: Partial<Job>): Promise<void> {
    if (this.halted || !this.current.job) return;
    const next = { ...this.current, job: { ...this.current.job, ...changes } };
    await this.store.writeJson(STATE_DOCUMENT, next);
    this.current = next;
  }

  private nextState(to: LifecycleState, outcome: Outcome, code: string): AgentState {
    // A refusal is about a manifest that never became a job: the last job stays as it was.
    const base = outcome.subject ? undefined : (outcome.job ?? this.current.job);
    const job: Job | undefined = base && {
      ...base,
      ...outcome.jobChanges,
      code,
      ...(outcome.detail ? { detail: outcome.detail } : { detail: undefined }),
    };
    return {
      ...this.current,
      state: to,
      trust: outcome.trust ?? this.current.trust,
      firmwareVersion: outcome.firmwareVersion ?? this.current.firmwareVersion,
      ...(job ? { job } : {}),
    };
  }
}

/** The firmware version running in `state`: the new one only while on trial. */
export function runningVersion(state: AgentState): string {
  return state.state === 'trial' && state.job ? state.job.release.version : state.firmwareVersion;
}
