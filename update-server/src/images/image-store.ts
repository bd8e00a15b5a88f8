/**
 * The content-addressed object store: every image, and every chunk table, is one file
 * `<data>/images/<sha256 hex>`. Objects are immutable once renamed into place, so chunk reads
 * need no locking; they are positioned reads on a file descriptor kept open per object, never
 * whole-file reads. Implements the delivery `ImagePort`.
 */
import { mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { join } from 'node:path';

import { chunkCount, chunkLength, fbError, sha256, toHex } from '@fetchback/shared';

const DIGEST_HEX = /^[0-9a-f]{64}$/;

export class ImageStore {
  readonly dir: string;
  /** Where uploads are written before they are renamed into place (same file system). */
  readonly tempDir: string;
  private readonly handles = new Map<string, Promise<FileHandle>>();
  private readonly sizes = new Map<string, number>();

  constructor(dir: string) {
    this.dir = dir;
    this.tempDir = join(dir, 'tmp');
    // Leftovers of uploads interrupted by a crash are never referenced; drop them.
    rmSync(this.tempDir, { recursive: true, force: true });
    mkdirSync(this.tempDir, { recursive: true });
  }

  /** Path of the object with this digest. */
  pathOf(digestHex: string): string {
    if (!DIGEST_HEX.test(digestHex)) {
      throw fbError('FB_ERR_ARGUMENT', `"digest" expected 64 lowercase hex digits`);
    }
    return join(this.dir, digestHex);
  }

  /** Total byte size of the stored object, or undefined when absent. */
  size(digestHex: string): number | undefined {
    const known = this.sizes.get(digestHex);
    if (known !== undefined) return known;
    if (!DIGEST_HEX.test(digestHex)) return undefined;
    try {
      const size = statSync(this.pathOf(digestHex)).size;
      this.sizes.set(digestHex, size);
      return size;
    } catch {
      return undefined;
    }
  }

  has(digestHex: string): boolean {
    return this.size(digestHex) !== undefined;
  }

  /**
   * Bytes of chunk `index` of the object, read at its offset.
   *
   * @throws FetchbackError `FB_ERR_OBJECT_UNKNOWN`, `FB_ERR_CHUNK_RANGE`
   */
  async readChunk(digestHex: string, index: number, chunkBytes: number): Promise<Uint8Array> {
    const length = this.chunkLengthOf(digestHex, index, chunkBytes);
    const buffer = Buffer.allocUnsafe(length);
    await this.fill(digestHex, index * chunkBytes, buffer);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, length);
  }

  /**
   * Reads chunk `index` straight into `into` (the delivery path reads into the FETCH_RESP it
   * sends, so the chunk's bytes are copied once).
   *
   * @throws FetchbackError `FB_ERR_OBJECT_UNKNOWN`, `FB_ERR_CHUNK_RANGE`, `FB_ERR_ARGUMENT`
   *   when `into` is not the chunk's length
   */
  async readChunkInto(
    digestHex: string,
    index: number,
    chunkBytes: number,
    into: Uint8Array,
  ): Promise<void> {
    const length = this.chunkLengthOf(digestHex, index, chunkBytes);
    if (into.length !== length) {
      throw fbError('FB_ERR_ARGUMENT', `"into" expected ${length} bytes, got ${into.length}`);
    }
    await this.fill(digestHex, index * chunkBytes, into);
  }

  private chunkLengthOf(digestHex: string, index: number, chunkBytes: number): number {
    const size = this.size(digestHex);
    if (size === undefined) throw fbError('FB_ERR_OBJECT_UNKNOWN', digestHex);
    if (!Number.isInteger(index) || index < 0 || index >= chunkCount(size, chunkBytes)) {
      throw fbError('FB_ERR_CHUNK_RANGE', `chunk ${index} of ${chunkCount(size, chunkBytes)}`);
    }
    return chunkLength(index, size, chunkBytes);
  }

  private async fill(digestHex: string, offsetBytes: number, into: Uint8Array): Promise<void> {
    const handle = await this.handleOf(digestHex);
    let filled = 0;
    while (filled < into.length) {
      const { bytesRead } = await handle.read(
        into,
        filled,
        into.length - filled,
        offsetBytes + filled,
      );
      if (bytesRead === 0) throw fbError('FB_ERR_STORAGE', `${digestHex} is shorter than expected`);
      filled += bytesRead;
    }
  }

  /** Stores a small object (a chunk table) held in memory; returns its digest (hex). */
  putBytes(bytes: Uint8Array): string {
    const digestHex = toHex(sha256(bytes));
    if (this.has(digestHex)) return digestHex;
    const temp = join(this.tempDir, `${digestHex}.${process.pid}`);
    writeFileSync(temp, bytes, { flush: true });
    renameSync(temp, this.pathOf(digestHex));
    return digestHex;
  }

  /**
   * Moves a fully written and synced temporary file into place under its digest. When the
   * object already exists (the same image uploaded twice), the temporary file is dropped.
   */
  adopt(tempFile: string, digestHex: string): void {
    if (this.has(digestHex)) {
      rmSync(tempFile, { force: true });
      return;
    }
    renameSync(tempFile, this.pathOf(digestHex));
  }

  /** Closes every open file descriptor. */
  async close(): Promise<void> {
    const handles = [...this.handles.values()];
    this.handles.clear();
    await Promise.all(handles.map(async (h) => (await h.catch(() => undefined))?.close()));
  }

  private handleOf(digestHex: string): Promise<FileHandle> {
    let handle = this.handles.get(digestHex);
    if (!handle) {
      handle = open(this.pathOf(digestHex), 'r');
      handle.catch(() => this.handles.delete(digestHex));
      this.handles.set(digestHex, handle);
    }
    return handle;
  }
}
