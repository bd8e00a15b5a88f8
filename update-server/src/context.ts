/**
 * The server context: everything a route, the rollout engine or a test needs, built once by
 * `startServer` (or by a test with doubles for the bus and the assignment service).
 */
import type { Topics } from '@fetchback/shared';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

import type { Clock } from './clock.js';
import type { ServerOptions } from './config.js';
import type { ServerEvents } from './events.js';
import type { ImageStore } from './images/image-store.js';
import type { ServerKeys } from './keys/server-keys.js';
import type { AuditLog } from './store/audit.js';
import type { Db } from './store/db.js';
import type { DeviceRepository } from './store/devices.js';
import type { ReleaseRepository } from './store/releases.js';
import type { TokenStore } from './store/tokens.js';

/** The MQTT side as the API sees it (the broker module's `MessageBus`). */
export interface BusPort {
  readonly mqttPort: number | undefined;
  readonly wsPort: number | undefined;
  publish(
    topic: string,
    payload: Uint8Array,
    opts: { qos: 0 | 1; retain?: boolean },
  ): Promise<void>;
  subscribe(filter: string, handler: (topic: string, payload: Buffer) => void): Promise<void>;
  disconnectDevice(deviceId: string): void;
  close(): Promise<void>;
}

export interface AssignOptions {
  rolloutId?: string;
  ttlS?: number;
  ackDeadlineS?: number;
}

/** The delivery module's `AssignmentService`: the only way to assign a release. */
export interface AssignmentPort {
  assign(
    deviceId: string,
    releaseId: string,
    opts?: AssignOptions,
  ): { seq: number } | Promise<{ seq: number }>;
}

/** The device keys pinned from signed ACKs (delivery's `BackStore`, `docs/protocol.md` §8.5). */
export interface DeviceKeyPort {
  deviceKey(deviceId: string): Uint8Array | undefined;
  /** Pins a key given at registration (provisioning); none may be pinned yet. */
  pinDeviceKey(deviceId: string, publicKey: Uint8Array, at: number): void;
  /** Forgets the pinned key; the device's next signed ACK pins a new one. */
  forgetDeviceKey(deviceId: string): boolean;
}

export interface ServerMetrics {
  /** Every metric of the server is registered here; `/metrics` serves it. */
  readonly registry: Registry;
}

export interface ServerContext {
  readonly options: ServerOptions;
  readonly db: Db;
  readonly log: Logger;
  readonly events: ServerEvents;
  readonly keys: ServerKeys;
  readonly topics: Topics;
  readonly metrics: ServerMetrics;
  readonly assignments: AssignmentPort;
  readonly audit: AuditLog;
  readonly clock: Clock;
  readonly devices: DeviceRepository;
  readonly releases: ReleaseRepository;
  readonly tokens: TokenStore;
  readonly images: ImageStore;
  readonly bus: BusPort;
  readonly deviceKeys: DeviceKeyPort;
}
