/**
 * A least-recently-used cache of chunks over the image store, bounded in bytes. Concurrent
 * requests for the same chunk (a fleet fetching one release) share one read, and the chunks a
 * device will ask for next can be read ahead while its current ones go out.
 *
 * A cached chunk is handed out as is, never copied: callers only send it and must never write
 * into it. With a bound of 0 nothing is kept, every request reads the store, and nothing is
 * read ahead.
 *
 * Buffers are reused. Each `get` counts a user of the chunk until its `release`; a chunk that
 * has left the cache and has no user left becomes a spare, and the next read of a chunk of the
 * same length goes into it instead of a new buffer. Without this, a device reading a large
 * image made the server allocate a new buffer per chunk, and the collector, pressed by that
 * much new memory outside its heap, spent about a quarter of the server's time marking it.
 * A caller that never calls `release` costs nothing but the reuse: its chunk is left to the
 * collector.
 *
 * Chunks read ahead and not asked for yet hold at most half the cache; past that, chunks are
 * read when asked for. Without that bound a fleet spread over a large image reads ahead more
 * than the cache holds, and chunks leave it before their devices ask for them: read twice.
 */
export type ChunkReader = (
  digestHex: string,
  index: number,
  chunkBytes: number,
  into: Uint8Array,
) => Promise<void>;

/** A chunk's buffer, and who holds it. */
interface Held {
  readonly data: Buffer;
  /** Calls of `get` not released yet. */
  users: number;
  /** In `entries` (or being read to go there): not a spare whatever its users. */
  cached: boolean;
  /** Read ahead and not asked for yet: counted in `aheadBytes`. */
  ahead: boolean;
}

/** Spares kept at most, in all; a device's window and read-ahead need a handful. */
const MAX_SPARES = 16;

export class ChunkCache {
  private readonly maxBytes: number;
  private readonly read: ChunkReader;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Held>();
  private readonly pending = new Map<string, { held: Held; reading: Promise<Uint8Array> }>();
  /** Every buffer handed out and not yet a spare, to find its record on `release`. */
  private readonly holders = new WeakMap<Uint8Array, Held>();
  /** Buffers no one holds, by length. */
  private readonly spares = new Map<number, Buffer[]>();
  private spareCount = 0;
  private bytes = 0;
  /** Bytes read ahead (or being read) and not asked for yet. */
  private aheadBytes = 0;

  constructor(maxBytes: number, read: ChunkReader) {
    this.maxBytes = maxBytes;
    this.read = read;
  }

  /** Bytes held now. */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Bytes read ahead and not asked for yet (for tests). */
  get readAheadBytes(): number {
    return this.aheadBytes;
  }

  /** Spare buffers kept for reuse now (for tests). */
  get spareBuffers(): number {
    return this.spareCount;
  }

  /**
   * Chunk `index`, `length` bytes long; shared, so the caller must not write into it. Call
   * `release` with it once nothing (no socket write, no queue) holds it any more.
   */
  get(digestHex: string, index: number, chunkBytes: number, length: number): Promise<Uint8Array> {
    const key = `${digestHex}:${chunkBytes}:${index}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      hit.users++;
      this.askedFor(hit);
      return Promise.resolve(hit.data);
    }
    const loading = this.pending.get(key) ?? this.load(key, digestHex, index, chunkBytes, length);
    // Counted now, not when the read ends: between the two the chunk could leave the cache
    // and, with no user counted, be handed to another read.
    loading.held.users++;
    this.askedFor(loading.held);
    return loading.reading;
  }

  /** The caller of `get` is done with `data`: it may be reused once no one else holds it. */
  release(data: Uint8Array): void {
    const held = this.holders.get(data);
    if (!held || held.users === 0) return;
    held.users--;
    if (held.users === 0 && !held.cached) this.spare(held);
  }

  /**
   * Starts reading chunks that are neither held nor being read, so that they are in memory
   * when asked for; a failed read is forgotten (the request that needs it reads again).
   */
  readAhead(digestHex: string, chunkBytes: number, chunks: { index: number; length: number }[]) {
    if (this.maxBytes === 0) return;
    for (const { index, length } of chunks) {
      const key = `${digestHex}:${chunkBytes}:${index}`;
      if (this.entries.has(key) || this.pending.has(key)) continue;
      if (this.aheadBytes + length > this.maxBytes / 2) return;
      const loading = this.load(key, digestHex, index, chunkBytes, length);
      loading.held.ahead = true;
      this.aheadBytes += length;
      loading.reading.catch(() => undefined);
    }
  }

  private load(
    key: string,
    digestHex: string,
    index: number,
    chunkBytes: number,
    length: number,
  ): { held: Held; reading: Promise<Uint8Array> } {
    // Not zeroed: the read fills every byte or fails, and a failed buffer is never kept.
    const held: Held = { data: this.takeSpare(length), users: 0, cached: true, ahead: false };
    const reading = this.read(digestHex, index, chunkBytes, held.data)
      .then(
        () => {
          this.holders.set(held.data, held);
          this.insert(key, held);
          return held.data;
        },
        (err: unknown) => {
          // Whoever waited gets the error and holds nothing; the buffer goes to the collector.
          held.cached = false;
          held.users = 0;
          this.askedFor(held);
          throw err;
        },
      )
      .finally(() => this.pending.delete(key));
    const loading = { held, reading };
    this.pending.set(key, loading);
    return loading;
  }

  private insert(key: string, held: Held): void {
    if (held.data.length > this.maxBytes || this.entries.has(key)) {
      this.evicted(held);
      return;
    }
    this.entries.set(key, held);
    this.bytes += held.data.length;
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.bytes -= old.data.length;
      this.evicted(old);
    }
  }

  /** A chunk read ahead was asked for (or will never be): it no longer counts as ahead. */
  private askedFor(held: Held): void {
    if (!held.ahead) return;
    held.ahead = false;
    this.aheadBytes -= held.data.length;
  }

  private evicted(held: Held): void {
    // Read ahead and never asked for: the read was wasted, and no longer holds room.
    this.askedFor(held);
    held.cached = false;
    if (held.users === 0) this.spare(held);
  }

  private spare(held: Held): void {
    this.holders.delete(held.data);
    if (this.spareCount >= MAX_SPARES) return;
    const list = this.spares.get(held.data.length);
    if (list) list.push(held.data);
    else this.spares.set(held.data.length, [held.data]);
    this.spareCount++;
  }

  private takeSpare(length: number): Buffer {
    const reused = this.spares.get(length)?.pop();
    if (reused === undefined) return Buffer.allocUnsafe(length);
    this.spareCount--;
    return reused;
  }
}
