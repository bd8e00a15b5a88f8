/**
 * The message bus as a client of an external broker (Mosquitto, EMQX, HiveMQ …). The broker
 * enforces the device ACL (docs/external-broker.md); the server connects as
 * `fetchback-server`, subscribes with one filter per SUBSCRIBE (so one refused filter cannot
 * hide the others' outcome), and dispatches messages to handlers by filter.
 */
import { fbError } from '@fetchback/shared';
import mqtt, { type MqttClient } from 'mqtt';

import {
  type BusDeps,
  type BusOptions,
  EXTERNAL_SERVER_USERNAME,
  type MessageBus,
  type MessageHandler,
  type PublishOptions,
} from './message-bus.js';
import { Rejections } from './rejections.js';
import { topicMatches } from './topic-match.js';

/** SUBACK return code of a refused filter (MQTT 3.1.1 §3.9.3). */
const SUBACK_FAILURE = 128;

/** Connects to the external broker; fails with a coded error when it cannot. */
export async function startExternalBus(options: BusOptions, deps: BusDeps): Promise<MessageBus> {
  const url = options.externalUrl as string;
  const log = deps.log.child({ component: 'broker', broker: redactUrl(url) });
  const username = options.externalUsername ?? EXTERNAL_SERVER_USERNAME;
  let client: MqttClient;
  try {
    client = await mqtt.connectAsync(url, {
      username,
      password: options.externalPassword,
      clientId: username,
      protocolVersion: 4,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      // Chunks are QoS 0 and re-requested by devices; never pile them up while offline.
      queueQoSZero: false,
    });
  } catch (err) {
    throw fbError('FB_ERR_BROKER_UNAVAILABLE', `${redactUrl(url)}: ${(err as Error).message}`);
  }
  client.on('error', (err) => log.warn({ err: err.message }, 'external broker error'));
  client.on('offline', () => log.warn({}, 'external broker offline; reconnecting'));
  client.on('reconnect', () => log.debug({}, 'reconnecting to external broker'));
  log.info({ username }, 'connected to external broker');
  return new ExternalBus(client, new Rejections(deps.registry, log), log);
}

class ExternalBus implements MessageBus {
  readonly mqttPort = undefined;
  readonly wsPort = undefined;
  private readonly client: MqttClient;
  private readonly rejections: Rejections;
  private readonly log: BusDeps['log'];
  private readonly handlers: { filter: string; handler: MessageHandler }[] = [];

  constructor(client: MqttClient, rejections: Rejections, log: BusDeps['log']) {
    this.client = client;
    this.rejections = rejections;
    this.log = log;
    client.on('message', (topic, payload) => this.dispatch(topic, payload));
  }

  async publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void> {
    const buffer = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    await this.client.publishAsync(topic, buffer, { qos: opts.qos, retain: opts.retain ?? false });
  }

  publishParts(topic: string, parts: readonly Uint8Array[]): Promise<void> {
    return this.publish(topic, Buffer.concat(parts), { qos: 0 });
  }

  async subscribe(filter: string, handler: MessageHandler): Promise<void> {
    this.handlers.push({ filter, handler });
    const granted = await this.client.subscribeAsync(filter, { qos: 1 });
    if (granted.some((g) => g.qos === SUBACK_FAILURE)) {
      throw fbError(
        'FB_ERR_CONFIG_INVALID',
        `the external broker refused the server's subscription to ${filter}; ` +
          `grant ${EXTERNAL_SERVER_USERNAME} read access to device out/ topics`,
      );
    }
  }

  disconnectDevice(deviceId: string): void {
    // The external broker owns device sessions; the operator revokes credentials there.
    this.log.warn({ deviceId }, 'external broker: revoke the device credentials at the broker');
  }

  async close(): Promise<void> {
    await this.client.endAsync();
  }

  private dispatch(topic: string, payload: Buffer): void {
    for (const { filter, handler } of this.handlers) {
      if (!topicMatches(filter, topic)) continue;
      try {
        handler(topic, payload);
      } catch (err) {
        this.rejections.record(
          'FB_ERR_INTERNAL',
          { topic, err: (err as Error).message },
          'message handler failed',
        );
      }
    }
  }
}

/** The URL without credentials, for logs. */
function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return 'invalid URL';
  }
}
