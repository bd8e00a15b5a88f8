/** SQLite access for assignments and the per-device sequence counter. */
import { performance } from 'node:perf_hooks';

import type Database from 'better-sqlite3';

/** One issued assignment. */
export interface AssignmentRecord {
  readonly deviceId: string;
  readonly seq: number;
  readonly releaseId: string;
  readonly rolloutId: string | null;
  /** Hex digest of the release statement body the assignment names. */
  readonly statementDigest: string;
  /** The manifest message as published (CBOR). */
  readonly manifest: Uint8Array;
  /** Unix ms. */
  readonly issuedAt: number;
  readonly expiresAt: number;
  readonly ackDeadline: number | null;
}

interface Row {
  device_id: string;
  seq: number;
  release_id: string;
  rollout_id: string | null;
  statement_digest: string;
  manifest: Buffer;
  issued_at: number;
  expires_at: number;
  ack_deadline: number | null;
}

const toRecord = (r: Row): AssignmentRecord => ({
  deviceId: r.device_id,
  seq: r.seq,
  releaseId: r.release_id,
  rolloutId: r.rollout_id,
  statementDigest: r.statement_digest,
  manifest: new Uint8Array(r.manifest),
  issuedAt: r.issued_at,
  expiresAt: r.expires_at,
  ackDeadline: r.ack_deadline,
});

/**
 * How long a device's newest assignment is served from memory, in milliseconds. Every
 * FETCH_REQ checks it; this process's own inserts invalidate it at once, so the bound only
 * matters if another process wrote the same database file.
 */
const LATEST_CACHE_MS = 1000;
/** Most devices whose newest assignment is kept in memory; the oldest read is dropped first. */
const LATEST_CACHE_DEVICES = 4096;

export class AssignmentStore {
  private readonly db: Database.Database;
  private readonly stmts;
  /** Newest assignment per device, as read outside any transaction, and when it was read. */
  private readonly latestCache = new Map<
    string,
    { record: AssignmentRecord | undefined; readAt: number }
  >();

  constructor(db: Database.Database) {
    this.db = db;
    this.stmts = {
      next: db.prepare(
        `INSERT INTO device_sequences (device_id, last_seq) VALUES (?, 1)
         ON CONFLICT (device_id) DO UPDATE SET last_seq = last_seq + 1
         RETURNING last_seq`,
      ),
      insert: db.prepare(
        `INSERT INTO assignments (device_id, seq, release_id, rollout_id, statement_digest,
           manifest, issued_at, expires_at, ack_deadline)
         VALUES (@deviceId, @seq, @releaseId, @rolloutId, @statementDigest, @manifest,
           @issuedAt, @expiresAt, @ackDeadline)`,
      ),
      latest: db.prepare('SELECT * FROM assignments WHERE device_id = ? ORDER BY seq DESC LIMIT 1'),
      bySeq: db.prepare('SELECT * FROM assignments WHERE device_id = ? AND seq = ?'),
      history: db.prepare(
        'SELECT * FROM assignments WHERE device_id = ? ORDER BY seq DESC LIMIT ?',
      ),
      latestPerDevice: db.prepare(
        `SELECT a.* FROM assignments a
         JOIN (SELECT device_id, MAX(seq) AS seq FROM assignments GROUP BY device_id) m
           ON a.device_id = m.device_id AND a.seq = m.seq`,
      ),
      lastSeq: db.prepare('SELECT last_seq FROM device_sequences WHERE device_id = ?'),
    };
  }

  /** Runs `fn` in one transaction (sequence and insert commit together or not at all). */
  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** Takes the device's next sequence number; monotonic, survives restarts. */
  nextSequence(deviceId: string): number {
    return (this.stmts.next.get(deviceId) as { last_seq: number }).last_seq;
  }

  /** The last sequence number issued to the device (0 for none). */
  lastSequence(deviceId: string): number {
    return (this.stmts.lastSeq.get(deviceId) as { last_seq: number } | undefined)?.last_seq ?? 0;
  }

  insert(record: AssignmentRecord): void {
    this.latestCache.delete(record.deviceId);
    this.stmts.insert.run({ ...record, manifest: Buffer.from(record.manifest) });
  }

  /**
   * The device's newest assignment. Reads made inside a transaction are not cached: the
   * transaction may still roll back the row they saw.
   */
  latest(deviceId: string): AssignmentRecord | undefined {
    const now = performance.now();
    const cached = this.latestCache.get(deviceId);
    if (cached && now - cached.readAt < LATEST_CACHE_MS) return cached.record;
    const row = this.stmts.latest.get(deviceId) as Row | undefined;
    const record = row && toRecord(row);
    if (!this.db.inTransaction) this.remember(deviceId, record, now);
    return record;
  }

  private remember(deviceId: string, record: AssignmentRecord | undefined, readAt: number): void {
    this.latestCache.delete(deviceId);
    this.latestCache.set(deviceId, { record, readAt });
    if (this.latestCache.size > LATEST_CACHE_DEVICES) {
      this.latestCache.delete(this.latestCache.keys().next().value as string);
    }
  }

  bySeq(deviceId: string, seq: number): AssignmentRecord | undefined {
    const row = this.stmts.bySeq.get(deviceId, seq) as Row | undefined;
    return row && toRecord(row);
  }

  history(deviceId: string, limit: number): AssignmentRecord[] {
    return (this.stmts.history.all(deviceId, limit) as Row[]).map(toRecord);
  }

  /** The newest assignment of every device that has one. */
  latestPerDevice(): AssignmentRecord[] {
    return (this.stmts.latestPerDevice.all() as Row[]).map(toRecord);
  }
}
