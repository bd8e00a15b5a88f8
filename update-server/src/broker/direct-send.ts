/**
 * QoS 0 PUBLISH packets written by the embedded broker straight to one client's connection,
 * for chunk responses (`EmbeddedBus.publishParts`).
 *
 * A send is done when its bytes have left the stream for the socket: the write callback of its
 * last part. aedes instead waits for the stream's `drain`, which comes only once the stream is
 * empty; a device that keeps a deep window keeps the stream busy, `drain` then did not come for
 * seconds, and every chunk of the device counted as in flight until it did (over the
 * per-device cap: FB_ERR_BUSY to a device that was reading at full speed).
 *
 * A frozen reader is still dropped: when packets are pending and none has been written for
 * `stallTimeoutMs`, the connection is destroyed, and every pending send settles when it closes.
 */
import type { Duplex } from 'node:stream';

/** A packet waiting for its turn on the connection. */
interface QueuedSend {
  readonly topic: string;
  readonly parts: readonly Uint8Array[];
  readonly settle: () => void;
}

/** What one connection has pending: queued packets, and packets in the stream. */
interface ConnectionSends {
  readonly queue: QueuedSend[];
  inStream: number;
  timer: NodeJS.Timeout | undefined;
  readonly settlers: Set<() => void>;
}

/**
 * Packets handed to the stream at once, per connection. Node's stream flushes what it holds
 * in one `writev` and calls back only when all of it is written; holding back the rest keeps
 * every packet's completion its own, so progress (and a stall) is seen packet by packet.
 */
const MAX_IN_STREAM = 2;

export class DirectSender {
  private readonly stallTimeoutMs: number;
  private readonly onStalled: (conn: Duplex) => void;
  private readonly connections = new WeakMap<Duplex, ConnectionSends>();

  /** `onStalled` is told before a stalled connection is destroyed (for the log). */
  constructor(stallTimeoutMs: number, onStalled: (conn: Duplex) => void) {
    this.stallTimeoutMs = stallTimeoutMs;
    this.onStalled = onStalled;
  }

  /**
   * Sends one QoS 0 PUBLISH of `topic` whose payload is `parts` back to back (MQTT 3.1.1
   * §3.3), in order after this connection's earlier ones. Resolves when the packet's bytes are
   * written to the socket, or the connection is gone (QoS 0: the packet is dropped); either
   * way nothing holds `parts` any more, and the chunk cache may reuse them.
   */
  send(conn: Duplex, topic: string, parts: readonly Uint8Array[]): Promise<void> {
    if (conn.destroyed || conn.writableEnded) return Promise.resolve();
    const state = this.stateOf(conn);
    return new Promise((resolve) => {
      const settle = () => {
        if (!state.settlers.delete(settle)) return;
        resolve();
      };
      state.settlers.add(settle);
      state.queue.push({ topic, parts, settle });
      if (state.timer === undefined) this.arm(conn, state);
      this.pump(conn, state);
    });
  }

  /**
   * Hands queued packets to the stream while it holds fewer than `MAX_IN_STREAM`, each inside
   * a cork so that it leaves as one `writev(2)`. aedes writes each of its own packets within
   * one tick too, so packets never interleave on the connection.
   */
  private pump(conn: Duplex, state: ConnectionSends): void {
    while (state.inStream < MAX_IN_STREAM && state.queue.length > 0 && !conn.destroyed) {
      const { topic, parts, settle } = state.queue.shift() as QueuedSend;
      state.inStream++;
      const written = () => {
        state.inStream--;
        settle();
        this.arm(conn, state);
        this.pump(conn, state);
      };
      conn.cork();
      conn.write(publishHead(topic, parts));
      parts.forEach((part, i) => conn.write(part, i === parts.length - 1 ? written : undefined));
      conn.uncork();
    }
  }

  private stateOf(conn: Duplex): ConnectionSends {
    let state = this.connections.get(conn);
    if (!state) {
      const created: ConnectionSends = {
        queue: [],
        inStream: 0,
        timer: undefined,
        settlers: new Set(),
      };
      conn.once('close', () => {
        clearTimeout(created.timer);
        created.timer = undefined;
        created.queue.length = 0;
        [...created.settlers].forEach((settle) => settle());
      });
      this.connections.set(conn, created);
      state = created;
    }
    return state;
  }

  /** (Re)starts the stall timer while packets are pending: each one written is progress. */
  private arm(conn: Duplex, state: ConnectionSends): void {
    clearTimeout(state.timer);
    state.timer = undefined;
    if (state.settlers.size === 0 || conn.destroyed) return;
    state.timer = setTimeout(() => {
      state.timer = undefined;
      this.onStalled(conn);
      conn.destroy();
    }, this.stallTimeoutMs);
    state.timer.unref();
  }
}

/** Fixed header, remaining length and topic of a QoS 0 PUBLISH carrying `parts`. */
export function publishHead(topic: string, parts: readonly Uint8Array[]): Buffer {
  const topicBytes = Buffer.from(topic, 'utf8');
  let remaining = 2 + topicBytes.length;
  for (const part of parts) remaining += part.length;
  // Remaining length: 7 bits a byte, low bits first, at most 4 bytes (§2.2.3).
  const lengthBytes: number[] = [];
  do {
    const digit = remaining % 128;
    remaining = Math.floor(remaining / 128);
    lengthBytes.push(remaining > 0 ? digit | 0x80 : digit);
  } while (remaining > 0);
  const head = Buffer.allocUnsafe(1 + lengthBytes.length + 2 + topicBytes.length);
  head[0] = 0x30;
  head.set(lengthBytes, 1);
  head.writeUInt16BE(topicBytes.length, 1 + lengthBytes.length);
  head.set(topicBytes, 3 + lengthBytes.length);
  return head;
}
