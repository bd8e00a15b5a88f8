/**
 * JSON schemas of the API's resources, registered once by `buildApi` (they become the OpenAPI
 * components), and the views that turn store records into them. Times are ISO 8601 strings.
 */
import type { FastifyInstance } from 'fastify';

import type { DeviceRecord } from '../store/devices.js';
import type { ReleaseRecord } from '../store/releases.js';
import type { TokenRecord } from '../store/tokens.js';

const nullableString = { type: ['string', 'null'] } as const;
const time = { type: 'string', format: 'date-time' } as const;
const nullableTime = { type: ['string', 'null'], format: 'date-time' } as const;

export const deviceSchema = {
  $id: 'Device',
  type: 'object',
  required: ['id', 'hardwareClass', 'tags', 'status', 'state', 'currentVersion', 'online'],
  properties: {
    id: { type: 'string' },
    hardwareClass: { type: 'string' },
    tags: { type: 'object', additionalProperties: { type: 'string' } },
    status: { type: 'string', enum: ['active', 'decommissioned'] },
    state: { ...nullableString, description: 'last lifecycle state the device reported' },
    currentVersion: nullableString,
    online: { type: 'boolean' },
    lastSeen: nullableTime,
    createdAt: time,
    decommissionedAt: nullableTime,
  },
} as const;

export const releaseSchema = {
  $id: 'Release',
  type: 'object',
  required: ['id', 'name', 'version', 'hardwareClass', 'securityVersion', 'size', 'imageDigest'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    version: { type: 'string' },
    hardwareClass: { type: 'string' },
    securityVersion: { type: 'integer' },
    size: { type: 'integer', description: 'image length, bytes' },
    imageDigest: { type: 'string', description: 'SHA-256 of the image, hex' },
    chunkBytes: { type: 'integer' },
    chunkCount: { type: 'integer' },
    tableDigest: { type: 'string', description: 'SHA-256 of the chunk table, hex' },
    statementDigest: { type: 'string', description: 'digest assignments name, hex' },
    statement: { type: 'string', description: 'signed release statement, CBOR, base64' },
    createdAt: time,
  },
} as const;

export const tokenSchema = {
  $id: 'Token',
  type: 'object',
  required: ['id', 'name', 'role', 'createdAt'],
  properties: {
    id: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', enum: ['admin', 'operator', 'viewer'] },
    createdAt: time,
    createdBy: nullableString,
    revokedAt: nullableTime,
    token: { type: 'string', description: 'the secret; only in the reply that creates it' },
  },
} as const;

/** Query parameters of every list. */
export const pageQuery = {
  limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
  offset: { type: 'integer', minimum: 0, default: 0 },
} as const;

/** A page of `itemRef` items. */
export function pageOf(itemRef: string) {
  return {
    type: 'object',
    required: ['items', 'total', 'limit', 'offset'],
    properties: {
      items: { type: 'array', items: { $ref: `${itemRef}#` } },
      total: { type: 'integer' },
      limit: { type: 'integer' },
      offset: { type: 'integer' },
    },
  } as const;
}

export function registerSchemas(app: FastifyInstance): void {
  app.addSchema(deviceSchema);
  app.addSchema(releaseSchema);
  app.addSchema(tokenSchema);
}

const iso = (ms: number): string => new Date(ms).toISOString();
const isoOrNull = (ms: number | null): string | null => (ms === null ? null : iso(ms));

export function deviceView(d: DeviceRecord) {
  return {
    id: d.id,
    hardwareClass: d.hwClass,
    tags: d.tags,
    status: d.status,
    state: d.state,
    currentVersion: d.currentVersion,
    online: d.online,
    lastSeen: isoOrNull(d.lastSeen),
    createdAt: iso(d.createdAt),
    decommissionedAt: isoOrNull(d.decommissionedAt),
  };
}

export function releaseView(r: ReleaseRecord, withStatement = false) {
  return {
    id: r.id,
    name: r.name,
    version: r.version,
    hardwareClass: r.hwClass,
    securityVersion: r.securityVersion,
    size: r.size,
    imageDigest: r.imageDigest,
    chunkBytes: r.chunkBytes,
    chunkCount: r.chunkCount,
    tableDigest: r.tableDigest,
    statementDigest: r.statementDigest,
    ...(withStatement ? { statement: Buffer.from(r.statement).toString('base64') } : {}),
    createdAt: iso(r.createdAt),
  };
}

export function tokenView(t: TokenRecord) {
  return {
    id: t.id,
    name: t.name,
    role: t.role,
    createdAt: iso(t.createdAt),
    createdBy: t.createdBy,
    revokedAt: isoOrNull(t.revokedAt),
  };
}

export { iso, isoOrNull };
