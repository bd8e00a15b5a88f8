/**
 * A maximum MQTT packet size for aedes, which has none: it buffers a packet of any declared
 * length (up to the 256 MiB the remaining-length field allows) before parsing it. The guard
 * reads each packet's fixed header as bytes arrive (MQTT 3.1.1 §2.2.3) and destroys the
 * connection as soon as a header declares a packet over the limit, before its body is buffered.
 */
import { Duplex } from 'node:stream';

/** What the scanner found wrong with the byte stream. */
export interface FrameViolation {
  readonly kind: 'too-large' | 'malformed-length';
  /** Declared packet size (fixed header included), in bytes; 0 when malformed. */
  readonly packetBytes: number;
}

/** Follows packet boundaries in an MQTT byte stream without buffering packet bodies. */
export class MqttFrameScanner {
  private readonly maxPacketBytes: number;
  private state: 'type' | 'length' | 'body' = 'type';
  private lengthValue = 0;
  private lengthBytes = 0;
  private bodyLeft = 0;

  constructor(maxPacketBytes: number) {
    this.maxPacketBytes = maxPacketBytes;
  }

  /** Feeds the next bytes; returns the first violation found, or undefined. */
  feed(chunk: Uint8Array): FrameViolation | undefined {
    let i = 0;
    while (i < chunk.length) {
      if (this.state === 'body') {
        const take = Math.min(this.bodyLeft, chunk.length - i);
        this.bodyLeft -= take;
        i += take;
        if (this.bodyLeft === 0) this.state = 'type';
        continue;
      }
      const byte = chunk[i++] as number;
      if (this.state === 'type') {
        this.state = 'length';
        this.lengthValue = 0;
        this.lengthBytes = 0;
        continue;
      }
      const violation = this.lengthByte(byte);
      if (violation) return violation;
    }
    return undefined;
  }

  /** One byte of the remaining-length varint: 7 bits each, at most 4 bytes (§2.2.3). */
  private lengthByte(byte: number): FrameViolation | undefined {
    this.lengthValue += (byte & 0x7f) * 128 ** this.lengthBytes;
    this.lengthBytes++;
    if (byte & 0x80) {
      if (this.lengthBytes === 4) return { kind: 'malformed-length', packetBytes: 0 };
      return undefined;
    }
    const packetBytes = 1 + this.lengthBytes + this.lengthValue;
    if (packetBytes > this.maxPacketBytes) return { kind: 'too-large', packetBytes };
    this.bodyLeft = this.lengthValue;
    this.state = this.bodyLeft === 0 ? 'type' : 'body';
    return undefined;
  }
}

/**
 * Wraps a connection so that aedes reads through the scanner. Writes pass straight to the
 * inner stream with its backpressure, so aedes' `drainTimeout` still sees a slow reader.
 */
export class GuardedConnection extends Duplex {
  private readonly inner: Duplex;
  private readonly scanner: MqttFrameScanner;

  constructor(inner: Duplex, maxPacketBytes: number, onViolation: (v: FrameViolation) => void) {
    super({ allowHalfOpen: false });
    this.inner = inner;
    this.scanner = new MqttFrameScanner(maxPacketBytes);
    inner.on('data', (chunk: Buffer) => {
      const violation = this.scanner.feed(chunk);
      if (violation) {
        onViolation(violation);
        this.destroy();
        return;
      }
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }

  /** The peer's address, as on a socket (aedes and our logs read it). */
  get remoteAddress(): string | undefined {
    return (this.inner as Partial<{ remoteAddress: string }>).remoteAddress;
  }

  override _read(): void {
    this.inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, done: (err?: Error | null) => void): void {
    if (this.inner.destroyed) return done();
    // Hand over at once while the inner stream has room; otherwise wait for its drain, so a
    // frozen reader fills our buffer and aedes' drainTimeout can drop it.
    if (this.inner.write(chunk)) return done();
    this.inner.once('drain', () => done());
  }

  /**
   * mqtt-packet writes one PUBLISH as five pieces inside a cork. Without `_writev` each piece
   * became its own `write(2)` and, with Nagle off, its own TCP segment: for 64 KiB chunks that
   * was five system calls and up to five wake-ups of the reader per packet. Handing the corked
   * pieces over inside one cork of the socket sends them with one `writev(2)`.
   */
  override _writev(
    chunks: { chunk: Buffer; encoding: BufferEncoding }[],
    done: (err?: Error | null) => void,
  ): void {
    if (this.inner.destroyed) return done();
    this.inner.cork();
    let room = true;
    for (const { chunk } of chunks) room = this.inner.write(chunk);
    this.inner.uncork();
    if (room) return done();
    this.inner.once('drain', () => done());
  }

  override _final(done: (err?: Error | null) => void): void {
    this.inner.end(done);
  }

  override _destroy(err: Error | null, done: (err?: Error | null) => void): void {
    this.inner.destroy();
    done(err);
  }
}
