/**
 * Test harness for broker and delivery: a real embedded aedes broker on a free port, a real
 * SQLite file in a temp dir, and small doubles of server-core's ports (devices, releases,
 * images, keys) kept in memory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import {
  ChunkTableBuilder,
  type CborValue,
  type KeyCertificate,
  type ReleaseBody,
  Topics,
  encodeDeterministic,
  generateKeyPair,
  issueCertificate,
  releaseDigest,
  signRelease,
  toHex,
} from '@fetchback/shared';
import Database from 'better-sqlite3';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import pino, { type Logger } from 'pino';
import { Registry } from 'prom-client';

import { type BusOptions, type MessageBus, startMessageBus } from '../../src/broker/index.js';
import type { DeviceRecord, DeviceTouch } from '../../src/broker/ports.js';
import {
  type Delivery,
  type DeliveryOptions,
  type ImagePort,
  type ReleasePort,
  type ReleaseRecord,
  type ServerKeys,
  deliveryMigrations,
  startDelivery,
} from '../../src/delivery/index.js';
import { ServerEvents } from '../../src/events.js';
import { runMigrations } from '../../src/store/migrate.js';

export class FakeDevices {
  readonly records = new Map<string, DeviceRecord & { secret: string }>();
  readonly touches: { id: string; fields: DeviceTouch }[] = [];

  add(id: string, hwClass = 'pi4'): { id: string; secret: string } {
    const secret = randomBytes(16).toString('hex');
    this.records.set(id, { id, hwClass, status: 'active', tags: {}, secret });
    return { id, secret };
  }
  decommission(id: string): void {
    const r = this.records.get(id);
    if (r) this.records.set(id, { ...r, status: 'decommissioned' });
  }
  get(id: string): DeviceRecord | undefined {
    return this.records.get(id);
  }
  async authenticate(id: string, secret: string): Promise<boolean> {
    const r = this.records.get(id);
    return r !== undefined && r.status === 'active' && r.secret === secret;
  }
  touch(id: string, fields: DeviceTouch): void {
    this.touches.push({ id, fields });
  }
}

export interface TestRelease {
  readonly record: ReleaseRecord;
  readonly image: Uint8Array;
  readonly table: Uint8Array;
}

export class FakeReleases implements ReleasePort, ImagePort {
  readonly releases = new Map<string, TestRelease>();
  readonly objects = new Map<string, Uint8Array>();
  reads = 0;

  add(release: TestRelease): void {
    this.releases.set(release.record.id, release);
    this.objects.set(release.record.imageDigest, release.image);
    this.objects.set(release.record.tableDigest, release.table);
  }
  get(id: string): ReleaseRecord | undefined {
    return this.releases.get(id)?.record;
  }
  byObjectDigest(hex: string) {
    for (const r of this.releases.values()) {
      if (r.record.imageDigest === hex) return { release: r.record, kind: 'image' as const };
      if (r.record.tableDigest === hex) return { release: r.record, kind: 'table' as const };
    }
    return undefined;
  }
  async readChunk(hex: string, index: number, chunkBytes: number): Promise<Uint8Array> {
    this.reads++;
    const bytes = this.objects.get(hex);
    if (!bytes) throw new Error('no object');
    return bytes.subarray(index * chunkBytes, Math.min(bytes.length, (index + 1) * chunkBytes));
  }
  async readChunkInto(hex: string, index: number, chunkBytes: number, into: Uint8Array) {
    into.set(await this.readChunk(hex, index, chunkBytes));
  }
  size(hex: string): number | undefined {
    return this.objects.get(hex)?.length;
  }
}

export function makeKeys(): ServerKeys {
  const root = generateKeyPair();
  const releaseKey = generateKeyPair();
  const assignmentKey = generateKeyPair();
  const now = Math.floor(Date.now() / 1000);
  const certificates: KeyCertificate[] = [
    issueCertificate(root, releaseKey.publicKey, 'release', now, now + 86400 * 365),
    issueCertificate(root, assignmentKey.publicKey, 'assignment', now, now + 86400 * 365),
  ];
  return { rootPublicKey: root.publicKey, releaseKey, assignmentKey, certificates };
}

/** Builds a signed release of random bytes. */
export function makeRelease(
  keys: ServerKeys,
  opts: { id?: string; sizeBytes: number; chunkBytes: number; hwClass?: string; version?: string },
): TestRelease {
  const image = new Uint8Array(randomBytes(opts.sizeBytes));
  const { table, imageDigest } = new ChunkTableBuilder(opts.chunkBytes).update(image).finish();
  const body: ReleaseBody = {
    name: 'fw',
    ver: opts.version ?? '1.0.0',
    secv: 1,
    hw: opts.hwClass ?? 'pi4',
    size: image.length,
    digest: imageDigest,
    cbytes: opts.chunkBytes,
    ctab: table.digest(),
    iat: Math.floor(Date.now() / 1000),
  };
  const signed = signRelease(body, [keys.releaseKey]);
  const record: ReleaseRecord = {
    id: opts.id ?? `rel-${toHex(imageDigest).slice(0, 8)}`,
    name: body.name,
    version: body.ver,
    hwClass: body.hw,
    securityVersion: body.secv,
    size: image.length,
    imageDigest: toHex(imageDigest),
    chunkBytes: opts.chunkBytes,
    chunkCount: table.count,
    tableDigest: toHex(table.digest()),
    statement: encodeDeterministic(signed as unknown as CborValue),
    statementDigest: toHex(releaseDigest(body)),
    createdAt: Date.now(),
  };
  return { record, image, table: table.bytes };
}

/** A pino logger whose lines are kept for assertions. */
export function captureLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) },
  );
  return { log, lines };
}

export function tempDir(): { dir: string; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fb-delivery-'));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export function openDb(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  runMigrations(db, deliveryMigrations);
  return db;
}

export const TEST_BUS_OPTIONS: BusOptions = {
  host: '127.0.0.1',
  mqttPort: 0,
  maxPacketBytes: 64 * 1024,
  maxQueuedPerClient: 100,
  drainTimeoutMs: 5000,
};

export const TEST_DELIVERY_OPTIONS: DeliveryOptions = {
  maxInFlightPerDevice: 64,
  globalBudgetBytes: 32 * 1024 * 1024,
  maxWaitingChunks: 65_536,
  cacheBytes: 16 * 1024 * 1024,
  assignmentTtlS: 3600,
};

export interface Harness {
  readonly topics: Topics;
  readonly devices: FakeDevices;
  readonly releases: FakeReleases;
  readonly keys: ServerKeys;
  readonly registry: Registry;
  readonly events: ServerEvents;
  readonly lines: Record<string, unknown>[];
  readonly db: Database.Database;
  readonly bus: MessageBus;
  readonly delivery: Delivery;
  readonly url: string;
  connect(id: string, secret: string, extra?: IClientOptions): Promise<MqttClient>;
  rejections(code: string): Promise<number>;
  close(): Promise<void>;
}

/** Starts broker and delivery over a fresh SQLite file (or `dbFile`). */
export async function startHarness(
  opts: {
    bus?: Partial<BusOptions>;
    delivery?: Partial<DeliveryOptions>;
    dbFile?: string;
    devices?: FakeDevices;
    releases?: FakeReleases;
    keys?: ServerKeys;
  } = {},
): Promise<Harness> {
  const tmp = opts.dbFile ? undefined : tempDir();
  const db = openDb(opts.dbFile ?? join(tmp!.dir, 'state.db'));
  const topics = new Topics();
  const devices = opts.devices ?? new FakeDevices();
  const releases = opts.releases ?? new FakeReleases();
  const keys = opts.keys ?? makeKeys();
  const registry = new Registry();
  const events = new ServerEvents();
  const { log, lines } = captureLogger();
  const bus = await startMessageBus(
    { ...TEST_BUS_OPTIONS, ...opts.bus },
    {
      devices,
      log,
      registry,
      topics,
    },
  );
  const delivery = await startDelivery({
    bus,
    db,
    log,
    events,
    topics,
    devices,
    releases,
    images: releases,
    keys,
    registry,
    clock: { now: () => Date.now() },
    options: { ...TEST_DELIVERY_OPTIONS, ...opts.delivery },
  });
  const url = `mqtt://127.0.0.1:${bus.mqttPort}`;
  const clients: MqttClient[] = [];
  return {
    topics,
    devices,
    releases,
    keys,
    registry,
    events,
    lines,
    db,
    bus,
    delivery,
    url,
    async connect(id, secret, extra = {}) {
      const client = await mqtt.connectAsync(url, {
        clientId: id,
        username: id,
        password: secret,
        protocolVersion: 4,
        reconnectPeriod: 0,
        ...extra,
      });
      clients.push(client);
      return client;
    },
    async rejections(code) {
      const metric = await registry.getSingleMetric('fetchback_rejections_total')?.get();
      return metric?.values.find((v) => v.labels.code === code)?.value ?? 0;
    },
    async close() {
      await Promise.all(clients.map((c) => c.endAsync(true).catch(() => undefined)));
      await delivery.close();
      await bus.close();
      db.close();
      tmp?.remove();
    },
  };
}

/** Resolves with the next message on `client` whose topic is `topic`, or rejects after `ms`. */
export function nextMessage(client: MqttClient, topic: string, ms = 3000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('message', onMessage);
      reject(new Error(`no message on ${topic} within ${ms} ms`));
    }, ms);
    const onMessage = (t: string, payload: Buffer) => {
      if (t !== topic) return;
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve(payload);
    };
    client.on('message', onMessage);
  });
}

/** Collects every message on `client` into an array (for asserting on silence). */
export function collect(client: MqttClient): { topic: string; payload: Buffer }[] {
  const seen: { topic: string; payload: Buffer }[] = [];
  client.on('message', (topic, payload) => seen.push({ topic, payload }));
  return seen;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
