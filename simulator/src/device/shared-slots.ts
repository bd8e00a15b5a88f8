/**
 * In-memory A/B slots whose contents are shared between devices: every write is stored once per
 * distinct content (keyed by its SHA-256) in a fleet-wide pool, and a slot holds references.
 * A thousand devices that download the same 1 MiB image hold 1 MiB between them, so a fleet's
 * memory measures the agents and their connections, not copies of the image.
 *
 * Reads return exactly the bytes written, so the agent's own verification (and the test's
 * digest check of every committed slot) runs on real content. A write replaces the piece at its
 * offset; writes must not partly overlap each other (the agent writes whole chunks at
 * `index × chunkBytes`, and rewrites a chunk only whole).
 */
import { createHash } from 'node:crypto';

import type { SlotId, SlotStorage } from '@fetchback/device-agent';
import { fbError } from '@fetchback/shared';

/** The fleet-wide content pool; one per simulator process. */
export class ContentPool {
  private readonly pieces = new Map<string, Uint8Array>();

  /** The pooled copy of `data` (stored on first sight). */
  intern(data: Uint8Array): Uint8Array {
    const key = createHash('sha256').update(data).digest('base64');
    let piece = this.pieces.get(key);
    if (!piece) {
      piece = new Uint8Array(data);
      this.pieces.set(key, piece);
    }
    return piece;
  }

  /** Bytes held by the pool. */
  get bytes(): number {
    let total = 0;
    for (const piece of this.pieces.values()) total += piece.length;
    return total;
  }
}

interface Slot {
  readonly sizeBytes: number;
  /** Pieces by offset. */
  readonly pieces: Map<number, Uint8Array>;
  /** Offsets in ascending order; rebuilt on the first read after a new offset. */
  sorted: number[] | undefined;
}

export class SharedSlots implements SlotStorage {
  private readonly pool: ContentPool;
  private readonly slots = new Map<SlotId, Slot>();
  private current: SlotId = 'a';

  constructor(pool: ContentPool) {
    this.pool = pool;
  }

  async active(): Promise<SlotId> {
    return this.current;
  }

  async setActive(slot: SlotId): Promise<void> {
    this.current = slot;
  }

  async create(slot: SlotId, sizeBytes: number): Promise<void> {
    this.slots.set(slot, { sizeBytes, pieces: new Map(), sorted: [] });
  }

  async size(slot: SlotId): Promise<number | undefined> {
    return this.slots.get(slot)?.sizeBytes;
  }

  async write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void> {
    const s = this.slot(slot);
    if (offsetBytes + data.length > s.sizeBytes) {
      throw fbError('FB_ERR_STORAGE', `write beyond the end of slot ${slot}`);
    }
    if (!s.pieces.has(offsetBytes)) s.sorted = undefined;
    s.pieces.set(offsetBytes, this.pool.intern(data));
  }

  async read(slot: SlotId, offsetBytes: number, length: number): Promise<Uint8Array> {
    const s = this.slot(slot);
    const end = Math.min(s.sizeBytes, offsetBytes + length);
    const out = new Uint8Array(Math.max(0, end - offsetBytes));
    const offsets = (s.sorted ??= [...s.pieces.keys()].sort((x, y) => x - y));
    for (let i = firstOverlapping(offsets, s.pieces, offsetBytes); i < offsets.length; i++) {
      const start = offsets[i] as number;
      if (start >= end) break;
      const piece = s.pieces.get(start) as Uint8Array;
      const from = Math.max(start, offsetBytes);
      const to = Math.min(start + piece.length, end);
      if (to > from) out.set(piece.subarray(from - start, to - start), from - offsetBytes);
    }
    return out;
  }

  async sync(_slot: SlotId): Promise<void> {}

  pathOf(_slot: SlotId): undefined {
    return undefined;
  }

  async close(): Promise<void> {}

  /** Seeds `slot` with a whole image and makes it active (the factory-installed firmware). */
  async seed(slot: SlotId, image: Uint8Array, pieceBytes: number): Promise<void> {
    await this.create(slot, image.length);
    for (let offset = 0; offset < image.length; offset += pieceBytes) {
      await this.write(slot, offset, image.subarray(offset, offset + pieceBytes));
    }
    this.current = slot;
  }

  private slot(slot: SlotId): Slot {
    const s = this.slots.get(slot);
    if (!s) throw fbError('FB_ERR_STORAGE', `slot ${slot} does not exist`);
    return s;
  }
}

/** Index of the first piece that ends after `offset` (binary search on the sorted offsets). */
function firstOverlapping(
  offsets: readonly number[],
  pieces: ReadonlyMap<number, Uint8Array>,
  offset: number,
): number {
  let low = 0;
  let high = offsets.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    const start = offsets[mid] as number;
    const length = (pieces.get(start) as Uint8Array).length;
    if (start + length <= offset) low = mid + 1;
    else high = mid;
  }
  return low;
}
