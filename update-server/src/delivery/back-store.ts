/**
 * SQLite access for the back phase: ACKs (one per device and request id, with the answer that
 * was sent), the append-only status history, and presence.
 */
import type Database from 'better-sqlite3';

export interface AckRow {
  readonly deviceId: string;
  readonly requestId: string;
  readonly seq: number;
  readonly step: string;
  readonly code: string;
  readonly version: string | null;
  readonly detail: string | null;
  /** Device time of the step, Unix ms. */
  readonly at: number;
  readonly receivedAt: number;
  /** The ACK_RESP bytes first sent for this request id. */
  readonly response: Uint8Array;
  /** The device key's signature, when the ACK was signed. */
  readonly signature: Uint8Array | null;
  /** The signed ACK_REQ as received (deterministic CBOR): with the device key, the proof. */
  readonly request: Uint8Array | null;
}

export interface StatusRow {
  readonly deviceId: string;
  readonly requestId: string;
  readonly state: string;
  readonly code: string | null;
  readonly version: string | null;
  readonly seq: number | null;
  readonly have: number | null;
  readonly total: number | null;
  readonly detail: string | null;
  readonly at: number;
  readonly receivedAt: number;
  readonly response: Uint8Array;
}

export interface PresenceRow {
  readonly deviceId: string;
  readonly online: boolean;
  readonly at: number;
  readonly receivedAt: number;
  readonly version: string | null;
  readonly agent: string | null;
}

const camel = (row: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(row).map(([k, v]) => [
      k.replace(/_([a-z])/g, (_m, c: string) => c.toUpperCase()),
      v instanceof Buffer ? new Uint8Array(v) : v,
    ]),
  );

export class BackStore {
  private readonly db: Database.Database;
  private readonly stmts;

  constructor(db: Database.Database) {
    this.db = db;
    this.stmts = {
      ackResponse: db.prepare('SELECT response FROM acks WHERE device_id = ? AND request_id = ?'),
      insertAck: db.prepare(
        `INSERT INTO acks (device_id, request_id, seq, step, code, version, detail, at,
           received_at, response, signature, request)
         VALUES (@deviceId, @requestId, @seq, @step, @code, @version, @detail, @at,
           @receivedAt, @response, @signature, @request)`,
      ),
      acks: db.prepare(
        `SELECT device_id, request_id, seq, step, code, version, detail, at, received_at, response,
           signature, request
         FROM acks WHERE device_id = ? ORDER BY received_at DESC, rowid DESC LIMIT ?`,
      ),
      statusResponse: db.prepare(
        'SELECT response FROM status_reports WHERE device_id = ? AND request_id = ?',
      ),
      insertStatus: db.prepare(
        `INSERT INTO status_reports (device_id, request_id, state, code, version, seq, have,
           total, detail, at, received_at, response)
         VALUES (@deviceId, @requestId, @state, @code, @version, @seq, @have, @total, @detail,
           @at, @receivedAt, @response)`,
      ),
      statuses: db.prepare(
        `SELECT device_id, request_id, state, code, version, seq, have, total, detail, at,
           received_at, response
         FROM status_reports WHERE device_id = ? ORDER BY id DESC LIMIT ?`,
      ),
      presence: db.prepare('SELECT * FROM device_presence WHERE device_id = ?'),
      upsertPresence: db.prepare(
        `INSERT INTO device_presence (device_id, online, at, received_at, version, agent)
         VALUES (@deviceId, @online, @at, @receivedAt, @version, @agent)
         ON CONFLICT (device_id) DO UPDATE SET online = excluded.online, at = excluded.at,
           received_at = excluded.received_at, version = excluded.version,
           agent = excluded.agent`,
      ),
      onlineDevices: db.prepare('SELECT device_id FROM device_presence WHERE online = 1'),
      deviceKey: db.prepare('SELECT public_key FROM device_keys WHERE device_id = ?'),
      pinKey: db.prepare(
        'INSERT INTO device_keys (device_id, public_key, pinned_at) VALUES (?, ?, ?)',
      ),
      forgetKey: db.prepare('DELETE FROM device_keys WHERE device_id = ?'),
      markOffline: db.prepare('UPDATE device_presence SET online = 0 WHERE online = 1'),
    };
  }

  transaction<T>(fn: () => T): T {
    return this.db.transaction(fn)();
  }

  /** The ACK_RESP first sent for this request id, if it was recorded. */
  ackResponse(deviceId: string, requestId: string): Uint8Array | undefined {
    const row = this.stmts.ackResponse.get(deviceId, requestId) as { response: Buffer } | undefined;
    return row && new Uint8Array(row.response);
  }

  insertAck(row: AckRow): void {
    this.stmts.insertAck.run({
      ...row,
      response: Buffer.from(row.response),
      signature: row.signature && Buffer.from(row.signature),
      request: row.request && Buffer.from(row.request),
    });
  }

  /** The ed25519 key pinned for the device, if any (`docs/protocol.md` §8.5). */
  deviceKey(deviceId: string): Uint8Array | undefined {
    const row = this.stmts.deviceKey.get(deviceId) as { public_key: Buffer } | undefined;
    return row && new Uint8Array(row.public_key);
  }

  /** Pins the device's key; the caller checks that none is pinned (same transaction). */
  pinDeviceKey(deviceId: string, publicKey: Uint8Array, at: number): void {
    this.stmts.pinKey.run(deviceId, Buffer.from(publicKey), at);
  }

  /** Forgets the pinned key, so that the device's next signed ACK pins a new one. */
  forgetDeviceKey(deviceId: string): boolean {
    return this.stmts.forgetKey.run(deviceId).changes > 0;
  }

  /** The device's ACKs, newest first. */
  acks(deviceId: string, limit = 50): AckRow[] {
    return (this.stmts.acks.all(deviceId, limit) as Record<string, unknown>[]).map(
      (r) => camel(r) as unknown as AckRow,
    );
  }

  statusResponse(deviceId: string, requestId: string): Uint8Array | undefined {
    const row = this.stmts.statusResponse.get(deviceId, requestId) as
      { response: Buffer } | undefined;
    return row && new Uint8Array(row.response);
  }

  appendStatus(row: StatusRow): void {
    this.stmts.insertStatus.run({ ...row, response: Buffer.from(row.response) });
  }

  /** The device's status history, newest first. */
  statuses(deviceId: string, limit = 50): StatusRow[] {
    return (this.stmts.statuses.all(deviceId, limit) as Record<string, unknown>[]).map(
      (r) => camel(r) as unknown as StatusRow,
    );
  }

  presence(deviceId: string): PresenceRow | undefined {
    const row = this.stmts.presence.get(deviceId) as Record<string, unknown> | undefined;
    if (!row) return undefined;
    const p = camel(row) as unknown as Omit<PresenceRow, 'online'> & { online: number };
    return { ...p, online: p.online === 1 };
  }

  upsertPresence(row: PresenceRow): void {
    this.stmts.upsertPresence.run({ ...row, online: row.online ? 1 : 0 });
  }

  /** Marks every device offline; returns the ids that were online. */
  markAllOffline(): string[] {
    return this.transaction(() => {
      const ids = (this.stmts.onlineDevices.all() as { device_id: string }[]).map(
        (r) => r.device_id,
      );
      this.stmts.markOffline.run();
      return ids;
    });
  }
}
