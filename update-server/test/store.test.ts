import { join } from 'node:path';

import { isFetchbackError } from '@fetchback/shared';
import { afterEach, describe, expect, it } from 'vitest';

import { ALL_MIGRATIONS } from '../src/server.js';
import { AuditLog } from '../src/store/audit.js';
import { openDatabase } from '../src/store/db.js';
import { DeviceRepository } from '../src/store/devices.js';
import { runMigrations } from '../src/store/migrate.js';
import { coreMigrations } from '../src/store/migrations.js';
import { type ReleaseRecord, ReleaseRepository } from '../src/store/releases.js';
import { TokenStore } from '../src/store/tokens.js';
import { manualClock, tempDir } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => cleanups.splice(0).forEach((c) => c()));

function freshDb() {
  const { dir, cleanup } = tempDir();
  cleanups.push(cleanup);
  const file = join(dir, 'fetchback.db');
  const db = openDatabase(file);
  cleanups.unshift(() => db.open && db.close());
  return { db, file };
}

function release(overrides: Partial<ReleaseRecord> = {}): ReleaseRecord {
  return {
    id: 'rel-1',
    name: 'firmware',
    version: '1.0.0',
    hwClass: 'pi4',
    securityVersion: 0,
    size: 10,
    imageDigest: 'a'.repeat(64),
    chunkBytes: 1024,
    chunkCount: 1,
    tableDigest: 'b'.repeat(64),
    statement: new Uint8Array([1, 2, 3]),
    statementDigest: 'c'.repeat(64),
    createdAt: 1,
    ...overrides,
  };
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (err) {
    expect(isFetchbackError(err) ? err.code : err).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, nothing was thrown`);
}

describe('migrations', () => {
  it('apply once: a second run applies nothing and keeps the schema', () => {
    const { db } = freshDb();
    expect(runMigrations(db, ALL_MIGRATIONS).length).toBe(ALL_MIGRATIONS.length);
    expect(runMigrations(db, ALL_MIGRATIONS)).toEqual([]);
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all();
    expect(tables.map((t) => (t as { name: string }).name)).toEqual(
      expect.arrayContaining(['devices', 'releases', 'api_tokens', 'audit_log', 'assignments']),
    );
  });

  it('core migrations stay within versions 1-49', () => {
    for (const m of coreMigrations) expect(m.version).toBeGreaterThanOrEqual(1);
    for (const m of coreMigrations) expect(m.version).toBeLessThanOrEqual(49);
  });

  it('a database written by a newer build is refused', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    expectCode(() => runMigrations(db, coreMigrations), 'FB_ERR_CONFIG_INVALID');
  });
});

describe('DeviceRepository', () => {
  it('keeps devices across a close and reopen of the database file', async () => {
    const { db, file } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const { secret } = new DeviceRepository(db, manualClock()).create({
      id: 'dev-1',
      hwClass: 'pi4',
      tags: { site: 'lab' },
    });
    db.close();

    const reopened = openDatabase(file);
    cleanups.unshift(() => reopened.close());
    expect(runMigrations(reopened, ALL_MIGRATIONS)).toEqual([]);
    const devices = new DeviceRepository(reopened, manualClock());
    expect(devices.get('dev-1')).toMatchObject({ hwClass: 'pi4', tags: { site: 'lab' } });
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
  });

  it('stores the secret only as a scrypt hash and authenticates in constant time', async () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    const { secret } = devices.create({ id: 'dev-1', hwClass: 'pi4' });
    expect(Buffer.from(secret, 'base64url').length).toBe(32);
    const row = db.prepare('SELECT secret_hash FROM devices').get() as { secret_hash: string };
    expect(row.secret_hash).toMatch(/^scrypt\$\d+\$\d+\$\d+\$[\w-]+\$[\w-]+$/);
    expect(row.secret_hash).not.toContain(secret);
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
    expect(await devices.authenticate('dev-1', `${secret}x`)).toBe(false);
    expect(await devices.authenticate('dev-2', secret)).toBe(false);
  });

  it('still refuses a wrong secret after the right one was remembered', async () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    const { secret } = devices.create({ id: 'dev-1', hwClass: 'pi4' });
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
    expect(await devices.authenticate('dev-1', `${secret}x`)).toBe(false);
    expect(await devices.authenticate('dev-1', '')).toBe(false);
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
  });

  it('refuses a second device with the same id', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    devices.create({ id: 'dev-1', hwClass: 'pi4' });
    expectCode(() => devices.create({ id: 'dev-1', hwClass: 'pi4' }), 'FB_ERR_DEVICE_EXISTS');
    expectCode(() => devices.create({ id: 'bad/id', hwClass: 'pi4' }), 'FB_ERR_DEVICE_ID_INVALID');
    expectCode(() => devices.create({ id: 'dev-2', hwClass: 'pi 4' }), 'FB_ERR_ARGUMENT');
  });

  it('decommissioning erases the credentials: the device never authenticates again', async () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    const { secret } = devices.create({ id: 'dev-1', hwClass: 'pi4' });
    // Authenticated once, so its secret is remembered: the decommission must win over that.
    expect(await devices.authenticate('dev-1', secret)).toBe(true);
    expect(devices.decommission('dev-1').status).toBe('decommissioned');
    expect(await devices.authenticate('dev-1', secret)).toBe(false);
    expectCode(() => devices.decommission('dev-1'), 'FB_ERR_DEVICE_DECOMMISSIONED');
    expectCode(() => devices.decommission('nope'), 'FB_ERR_DEVICE_UNKNOWN');
  });

  it('touch with a device time keeps the newest report when reports arrive out of order', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    devices.create({ id: 'dev-1', hwClass: 'pi4' });
    devices.touch('dev-1', { state: 'committed', currentVersion: '1.1.0', stateAt: 2_000 });
    // A retried "trial" report from before the commit arrives late: only last_seen moves.
    devices.touch('dev-1', {
      state: 'trial',
      currentVersion: '1.0.0',
      stateAt: 1_500,
      lastSeen: 9,
    });
    expect(devices.get('dev-1')).toMatchObject({
      state: 'committed',
      currentVersion: '1.1.0',
      lastSeen: 9,
    });
    devices.touch('dev-1', { state: 'downloading', stateAt: 2_000 });
    expect(devices.get('dev-1')?.state).toBe('downloading');
    devices.touch('dev-1', { state: 'idle', stateAt: 3_000 });
    devices.touch('dev-1', { state: 'checking', stateAt: 2_999 });
    expect(devices.get('dev-1')?.state).toBe('idle');
  });

  it('touch records only the fields given; list filters by class, tag, state and pages', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const devices = new DeviceRepository(db, manualClock());
    for (let i = 0; i < 5; i++) {
      devices.create({
        id: `dev-${i}`,
        hwClass: i < 3 ? 'pi4' : 'pi5',
        tags: { ring: String(i % 2) },
      });
    }
    devices.touch('dev-1', { state: 'downloading', online: true, lastSeen: 42 });
    devices.touch('dev-1', { currentVersion: '1.0.0' });
    expect(devices.get('dev-1')).toMatchObject({
      state: 'downloading',
      online: true,
      lastSeen: 42,
      currentVersion: '1.0.0',
    });
    expect(devices.list({ hwClass: 'pi4' }).total).toBe(3);
    expect(devices.list({ tags: { ring: '1' } }).items.map((d) => d.id)).toEqual([
      'dev-1',
      'dev-3',
    ]);
    expect(devices.list({ state: 'downloading' }).items.map((d) => d.id)).toEqual(['dev-1']);
    const page = devices.list({ limit: 2, offset: 2 });
    expect(page).toMatchObject({ total: 5 });
    expect(page.items.map((d) => d.id)).toEqual(['dev-2', 'dev-3']);
  });
});

describe('ReleaseRepository', () => {
  it('refuses a second release of one name, class and version; allows a new version', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const releases = new ReleaseRepository(db);
    releases.create(release());
    expectCode(() => releases.create(release({ id: 'rel-2' })), 'FB_ERR_RELEASE_EXISTS');
    releases.create(release({ id: 'rel-2', version: '1.0.1', createdAt: 2 }));
    releases.create(release({ id: 'rel-3', hwClass: 'pi5', createdAt: 3 }));
    expect(releases.list().items.map((r) => r.id)).toEqual(['rel-3', 'rel-2', 'rel-1']);
    expect(releases.exists('firmware', 'pi4', '1.0.0')).toBe(true);
  });

  it('finds a release by its image digest or its chunk-table digest', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const releases = new ReleaseRepository(db);
    releases.create(release());
    expect(releases.byObjectDigest('a'.repeat(64))?.kind).toBe('image');
    expect(releases.byObjectDigest('b'.repeat(64))?.kind).toBe('table');
    expect(releases.byObjectDigest('d'.repeat(64))).toBeUndefined();
    expect(releases.get('rel-1')?.statement).toEqual(new Uint8Array([1, 2, 3]));
  });
});

describe('TokenStore', () => {
  it('stores tokens hashed, verifies live ones and refuses revoked ones', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const tokens = new TokenStore(db, manualClock());
    const admin = tokens.create('admin', 'admin');
    const ops = tokens.create('ops', 'operator');
    const stored = db.prepare('SELECT token_hash FROM api_tokens').all() as {
      token_hash: string;
    }[];
    expect(stored.map((r) => r.token_hash)).not.toContain(ops.token);
    expect(tokens.verify(ops.token)?.role).toBe('operator');
    tokens.revoke('ops');
    expect(tokens.verify(ops.token)).toBeUndefined();
    expect(tokens.create('ops', 'viewer').record.role).toBe('viewer');
    expectCode(() => tokens.create('ops', 'viewer'), 'FB_ERR_CONFLICT');
    expectCode(() => tokens.revoke(admin.record.id), 'FB_ERR_STATE');
    expect(tokens.verify('fbt_not-a-token')).toBeUndefined();
  });
});

describe('AuditLog', () => {
  it('lists entries newest first with filters and pagination', () => {
    const { db } = freshDb();
    runMigrations(db, ALL_MIGRATIONS);
    const audit = new AuditLog(db, manualClock());
    for (let i = 0; i < 5; i++) audit.record('alice', 'device.register', `dev-${i}`, { i });
    audit.record('bob', 'token.revoke', 'tok-1');
    const page = audit.list({ actor: 'alice', limit: 2, offset: 1 });
    expect(page.total).toBe(5);
    expect(page.items.map((e) => e.target)).toEqual(['dev-3', 'dev-2']);
    expect(page.items[0]?.details).toEqual({ i: 3 });
    expect(audit.list().items[0]).toMatchObject({ actor: 'bob', action: 'token.revoke' });
  });
});
