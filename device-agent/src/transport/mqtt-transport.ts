/**
 * The real transport, on mqtt.js 5. A persistent session (clean session false) keeps the
 * device's subscriptions and queued QoS 1 messages across short outages; mqtt.js reconnects on
 * its own every `reconnectPeriodMs` and re-subscribes what this client subscribed.
 *
 * mqtt.js ignores the broker's receive maximum, so the agent's own fetch window is the flow
 * control (`docs/device.md`, "The fetch window").
 */
import { createRequire } from 'node:module';

import type { IClientOptions, MqttClient } from 'mqtt';
import type { Logger } from 'pino';

import { PacketSocket } from './packet-socket.js';

import type {
  ConnectOptions,
  MessageHandler,
  PublishOptions,
  QoS,
  Transport,
} from './transport.js';

/**
 * mqtt.js's client alone: its main module also loads WebSocket, TLS and SOCKS support and
 * their dependencies, about 6 MiB of resident memory that an mqtt:// agent never uses; those
 * load with `mqtt` itself, on the first connection that needs them. Loaded with `require`,
 * which hands over a CommonJS module's exports the same way under every loader.
 */
const MqttClientClass = (
  createRequire(import.meta.url)('mqtt/lib/client') as { default: typeof MqttClient }
).default;

export interface MqttTransportOptions {
  readonly brokerUrl: string;
  /** MQTT client id; the device id. */
  readonly clientId: string;
  readonly username?: string;
  readonly password?: string;
  /** PEM material for mqtts:// and wss://: a private CA, a client certificate and its key. */
  readonly tls?: { readonly ca?: Buffer; readonly cert?: Buffer; readonly key?: Buffer };
  /** Keepalive, in seconds. */
  readonly keepaliveSeconds?: number;
  /** Delay between reconnect attempts, in milliseconds. */
  readonly reconnectPeriodMs?: number;
  /** Time allowed for CONNACK, in milliseconds. */
  readonly connectTimeoutMs?: number;
  readonly logger?: Logger;
}

export class MqttTransport implements Transport {
  private readonly options: MqttTransportOptions;
  private client: MqttClient | undefined;
  private readonly messageHandlers: MessageHandler[] = [];
  private readonly connectHandlers: Array<() => void> = [];
  private readonly disconnectHandlers: Array<() => void> = [];
  private isConnected = false;
  /** Calls of `close`, so that a `connect` still loading mqtt.js knows it was closed. */
  private closes = 0;

  constructor(options: MqttTransportOptions) {
    this.options = options;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  async connect(options: ConnectOptions = {}): Promise<void> {
    const closes = this.closes;
    const client = await openMqttClient(this.options.brokerUrl, this.clientOptions(options));
    if (this.closes !== closes) {
      // Closed while mqtt.js's connection code loaded: this connection is not wanted.
      client.end(true);
      return;
    }
    this.client = client;
    client.on('message', (topic, payload) => {
      this.messageHandlers.forEach((h) => h(topic, payload));
    });
    client.on('connect', () => {
      // mqtt.js leaves Nagle's algorithm on. A FETCH_REQ is a few dozen bytes: with Nagle it
      // waits for the broker's delayed ACK (about 40 ms) whenever an earlier one is unacked,
      // which caps the fetch window at a few MB/s.
      (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
      this.markConnected();
    });
    client.on('close', () => this.markDisconnected());
    client.on('offline', () => this.markDisconnected());
    client.on('error', (err) => {
      this.options.logger?.warn({ err: err.message }, 'mqtt error');
    });
    return new Promise((resolve) => client.once('connect', () => resolve()));
  }

  async close(): Promise<void> {
    this.closes++;
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    await client.endAsync();
    this.markDisconnected();
  }

  async subscribe(filter: string, qos: QoS): Promise<void> {
    if (!this.client) throw new Error('subscribe before connect');
    await this.client.subscribeAsync(filter, { qos });
  }

  publish(topic: string, payload: Uint8Array, options: PublishOptions): void {
    const client = this.client;
    if (!client) return;
    const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    client.publish(topic, buffer, { qos: options.qos, retain: options.retain ?? false }, (err) => {
      if (err) this.options.logger?.debug({ topic, err: err.message }, 'publish failed');
    });
  }

  onMessage(handler: MessageHandler): void {
    this.messageHandlers.push(handler);
  }

  onConnect(handler: () => void): void {
    this.connectHandlers.push(handler);
  }

  onDisconnect(handler: () => void): void {
    this.disconnectHandlers.push(handler);
  }

  private clientOptions(options: ConnectOptions): IClientOptions {
    const o = this.options;
    const will = options.will;
    return {
      clientId: o.clientId,
      clean: false,
      keepalive: o.keepaliveSeconds ?? 30,
      reconnectPeriod: o.reconnectPeriodMs ?? 2000,
      connectTimeout: o.connectTimeoutMs ?? 10_000,
      // A FETCH_REQ queued while offline would be stale on reconnect; the fetcher re-requests.
      queueQoSZero: false,
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.tls ?? {}),
      ...(will
        ? {
            will: {
              topic: will.topic,
              payload: Buffer.from(will.payload),
              qos: will.qos,
              retain: will.retain,
            },
          }
        : {}),
    };
  }

  private markConnected(): void {
    this.isConnected = true;
    this.connectHandlers.forEach((h) => h());
  }

  private markDisconnected(): void {
    if (!this.isConnected) return;
    this.isConnected = false;
    this.disconnectHandlers.forEach((h) => h());
  }
}

/**
 * An mqtt.js client for `brokerUrl`, connecting. mqtt:// goes through a PacketSocket (one
 * buffer per MQTT packet, no payload copies); mqtts://, ws://, wss:// and a SOCKS proxy
 * (MQTTJS_SOCKS_PROXY) go through mqtt.js's own connection code, loaded on first use.
 */
export async function openMqttClient(
  brokerUrl: string,
  options: IClientOptions,
): Promise<MqttClient> {
  const url = new URL(brokerUrl);
  const plain = url.protocol === 'mqtt:' || url.protocol === 'tcp:';
  if (!plain || process.env['MQTTJS_SOCKS_PROXY']) {
    const { connect } = await import('mqtt');
    return connect(brokerUrl, options);
  }
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1') || 'localhost';
  const port = url.port === '' ? 1883 : Number(url.port);
  const client = new MqttClientClass(() => new PacketSocket({ host, port }), {
    ...options,
    protocol: 'mqtt',
    host,
    port,
  });
  // As mqtt.js's connect() does: errors reach the 'error' listeners added by the caller.
  client.on('error', () => undefined);
  return client;
}
