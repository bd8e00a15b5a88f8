/**
 * A least-recently-used cache of chunks over the image store, bounded in bytes. Concurrent
 * requests for the same chunk (a fleet fetching one release) share one read, and the chunks a
 * device will ask for next can be read ahead while its current ones go out.
 *
 * A cached chunk is handed out as is, never copied: callers only send it and must never write
 * into it. With a bound of 0 nothing is kept, every request reads the store, and nothing is
 * read ahead.
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

  /** Chunk `index`, `length` bytes long; shared, so the caller must not write into it. */
  get(digestHex: string, index: number, chunkBytes: number, length: number): Promise<Uint8Array> {
    const key = `${digestHex}:${chunkBytes}:${index}`;
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
      return Promise.resolve(hit);
    }
    return this.pending.get(key) ?? this.load(key, digestHex, index, chunkBytes, length);
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
      this.load(key, digestHex, index, chunkBytes, length).catch(() => undefined);
    }
  }

  private load(
    key: string,
    digestHex: string,
    index: number,
    chunkBytes: number,
    length: number,
  ): Promise<Uint8Array> {
    // Not zeroed: the read fills every byte or fails, and a failed buffer is never kept.
    const into = Buffer.allocUnsafe(length);
    const reading = this.read(digestHex, index, chunkBytes, into)
      .then(() => {
        this.insert(key, into);
        return into;
      })
      .finally(() => this.pending.delete(key));
    this.pending.set(key, reading);
    return reading;
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
