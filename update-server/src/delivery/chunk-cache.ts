/**
 * A least-recently-used cache of chunks over the image store, bounded in bytes. Concurrent
 * requests for the same chunk (a fleet fetching one release) share one read.
 */
export type ChunkReader = (
  digestHex: string,
  index: number,
  chunkBytes: number,
) => Promise<Uint8Array>;

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

  async get(digestHex: string, index: number, chunkBytes: number): Promise<Uint8Array> {
    const key = `${digestHex}:${chunkBytes}:${index}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return hit;
    }
    const inFlight = this.pending.get(key);
    if (inFlight) return inFlight;

    const reading = this.read(digestHex, index, chunkBytes).finally(() => this.pending.delete(key));
    this.pending.set(key, reading);
    const data = await reading;
    this.insert(key, data);
    return data;
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
