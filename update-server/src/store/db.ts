/**
 * Opens the SQLite database: WAL journal (readers never block the writer), foreign keys on, and
 * a busy timeout so that a second connection (a backup, the CLI) waits instead of failing.
 */
import Database from 'better-sqlite3';

import { fbError } from '@fetchback/shared';

export type Db = Database.Database;

/** How long a statement waits for a lock held by another connection, in milliseconds. */
const BUSY_TIMEOUT_MS = 5000;

/** Most prepared statements kept per connection (the SQL texts in use are a few dozen). */
const STATEMENT_CACHE_SIZE = 256;

/**
 * Opens (creating if needed) the database file.
 *
 * @throws FetchbackError `FB_ERR_STORAGE` when the file cannot be opened or written.
 */
export function openDatabase(file: string): Db {
  let db: Db;
  try {
    db = new Database(file);
    db.pragma('journal_mode = WAL');
  } catch (err) {
    throw fbError('FB_ERR_STORAGE', `cannot open database ${file}: ${(err as Error).message}`);
  }
  db.pragma('foreign_keys = ON');
  db.pragma(`busy_timeout = ${BUSY_TIMEOUT_MS}`);
  // In WAL mode NORMAL keeps the database consistent across a crash of the process or the OS;
  // a power cut may lose the last transactions, never corrupt the file.
  db.pragma('synchronous = NORMAL');
  cacheStatements(db);
  return db;
}

/**
 * Makes `db.prepare` return a cached statement for SQL it has seen. Repositories prepare their
 * SQL where they use it, and the fetch path runs several lookups per FETCH_REQ: compiling each
 * one every time cost about a tenth of the server's CPU at full chunk rate. Statements are only
 * run synchronously here (`get`, `all`, `run`), so sharing one is safe.
 */
function cacheStatements(db: Db): void {
  const prepare = db.prepare.bind(db);
  const cache = new Map<string, Database.Statement>();
  db.prepare = ((sql: string) => {
    let statement = cache.get(sql);
    if (!statement) {
      if (cache.size >= STATEMENT_CACHE_SIZE) cache.delete(cache.keys().next().value as string);
      statement = prepare(sql);
      cache.set(sql, statement);
    }
    return statement;
  }) as Db['prepare'];
}

/** True when `err` is SQLite refusing a row that breaks a UNIQUE or PRIMARY KEY constraint. */
export function isUniqueViolation(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY';
}
