/**
 * Delivery: assignments out, chunks out, ACKs, status and presence in. `startDelivery` wires
 * the services onto a running message bus; the database must already carry
 * `deliveryMigrations` (run by `server.ts` with the other core migrations).
 */
import type { Topics } from '@fetchback/shared';
import { fbError } from '@fetchback/shared';
import type Database from 'better-sqlite3';
import type { Logger } from 'pino';
import { Gauge, type Registry } from 'prom-client';

import type { MessageBus } from '../broker/message-bus.js';
import { Rejections } from '../broker/rejections.js';
import type { ServerEvents } from '../events.js';
import { AckService } from './ack-service.js';
import { AssignmentStore } from './assignment-store.js';
import { AssignmentService } from './assignments.js';
import { BackStore } from './back-store.js';
import { FetchService } from './fetch-service.js';
import { deliveryMetrics } from './metrics.js';
import type { DevicePort, ImagePort, ReleasePort, ServerKeys } from './ports.js';
import { PresenceService } from './presence.js';

export { deliveryMigrations } from './migrations.js';
export { AssignmentService, type AssignOptions } from './assignments.js';
export { AssignmentStore, type AssignmentRecord } from './assignment-store.js';
export { BackStore, type AckRow, type PresenceRow, type StatusRow } from './back-store.js';
export type {
  DevicePort,
  DeviceRecord,
  DeviceTouch,
  ImagePort,
  ReleasePort,
  ReleaseRecord,
  ServerKeys,
} from './ports.js';

export interface DeliveryOptions {
  /** Chunks being read or published for one device at once. */
  readonly maxInFlightPerDevice: number;
  /** Chunk bytes being read or published for all devices at once. */
  readonly globalBudgetBytes: number;
  /** Chunk requests queued while the global budget is spent; beyond them, FB_ERR_BUSY. */
  readonly maxWaitingChunks: number;
  /** Bytes of chunks kept in memory. */
  readonly cacheBytes: number;
  /** Default lifetime of an assignment, in seconds. */
  readonly assignmentTtlS: number;
  /** Refuse unsigned ACKs even from devices that never signed one. */
  readonly requireSignedAcks?: boolean;
}

/** Suggested defaults (server-core's config owns the real ones). */
export const DELIVERY_DEFAULTS: DeliveryOptions = Object.freeze({
  maxInFlightPerDevice: 64,
  globalBudgetBytes: 64 * 1024 * 1024,
  maxWaitingChunks: 65_536,
  cacheBytes: 32 * 1024 * 1024,
  assignmentTtlS: 30 * 24 * 3600,
});

export interface DeliveryDeps {
  readonly bus: MessageBus;
  readonly db: Database.Database;
  readonly log: Logger;
  readonly events: ServerEvents;
  readonly topics: Topics;
  readonly devices: DevicePort;
  readonly releases: ReleasePort;
  readonly images: ImagePort;
  readonly keys: ServerKeys;
  readonly registry: Registry;
  readonly clock: { now(): number };
  readonly options: DeliveryOptions;
}

export interface Delivery {
  readonly assignments: AssignmentService;
  /** Read access to ACKs, status history and presence (device show, API). */
  readonly back: BackStore;
  /** The fetch phase: its byte budget and waiting queue, for tests and health. */
  readonly fetch: FetchService;
  close(): Promise<void>;
}

const TABLES = [
  'assignments',
  'device_sequences',
  'acks',
  'status_reports',
  'device_presence',
  'device_keys',
];

/** Starts delivery on a running bus. */
export async function startDelivery(deps: DeliveryDeps): Promise<Delivery> {
  checkTables(deps.db);
  const log = deps.log.child({ component: 'delivery' });
  const rejections = new Rejections(deps.registry, log);
  const metrics = deliveryMetrics(deps.registry);
  const store = new AssignmentStore(deps.db);
  const back = new BackStore(deps.db);
  const common = { ...deps, log, rejections, metrics, store, back };

  const assignments = new AssignmentService({
    ...common,
    log: log.child({ service: 'assignments' }),
    defaultTtlS: deps.options.assignmentTtlS,
  });
  const fetch = new FetchService(common, deps.options);
  registerFetchGauges(deps.registry, fetch);
  const acks = new AckService({
    ...common,
    assignments: store,
    requireSignedAcks: deps.options.requireSignedAcks ?? false,
  });
  const presence = new PresenceService(common);

  if (deps.bus.mqttPort !== undefined) presence.markAllOffline();
  await Promise.all([fetch.start(), acks.start(), presence.start()]);
  const republished = await assignments.republishAll();
  log.info({ republished }, 'delivery started');

  const onDecommissioned = ({ deviceId }: { deviceId: string }) => {
    deps.bus.disconnectDevice(deviceId);
    assignments
      .clearManifest(deviceId)
      .catch((err: Error) =>
        log.warn({ deviceId, err: err.message }, 'retained manifest not cleared'),
      );
  };
  deps.events.on('device.decommissioned', onDecommissioned);

  return {
    assignments,
    back,
    fetch,
    close: async () => {
      deps.events.off('device.decommissioned', onDecommissioned);
    },
  };
}

function checkTables(db: Database.Database): void {
  const present = new Set(
    (
      db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]
    ).map((r) => r.name),
  );
  const missing = TABLES.filter((t) => !present.has(t));
  if (missing.length > 0) {
    throw fbError(
      'FB_ERR_CONFIG_INVALID',
      `delivery tables missing (${missing.join(', ')}); run deliveryMigrations`,
    );
  }
}

/** Gauges of the fetch phase's bounds, read at each scrape. */
function registerFetchGauges(registry: Registry, fetch: FetchService): void {
  const gauges: [string, string, () => number][] = [
    [
      'fetchback_fetch_waiting_chunks',
      'Chunk requests waiting for the global byte budget',
      () => fetch.waitingChunks,
    ],
    [
      'fetchback_fetch_budget_used_bytes',
      'Chunk bytes being read or published now (bounded by globalBudgetBytes)',
      () => fetch.budgetUsedBytes,
    ],
  ];
  for (const [name, help, read] of gauges) {
    registry.removeSingleMetric(name);
    new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.set(read());
      },
    });
  }
}
