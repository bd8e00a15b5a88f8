/**
 * API bearer tokens. A token is shown once at creation; only its SHA-256 is stored (the token is
 * 256 random bits, so a fast hash suffices and verification stays cheap on every request).
 */
import { createHash, randomBytes } from 'node:crypto';

import { fbError } from '@fetchback/shared';

import type { Clock } from '../clock.js';
import { type Db, isUniqueViolation } from './db.js';

export const ROLES = ['admin', 'operator', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/** Token names: what the audit log shows as the actor. */
const TOKEN_NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
/** Prefix of every token, so that secret scanners and humans recognise one. */
const TOKEN_PREFIX = 'fbt_';

export interface TokenRecord {
  id: string;
  name: string;
  role: Role;
  createdAt: number;
  createdBy: string | null;
  revokedAt: number | null;
}

interface TokenRow {
  id: string;
  name: string;
  role: Role;
  created_at: number;
  created_by: string | null;
  revoked_at: number | null;
}

const COLUMNS = 'id, name, role, created_at, created_by, revoked_at';

function toRecord(row: TokenRow): TokenRecord {
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    createdBy: row.created_by,
    revokedAt: row.revoked_at,
  };
}

function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** True when `held` grants at least `needed` (admin > operator > viewer). */
export function roleAtLeast(held: Role, needed: Role): boolean {
  return ROLES.indexOf(held) <= ROLES.indexOf(needed);
}

export class TokenStore {
  private readonly db: Db;
  private readonly clock: Clock;

  constructor(db: Db, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  /**
   * Creates a token and returns it in clear text, once.
   *
   * @throws FetchbackError `FB_ERR_ARGUMENT` for a bad name or role, `FB_ERR_CONFLICT` for a
   *   name held by a live token.
   */
  create(
    name: string,
    role: Role,
    createdBy: string | null = null,
  ): {
    token: string;
    record: TokenRecord;
  } {
    if (!TOKEN_NAME_PATTERN.test(name)) {
      throw fbError('FB_ERR_ARGUMENT', `"name" expected ${TOKEN_NAME_PATTERN}, got ${name}`);
    }
    if (!(ROLES as readonly string[]).includes(role)) {
      throw fbError('FB_ERR_ARGUMENT', `"role" expected one of ${ROLES.join(', ')}, got ${role}`);
    }
    const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
    const id = `tok-${randomBytes(6).toString('hex')}`;
    try {
      this.db
        .prepare(
          `INSERT INTO api_tokens (id, name, role, token_hash, created_at, created_by)
           VALUES (?, ?, ?, ?, ?, ?)`,
        )
        .run(id, name, role, hashToken(token), this.clock.now(), createdBy);
    } catch (err) {
      if (isUniqueViolation(err)) throw fbError('FB_ERR_CONFLICT', `token named ${name}`);
      throw err;
    }
    return { token, record: this.require(id) };
  }

  /** The live token with this secret, or undefined. */
  verify(token: string): TokenRecord | undefined {
    if (!token.startsWith(TOKEN_PREFIX)) return undefined;
    const row = this.db
      .prepare(`SELECT ${COLUMNS} FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL`)
      .get(hashToken(token)) as TokenRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** The token with this id, or the live token with this name. */
  find(idOrName: string): TokenRecord | undefined {
    const row = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM api_tokens
         WHERE id = ? OR (name = ? AND revoked_at IS NULL) ORDER BY revoked_at IS NULL DESC LIMIT 1`,
      )
      .get(idOrName, idOrName) as TokenRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** @throws FetchbackError `FB_ERR_NOT_FOUND` */
  require(idOrName: string): TokenRecord {
    const record = this.find(idOrName);
    if (!record) throw fbError('FB_ERR_NOT_FOUND', `token ${idOrName}`);
    return record;
  }

  /**
   * Revokes a token. The last live admin token cannot be revoked: nobody could create another.
   *
   * @throws FetchbackError `FB_ERR_NOT_FOUND`, `FB_ERR_STATE` (already revoked, last admin)
   */
  revoke(idOrName: string): TokenRecord {
    const record = this.require(idOrName);
    if (record.revokedAt !== null) throw fbError('FB_ERR_STATE', `token ${record.id} is revoked`);
    if (record.role === 'admin' && this.countLive('admin') === 1) {
      throw fbError('FB_ERR_STATE', 'the last admin token cannot be revoked');
    }
    this.db
      .prepare('UPDATE api_tokens SET revoked_at = ? WHERE id = ?')
      .run(this.clock.now(), record.id);
    return this.require(record.id);
  }

  /** Every token, live first, newest first; never the secrets. */
  list(): TokenRecord[] {
    const rows = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM api_tokens ORDER BY revoked_at IS NOT NULL, created_at DESC, id`,
      )
      .all() as TokenRow[];
    return rows.map(toRecord);
  }

  countLive(role?: Role): number {
    const sql = 'SELECT count(*) AS n FROM api_tokens WHERE revoked_at IS NULL';
    const row = (
      role ? this.db.prepare(`${sql} AND role = ?`).get(role) : this.db.prepare(sql).get()
    ) as { n: number };
    return row.n;
  }

  /** Number of tokens ever created; zero only on a fresh database. */
  countAll(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM api_tokens').get() as { n: number }).n;
  }
}
