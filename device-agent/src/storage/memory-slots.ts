/**
 * Slots in memory, for tests and the simulator. Writes are durable at once; a simulated crash
 * keeps the object and drops the agent.
 */
import { fbError } from '@fetchback/shared';

import type { SlotId, SlotStorage } from './slot-storage.js';

export class MemorySlots implements SlotStorage {
  private readonly images = new Map<SlotId, Uint8Array>();
  private current: SlotId = 'a';

  async active(): Promise<SlotId> {
    return this.current;
  }

  async setActive(slot: SlotId): Promise<void> {
    this.current = slot;
  }

  async create(slot: SlotId, sizeBytes: number): Promise<void> {
    this.images.set(slot, new Uint8Array(sizeBytes));
  }

  async size(slot: SlotId): Promise<number | undefined> {
    return this.images.get(slot)?.length;
  }

  async write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void> {
    const image = this.image(slot);
    if (offsetBytes + data.length > image.length) {
      throw fbError('FB_ERR_STORAGE', `write beyond the end of slot ${slot}`);
    }
    image.set(data, offsetBytes);
  }

  async read(
    slot: SlotId,
    offsetBytes: number,
    length: number,
    into?: Uint8Array,
  ): Promise<Uint8Array> {
    const bytes = this.image(slot).subarray(offsetBytes, offsetBytes + length);
    if (!into) return bytes.slice();
    into.set(bytes);
    return into.subarray(0, bytes.length);
  }

  async sync(_slot: SlotId): Promise<void> {}

  pathOf(_slot: SlotId): undefined {
    return undefined;
  }

  async close(): Promise<void> {}

  /** The whole image in `slot` (tests). */
  imageOf(slot: SlotId): Uint8Array | undefined {
    return this.images.get(slot);
  }

  private image(slot: SlotId): Uint8Array {
    const image = this.images.get(slot);
    if (!image) throw fbError('FB_ERR_STORAGE', `slot ${slot} does not exist`);
    return image;
  }
}
