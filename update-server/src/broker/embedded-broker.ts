/**
 * The embedded aedes 1.x broker. aedes speaks MQTT 3.1.1 (and 3.1) only, so devices connect
 * with protocol version 4. All security lives in the aedes hooks, which apply the rules of
 * `acl.ts`; the server itself publishes and subscribes in-process (`aedes.publish`,
 * `aedes.subscribe`), with no client and no credentials of its own.
 *
 * aedes pitfalls handled here (docs/external-broker.md lists them for operators):
 * - no maximum packet size: `GuardedConnection` refuses oversized packets from their header;
 * - a refused publish closes the connection: the ACL only refuses what a correct agent never
 *   sends;
 * - a persistent session that sent an allowed and a refused filter in one SUBSCRIBE can later
 *   receive other devices' messages: `authorizeForward` checks every delivery;
 * - one frozen subscriber stalls delivery until `drainTimeout`: lowered to `drainTimeoutMs`;
 * - a delivery completes only when the client's stream is next empty, which a deep fetch window
 *   postpones while the device reads at full speed: chunks go out through `direct-send.ts`;
 * - retained messages and offline queues are unbounded: only the server retains (devices only
 *   their presence), and each client's QoS 1 queue is bounded;
 * - past `concurrency` deliveries in flight, its emitter releases queued messages recursively
 *   and can overflow the stack: the cap is lifted (`test/broker/burst.test.ts`);
 * - its in-memory persistence tests each SUBSCRIBE against every retained topic, quadratic in
 *   the fleet: `retained-index.ts` looks only under the filter's literal prefix.
 */
import { Aedes, type AedesPublishPacket, type Client, type PublishPacket } from 'aedes';
import type { Duplex } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { Gauge } from 'prom-client';

import type { Topics } from '@fetchback/shared';

import { checkConnect, checkPublish, checkSubscribe, mayForward } from './acl.js';
import { type OutgoingQueues, boundOutgoingQueues } from './bounded-persistence.js';
import { DirectSender } from './direct-send.js';
import { type FrameViolation, GuardedConnection } from './frame-guard.js';
import { type Listener, listenMqtt, listenWebSocket } from './listeners.js';
import { type RetainedStore, indexRetained } from './retained-index.js';
import type {
  BusDeps,
  BusOptions,
  MessageBus,
  MessageHandler,
  PublishOptions,
} from './message-bus.js';
import { Rejections } from './rejections.js';
import { topicMatches } from './topic-match.js';

/** Longest client id shown in a log line. */
const LOGGED_ID_CHARS = 80;

/** Starts aedes and its listeners. */
export async function startEmbeddedBus(options: BusOptions, deps: BusDeps): Promise<MessageBus> {
  const log = deps.log.child({ component: 'broker' });
  const rejections = new Rejections(deps.registry, log);
  const peerNames = new WeakMap<Duplex, string | undefined>();
  const requireClientCert = options.tls?.requireClientCert === true;

  const broker = await Aedes.createBroker({
    // No cap on deliveries in flight at once (aedes' default is 100). Past the cap its emitter
    // queues messages and releases the queue from the completion of the last delivery, one
    // stack frame chain per queued message: a queue of thousands (a slow reader in a large
    // fleet) overflowed the stack and crashed the server. Memory stays bounded without it:
    // each client's next packets are read only once its current ones are delivered, and chunk
    // bytes in flight are capped by the delivery byte budget.
    concurrency: 0,
    drainTimeout: options.drainTimeoutMs,
    maxClientsIdLength: 64,
    authenticate(client, username, password, done) {
      const certificate = () =>
        checkClientCertificate(requireClientCert, peerNames.get(client.conn as Duplex), username);
      checkConnect(client.id, username, password, deps.devices).then(
        (credentials) => {
          const refusal = credentials ?? certificate();
          if (!refusal) return done(null, true);
          rejections.record(refusal.code, clientFields(client), 'broker refused a connection');
          done(Object.assign(new Error(refusal.reason), { returnCode: refusal.returnCode }), false);
        },
        (err: unknown) => {
          rejections.record(
            'FB_ERR_INTERNAL',
            { ...clientFields(client), err: (err as Error).message },
            'connection check failed',
          );
          done(Object.assign(new Error('server error'), { returnCode: 3 }), false);
        },
      );
    },
    authorizePublish(client, packet, done) {
      const refusal = checkPublish(deps.topics, client?.id, packet.topic, packet.retain);
      if (!refusal) return done(null);
      rejections.record(
        refusal.code,
        {
          ...(client ? clientFields(client) : {}),
          topic: shown(packet.topic),
          reason: refusal.reason,
        },
        'broker refused a publish',
      );
      // aedes closes the connection of a refused publish [MQTT-3.3.5-2]; a correct agent
      // never publishes outside its own out/ topics.
      done(new Error(refusal.reason));
    },
    authorizeSubscribe(client, sub, done) {
      const refusal = checkSubscribe(deps.topics, client.id, sub.topic);
      if (!refusal) return done(null, sub);
      rejections.record(
        refusal.code,
        { ...clientFields(client), filter: shown(sub.topic), reason: refusal.reason },
        'broker refused a subscription',
      );
      // A null subscription answers 0x80 in the SUBACK and keeps the connection.
      done(null, null);
    },
    authorizeForward(client, packet) {
      if (mayForward(deps.topics, client.id, packet.topic)) return packet;
      rejections.record(
        'FB_ERR_TOPIC_FORBIDDEN',
        { ...clientFields(client), topic: shown(packet.topic) },
        'broker withheld a delivery outside the client topics',
      );
      return null;
    },
  });

  indexRetained((broker as unknown as { persistence: RetainedStore }).persistence);
  boundOutgoingQueues(
    (broker as unknown as { persistence: OutgoingQueues }).persistence,
    options.maxQueuedPerClient,
    (clientId, topic) =>
      rejections.record('FB_ERR_QUEUE_FULL', { clientId: shown(clientId), topic }, 'queue full'),
  );
  broker.on('clientError', (client, err) => {
    log.debug({ clientId: shown(client.id), err: err.message }, 'client error');
  });
  broker.on('connectionError', (client, err) => {
    log.debug({ clientId: shown(client.id ?? ''), err: err.message }, 'connection error');
  });

  const accept = (conn: Duplex, tlsSocket: TLSSocket | undefined) => {
    const guarded = new GuardedConnection(conn, options.maxPacketBytes, (v: FrameViolation) =>
      rejections.record(
        'FB_ERR_PACKET_TOO_LARGE',
        { kind: v.kind, packetBytes: v.packetBytes, limit: options.maxPacketBytes },
        'broker dropped a connection sending an oversized packet',
      ),
    );
    peerNames.set(guarded, tlsSocket ? peerCommonName(tlsSocket) : undefined);
    guarded.on('error', () => undefined);
    broker.handle(guarded);
  };

  const listeners: Listener[] = [];
  try {
    listeners.push(await listenMqtt(options.host, options.mqttPort, options.tls, accept));
    if (options.wsPort !== undefined) {
      listeners.push(
        await listenWebSocket(
          options.host,
          options.wsPort,
          options.tls,
          options.maxPacketBytes,
          accept,
        ),
      );
    }
  } catch (err) {
    await Promise.all(listeners.map((l) => l.close()));
    await new Promise<void>((resolve) => broker.close(() => resolve()));
    throw err;
  }
  registerClientGauge(deps, broker);
  log.info(
    { mqttPort: listeners[0]?.port, wsPort: listeners[1]?.port, tls: options.tls !== undefined },
    'embedded broker listening',
  );
  return new EmbeddedBus(broker, listeners, rejections, deps.topics, options.drainTimeoutMs, log);
}

class EmbeddedBus implements MessageBus {
  readonly mqttPort: number | undefined;
  readonly wsPort: number | undefined;
  private readonly broker: Aedes;
  private readonly listeners: Listener[];
  private readonly rejections: Rejections;
  private readonly topics: Topics;
  private readonly direct: DirectSender;
  private readonly log: BusDeps['log'];

  constructor(
    broker: Aedes,
    listeners: Listener[],
    rejections: Rejections,
    topics: Topics,
    drainTimeoutMs: number,
    log: BusDeps['log'],
  ) {
    this.broker = broker;
    this.listeners = listeners;
    this.rejections = rejections;
    this.topics = topics;
    this.log = log;
    this.direct = new DirectSender(drainTimeoutMs, (conn) =>
      log.warn(
        { remote: (conn as Partial<{ remoteAddress: string }>).remoteAddress, drainTimeoutMs },
        'dropping a client that read no chunk within the drain timeout',
      ),
    );
    this.mqttPort = listeners[0]?.port;
    this.wsPort = listeners[1]?.port;
  }

  publish(topic: string, payload: Uint8Array, opts: PublishOptions): Promise<void> {
    const packet: PublishPacket = {
      cmd: 'publish',
      topic,
      payload: Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength),
      qos: opts.qos,
      retain: opts.retain ?? false,
      dup: false,
    };
    return new Promise((resolve, reject) => {
      this.broker.publish(packet, (err) => (err ? reject(err) : resolve()));
    });
  }

  /**
   * A device's topic has one possible recipient, the device itself (`mayForward`): when it is
   * connected and subscribed, the PUBLISH goes straight to its connection (`direct-send.ts`),
   * the cached chunk never copied. aedes' path (its emitter, topic matching, a packet object,
   * one payload buffer, the wait for `drain`) is taken otherwise, with the parts joined.
   */
  publishParts(topic: string, parts: readonly Uint8Array[]): Promise<void> {
    const client = this.subscribedDevice(topic);
    if (!client) return this.publish(topic, Buffer.concat(parts), { qos: 0 });
    return this.direct.send(client.conn as Duplex, topic, parts);
  }

  /** The connected client of the device `topic` is addressed to, if it subscribed to it. */
  private subscribedDevice(topic: string): DirectClient | undefined {
    const parsed = this.topics.parse(topic);
    if (parsed?.direction !== 'in') return undefined;
    const client = this.clientOf(parsed.deviceId) as DirectClient | undefined;
    if (!client?.connected || client.closed) return undefined;
    const filters = Object.keys(client.subscriptions);
    return filters.some((f) => topicMatches(f, topic)) ? client : undefined;
  }

  private clientOf(clientId: string): Client | undefined {
    return (this.broker as unknown as { clients: Record<string, Client | undefined> }).clients[
      clientId
    ];
  }

  subscribe(filter: string, handler: MessageHandler): Promise<void> {
    // The deliver callback returns at once: a handler never holds back aedes' delivery (nor
    // the PUBACK of a device's QoS 1 publish); its work runs in its own promise chain.
    const deliver = (packet: AedesPublishPacket, done: () => void) => {
      done();
      try {
        handler(packet.topic, packet.payload as Buffer);
      } catch (err) {
        this.rejections.record(
          'FB_ERR_INTERNAL',
          { topic: shown(packet.topic), err: (err as Error).message },
          'message handler failed',
        );
      }
    };
    return new Promise((resolve) => this.broker.subscribe(filter, deliver, () => resolve()));
  }

  disconnectDevice(deviceId: string): void {
    const client = this.clientOf(deviceId);
    if (!client) return;
    this.log.info({ deviceId }, 'dropping device connection');
    client.close();
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.broker.close(() => resolve()));
    await Promise.all(this.listeners.map((l) => l.close()));
  }
}

/** What `publishParts` reads of an aedes client beyond its typings. */
interface DirectClient extends Client {
  readonly subscriptions: Record<string, unknown>;
}

/** With client-certificate authentication, the certificate's CN must be the username. */
function checkClientCertificate(
  required: boolean,
  peerName: string | undefined,
  username?: string,
) {
  if (!required || (peerName !== undefined && peerName === username)) return undefined;
  return {
    code: 'FB_ERR_BROKER_AUTH' as const,
    reason: 'client certificate CN differs from username',
    returnCode: 5,
  };
}

function peerCommonName(socket: TLSSocket): string | undefined {
  const cn = socket.getPeerCertificate()?.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}

function registerClientGauge(deps: BusDeps, broker: Aedes): void {
  const name = 'fetchback_mqtt_clients';
  deps.registry.removeSingleMetric(name);
  new Gauge({
    name,
    help: 'Clients connected to the embedded broker',
    registers: [deps.registry],
    collect() {
      this.set(broker.connectedClients ?? 0);
    },
  });
}

function clientFields(client: Client): Record<string, unknown> {
  return {
    clientId: shown(client.id ?? ''),
    remote: (client.conn as Partial<{ remoteAddress: string }>).remoteAddress,
  };
}

function shown(text: string): string {
  return text.length > LOGGED_ID_CHARS ? `${text.slice(0, LOGGED_ID_CHARS)}…` : text;
}
