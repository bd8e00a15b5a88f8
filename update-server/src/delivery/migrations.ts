/**
 * Delivery's tables, versions 50-99 of the core range (`store/migrate.ts`). Device and release
 * ids are not foreign keys: devices are decommissioned, never deleted, and delivery's tables
 * stay usable by themselves in tests.
 */
import type { Migration } from '../store/migrate.js';

export const deliveryMigrations: Migration[] = [
  {
    version: 50,
    name: 'delivery: assignments and per-device sequence numbers',
    up: `
      CREATE TABLE device_sequences (
        device_id TEXT PRIMARY KEY,
        last_seq INTEGER NOT NULL CHECK (last_seq >= 0)
      );
      CREATE TABLE assignments (
        device_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        release_id TEXT NOT NULL,
        rollout_id TEXT,
        statement_digest TEXT NOT NULL,
        manifest BLOB NOT NULL,
        issued_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        ack_deadline INTEGER,
        PRIMARY KEY (device_id, seq)
      );
      CREATE INDEX assignments_by_release ON assignments (release_id);
      CREATE INDEX assignments_by_rollout ON assignments (rollout_id) WHERE rollout_id IS NOT NULL;
    `,
  },
  {
    version: 51,
    name: 'delivery: acknowledgements, one per device and request id',
    up: `
      CREATE TABLE acks (
        device_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        step TEXT NOT NULL,
        code TEXT NOT NULL,
        version TEXT,
        detail TEXT,
        at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        response BLOB NOT NULL,
        PRIMARY KEY (device_id, request_id)
      );
      CREATE INDEX acks_by_assignment ON acks (device_id, seq);
    `,
  },
  {
    version: 52,
    name: 'delivery: append-only status history',
    up: `
      CREATE TABLE status_reports (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        request_id TEXT NOT NULL,
        state TEXT NOT NULL,
        code TEXT,
        version TEXT,
        seq INTEGER,
        have INTEGER,
        total INTEGER,
        detail TEXT,
        at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        response BLOB NOT NULL,
        UNIQUE (device_id, request_id)
      );
    `,
  },
  {
    version: 53,
    name: 'delivery: device presence',
    up: `
      CREATE TABLE device_presence (
        device_id TEXT PRIMARY KEY,
        online INTEGER NOT NULL,
        at INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        version TEXT,
        agent TEXT
      );
    `,
  },
  {
    version: 54,
    name: 'delivery: device keys pinned from signed ACKs; the signed ACK kept as proof',
    up: `
      CREATE TABLE device_keys (
        device_id TEXT PRIMARY KEY,
        public_key BLOB NOT NULL,
        pinned_at INTEGER NOT NULL
      );
      ALTER TABLE acks ADD COLUMN signature BLOB;
      ALTER TABLE acks ADD COLUMN request BLOB;
    `,
  },
];
