/**
 * The device registry. Implements the delivery and broker `DevicePort` (`get`, `authenticate`,
 * `touch`) and the operator's create / list / decommission.
 */
import { createHash, timingSafeEqual } from 'node:crypto';

import { assertDeviceId, fbError } from '@fetchback/shared';

import type { DeviceTouch } from '../broker/ports.js';
import type { Clock } from '../clock.js';
import { type Db, isUniqueViolation } from './db.js';
import { Conditions } from './conditions.js';
import { hashSecret, newSecret, verifySecret } from './secret-hash.js';
import { assertHardwareClass, assertTagKey, assertTags } from './validate.js';

export type DeviceStatus = 'active' | 'decommissioned';

export interface DeviceRecord {
  id: string;
  hwClass: string;
  status: DeviceStatus;
  tags: Record<string, string>;
  /** Last lifecycle state the device reported, or null before its first report. */
  state: string | null;
  currentVersion: string | null;
  online: boolean;
  /** Unix ms of the last message or presence change, or null when never seen. */
  lastSeen: number | null;
  createdAt: number;
  decommissionedAt: number | null;
}

export interface DeviceFilter {
  hwClass?: string;
  /** Every tag must match. */
  tags?: Record<string, string>;
  state?: string;
  status?: DeviceStatus;
  limit?: number;
  offset?: number;
}

interface DeviceRow {
  id: string;
  hw_class: string;
  tags: string;
  status: DeviceStatus;
  state: string | null;
  current_version: string | null;
  online: number;
  last_seen: number | null;
  created_at: number;
  decommissioned_at: number | null;
}

const COLUMNS =
  'id, hw_class, tags, status, state, current_version, online, last_seen, created_at, ' +
  'decommissioned_at';

/** Largest page a list returns. */
export const MAX_PAGE = 1000;

/** Most devices whose last good secret is remembered (`authenticate`). */
const VERIFIED_CACHE_ENTRIES = 100_000;

function toRecord(row: DeviceRow): DeviceRecord {
  return {
    id: row.id,
    hwClass: row.hw_class,
    status: row.status,
    tags: JSON.parse(row.tags) as Record<string, string>,
    state: row.state,
    currentVersion: row.current_version,
    online: row.online === 1,
    lastSeen: row.last_seen,
    createdAt: row.created_at,
    decommissionedAt: row.decommissioned_at,
  };
}

export class DeviceRepository {
  private readonly db: Db;
  private readonly clock: Clock;
  /**
   * Per device, the stored hash a secret last matched and that secret's SHA-256, so that a
   * reconnect costs one SHA-256 instead of one scrypt. An entry counts only while the row still
   * holds the same hash: a decommissioned device (hash erased) is refused whatever is cached.
   */
  private readonly verified = new Map<string, { stored: string; digest: Buffer }>();

  constructor(db: Db, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  /**
   * Registers a device and returns it with its secret, which is not stored and cannot be shown
   * again. `credentials` (from `newCredentials`, hashed off the event loop) are used when given;
   * otherwise a secret is made and hashed here, synchronously.
   *
   * @throws FetchbackError `FB_ERR_DEVICE_ID_INVALID`, `FB_ERR_ARGUMENT`, `FB_ERR_DEVICE_EXISTS`
   */
  create(
    input: { id: string; hwClass: string; tags?: Record<string, string> },
    credentials?: { secret: string; secretHash: string },
  ): {
    device: DeviceRecord;
    secret: string;
  } {
    const id = assertDeviceId(input.id);
    const hwClass = assertHardwareClass(input.hwClass);
    const tags = assertTags(input.tags ?? {});
    const secret = credentials?.secret ?? newSecret();
    const secretHash = credentials?.secretHash ?? hashSecret(secret);
    try {
      this.db
        .prepare(
          `INSERT INTO devices (id, hw_class, tags, status, secret_hash, online, created_at)
           VALUES (?, ?, ?, 'active', ?, 0, ?)`,
        )
        .run(id, hwClass, JSON.stringify(tags), secretHash, this.clock.now());
    } catch (err) {
      if (isUniqueViolation(err)) throw fbError('FB_ERR_DEVICE_EXISTS', id);
      throw err;
    }
    return { device: this.require(id), secret };
  }

  get(id: string): DeviceRecord | undefined {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM devices WHERE id = ?`).get(id) as
      DeviceRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** @throws FetchbackError `FB_ERR_DEVICE_UNKNOWN` */
  require(id: string): DeviceRecord {
    const device = this.get(id);
    if (!device) throw fbError('FB_ERR_DEVICE_UNKNOWN', id);
    return device;
  }

  /** False for an unknown or decommissioned device and for a wrong secret. */
  async authenticate(id: string, secret: string): Promise<boolean> {
    const stored = this.secretHashOf(id);
    if (!stored) return false;
    const digest = createHash('sha256').update(secret).digest();
    const known = this.verified.get(id);
    if (known?.stored === stored && timingSafeEqual(known.digest, digest)) return true;

    if (!(await verifySecret(secret, stored))) return false;
    // The row may have changed while scrypt ran (a decommission): only a still-current hash
    // is remembered, and the answer follows the row as it is now.
    if (this.secretHashOf(id) !== stored) return false;
    this.verified.delete(id);
    this.verified.set(id, { stored, digest });
    if (this.verified.size > VERIFIED_CACHE_ENTRIES) {
      this.verified.delete(this.verified.keys().next().value as string);
    }
    return true;
  }

  private secretHashOf(id: string): string | null | undefined {
    const row = this.db
      .prepare(`SELECT secret_hash FROM devices WHERE id = ? AND status = 'active'`)
      .get(id) as { secret_hash: string | null } | undefined;
    return row?.secret_hash;
  }

  /** Records what the device reported; fields left out keep their value. */
  touch(id: string, fields: DeviceTouch): void {
    const update = new Conditions();
    // Reports can arrive out of order (a dropped one is retried later); with `stateAt`, only a
    // report at least as new as the one that set the state may change state and version.
    const stateAt = fields.stateAt;
    const set = (column: string, value: string | number) => {
      if (stateAt === undefined) update.add(`${column} = ?`, value);
      else
        update.add(
          `${column} = CASE WHEN state_at IS NULL OR state_at <= ? THEN ? ELSE ${column} END`,
          stateAt,
          value,
        );
    };
    if (fields.state !== undefined) set('state', fields.state);
    if (fields.currentVersion !== undefined) set('current_version', fields.currentVersion);
    if (stateAt !== undefined && (fields.state ?? fields.currentVersion) !== undefined) {
      // Every SET expression reads the row as it was before the UPDATE.
      set('state_at', stateAt);
    }
    if (fields.online !== undefined) update.add('online = ?', fields.online ? 1 : 0);
    if (fields.lastSeen !== undefined) update.add('last_seen = ?', fields.lastSeen);
    if (update.sql.length === 0) return;
    this.db
      .prepare(`UPDATE devices SET ${update.sql.join(', ')} WHERE id = ?`)
      .run(...update.values, id);
  }

  /** A page of devices, ordered by id, and the number matching the filter. */
  list(filter: DeviceFilter = {}): { items: DeviceRecord[]; total: number } {
    const where = new Conditions();
    if (filter.hwClass !== undefined) where.add('hw_class = ?', filter.hwClass);
    if (filter.state !== undefined) where.add('state = ?', filter.state);
    if (filter.status !== undefined) where.add('status = ?', filter.status);
    for (const [key, value] of Object.entries(filter.tags ?? {})) {
      // The key is checked against the name alphabet, so the JSON path cannot be widened.
      where.add('json_extract(tags, ?) = ?', `$."${assertTagKey(key)}"`, value);
    }
    const values = where.values;
    const clause = where.where();
    const total = (
      this.db.prepare(`SELECT count(*) AS n FROM devices ${clause}`).get(...values) as {
        n: number;
      }
    ).n;
    const limit = Math.min(filter.limit ?? 100, MAX_PAGE);
    const rows = this.db
      .prepare(`SELECT ${COLUMNS} FROM devices ${clause} ORDER BY id LIMIT ? OFFSET ?`)
      .all(...values, limit, filter.offset ?? 0) as DeviceRow[];
    return { items: rows.map(toRecord), total };
  }

  /**
   * Decommissions a device: its credentials are erased, so it can never authenticate again.
   * Dropping its live connection is the caller's job (`MessageBus.disconnectDevice`).
   *
   * @throws FetchbackError `FB_ERR_DEVICE_UNKNOWN`, `FB_ERR_DEVICE_DECOMMISSIONED`
   */
  decommission(id: string): DeviceRecord {
    const device = this.require(id);
    if (device.status === 'decommissioned') throw fbError('FB_ERR_DEVICE_DECOMMISSIONED', id);
    this.db
      .prepare(
        `UPDATE devices SET status = 'decommissioned', secret_hash = NULL, online = 0,
           decommissioned_at = ? WHERE id = ?`,
      )
      .run(this.clock.now(), id);
    return this.require(id);
  }

  /** Number of devices per status and reported state (for the metrics gauge). */
  countByState(): { status: DeviceStatus; state: string | null; count: number }[] {
    return this.db
      .prepare(
        'SELECT status, state, count(*) AS count FROM devices GROUP BY status, state ORDER BY 1, 2',
      )
      .all() as { status: DeviceStatus; state: string | null; count: number }[];
  }
}
