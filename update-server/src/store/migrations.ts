/**
 * Core schema migrations, versions 1-49 (devices, releases, API tokens, audit log). Delivery
 * owns 50-99 (`delivery/migrations.ts`) and the rollout engine 100-199. A released migration is
 * never edited: a change is a new migration.
 */
import type { Migration } from './migrate.js';

export const coreMigrations: readonly Migration[] = [
  {
    version: 1,
    name: 'devices',
    up: `
      CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        hw_class TEXT NOT NULL,
        tags TEXT NOT NULL DEFAULT '{}',
        status TEXT NOT NULL CHECK (status IN ('active', 'decommissioned')),
        secret_hash TEXT,
        state TEXT,
        current_version TEXT,
        online INTEGER NOT NULL DEFAULT 0,
        last_seen INTEGER,
        created_at INTEGER NOT NULL,
        decommissioned_at INTEGER
      );
      CREATE INDEX devices_hw_class ON devices (hw_class);
      CREATE INDEX devices_state ON devices (state);
    `,
  },
  {
    version: 2,
    name: 'releases',
    up: `
      CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        version TEXT NOT NULL,
        hw_class TEXT NOT NULL,
        security_version INTEGER NOT NULL,
        size INTEGER NOT NULL,
        image_digest TEXT NOT NULL,
        chunk_bytes INTEGER NOT NULL,
        chunk_count INTEGER NOT NULL,
        table_digest TEXT NOT NULL,
        statement BLOB NOT NULL,
        statement_digest TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        UNIQUE (name, hw_class, version)
      );
      CREATE INDEX releases_image_digest ON releases (image_digest);
      CREATE INDEX releases_table_digest ON releases (table_digest);
    `,
  },
  {
    version: 3,
    name: 'api_tokens',
    up: `
      CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL,
        created_by TEXT,
        revoked_at INTEGER
      );
      -- A name stays unique among live tokens; a revoked token's name may be reused.
      CREATE UNIQUE INDEX api_tokens_live_name ON api_tokens (name) WHERE revoked_at IS NULL;
    `,
  },
  {
    version: 4,
    name: 'audit_log',
    up: `
      CREATE TABLE audit_log (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        actor TEXT NOT NULL,
        action TEXT NOT NULL,
        target TEXT NOT NULL,
        details TEXT NOT NULL DEFAULT '{}'
      );
      CREATE INDEX audit_log_target ON audit_log (target);
    `,
  },
  {
    version: 5,
    name: 'devices: device time of the report that set the state',
    up: `
      ALTER TABLE devices ADD COLUMN state_at INTEGER;
    `,
  },
];
