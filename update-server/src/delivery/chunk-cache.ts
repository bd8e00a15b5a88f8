/**
 * A least-recently-used cache of chunks over the image store, bounded in bytes. Concurrent
 * requests for the same chunk (a fleet fetching one release) share one read.
 *
 * Chunks are copied into the caller's buffer (the FETCH_RESP being built), and a chunk read
 * from the store is read straight into that buffer; the cache then keeps a view of it. A
 * payload handed to the broker is never written again, so the view stays valid.
 */
export type ChunkReader = (
  digestHex: string,
  index: number,
  chunkBytes: number,
  into: Uint8Array,
) => Promise<void>;

export class ChunkCache {
  private readonly maxBytes: number;
  private readonly read: ChunkReader;
  /** Map order is recency order: the first entry is the least recently used. */
  private readonly entries = new Map<string, Uint8Array>();
  private readonly pending = new Map<string, Promise<Uint8Array>>();
  private bytes = 0;

  constructor(maxBytes: number, read: ChunkReader) {
    this.maxBytes = maxBytes;
    this.read = read;
  }

  /** Bytes held now. */
  get sizeBytes(): number {
    return this.bytes;
  }

  /** Puts chunk `index` into `into`, which is exactly the chunk's length. */
  async load(digestHex: string, index: number, chunkBytes: number, into: Uint8Array) {
    const key = `${digestHex}:${chunkBytes}:${index}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      into.set(hit);
      return;
    }
    const inFlight = this.pending.get(key);
    if (inFlight) {
      into.set(await inFlight);
      return;
    }

    const reading = this.read(digestHex, index, chunkBytes, into)
      .then(() => into)
      .finally(() => this.pending.delete(key));
    this.pending.set(key, reading);
    await reading;
    this.insert(key, into);
  }

  private insert(key: string, data: Uint8Array): void {
    if (data.length > this.maxBytes || this.entries.has(key)) return;
    this.entries.set(key, data);
    this.bytes += data.length;
    for (const [oldKey, old] of this.entries) {
      if (this.bytes <= this.maxBytes) break;
      this.entries.delete(oldKey);
      this.bytes -= old.length;
    }
  }
}
