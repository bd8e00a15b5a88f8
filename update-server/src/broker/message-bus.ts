/**
 * The server's view of MQTT: publish, subscribe, drop a device. Two implementations: the
 * embedded aedes broker (`embedded-broker.ts`, in-process, no loopback client) and a client of
 * an external broker (`external.ts`).
 */
import type { Topics } from '@fetchback/shared';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

import type { DevicePort } from './ports.js';

/** Receives one message; must not throw (the bus catches, logs and counts if it does). */
export type MessageHandler = (topic: string, payload: Buffer) => void;

export interface PublishOptions {
  readonly qos: 0 | 1;
  readonly retain?: boolean;
}

export interface MessageBus {
  /** The embedded broker's TCP (or TLS) port; undefined with an external broker. */
  readonly mqttPort: number | undefined;
  /** The embedded broker's MQTT-over-WebSocket port, when enabled. */
  readonly wsPort: number | undefined;
  publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void>;
  /**
   * Publishes at QoS 0, not retained, one message whose payload is `parts` back to back (a
   * chunk response: its head, then the cached chunk). Resolves once nothing of the bus holds
   * `parts` any more, so that the caller may reuse them: written to the device's connection,
   * copied into a message of its own, or dropped as QoS 0 is when the device is not connected.
   */
  publishParts(topic: string, parts: readonly Uint8Array[]): Promise<void>;
  /** One filter per call; handler errors are caught, logged and counted, never thrown. */
  subscribe(filter: string, handler: MessageHandler): Promise<void>;
  /** Drops a device's live connection (decommission). */
  disconnectDevice(deviceId: string): void;
  close(): Promise<void>;
}

export interface BusTlsOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** CA bundle that signs device client certificates. */
  readonly caFile?: string;
  /** Require a client certificate whose subject CN equals the MQTT username. */
  readonly requireClientCert?: boolean;
}

export interface BusOptions {
  /** Interface the embedded broker listens on. */
  readonly host: string;
  /** Embedded broker TCP port; 0 picks a free port. With `tls`, this port speaks MQTT over TLS. */
  readonly mqttPort: number;
  readonly tls?: BusTlsOptions;
  /** MQTT over WebSocket port (0 picks a free one); absent to disable. */
  readonly wsPort?: number;
  /** `mqtt://` or `mqtts://` URL of an external broker; absent to embed aedes. */
  readonly externalUrl?: string;
  /** Username at the external broker; default `fetchback-server`. */
  readonly externalUsername?: string;
  readonly externalPassword?: string;
  /** Largest MQTT packet a client may send to the embedded broker, in bytes. */
  readonly maxPacketBytes: number;
  /** Most QoS 1 messages queued for one client of the embedded broker. */
  readonly maxQueuedPerClient: number;
  /** How long the embedded broker waits for a client socket to drain, in ms. */
  readonly drainTimeoutMs: number;
}

export interface BusDeps {
  readonly devices: DevicePort;
  readonly log: Logger;
  readonly registry: Registry;
  readonly topics: Topics;
}

/** Username the server uses at an external broker. */
export const EXTERNAL_SERVER_USERNAME = 'fetchback-server';

/** Defaults for the size and queue bounds (devices send only small control messages). */
export const BUS_DEFAULTS = Object.freeze({
  maxPacketBytes: 64 * 1024,
  maxQueuedPerClient: 100,
  drainTimeoutMs: 10_000,
});
