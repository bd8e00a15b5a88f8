/**
 * The rollout engine: creates rollouts, drives them through their lifecycle (transitions.ts)
 * and their waves, assigns releases to devices through the AssignmentPort only, and counts
 * what the devices report. Every decision is one SQLite transaction together with the row that
 * records it, so that a restarted engine continues exactly: no device assigned twice, no wave
 * skipped.
 */
import { randomBytes } from 'node:crypto';

import type Database from 'better-sqlite3';
import type { Registry } from 'prom-client';
import { Gauge } from 'prom-client';

import { fbError, isFetchbackError } from '@fetchback/shared';

import type { ServerEventMap } from '../events.js';
import { DeviceEvents } from './device-events.js';
import { RolloutDriver } from './driver.js';
import { parseRolloutInput } from './model.js';
import type { RolloutInput } from './model.js';
import type { AssignmentPort, AuditPort, Clock, EventsPort, Logger } from './ports.js';
import { RolloutStore } from './store.js';
import type { RolloutRecord } from './store.js';
import { loadRelease, resolveTarget } from './target.js';
import { ROLLOUT_STATES } from './transitions.js';
import type { RolloutState } from './transitions.js';
import { deviceView, rolloutView } from './view.js';
import type { RolloutDeviceView, RolloutView } from './view.js';

export interface RolloutEngineDeps {
  readonly db: Database.Database;
  readonly assignments: AssignmentPort;
  readonly events: EventsPort;
  readonly clock: Clock;
  readonly log: Logger;
  readonly audit?: AuditPort;
  /** When given, a `fetchback_rollouts{state}` gauge is registered on it. */
  readonly registry?: Registry;
}

export interface RolloutListQuery {
  readonly state?: RolloutState;
  readonly releaseId?: string;
  /** 1-500, default 50. */
  readonly limit?: number;
  /** Rows to skip; ignored when `cursor` is given. */
  readonly offset?: number;
  /** `nextCursor` of the previous page (stable while rollouts are created meanwhile). */
  readonly cursor?: string;
}

export interface RolloutPage {
  readonly items: RolloutView[];
  /** Rollouts matching the filters, all pages together. */
  readonly total: number;
  readonly nextCursor: string | null;
}

export interface RolloutDevicesQuery {
  readonly state?: string;
  readonly wave?: number;
  readonly limit?: number;
  readonly offset?: number;
}

/** Default period of `tick()` when driven by its own timer. */
export const DEFAULT_TICK_MS = 1_000;

const ENGINE_ACTOR = 'rollout-engine';

function encodeCursor(r: RolloutRecord): string {
  return Buffer.from(JSON.stringify([r.createdAt, r.id])).toString('base64url');
}

function decodeCursor(cursor: string): { createdAt: number; id: string } {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString()) as unknown[];
    if (typeof createdAt === 'number' && typeof id === 'string') return { createdAt, id };
  } catch {
    // Falls through to the coded error below.
  }
  throw fbError('FB_ERR_ARGUMENT', '"cursor" expected a cursor returned by a previous page');
}

export class RolloutEngine {
  private readonly store: RolloutStore;
  private readonly driver: RolloutDriver;
  private readonly deviceEvents: DeviceEvents;
  private readonly log: Logger;
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners: { [K in keyof ServerEventMap]?: (...a: ServerEventMap[K]) => void } =
    {};

  constructor(private readonly deps: RolloutEngineDeps) {
    this.store = new RolloutStore(deps.db);
    this.log = deps.log.child({ component: 'rollouts' });
    this.driver = new RolloutDriver({
      store: this.store,
      assignments: deps.assignments,
      clock: deps.clock,
      log: this.log,
      changed: (id, state) => this.changed(id, state),
      audit: (action, target, details) => this.audit(ENGINE_ACTOR, action, target, details),
    });
    this.deviceEvents = new DeviceEvents({
      store: this.store,
      driver: this.driver,
      log: this.log,
      changed: (id, state) => this.changed(id, state),
    });
    this.listen();
    if (deps.registry !== undefined) this.registerGauge(deps.registry);
  }

  /**
   * Creates a draft rollout after checking that its release exists and its target matches
   * devices that no active rollout holds.
   *
   * @throws FetchbackError `FB_ERR_ARGUMENT` (input), `FB_ERR_RELEASE_UNKNOWN`,
   *   `FB_ERR_WRONG_HW_CLASS`, `FB_ERR_DEVICE_UNKNOWN`, `FB_ERR_ROLLOUT_EMPTY`,
   *   `FB_ERR_ROLLOUT_CONFLICT` (details.devices names each device and its rollout).
   */
  create(input: unknown, actor = 'api'): RolloutView {
    const parsed: RolloutInput = parseRolloutInput(input);
    const id = `ro-${randomBytes(6).toString('hex')}`;
    const release = loadRelease(this.deps.db, parsed.releaseId);
    this.driver.refuseConflicts(id, resolveTarget(this.deps.db, id, parsed.target, release));
    const now = this.deps.clock.now();
    this.store.insertRollout({
      id,
      name: parsed.name,
      releaseId: parsed.releaseId,
      target: parsed.target,
      strategy: parsed.strategy,
      state: 'draft',
      reason: null,
      currentWave: 0,
      startAt: parsed.startAt,
      failureBaseFailed: 0,
      failureBaseTerminal: 0,
      createdBy: actor,
      createdAt: now,
      updatedAt: now,
      startedAt: null,
      finishedAt: null,
    });
    this.audit(actor, 'rollout.create', id, { releaseId: parsed.releaseId });
    this.changed(id, 'draft');
    return this.get(id);
  }

  /** Starts a draft: it runs now, or waits in `scheduled` until its `startAt`. */
  start(id: string, actor = 'api'): RolloutView {
    this.driver.start(this.require(id));
    this.audit(actor, 'rollout.start', id);
    this.driver.step(id);
    return this.get(id);
  }

  /** Stops assigning; devices already updating finish. */
  pause(id: string, actor = 'api'): RolloutView {
    this.driver.apply(this.require(id), 'pause', { reason: `paused by ${actor}` });
    this.audit(actor, 'rollout.pause', id);
    return this.get(id);
  }

  /** Continues a paused rollout; the failure threshold counts afresh from here. */
  resume(id: string, actor = 'api'): RolloutView {
    this.driver.apply(this.require(id), 'resume', { reason: null });
    this.audit(actor, 'rollout.resume', id);
    this.driver.step(id);
    return this.get(id);
  }

  /** Ends the rollout; with `rollbackOnAbort`, moved devices get their previous release. */
  abort(id: string, actor = 'api'): RolloutView {
    this.driver.apply(this.require(id), 'abort', { reason: `aborted by ${actor}` });
    this.audit(actor, 'rollout.abort', id);
    this.driver.rollBack(id);
    return this.get(id);
  }

  /** @throws FetchbackError `FB_ERR_ROLLOUT_UNKNOWN`. */
  get(id: string): RolloutView {
    return rolloutView(this.store, this.require(id));
  }

  /** Rollouts, newest first. */
  list(query: RolloutListQuery = {}): RolloutPage {
    const limit = Math.min(Math.max(query.limit ?? 50, 1), 500);
    const filter = {
      ...(query.state !== undefined && { state: query.state }),
      ...(query.releaseId !== undefined && { releaseId: query.releaseId }),
    };
    const records = this.store.listRollouts({
      ...filter,
      limit: limit + 1,
      ...(query.cursor !== undefined
        ? { before: decodeCursor(query.cursor) }
        : { offset: query.offset ?? 0 }),
    });
    const page = records.slice(0, limit);
    const last = page[page.length - 1];
    return {
      items: page.map((r) => rolloutView(this.store, r)),
      total: this.store.countRollouts(filter),
      nextCursor: records.length > limit && last !== undefined ? encodeCursor(last) : null,
    };
  }

  /** The devices of a rollout with their state, wave and last result code. */
  devices(
    id: string,
    query: RolloutDevicesQuery = {},
  ): { items: RolloutDeviceView[]; total: number } {
    this.require(id);
    const limit = Math.min(Math.max(query.limit ?? 100, 1), 1_000);
    return {
      items: this.store.devices(id, { ...query, limit }).map(deviceView),
      total: this.store.countDevices(id, query),
    };
  }

  /** Advances every live rollout by what the clock says: schedules, timeouts, waves, assigns. */
  tick(): void {
    for (const id of this.store.liveRolloutIds()) this.guard(id, () => this.driver.step(id));
    for (const id of this.driver.pendingRollbacks()) {
      this.guard(id, () => this.driver.rollBack(id));
    }
  }

  /** Drives `tick()` from a timer (production). */
  startTimer(intervalMs = DEFAULT_TICK_MS): void {
    this.stopTimer();
    this.timer = setInterval(() => this.tick(), intervalMs);
    this.timer.unref();
  }

  stopTimer(): void {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** Stops the timer and stops listening to device events. */
  close(): void {
    this.stopTimer();
    const events = this.deps.events;
    for (const [name, fn] of Object.entries(this.listeners)) {
      events.off(name as keyof ServerEventMap, fn as never);
    }
  }

  private require(id: string): RolloutRecord {
    const record = this.store.getRollout(id);
    if (record === undefined) throw fbError('FB_ERR_ROLLOUT_UNKNOWN', id, { rolloutId: id });
    return record;
  }

  private listen(): void {
    const events = this.deps.events;
    const on = <K extends keyof ServerEventMap>(
      name: K,
      fn: (...a: ServerEventMap[K]) => void,
    ): void => {
      // A listener must never throw into delivery, which emitted the event after storing it.
      const safe = (...a: ServerEventMap[K]): void => this.guard(name, () => fn(...a));
      (this.listeners as Record<string, unknown>)[name] = safe;
      events.on(name, safe as never);
    };
    on('device.ack', (e) => this.deviceEvents.onAck(e));
    on('device.status', (e) => this.deviceEvents.onStatus(e));
    on('device.registered', (e) => this.deviceEvents.onRegistered(e.deviceId));
    on('device.decommissioned', (e) => this.deviceEvents.onDecommissioned(e.deviceId));
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      const code = isFetchbackError(err) ? err.code : 'FB_ERR_INTERNAL';
      this.log.error({ what, code, err }, 'rollout engine step failed');
    }
  }

  private changed(rolloutId: string, state: string): void {
    this.deps.events.emit('rollout.changed', { rolloutId, state, at: this.deps.clock.now() });
  }

  private audit(
    actor: string,
    action: string,
    target: string,
    details?: Record<string, unknown>,
  ): void {
    this.deps.audit?.record(actor, action, target, details ?? {});
  }

  private registerGauge(registry: Registry): void {
    if (registry.getSingleMetric('fetchback_rollouts') !== undefined) return;
    const store = this.store;
    registry.registerMetric(
      new Gauge({
        name: 'fetchback_rollouts',
        help: 'Rollouts by state',
        labelNames: ['state'],
        registers: [],
        collect() {
          const counts = store.countByState();
          for (const state of ROLLOUT_STATES) this.set({ state }, counts[state] ?? 0);
        },
      }),
    );
  }
}
