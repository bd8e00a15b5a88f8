/**
 * An in-memory broker and its client transport, for unit tests only. It routes by MQTT filter,
 * keeps retained messages, publishes last wills on a dropped link and delivers asynchronously
 * (on a later macrotask), like a socket would. It has no QoS machinery: nothing is lost unless
 * a test drops it.
 */
import {
  type ConnectOptions,
  type LastWill,
  type MessageHandler,
  type PublishOptions,
  type QoS,
  type Transport,
  topicMatches,
} from './transport.js';

interface Subscriber {
  readonly filter: string;
  readonly deliver: MessageHandler;
}

/** The hub every `MemoryTransport` of a test connects to. */
export class MemoryBroker {
  private readonly subscribers = new Set<Subscriber>();
  private readonly retained = new Map<string, Uint8Array>();
  private readonly clients = new Map<string, MemoryTransport>();
  /** Return false to drop a message on its way (fault injection in tests). */
  filter: (topic: string, payload: Uint8Array) => boolean = () => true;

  /** A new client transport with this client id. */
  client(clientId: string): MemoryTransport {
    return new MemoryTransport(this, clientId);
  }

  /** Publishes from outside any client (the test's server side). */
  publish(topic: string, payload: Uint8Array, options: { retain?: boolean } = {}): void {
    if (options.retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    }
    if (!this.filter(topic, payload)) return;
    for (const s of this.subscribers) {
      if (topicMatches(s.filter, topic)) setImmediate(() => s.deliver(topic, payload));
    }
  }

  /** Subscribes from outside any client; returns an unsubscribe function. */
  subscribe(filter: string, deliver: MessageHandler): () => void {
    const subscriber = { filter, deliver };
    this.subscribers.add(subscriber);
    for (const [topic, payload] of this.retained) {
      if (topicMatches(filter, topic)) setImmediate(() => deliver(topic, payload));
    }
    return () => this.subscribers.delete(subscriber);
  }

  /** The retained message on `topic`, if any. */
  retainedOn(topic: string): Uint8Array | undefined {
    return this.retained.get(topic);
  }

  /** Drops a client's link as a network failure would: its will is published. */
  drop(clientId: string): void {
    this.clients.get(clientId)?.linkLost();
  }

  /** @internal */
  attach(clientId: string, transport: MemoryTransport): void {
    this.clients.get(clientId)?.linkLost();
    this.clients.set(clientId, transport);
  }

  /** @internal */
  detach(clientId: string, transport: MemoryTransport): void {
    if (this.clients.get(clientId) === transport) this.clients.delete(clientId);
  }
}

/** A client of a `MemoryBroker`, implementing the agent's `Transport`. */
export class MemoryTransport implements Transport {
  private readonly broker: MemoryBroker;
  private readonly clientId: string;
  private readonly unsubscribes: Array<() => void> = [];
  private readonly messageHandlers: MessageHandler[] = [];
  private readonly connectHandlers: Array<() => void> = [];
  private readonly disconnectHandlers: Array<() => void> = [];
  private will: LastWill | undefined;
  private isConnected = false;

  constructor(broker: MemoryBroker, clientId: string) {
    this.broker = broker;
    this.clientId = clientId;
  }

  get connected(): boolean {
    return this.isConnected;
  }

  async connect(options: ConnectOptions = {}): Promise<void> {
    this.will = options.will;
    this.broker.attach(this.clientId, this);
    this.isConnected = true;
    this.connectHandlers.forEach((h) => h());
  }

  async close(): Promise<void> {
    this.will = undefined;
    this.teardown();
  }

  async subscribe(filter: string, _qos: QoS): Promise<void> {
    const unsubscribe = this.broker.subscribe(filter, (topic, payload) => {
      if (this.isConnected) this.messageHandlers.forEach((h) => h(topic, payload));
    });
    this.unsubscribes.push(unsubscribe);
  }

  publish(topic: string, payload: Uint8Array, options: PublishOptions): void {
    if (!this.isConnected) return;
    this.broker.publish(topic, payload, { retain: options.retain ?? false });
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

  /** @internal The link dropped: publish the will, then report the disconnect. */
  linkLost(): void {
    const will = this.will;
    this.teardown();
    if (will) this.broker.publish(will.topic, will.payload, { retain: will.retain });
  }

  private teardown(): void {
    const was = this.isConnected;
    this.isConnected = false;
    this.unsubscribes.splice(0).forEach((u) => u());
    this.broker.detach(this.clientId, this);
    if (was) this.disconnectHandlers.forEach((h) => h());
  }
}
