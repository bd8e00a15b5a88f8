/**
 * The agent's view of MQTT. `MqttTransport` is the real one; `MemoryTransport` serves unit
 * tests; the simulator plugs in its own (latency, drops, disconnects).
 */

export type QoS = 0 | 1;

export interface PublishOptions {
  readonly qos: QoS;
  readonly retain?: boolean;
}

/** The last will the broker publishes when the connection drops without a DISCONNECT. */
export interface LastWill {
  readonly topic: string;
  readonly payload: Uint8Array;
  readonly qos: QoS;
  readonly retain: boolean;
}

export interface ConnectOptions {
  readonly will?: LastWill;
}

export type MessageHandler = (topic: string, payload: Uint8Array) => void;

/**
 * A connection to the broker that reconnects by itself. Handlers run synchronously in the
 * transport's receive path: they must never wait on a QoS 1 publish (mqtt.js holds the PUBACK
 * of the message being handled until the handler returns, which deadlocks).
 */
export interface Transport {
  /** True between a connect event and the next disconnect. */
  readonly connected: boolean;
  /** Connects; resolves on the first successful connection and keeps reconnecting after. */
  connect(options?: ConnectOptions): Promise<void>;
  /** Disconnects cleanly (no last will) and stops reconnecting. */
  close(): Promise<void>;
  /** Subscribes to one filter, in one SUBSCRIBE packet; re-established after reconnects. */
  subscribe(filter: string, qos: QoS): Promise<void>;
  /** Queues a publish; never awaited by the agent. Failures are logged by the transport. */
  publish(topic: string, payload: Uint8Array, options: PublishOptions): void;
  onMessage(handler: MessageHandler): void;
  onConnect(handler: () => void): void;
  onDisconnect(handler: () => void): void;
}

/** True when `topic` matches the MQTT filter `filter` ([MQTT-4.7.1]). */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === '#') return true;
    if (i >= t.length) return false;
    if (level !== '+' && level !== t[i]) return false;
  }
  return f.length === t.length;
}
