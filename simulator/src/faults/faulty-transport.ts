/**
 * A `Transport` wrapper that injects link faults between the agent and its real MQTT
 * connection: latency and jitter per message in each direction, lost messages, and chunks
 * whose bytes were flipped on the way in. It also lets the device watch its own traffic
 * (chunks and bytes received, the manifest) without touching the agent.
 *
 * Losses only hit what the protocol itself recovers from: chunks and ACK_RESPs on the way in
 * (the fetcher re-requests, the outbox retries), FETCH_REQ, ACK_REQ and STATUS on the way out.
 * The retained manifest and the presence message travel at QoS 1, which MQTT delivers; losing
 * them would test mqtt.js, not Fetchback.
 */
import type {
  ConnectOptions,
  MessageHandler,
  PublishOptions,
  QoS,
  Random,
  Transport,
} from '@fetchback/device-agent';
import { decodeFetchResponse, encodeFetchResponse } from '@fetchback/shared';

import { chance } from './random.js';

export interface LinkFaults {
  /** Added to every message, each direction. */
  readonly latencyMs: number;
  /** Uniform extra delay, 0 to this, per message. */
  readonly jitterMs: number;
  /** Probability that a chunk or ACK_RESP to the device is lost. */
  readonly dropIn: number;
  /** Probability that a FETCH_REQ, ACK_REQ or STATUS from the device is lost. */
  readonly dropOut: number;
  /** Probability that a chunk arrives with one byte flipped. */
  readonly corrupt: number;
}

/** What the device learns from its own traffic. */
export interface LinkObserver {
  /** A FETCH_RESP reached the agent (`bytes`: its payload length). */
  onChunk?(bytes: number): void;
  /** A manifest reached the agent. */
  onManifest?(payload: Uint8Array): void;
  /** A fault was injected (for the report's fault counts). */
  onFault?(name: 'drop-in' | 'drop-out' | 'corrupt'): void;
}

export class FaultyTransport implements Transport {
  private readonly inner: Transport;
  private readonly faults: LinkFaults;
  private readonly random: Random;
  private readonly observer: LinkObserver;
  private readonly delayed: boolean;
  /** Time the last message of each direction is due, so that jitter never reorders (TCP). */
  private readonly lastDueMs = { in: 0, out: 0 };
  private dead = false;

  constructor(inner: Transport, faults: LinkFaults, random: Random, observer: LinkObserver = {}) {
    this.inner = inner;
    this.faults = faults;
    this.random = random;
    this.observer = observer;
    this.delayed = faults.latencyMs > 0 || faults.jitterMs > 0;
  }

  get connected(): boolean {
    return !this.dead && this.inner.connected;
  }

  connect(options?: ConnectOptions): Promise<void> {
    return this.inner.connect(options);
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  subscribe(filter: string, qos: QoS): Promise<void> {
    return this.inner.subscribe(filter, qos);
  }

  publish(topic: string, payload: Uint8Array, options: PublishOptions): void {
    if (this.dead) return;
    if (isDroppableOut(topic) && chance(this.random, this.faults.dropOut)) {
      this.observer.onFault?.('drop-out');
      return;
    }
    this.later('out', () => this.inner.publish(topic, payload, options));
  }

  onMessage(handler: MessageHandler): void {
    this.inner.onMessage((topic, payload) => this.receive(topic, payload, handler));
  }

  onConnect(handler: () => void): void {
    this.inner.onConnect(() => {
      if (!this.dead) handler();
    });
  }

  onDisconnect(handler: () => void): void {
    this.inner.onDisconnect(() => {
      if (!this.dead) handler();
    });
  }

  /** The device is gone (crash, reboot, vanished): nothing reaches the agent or leaves it. */
  kill(): void {
    this.dead = true;
  }

  private receive(topic: string, payload: Uint8Array, handler: MessageHandler): void {
    if (this.dead) return;
    const isChunk = topic.endsWith('/in/chunk');
    const droppable = isChunk || topic.endsWith('/in/ack');
    if (droppable && chance(this.random, this.faults.dropIn)) {
      this.observer.onFault?.('drop-in');
      return;
    }
    let delivered = payload;
    if (isChunk && chance(this.random, this.faults.corrupt)) delivered = this.corrupt(payload);
    this.later('in', () => {
      if (this.dead) return;
      if (isChunk) this.observer.onChunk?.(payload.length);
      else if (topic.endsWith('/in/manifest')) this.observer.onManifest?.(payload);
      handler(topic, delivered);
    });
  }

  /** Flips one byte of the chunk data; a refusal (no data) passes unchanged. */
  private corrupt(payload: Uint8Array): Uint8Array {
    let response;
    try {
      response = decodeFetchResponse(payload);
    } catch {
      return payload;
    }
    if (!response.data) return payload;
    const data = new Uint8Array(response.data);
    const at = Math.floor(this.random() * data.length);
    data[at] = (data[at] as number) ^ 0xff;
    this.observer.onFault?.('corrupt');
    return encodeFetchResponse({ ...response, data });
  }

  private later(direction: 'in' | 'out', action: () => void): void {
    if (!this.delayed) return action();
    const now = Date.now();
    const wantMs = now + this.faults.latencyMs + this.random() * this.faults.jitterMs;
    const dueMs = Math.max(wantMs, this.lastDueMs[direction]);
    this.lastDueMs[direction] = dueMs;
    setTimeout(action, dueMs - now);
  }
}

function isDroppableOut(topic: string): boolean {
  return (
    topic.endsWith('/out/fetch') || topic.endsWith('/out/ack') || topic.endsWith('/out/status')
  );
}
