/**
 * Test fixtures: a real SQLite store in a temp dir with every migration, real keys, and small
 * doubles for the message bus and the assignment service (the API tests exercise the routes;
 * the broker and delivery have their own tests, and `cli.test.ts` runs the real server).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Topics } from '@fetchback/shared';
import { pino } from 'pino';
import { Registry } from 'prom-client';

import type { Clock } from '../src/clock.js';
import { resolveConfig, type ServerOptions } from '../src/config.js';
import type { AssignOptions, BusPort, ServerContext } from '../src/context.js';
import { BackStore } from '../src/delivery/back-store.js';
import { ServerEvents } from '../src/events.js';
import { ImageStore } from '../src/images/image-store.js';
import { initKeys } from '../src/keys/index.js';
import { ALL_MIGRATIONS } from '../src/server.js';
import { AuditLog } from '../src/store/audit.js';
import { openDatabase } from '../src/store/db.js';
import { DeviceRepository } from '../src/store/devices.js';
import { runMigrations } from '../src/store/migrate.js';
import { ReleaseRepository } from '../src/store/releases.js';
import { TokenStore } from '../src/store/tokens.js';

/** A temp dir removed by the returned cleanup. */
export function tempDir(prefix = 'fb-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A clock the test moves by hand. */
export function manualClock(start = Date.UTC(2030, 0, 1)): Clock & { advance(ms: number): void } {
  let now = start;
  return { now: () => now, advance: (ms) => (now += ms) };
}

export interface FakeBus extends BusPort {
  disconnected: string[];
}

export function fakeBus(): FakeBus {
  const disconnected: string[] = [];
  return {
    mqttPort: 1883,
    wsPort: undefined,
    disconnected,
    publish: async () => undefined,
    subscribe: async () => undefined,
    disconnectDevice: (id) => void disconnected.push(id),
    close: async () => undefined,
  };
}

export interface TestContext {
  ctx: ServerContext;
  dir: string;
  bus: FakeBus;
  assigned: { deviceId: string; releaseId: string; opts?: AssignOptions }[];
  tokens: { admin: string; operator: string; viewer: string };
  close: () => Promise<void>;
}

/** A context over a real store in a temp dir; `overrides` adjust the options. */
export function testContext(
  overrides: Partial<Record<keyof ServerOptions, unknown>> = {},
): TestContext {
  const { dir, cleanup } = tempDir();
  const clock = manualClock();
  const options = resolveConfig({ env: {}, overrides: { dataDir: dir, ...overrides } });
  const db = openDatabase(join(dir, 'fetchback.db'));
  runMigrations(db, ALL_MIGRATIONS);
  const keys = initKeys(join(dir, 'keys'), { now: clock.now() });
  const bus = fakeBus();
  const assigned: TestContext['assigned'] = [];
  const seqs = new Map<string, number>();
  const images = new ImageStore(join(dir, 'images'));
  const tokenStore = new TokenStore(db, clock);
  const ctx: ServerContext = {
    options,
    db,
    log: pino({ level: 'silent' }),
    events: new ServerEvents(),
    keys,
    topics: new Topics(options.topicPrefix),
    metrics: { registry: new Registry() },
    assignments: {
      assign: (deviceId, releaseId, opts) => {
        assigned.push({ deviceId, releaseId, opts });
        const seq = (seqs.get(deviceId) ?? 0) + 1;
        seqs.set(deviceId, seq);
        return { seq };
      },
    },
    audit: new AuditLog(db, clock),
    clock,
    devices: new DeviceRepository(db, clock),
    releases: new ReleaseRepository(db),
    tokens: tokenStore,
    images,
    bus,
    deviceKeys: new BackStore(db),
  };
  const tokens = {
    admin: tokenStore.create('root-admin', 'admin').token,
    operator: tokenStore.create('ops', 'operator').token,
    viewer: tokenStore.create('watcher', 'viewer').token,
  };
  return {
    ctx,
    dir,
    bus,
    assigned,
    tokens,
    close: async () => {
      await images.close();
      db.close();
      cleanup();
    },
  };
}
