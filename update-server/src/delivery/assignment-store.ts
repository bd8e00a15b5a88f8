/** SQLite access for assignments and the per-device sequence counter. */
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

export class AssignmentStore {
  private readonly db: Database.Database;
  private readonly stmts;

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
    this.stmts.insert.run({ ...record, manifest: Buffer.from(record.manifest) });
  }

  latest(deviceId: string): AssignmentRecord | undefined {
    const row = this.stmts.latest.get(deviceId) as Row | undefined;
    return row && toRecord(row);
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
