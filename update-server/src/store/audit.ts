/** The audit log: who changed what, when. Append-only; every API change writes one entry. */
import type { Clock } from '../clock.js';
import { Conditions } from './conditions.js';
import type { Db } from './db.js';
import { MAX_PAGE } from './devices.js';

export interface AuditEntry {
  id: number;
  /** Unix ms. */
  at: number;
  /** Name of the API token, or `system` / `cli` for changes made outside the API. */
  actor: string;
  /** Dotted verb, e.g. `device.register`, `release.create`, `token.revoke`. */
  action: string;
  /** What was changed, e.g. a device id or release id. */
  target: string;
  details: Record<string, unknown>;
}

export interface AuditFilter {
  actor?: string;
  action?: string;
  target?: string;
  limit?: number;
  offset?: number;
}

interface AuditRow {
  id: number;
  at: number;
  actor: string;
  action: string;
  target: string;
  details: string;
}

export class AuditLog {
  private readonly db: Db;
  private readonly clock: Clock;

  constructor(db: Db, clock: Clock) {
    this.db = db;
    this.clock = clock;
  }

  record(actor: string, action: string, target: string, details: object = {}): AuditEntry {
    const at = this.clock.now();
    const result = this.db
      .prepare('INSERT INTO audit_log (at, actor, action, target, details) VALUES (?, ?, ?, ?, ?)')
      .run(at, actor, action, target, JSON.stringify(details));
    return {
      id: Number(result.lastInsertRowid),
      at,
      actor,
      action,
      target,
      details: details as Record<string, unknown>,
    };
  }

  /** A page of entries, newest first, and the number matching the filter. */
  list(filter: AuditFilter = {}): { items: AuditEntry[]; total: number } {
    const where = new Conditions();
    if (filter.actor !== undefined) where.add('actor = ?', filter.actor);
    if (filter.action !== undefined) where.add('action = ?', filter.action);
    if (filter.target !== undefined) where.add('target = ?', filter.target);
    const total = (
      this.db
        .prepare(`SELECT count(*) AS n FROM audit_log ${where.where()}`)
        .get(...where.values) as { n: number }
    ).n;
    const rows = this.db
      .prepare(
        `SELECT id, at, actor, action, target, details FROM audit_log ${where.where()}
         ORDER BY id DESC LIMIT ? OFFSET ?`,
      )
      .all(...where.values, Math.min(filter.limit ?? 100, MAX_PAGE), filter.offset ?? 0);
    return {
      items: (rows as AuditRow[]).map((r) => ({
        ...r,
        details: JSON.parse(r.details) as Record<string, unknown>,
      })),
      total,
    };
  }
}
