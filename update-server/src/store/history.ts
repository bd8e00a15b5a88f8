/**
 * Read-only views of a device's history in delivery's tables (`delivery/migrations.ts`):
 * assignments, ACKs and status reports. The API reads them; only delivery writes them.
 */
import type { Db } from './db.js';

export interface AssignmentEntry {
  seq: number;
  releaseId: string;
  rolloutId: string | null;
  issuedAt: number;
  expiresAt: number;
}

export interface AckEntry {
  requestId: string;
  seq: number;
  step: string;
  code: string;
  version: string | null;
  at: number;
  receivedAt: number;
  /** Signed by the device key (the signed bytes are kept with it). */
  signed: boolean;
}

export interface StatusEntry {
  state: string;
  code: string | null;
  version: string | null;
  seq: number | null;
  have: number | null;
  total: number | null;
  detail: string | null;
  at: number;
  receivedAt: number;
}

/** Runs a query, or returns [] when delivery's tables are not there (a core-only database). */
function allOrNone<T>(db: Db, sql: string, ...params: (string | number)[]): T[] {
  try {
    return db.prepare(sql).all(...params) as T[];
  } catch (err) {
    if (/no such table/.test((err as Error).message)) return [];
    throw err;
  }
}

export class DeviceHistory {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** Assignments of a device, newest first. */
  assignments(deviceId: string, limit = 100, offset = 0): AssignmentEntry[] {
    return allOrNone<AssignmentEntry>(
      this.db,
      `SELECT seq, release_id AS releaseId, rollout_id AS rolloutId, issued_at AS issuedAt,
         expires_at AS expiresAt
       FROM assignments WHERE device_id = ? ORDER BY seq DESC LIMIT ? OFFSET ?`,
      deviceId,
      limit,
      offset,
    );
  }

  /** ACKs of a device, newest first. */
  acks(deviceId: string, limit = 50): AckEntry[] {
    return allOrNone<AckEntry>(
      this.db,
      `SELECT request_id AS requestId, seq, step, code, version, at, received_at AS receivedAt,
         signature IS NOT NULL AS signed
       FROM acks WHERE device_id = ? ORDER BY received_at DESC, seq DESC LIMIT ?`,
      deviceId,
      limit,
    ).map((a) => ({ ...a, signed: Boolean(a.signed) }));
  }

  /** Status reports of a device, newest first. */
  status(deviceId: string, limit = 50): StatusEntry[] {
    return allOrNone<StatusEntry>(
      this.db,
      `SELECT state, code, version, seq, have, total, detail, at, received_at AS receivedAt
       FROM status_reports WHERE device_id = ? ORDER BY id DESC LIMIT ?`,
      deviceId,
      limit,
    );
  }
}
