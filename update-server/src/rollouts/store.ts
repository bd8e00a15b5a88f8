/**
 * SQL access to the rollout tables. Every method is one statement; the engine composes them
 * inside transactions so that each decision is stored together with what it changed.
 */
import type Database from 'better-sqlite3';

import type { RolloutStrategy, RolloutTarget } from './model.js';
import { FAILED, IN_FLIGHT, TERMINAL } from './outcomes.js';
import type { DeviceState, RollbackState } from './outcomes.js';
import type { RolloutState } from './transitions.js';
import { ACTIVE_STATES } from './transitions.js';

export interface RolloutRecord {
  readonly id: string;
  readonly name: string;
  readonly releaseId: string;
  readonly target: RolloutTarget;
  readonly strategy: RolloutStrategy;
  readonly state: RolloutState;
  readonly reason: string | null;
  readonly currentWave: number;
  readonly startAt: number | null;
  readonly failureBaseFailed: number;
  readonly failureBaseTerminal: number;
  readonly createdBy: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly startedAt: number | null;
  readonly finishedAt: number | null;
}

export type WaveState = 'pending' | 'running' | 'soaking' | 'succeeded';

export interface WaveRecord {
  readonly wave: number;
  readonly size: number;
  readonly state: WaveState;
  readonly startedAt: number | null;
  readonly soakStartedAt: number | null;
  readonly finishedAt: number | null;
}

export interface RolloutDeviceRecord {
  readonly rolloutId: string;
  readonly deviceId: string;
  readonly wave: number;
  readonly state: DeviceState;
  readonly attempts: number;
  readonly assignedSeq: number | null;
  readonly assignedAt: number | null;
  readonly nextAttemptAt: number | null;
  readonly lastCode: string | null;
  readonly lastStatus: string | null;
  readonly previousReleaseId: string | null;
  readonly rollbackState: RollbackState | null;
  readonly rollbackSeq: number | null;
  readonly joinedAt: number;
  readonly updatedAt: number;
}

const snake = (key: string): string => key.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (key: string): string => key.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function fromRow<T>(row: Record<string, unknown>): T {
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [camel(k), v])) as T;
}

const inList = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');
const ACTIVE = inList(ACTIVE_STATES);

export interface ListFilter {
  readonly state?: RolloutState;
  readonly releaseId?: string;
  readonly limit: number;
  readonly offset?: number;
  /** Rollouts created before this (createdAt, id) position, newest first. */
  readonly before?: { createdAt: number; id: string };
}

export class RolloutStore {
  constructor(readonly db: Database.Database) {}

  insertRollout(r: RolloutRecord): void {
    this.db
      .prepare(
        `INSERT INTO rollouts (id, name, release_id, target, strategy, state, reason, current_wave,
           start_at, failure_base_failed, failure_base_terminal, created_by, created_at,
           updated_at, started_at, finished_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .run(
        r.id,
        r.name,
        r.releaseId,
        JSON.stringify(r.target),
        JSON.stringify(r.strategy),
        r.state,
        r.reason,
        r.currentWave,
        r.startAt,
        r.failureBaseFailed,
        r.failureBaseTerminal,
        r.createdBy,
        r.createdAt,
        r.updatedAt,
        r.startedAt,
        r.finishedAt,
      );
  }

  getRollout(id: string): RolloutRecord | undefined {
    const row = this.db.prepare('SELECT * FROM rollouts WHERE id = ?').get(id) as
      Record<string, unknown> | undefined;
    return row === undefined ? undefined : this.toRollout(row);
  }

  private toRollout(row: Record<string, unknown>): RolloutRecord {
    const r = fromRow<RolloutRecord & { target: string; strategy: string }>(row);
    return {
      ...r,
      target: JSON.parse(r.target) as RolloutTarget,
      strategy: JSON.parse(r.strategy) as RolloutStrategy,
    };
  }

  updateRollout(id: string, fields: Partial<Omit<RolloutRecord, 'id'>>): void {
    const keys = Object.keys(fields);
    if (keys.length === 0) return;
    const set = keys.map((k) => `${snake(k)} = @${k}`).join(', ');
    this.db.prepare(`UPDATE rollouts SET ${set} WHERE id = @id`).run({ ...fields, id });
  }

  listRollouts(filter: ListFilter): RolloutRecord[] {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: filter.limit };
    if (filter.state !== undefined) {
      where.push('state = @state');
      params.state = filter.state;
    }
    if (filter.releaseId !== undefined) {
      where.push('release_id = @releaseId');
      params.releaseId = filter.releaseId;
    }
    if (filter.before !== undefined) {
      where.push('(created_at < @bAt OR (created_at = @bAt AND id < @bId))');
      params.bAt = filter.before.createdAt;
      params.bId = filter.before.id;
    }
    const clause = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    params.offset = filter.offset ?? 0;
    const rows = this.db
      .prepare(
        `SELECT * FROM rollouts ${clause} ORDER BY created_at DESC, id DESC
         LIMIT @limit OFFSET @offset`,
      )
      .all(params) as Record<string, unknown>[];
    return rows.map((r) => this.toRollout(r));
  }

  countRollouts(filter: { state?: RolloutState; releaseId?: string }): number {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM rollouts WHERE (@state IS NULL OR state = @state)
         AND (@releaseId IS NULL OR release_id = @releaseId)`,
      )
      .get({ state: filter.state ?? null, releaseId: filter.releaseId ?? null }) as { n: number };
    return row.n;
  }

  /** Ids of rollouts the engine must keep driving. */
  liveRolloutIds(): string[] {
    const rows = this.db
      .prepare(`SELECT id FROM rollouts WHERE state IN (${ACTIVE}) ORDER BY created_at, id`)
      .all() as { id: string }[];
    return rows.map((r) => r.id);
  }

  countByState(): Record<string, number> {
    const rows = this.db
      .prepare('SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state')
      .all() as { state: string; n: number }[];
    return Object.fromEntries(rows.map((r) => [r.state, r.n]));
  }

  insertWaves(rolloutId: string, sizes: readonly number[]): void {
    const insert = this.db.prepare(
      "INSERT INTO rollout_waves (rollout_id, wave, size, state) VALUES (?, ?, ?, 'pending')",
    );
    sizes.forEach((size, wave) => insert.run(rolloutId, wave, size));
  }

  waves(rolloutId: string): WaveRecord[] {
    const rows = this.db
      .prepare(
        `SELECT wave, size, state, started_at, soak_started_at, finished_at FROM rollout_waves
         WHERE rollout_id = ? ORDER BY wave`,
      )
      .all(rolloutId) as Record<string, unknown>[];
    return rows.map((r) => fromRow<WaveRecord>(r));
  }

  updateWave(rolloutId: string, wave: number, fields: Partial<Omit<WaveRecord, 'wave'>>): void {
    const keys = Object.keys(fields);
    const set = keys.map((k) => `${snake(k)} = @${k}`).join(', ');
    this.db
      .prepare(`UPDATE rollout_waves SET ${set} WHERE rollout_id = @rolloutId AND wave = @wave`)
      .run({ ...fields, rolloutId, wave });
  }

  growWave(rolloutId: string, wave: number): void {
    this.db
      .prepare('UPDATE rollout_waves SET size = size + 1 WHERE rollout_id = ? AND wave = ?')
      .run(rolloutId, wave);
  }

  insertDevice(d: {
    rolloutId: string;
    deviceId: string;
    wave: number;
    previousReleaseId: string | null;
    at: number;
  }): void {
    this.db
      .prepare(
        `INSERT INTO rollout_devices (rollout_id, device_id, wave, state, previous_release_id,
           joined_at, updated_at) VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
      )
      .run(d.rolloutId, d.deviceId, d.wave, d.previousReleaseId, d.at, d.at);
  }

  device(rolloutId: string, deviceId: string): RolloutDeviceRecord | undefined {
    const row = this.db
      .prepare('SELECT * FROM rollout_devices WHERE rollout_id = ? AND device_id = ?')
      .get(rolloutId, deviceId) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : fromRow<RolloutDeviceRecord>(row);
  }

  updateDevice(
    rolloutId: string,
    deviceId: string,
    fields: Partial<Omit<RolloutDeviceRecord, 'rolloutId' | 'deviceId'>>,
  ): void {
    const keys = Object.keys(fields);
    const set = keys.map((k) => `${snake(k)} = @${k}`).join(', ');
    this.db
      .prepare(
        `UPDATE rollout_devices SET ${set} WHERE rollout_id = @rolloutId AND device_id = @deviceId`,
      )
      .run({ ...fields, rolloutId, deviceId });
  }

  /** The rollout device row an ACK for (deviceId, seq) belongs to, as rollout or rollback. */
  deviceBySeq(
    deviceId: string,
    seq: number,
  ): { record: RolloutDeviceRecord; kind: 'rollout' | 'rollback' } | undefined {
    const row = this.db
      .prepare(
        `SELECT * FROM rollout_devices WHERE device_id = ? AND (assigned_seq = ? OR rollback_seq = ?)
         ORDER BY joined_at DESC LIMIT 1`,
      )
      .get(deviceId, seq, seq) as Record<string, unknown> | undefined;
    if (row === undefined) return undefined;
    const record = fromRow<RolloutDeviceRecord>(row);
    return { record, kind: record.rollbackSeq === seq ? 'rollback' : 'rollout' };
  }

  /** The active rollout a device is in, if any. */
  activeRolloutOf(deviceId: string): RolloutDeviceRecord | undefined {
    const row = this.db
      .prepare(
        `SELECT d.* FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
         WHERE d.device_id = ? AND r.state IN (${ACTIVE}) LIMIT 1`,
      )
      .get(deviceId) as Record<string, unknown> | undefined;
    return row === undefined ? undefined : fromRow<RolloutDeviceRecord>(row);
  }

  /** Which of `deviceIds` are in an active rollout other than `exceptRolloutId`. */
  conflicts(deviceIds: readonly string[], exceptRolloutId: string): Map<string, string> {
    const found = new Map<string, string>();
    const query = this.db.prepare(
      `SELECT d.device_id, d.rollout_id FROM rollout_devices d JOIN rollouts r ON r.id = d.rollout_id
       WHERE r.state IN (${ACTIVE}) AND d.rollout_id <> ? AND d.device_id IN
       (SELECT value FROM json_each(?))`,
    );
    // json_each keeps one statement for any number of ids without hitting SQLite's bind limit.
    for (let i = 0; i < deviceIds.length; i += 5_000) {
      const chunk = JSON.stringify(deviceIds.slice(i, i + 5_000));
      for (const r of query.all(exceptRolloutId, chunk) as {
        device_id: string;
        rollout_id: string;
      }[]) {
        found.set(r.device_id, r.rollout_id);
      }
    }
    return found;
  }

  devices(
    rolloutId: string,
    filter: { state?: string; wave?: number; limit?: number; offset?: number } = {},
  ): RolloutDeviceRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM rollout_devices WHERE rollout_id = @rolloutId
         AND (@state IS NULL OR state = @state) AND (@wave IS NULL OR wave = @wave)
         ORDER BY wave, joined_at, device_id LIMIT @limit OFFSET @offset`,
      )
      .all({
        rolloutId,
        state: filter.state ?? null,
        wave: filter.wave ?? null,
        limit: filter.limit ?? -1,
        offset: filter.offset ?? 0,
      }) as Record<string, unknown>[];
    return rows.map((r) => fromRow<RolloutDeviceRecord>(r));
  }

  countDevices(rolloutId: string, filter: { state?: string; wave?: number } = {}): number {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM rollout_devices WHERE rollout_id = @rolloutId
         AND (@state IS NULL OR state = @state) AND (@wave IS NULL OR wave = @wave)`,
      )
      .get({ rolloutId, state: filter.state ?? null, wave: filter.wave ?? null }) as { n: number };
    return row.n;
  }

  /** Device counts per (wave, state) and per rollback state. */
  counts(rolloutId: string): {
    byWave: { wave: number; state: DeviceState; n: number }[];
    rollback: { state: RollbackState; n: number }[];
  } {
    const byWave = this.db
      .prepare(
        `SELECT wave, state, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ?
         GROUP BY wave, state`,
      )
      .all(rolloutId) as { wave: number; state: DeviceState; n: number }[];
    const rollback = this.db
      .prepare(
        `SELECT rollback_state AS state, COUNT(*) AS n FROM rollout_devices
         WHERE rollout_id = ? AND rollback_state IS NOT NULL GROUP BY rollback_state`,
      )
      .all(rolloutId) as { state: RollbackState; n: number }[];
    return { byWave, rollback };
  }

  /** Devices of the rollout that are updating now. */
  inFlight(rolloutId: string): RolloutDeviceRecord[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM rollout_devices WHERE rollout_id = ? AND state IN (${inList(IN_FLIGHT)})`,
        )
        .all(rolloutId) as Record<string, unknown>[]
    ).map((r) => fromRow<RolloutDeviceRecord>(r));
  }

  /**
   * Up to `limit` devices to assign next: due retries first, then pending devices of waves up to
   * `currentWave`, in wave order and then the order they joined.
   */
  nextToAssign(
    rolloutId: string,
    currentWave: number,
    now: number,
    limit: number,
  ): RolloutDeviceRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM rollout_devices WHERE rollout_id = @rolloutId AND (
           (state = 'retry_wait' AND next_attempt_at <= @now)
           OR (state = 'pending' AND wave <= @currentWave))
         ORDER BY state = 'pending', wave, joined_at, rowid LIMIT @limit`,
      )
      .all({ rolloutId, currentWave, now, limit }) as Record<string, unknown>[];
    return rows.map((r) => fromRow<RolloutDeviceRecord>(r));
  }

  /** Counts the failure threshold is judged on. */
  failureCounts(rolloutId: string): { failed: number; terminal: number; started: number } {
    return this.db
      .prepare(
        `SELECT
           COALESCE(SUM(state IN (${inList(FAILED)})), 0) AS failed,
           COALESCE(SUM(state IN (${inList(TERMINAL)}) AND attempts > 0), 0) AS terminal,
           COALESCE(SUM(attempts > 0), 0) AS started
         FROM rollout_devices WHERE rollout_id = ?`,
      )
      .get(rolloutId) as { failed: number; terminal: number; started: number };
  }

  /** Devices not finished with this rollout (pending, updating or waiting for a retry). */
  unfinished(rolloutId: string): number {
    const row = this.db
      .prepare(
        `SELECT COUNT(*) AS n FROM rollout_devices WHERE rollout_id = ?
         AND state NOT IN (${inList(TERMINAL)})`,
      )
      .get(rolloutId) as { n: number };
    return row.n;
  }

  devicesInStates(rolloutId: string, states: readonly DeviceState[]): RolloutDeviceRecord[] {
    return (
      this.db
        .prepare(
          `SELECT * FROM rollout_devices WHERE rollout_id = ? AND state IN (${inList(states)})
           ORDER BY wave, joined_at`,
        )
        .all(rolloutId) as Record<string, unknown>[]
    ).map((r) => fromRow<RolloutDeviceRecord>(r));
  }
}
