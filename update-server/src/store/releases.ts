/**
 * Releases: one signed release statement per (name, hardware class, version), over an image in
 * the content-addressed image store. Implements the delivery `ReleasePort`.
 */
import { fbError } from '@fetchback/shared';

import { type Db, isUniqueViolation } from './db.js';
import { Conditions } from './conditions.js';
import { MAX_PAGE } from './devices.js';

export interface ReleaseRecord {
  id: string;
  name: string;
  version: string;
  hwClass: string;
  securityVersion: number;
  /** Image length, in bytes. */
  size: number;
  /** SHA-256 of the image, hex. */
  imageDigest: string;
  chunkBytes: number;
  chunkCount: number;
  /** SHA-256 of the chunk table, hex. */
  tableDigest: string;
  /** Deterministic CBOR of the SignedRelease. */
  statement: Uint8Array;
  /** Hex of `releaseDigest(body)`: what assignments name. */
  statementDigest: string;
  createdAt: number;
}

export interface ReleaseFilter {
  name?: string;
  hwClass?: string;
  limit?: number;
  offset?: number;
}

interface ReleaseRow {
  id: string;
  name: string;
  version: string;
  hw_class: string;
  security_version: number;
  size: number;
  image_digest: string;
  chunk_bytes: number;
  chunk_count: number;
  table_digest: string;
  statement: Buffer;
  statement_digest: string;
  created_at: number;
}

const COLUMNS =
  'id, name, version, hw_class, security_version, size, image_digest, chunk_bytes, ' +
  'chunk_count, table_digest, statement, statement_digest, created_at';

function toRecord(row: ReleaseRow): ReleaseRecord {
  return {
    id: row.id,
    name: row.name,
    version: row.version,
    hwClass: row.hw_class,
    securityVersion: row.security_version,
    size: row.size,
    imageDigest: row.image_digest,
    chunkBytes: row.chunk_bytes,
    chunkCount: row.chunk_count,
    tableDigest: row.table_digest,
    statement: new Uint8Array(row.statement),
    statementDigest: row.statement_digest,
    createdAt: row.created_at,
  };
}

export class ReleaseRepository {
  private readonly db: Db;

  constructor(db: Db) {
    this.db = db;
  }

  /** @throws FetchbackError `FB_ERR_RELEASE_EXISTS` for a taken (name, class, version). */
  create(record: ReleaseRecord): ReleaseRecord {
    try {
      this.db
        .prepare(`INSERT INTO releases (${COLUMNS}) VALUES (${COLUMNS.replace(/\w+/g, '?')})`)
        .run(
          record.id,
          record.name,
          record.version,
          record.hwClass,
          record.securityVersion,
          record.size,
          record.imageDigest,
          record.chunkBytes,
          record.chunkCount,
          record.tableDigest,
          Buffer.from(record.statement),
          record.statementDigest,
          record.createdAt,
        );
    } catch (err) {
      if (isUniqueViolation(err)) {
        throw fbError(
          'FB_ERR_RELEASE_EXISTS',
          `${record.name} ${record.version} for ${record.hwClass}`,
        );
      }
      throw err;
    }
    return record;
  }

  /** True when (name, class, version) is taken; checked before an upload is accepted. */
  exists(name: string, hwClass: string, version: string): boolean {
    return (
      this.db
        .prepare('SELECT 1 FROM releases WHERE name = ? AND hw_class = ? AND version = ?')
        .get(name, hwClass, version) !== undefined
    );
  }

  get(id: string): ReleaseRecord | undefined {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM releases WHERE id = ?`).get(id) as
      ReleaseRow | undefined;
    return row ? toRecord(row) : undefined;
  }

  /** @throws FetchbackError `FB_ERR_RELEASE_UNKNOWN` */
  require(id: string): ReleaseRecord {
    const release = this.get(id);
    if (!release) throw fbError('FB_ERR_RELEASE_UNKNOWN', id);
    return release;
  }

  /** The release whose image or chunk table has this digest (hex), and which of the two. */
  byObjectDigest(
    digestHex: string,
  ): { release: ReleaseRecord; kind: 'image' | 'table' } | undefined {
    const image = this.db
      .prepare(`SELECT ${COLUMNS} FROM releases WHERE image_digest = ? LIMIT 1`)
      .get(digestHex) as ReleaseRow | undefined;
    if (image) return { release: toRecord(image), kind: 'image' };
    const table = this.db
      .prepare(`SELECT ${COLUMNS} FROM releases WHERE table_digest = ? LIMIT 1`)
      .get(digestHex) as ReleaseRow | undefined;
    return table ? { release: toRecord(table), kind: 'table' } : undefined;
  }

  /** A page of releases, newest first, and the number matching the filter. */
  list(filter: ReleaseFilter = {}): { items: ReleaseRecord[]; total: number } {
    const where = new Conditions();
    if (filter.name !== undefined) where.add('name = ?', filter.name);
    if (filter.hwClass !== undefined) where.add('hw_class = ?', filter.hwClass);
    const total = (
      this.db
        .prepare(`SELECT count(*) AS n FROM releases ${where.where()}`)
        .get(...where.values) as {
        n: number;
      }
    ).n;
    const rows = this.db
      .prepare(
        `SELECT ${COLUMNS} FROM releases ${where.where()}
         ORDER BY created_at DESC, id LIMIT ? OFFSET ?`,
      )
      .all(...where.values, Math.min(filter.limit ?? 100, MAX_PAGE), filter.offset ?? 0);
    return { items: (rows as ReleaseRow[]).map(toRecord), total };
  }

  count(): number {
    return (this.db.prepare('SELECT count(*) AS n FROM releases').get() as { n: number }).n;
  }
}
