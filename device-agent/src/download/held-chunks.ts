/**
 * The set of chunks held in the inactive slot, as a bitmap persisted in batches: every
 * `flushEveryChunks` new chunks or `flushIntervalMs` after the first unflushed one, whichever
 * comes first. A flush first fsyncs the slot, then writes the bitmap atomically, so a chunk is
 * never recorded as held before its bytes are durable. Chunks received since the last flush are
 * simply fetched again after a crash (`docs/device.md`, "Resuming a download").
 */
import type { Clock, TimerHandle } from '../clock.js';
import { CoalescingWriter } from '../storage/coalescing-writer.js';
import type { StateStore } from '../storage/state-store.js';

export interface HeldChunksOptions {
  readonly store: StateStore;
  /** Blob name of the bitmap. */
  readonly name: string;
  readonly count: number;
  readonly clock: Clock;
  readonly flushEveryChunks: number;
  readonly flushIntervalMs: number;
  /** Makes the chunk bytes durable (fsync of the slot) before the bitmap names them. */
  readonly syncData: () => Promise<void>;
}

export class HeldChunks {
  private readonly options: HeldChunksOptions;
  private readonly bits: Uint8Array;
  private heldCount = 0;
  private unflushed = 0;
  /** Chunks 0 .. `prefix - 1` are all held (it only grows until a chunk is unmarked). */
  private prefix = 0;
  private timer: TimerHandle | undefined;
  private readonly writer: CoalescingWriter;

  private constructor(options: HeldChunksOptions, bits: Uint8Array) {
    this.options = options;
    this.bits = bits;
    for (let i = 0; i < options.count; i++) if (this.has(i)) this.heldCount++;
    this.writer = new CoalescingWriter(() => this.persist());
  }

  /** Loads the persisted bitmap, or starts empty. */
  static async load(options: HeldChunksOptions): Promise<HeldChunks> {
    const length = Math.ceil(options.count / 8);
    const stored = await options.store.readBytes(options.name);
    const bits = new Uint8Array(length);
    if (stored && stored.length === length) bits.set(stored);
    return new HeldChunks(options, bits);
  }

  get held(): number {
    return this.heldCount;
  }

  get complete(): boolean {
    return this.heldCount === this.options.count;
  }

  has(index: number): boolean {
    return ((this.bits[index >> 3] as number) & (1 << (index & 7))) !== 0;
  }

  /** How many chunks from the first are all held. */
  contiguous(): number {
    while (this.prefix < this.options.count && this.has(this.prefix)) this.prefix++;
    return this.prefix;
  }

  /** Indices not held, ascending. */
  missing(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.options.count; i++) if (!this.has(i)) out.push(i);
    return out;
  }

  /** Records a chunk whose write completed; persisted with the next batch. */
  mark(index: number): void {
    if (this.has(index)) return;
    this.bits[index >> 3] = (this.bits[index >> 3] as number) | (1 << (index & 7));
    this.heldCount++;
    this.unflushed++;
    if (this.unflushed >= this.options.flushEveryChunks) {
      void this.flush().catch(() => undefined);
    } else if (this.timer === undefined) {
      this.timer = this.options.clock.setTimeout(() => {
        this.timer = undefined;
        void this.flush().catch(() => undefined);
      }, this.options.flushIntervalMs);
    }
  }

  /** Forgets a chunk found bad on disk. */
  unmark(index: number): void {
    if (!this.has(index)) return;
    this.bits[index >> 3] = (this.bits[index >> 3] as number) & ~(1 << (index & 7));
    this.heldCount--;
    this.prefix = Math.min(this.prefix, index);
    this.unflushed++;
  }

  /** Makes every mark so far durable. */
  flush(): Promise<void> {
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    return this.writer.flush();
  }

  /** Cancels the pending timer without writing (the agent is stopping or crashed). */
  dispose(): void {
    this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private async persist(): Promise<void> {
    const snapshot = new Uint8Array(this.bits);
    this.unflushed = 0;
    await this.options.syncData();
    await this.options.store.writeBytes(this.options.name, snapshot);
  }
}
