/**
 * Slow flash: every write to a slot takes `minDelayMs` to `maxDelayMs` longer, as a worn SD
 * card does. The agent counts a chunk against its fetch window until the write completes, so a
 * slow device fetches more slowly instead of buffering.
 */
import type { Random, SlotId, SlotStorage } from '@fetchback/device-agent';

import { between } from './random.js';

export class SlowSlots implements SlotStorage {
  private readonly inner: SlotStorage;
  private readonly random: Random;
  private readonly minDelayMs: number;
  private readonly maxDelayMs: number;

  constructor(inner: SlotStorage, random: Random, minDelayMs = 2, maxDelayMs = 20) {
    this.inner = inner;
    this.random = random;
    this.minDelayMs = minDelayMs;
    this.maxDelayMs = maxDelayMs;
  }

  async write(slot: SlotId, offsetBytes: number, data: Uint8Array): Promise<void> {
    const delayMs = between(this.random, this.minDelayMs, this.maxDelayMs);
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    await this.inner.write(slot, offsetBytes, data);
  }

  active(): Promise<SlotId> {
    return this.inner.active();
  }

  setActive(slot: SlotId): Promise<void> {
    return this.inner.setActive(slot);
  }

  create(slot: SlotId, sizeBytes: number): Promise<void> {
    return this.inner.create(slot, sizeBytes);
  }

  size(slot: SlotId): Promise<number | undefined> {
    return this.inner.size(slot);
  }

  read(slot: SlotId, offsetBytes: number, length: number): Promise<Uint8Array> {
    return this.inner.read(slot, offsetBytes, length);
  }

  sync(slot: SlotId): Promise<void> {
    return this.inner.sync(slot);
  }

  pathOf(slot: SlotId): string | undefined {
    return this.inner.pathOf(slot);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
