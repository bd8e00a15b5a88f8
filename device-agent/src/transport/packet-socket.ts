/**
 * A TCP connection to the broker that hands mqtt.js each MQTT packet in one buffer of its own.
 *
 * On a plain socket, Node reads into a new 64 KiB buffer each time, and mqtt.js's parser keeps
 * those reads in a buffer list and copies every PUBLISH payload that spans more than one of
 * them into a new buffer: for a 256 KiB chunk, four read buffers and a 256 KiB copy. Here the
 * socket reads (Node's `onread`) into a buffer the size of the packet as soon as its fixed
 * header is known, and the parser slices the payload out of that one buffer without copying:
 * one allocation and no copy in JavaScript per chunk.
 *
 * Bytes the socket delivers before a packet's size is known (the fixed header, small packets,
 * the end of a packet) go through one scratch buffer shared by every connection of the process
 * and are copied out of it at once, so a thousand simulated devices do not each hold one.
 * Packets larger than `maxWholePacketBytes` are passed on piece by piece as they arrive, as a
 * plain socket would, so that a peer's declared length never makes the agent allocate ahead.
 * A packet assembled whole holds its full size from its header on, while its bytes arrive:
 * the connections of a process assemble at most `MAX_ASSEMBLING_BYTES` of large packets at a
 * time, and further ones pass on as they arrive. One agent needs one chunk at a time; two
 * thousand simulated devices in one process would otherwise each hold a whole chunk from its
 * first byte: on a 256 KiB image the simulator's peak memory per device rose to 366 KiB,
 * against 240 to 253 KiB with mqtt.js's own connection and 159 to 217 KiB with this bound.
 * A fixed header that is not valid MQTT is passed on as it is, and everything after it too:
 * mqtt.js then refuses it as it would from a plain socket.
 */
import { type Socket, createConnection } from 'node:net';
import { Duplex } from 'node:stream';

import { LIMITS } from '@fetchback/shared';

/**
 * Bytes a read fills when it does not go straight into a packet; shared, copied out at once.
 * A read that brings a chunk's header brings this much of its payload too, copied: 16 KiB
 * holds any control message and copies 6 % of a 256 KiB chunk (64 KiB copied a quarter).
 */
const SCRATCH_BYTES = 16 * 1024;
/** Reads of a packet passed on as it arrives: as large as Node's own. */
const PASSING_SCRATCH_BYTES = 64 * 1024;
/** Large packets (above the scratch size) assembled at once by all connections of a process. */
export const MAX_ASSEMBLING_BYTES = 8 * 1024 * 1024;
/** A packet with fewer bytes than this still to come is filled from the scratch buffer. */
const DIRECT_READ_MIN_BYTES = 8 * 1024;
/** Default largest packet assembled in one buffer: the largest chunk and its headers. */
export const DEFAULT_MAX_WHOLE_PACKET_BYTES = LIMITS.maxChunkBytes + 64 * 1024;

let scratch: Buffer | undefined;
let passingScratch: Buffer | undefined;
/** Bytes of large packets being assembled now, by every PacketSocket of the process. */
let assemblingBytes = 0;

/** Bytes of large packets being assembled now (for tests). */
export function assemblingBytesNow(): number {
  return assemblingBytes;
}

export interface PacketSocketOptions {
  readonly host: string;
  readonly port: number;
  /** Largest packet assembled in one buffer; larger ones are passed on as they arrive. */
  readonly maxWholePacketBytes?: number;
}

export class PacketSocket extends Duplex {
  readonly socket: Socket;
  private readonly maxWhole: number;
  /** The fixed header read so far: a type byte and up to four length bytes. */
  private readonly header = Buffer.alloc(5);
  private headerBytes = 0;
  /** The packet being assembled and how much of it has arrived. */
  private packet: Buffer | undefined;
  private filled = 0;
  /** Bytes of an oversized packet still to pass on as they come. */
  private passing = 0;
  /** A fixed header was not MQTT: everything is passed on as it is from then on. */
  private raw = false;
  /** Bytes of `packet` counted in `assemblingBytes`. */
  private assembling = 0;
  /** The last read went straight into `packet`. */
  private direct = false;
  /** Where the last read went, when not into `packet`. */
  private readInto: Buffer | undefined;
  private waitingWrite: (() => void) | undefined;

  constructor(options: PacketSocketOptions) {
    super({ allowHalfOpen: false });
    this.maxWhole = options.maxWholePacketBytes ?? DEFAULT_MAX_WHOLE_PACKET_BYTES;
    this.socket = createConnection({
      host: options.host,
      port: options.port,
      // A FETCH_REQ is a few dozen bytes: Nagle's algorithm would hold it for the peer's
      // delayed ACK whenever an earlier one is unacknowledged.
      noDelay: true,
      onread: {
        buffer: () => this.nextBuffer(),
        callback: (bytes: number) => this.onRead(bytes),
      },
    });
    this.socket.on('connect', () => this.emit('connect'));
    this.socket.on('end', () => this.push(null));
    this.socket.on('error', (err) => this.destroy(err));
    this.socket.on('close', () => this.destroy());
    this.socket.on('drain', () => {
      const callback = this.waitingWrite;
      this.waitingWrite = undefined;
      callback?.();
    });
  }

  /** As `net.Socket#setNoDelay`; the connection is opened with Nagle's algorithm off. */
  setNoDelay(noDelay = true): this {
    this.socket.setNoDelay(noDelay);
    return this;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.socket.write(chunk);
    this.afterWrite(callback);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, callback: () => void): void {
    this.socket.cork();
    for (const { chunk } of chunks) this.socket.write(chunk);
    this.socket.uncork();
    this.afterWrite(callback);
  }

  override _final(callback: () => void): void {
    this.socket.end(callback);
  }

  override _destroy(err: Error | null, callback: (err: Error | null) => void): void {
    this.socket.destroy();
    this.waitingWrite = undefined;
    this.packet = undefined;
    this.stopAssembling();
    callback(err);
  }

  private afterWrite(callback: () => void): void {
    if (this.socket.writableNeedDrain) this.waitingWrite = callback;
    else callback();
  }

  /** Where the socket's next read goes: into the packet when much of it is still to come. */
  private nextBuffer(): Buffer {
    const packet = this.packet;
    if (packet !== undefined && packet.length - this.filled >= DIRECT_READ_MIN_BYTES) {
      this.direct = true;
      return packet.subarray(this.filled);
    }
    this.direct = false;
    if (this.passing > 0 || this.raw) {
      passingScratch ??= Buffer.allocUnsafe(PASSING_SCRATCH_BYTES);
      this.readInto = passingScratch;
    } else {
      scratch ??= Buffer.allocUnsafe(SCRATCH_BYTES);
      this.readInto = scratch;
    }
    return this.readInto;
  }

  /** Returns false to pause the socket until mqtt.js reads again. */
  private onRead(bytes: number): boolean {
    if (this.destroyed) return false;
    if (this.direct) {
      this.filled += bytes;
      return this.packet !== undefined && this.filled === this.packet.length
        ? this.deliver()
        : true;
    }
    return this.fromScratch(this.readInto as Buffer, bytes);
  }

  /** Consumes `length` bytes of the scratch buffer, which the next read overwrites. */
  private fromScratch(from: Buffer, length: number): boolean {
    let flowing = true;
    let at = 0;
    while (at < length) {
      if (this.raw || this.passing > 0) {
        const n = this.raw ? length - at : Math.min(this.passing, length - at);
        flowing = this.push(Buffer.from(from.subarray(at, at + n)));
        if (!this.raw) this.passing -= n;
        at += n;
      } else if (this.packet !== undefined) {
        const n = Math.min(this.packet.length - this.filled, length - at);
        from.copy(this.packet, this.filled, at, at + n);
        this.filled += n;
        at += n;
        if (this.filled === this.packet.length) flowing = this.deliver();
      } else {
        this.header[this.headerBytes++] = from[at++] as number;
        // A packet with no payload (PINGRESP, say) is complete with its header.
        const started = this.headerRead();
        if (started !== undefined && this.filled === started.length) flowing = this.deliver();
      }
    }
    return flowing;
  }

  /** After each header byte: starts the packet once its remaining length is complete. */
  private headerRead(): Buffer | undefined {
    const n = this.headerBytes;
    if (n < 2) return undefined;
    const last = this.header[n - 1] as number;
    if ((last & 0x80) !== 0) {
      // MQTT's remaining length takes at most four bytes; a fifth is mqtt.js's error to raise.
      if (n === 5) this.passRaw();
      return undefined;
    }
    let remaining = 0;
    for (let i = n - 1; i >= 1; i--)
      remaining = remaining * 128 + ((this.header[i] as number) & 0x7f);
    this.headerBytes = 0;
    const total = n + remaining;
    const large = total > SCRATCH_BYTES;
    if (total > this.maxWhole || (large && assemblingBytes + total > MAX_ASSEMBLING_BYTES)) {
      this.push(Buffer.from(this.header.subarray(0, n)));
      this.passing = remaining;
      return undefined;
    }
    if (large) {
      this.assembling = total;
      assemblingBytes += total;
    }
    const packet = Buffer.allocUnsafe(total);
    this.header.copy(packet, 0, 0, n);
    this.packet = packet;
    this.filled = n;
    return packet;
  }

  private passRaw(): void {
    this.raw = true;
    this.push(Buffer.from(this.header.subarray(0, this.headerBytes)));
    this.headerBytes = 0;
  }

  private deliver(): boolean {
    const packet = this.packet as Buffer;
    this.packet = undefined;
    this.filled = 0;
    this.stopAssembling();
    return this.push(packet);
  }

  private stopAssembling(): void {
    assemblingBytes -= this.assembling;
    this.assembling = 0;
  }
}
