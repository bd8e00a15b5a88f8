/**
 * The verifying step's read-back of the slot, started while the download runs: as soon as
 * every chunk before a piece is written, the piece is read back from the slot and added to the
 * whole-image SHA-256, in the time the agent would otherwise spend waiting for chunks. The
 * verifying step then reads and hashes only what is left. It is still the slot's bytes that
 * are hashed, read back after they were written, so the check is the same as a read-back after
 * the download. The state is in memory only: after a restart, verification reads everything.
 */
import { type Hasher, createSha256, fbError } from '@fetchback/shared';

import type { SlotId, SlotStorage } from '../storage/slot-storage.js';

/**
 * Buffers between read-backs, by length, shared by every agent of a process: a buffer is
 * needed only while a read runs, and the simulator's thousand agents holding one each for a
 * whole download raised its peak memory by 140 KiB per device.
 */
const spareBuffers = new Map<number, Uint8Array[]>();

/** Bytes a read-back reads and hashes at a time. */
export const READ_BACK_PIECE_BYTES = 512 * 1024;
const MAX_SPARE_PER_LENGTH = 4;

function takeBuffer(length: number): Uint8Array {
  return spareBuffers.get(length)?.pop() ?? new Uint8Array(length);
}

function giveBack(buffer: Uint8Array): void {
  const spare = spareBuffers.get(buffer.length) ?? [];
  if (spare.length < MAX_SPARE_PER_LENGTH) spare.push(buffer);
  spareBuffers.set(buffer.length, spare);
}

export interface ReadBackTarget {
  readonly slots: SlotStorage;
  readonly slot: SlotId;
  readonly sizeBytes: number;
  /** Bytes read and hashed at a time. */
  readonly pieceBytes: number;
}

export class ReadBack {
  private readonly target: ReadBackTarget;
  private readonly hasher: Hasher = createSha256();
  private readonly pieceBytes: number;
  /** Bytes from the start of the slot read back and hashed so far. */
  private hashedBytes = 0;
  /** Bytes from the start of the slot known to be written. */
  private writtenBytes = 0;
  private running: Promise<void> | undefined;
  private failed = false;

  constructor(target: ReadBackTarget) {
    this.target = target;
    this.pieceBytes = Math.max(1, target.pieceBytes);
  }

  /** Bytes read back and hashed so far (for tests and logs). */
  get hashed(): number {
    return this.hashedBytes;
  }

  /**
   * Every byte before `bytes` is written: reads back, in the background, the whole pieces
   * that this covers (and the end of the image once it is all written).
   */
  written(bytes: number): void {
    this.writtenBytes = Math.max(this.writtenBytes, Math.min(bytes, this.target.sizeBytes));
    if (this.running || this.failed || !this.pieceReady()) return;
    this.running = this.readWritten()
      .catch(() => {
        // The verifying step reads the whole slot again; its own error is the one reported.
        this.failed = true;
      })
      .finally(() => {
        this.running = undefined;
      });
  }

  /**
   * The SHA-256 of the whole slot, reading back what is left; undefined when a background
   * read failed (the caller then reads the slot back from the start).
   */
  async digest(): Promise<Uint8Array | undefined> {
    await this.running;
    if (this.failed) return undefined;
    this.writtenBytes = this.target.sizeBytes;
    await this.readWritten();
    return this.hasher.digest();
  }

  private pieceReady(): boolean {
    const left = this.writtenBytes - this.hashedBytes;
    return left >= this.pieceBytes || (left > 0 && this.writtenBytes === this.target.sizeBytes);
  }

  private async readWritten(): Promise<void> {
    const { slots, slot } = this.target;
    if (!this.pieceReady()) return;
    const buffer = takeBuffer(this.pieceBytes);
    try {
      while (this.pieceReady()) {
        const length = Math.min(this.pieceBytes, this.writtenBytes - this.hashedBytes);
        const piece = await slots.read(slot, this.hashedBytes, length, buffer);
        if (piece.length !== length) {
          throw fbError('FB_ERR_STORAGE', `short read of slot ${slot} at ${this.hashedBytes}`);
        }
        this.hasher.update(piece);
        this.hashedBytes += length;
      }
    } finally {
      giveBack(buffer);
    }
  }
}
