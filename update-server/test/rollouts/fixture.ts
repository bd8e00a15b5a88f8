/**
 * A rollout engine on a real SQLite file in a temp dir, with every migration of the server, a
 * virtual clock, and an assignment port that records its calls so tests can ACK them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fbError } from '@fetchback/shared';
import type { AckStep } from '@fetchback/shared';
import { pino } from 'pino';

import { deliveryMigrations } from '../../src/delivery/migrations.js';
import { ServerEvents } from '../../src/events.js';
import { RolloutEngine } from '../../src/rollouts/engine.js';
import { rolloutMigrations } from '../../src/rollouts/migrations.js';
import type { AssignmentPort } from '../../src/rollouts/ports.js';
import { openDatabase } from '../../src/store/db.js';
import type { Db } from '../../src/store/db.js';
import { runMigrations } from '../../src/store/migrate.js';
import { coreMigrations } from '../../src/store/migrations.js';

export interface AssignCall {
  deviceId: string;
  releaseId: string;
  rolloutId: string | undefined;
  seq: number;
}

/** Stands in for delivery's AssignmentService: numbers assignments per device and records them. */
export class RecordingAssignments implements AssignmentPort {
  readonly calls: AssignCall[] = [];
  /** Devices for which assign throws FB_ERR_DEVICE_DECOMMISSIONED. */
  readonly gone = new Set<string>();
  private readonly seqs = new Map<string, number>();

  assign(deviceId: string, releaseId: string, opts?: { rolloutId?: string }): { seq: number } {
    if (this.gone.has(deviceId)) throw fbError('FB_ERR_DEVICE_DECOMMISSIONED', deviceId);
    const seq = (this.seqs.get(deviceId) ?? 0) + 1;
    this.seqs.set(deviceId, seq);
    this.calls.push({ deviceId, releaseId, rolloutId: opts?.rolloutId, seq });
    return { seq };
  }

  /** Device ids assigned `releaseId`, in call order. */
  assigned(releaseId: string): string[] {
    return this.calls.filter((c) => c.releaseId === releaseId).map((c) => c.deviceId);
  }

  lastSeq(deviceId: string): number {
    const seq = this.seqs.get(deviceId);
    if (seq === undefined) throw new Error(`${deviceId} was never assigned`);
    return seq;
  }
}

export const HOUR_MS = 3_600_000;

export class Harness {
  readonly dir = mkdtempSync(join(tmpdir(), 'fb-rollouts-'));
  readonly file = join(this.dir, 'fetchback.db');
  readonly port = new RecordingAssignments();
  readonly clock = { t: Date.UTC(2030, 0, 1, 12, 0, 0), now: () => this.clock.t };
  readonly log = pino({ level: 'silent' });
  events = new ServerEvents();
  db: Db;
  engine: RolloutEngine;

  constructor() {
    this.db = this.open();
    this.engine = this.newEngine();
  }

  private open(): Db {
    const db = openDatabase(this.file);
    runMigrations(db, [...coreMigrations, ...deliveryMigrations, ...rolloutMigrations]);
    return db;
  }

  private newEngine(): RolloutEngine {
    return new RolloutEngine({
      db: this.db,
      assignments: this.port,
      events: this.events,
      clock: this.clock,
      log: this.log,
    });
  }

  /** Simulates a server restart: a new connection, a new event bus and a new engine. */
  restart(): void {
    this.engine.close();
    this.db.close();
    this.events = new ServerEvents();
    this.db = this.open();
    this.engine = this.newEngine();
  }

  close(): void {
    this.engine.close();
    this.db.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  addRelease(id: string, version: string, hwClass = 'pi4'): void {
    this.db
      .prepare(
        `INSERT INTO releases (id, name, version, hw_class, security_version, size, image_digest,
           chunk_bytes, chunk_count, table_digest, statement, statement_digest, created_at)
         VALUES (?, 'fw', ?, ?, 1, 1024, ?, 1024, 1, ?, x'00', ?, ?)`,
      )
      .run(id, version, hwClass, `img-${id}`, `tbl-${id}`, `st-${id}`, this.clock.now());
  }

  addDevice(
    id: string,
    opts: { hwClass?: string; tags?: Record<string, string>; version?: string | null } = {},
  ): void {
    this.db
      .prepare(
        `INSERT INTO devices (id, hw_class, tags, status, current_version, created_at)
         VALUES (?, ?, ?, 'active', ?, ?)`,
      )
      .run(
        id,
        opts.hwClass ?? 'pi4',
        JSON.stringify(opts.tags ?? {}),
        opts.version === undefined ? '1.0.0' : opts.version,
        this.clock.now(),
      );
  }

  /** Adds `count` devices named `${prefix}-00` …; returns their ids. */
  addFleet(
    count: number,
    prefix = 'dev',
    opts: Parameters<Harness['addDevice']>[1] = {},
  ): string[] {
    const ids = Array.from({ length: count }, (_, i) => `${prefix}-${String(i).padStart(2, '0')}`);
    for (const id of ids) this.addDevice(id, opts);
    return ids;
  }

  /** The device ACKs its latest assignment. */
  ack(deviceId: string, step: AckStep, code = 'OK'): void {
    this.events.emit('device.ack', {
      deviceId,
      seq: this.port.lastSeq(deviceId),
      step,
      code,
      releaseId: null,
      rolloutId: null,
      at: this.clock.now(),
    });
  }

  /** The device goes through download, install and commit of its latest assignment. */
  commit(deviceId: string): void {
    this.ack(deviceId, 'downloaded');
    this.ack(deviceId, 'installed');
    this.ack(deviceId, 'committed');
  }

  advance(ms: number): void {
    this.clock.t += ms;
    this.engine.tick();
  }
}
