/**
 * Versioned schema migrations. Each migration runs once, inside a transaction, and its version
 * is recorded in `schema_migrations`; a database newer than the code is refused.
 *
 * Version ranges are owned by modules so that they can evolve apart: 1-99 the core store,
 * 100-199 the rollout engine.
 */
import type Database from 'better-sqlite3';

import { fbError } from '@fetchback/shared';

export interface Migration {
  /** Unique, increasing within its owner's range. */
  readonly version: number;
  readonly name: string;
  /** SQL run as one transaction. */
  readonly up: string;
}

/** Applies every migration not applied yet, in version order. Returns the versions applied. */
export function runMigrations(db: Database.Database, migrations: readonly Migration[]): number[] {
  db.exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  )`);
  const sorted = [...migrations].sort((a, b) => a.version - b.version);
  const versions = new Set(sorted.map((m) => m.version));
  if (versions.size !== sorted.length) {
    throw fbError('FB_ERR_CONFIG_INVALID', 'two migrations share a version');
  }
  const applied = new Set(
    (db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map(
      (r) => r.version,
    ),
  );
  for (const v of applied) {
    if (!versions.has(v)) {
      throw fbError('FB_ERR_CONFIG_INVALID', `database has migration ${v}, unknown to this build`);
    }
  }
  const done: number[] = [];
  const record = db.prepare(
    'INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)',
  );
  for (const m of sorted) {
    if (applied.has(m.version)) continue;
    db.transaction(() => {
      db.exec(m.up);
      record.run(m.version, m.name, Date.now());
    })();
    done.push(m.version);
  }
  return done;
}
