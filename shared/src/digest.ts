/**
 * SHA-256 digests, chunk tables and incremental hashing.
 *
 * Two implementations give identical results: @noble/hashes (portable, no platform code) and
 * Node's built-in `node:crypto` (about 7x faster on this project's machines), which is the
 * default for bulk image hashing. A test checks that both agree.
 */
import { createHash } from 'node:crypto';

import { sha256 as nobleSha256 } from '@noble/hashes/sha2.js';

import { fbError } from './errors.js';

/** Length of a SHA-256 digest, in bytes. */
export const DIGEST_BYTES = 32;

/** An incremental hasher for streams. */
export interface Hasher {
  update(data: Uint8Array): Hasher;
  digest(): Uint8Array;
}

/** Which SHA-256 implementation to use. */
export type HashImpl = 'node' | 'noble';

/** Creates an incremental SHA-256 hasher. */
export function createSha256(impl: HashImpl = 'node'): Hasher {
  if (impl === 'noble') {
    const h = nobleSha256.create();
    const hasher: Hasher = {
      update(data) {
        h.update(data);
        return hasher;
      },
      digest: () => h.digest(),
    };
    return hasher;
  }
  const h = createHash('sha256');
  const hasher: Hasher = {
    update(data) {
      h.update(data);
      return hasher;
    },
    digest: () => new Uint8Array(h.digest()),
  };
  return hasher;
}

/** SHA-256 of `data` in one call. */
export function sha256(data: Uint8Array, impl: HashImpl = 'node'): Uint8Array {
  return createSha256(impl).update(data).digest();
}

/** Lowercase hexadecimal of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/**
 * Parses lowercase or uppercase hexadecimal.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for odd length or a non-hex character.
 */
export function fromHex(hex: string): Uint8Array {
  if (hex.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(hex)) {
    throw fbError('FB_ERR_ARGUMENT', '"hex" expected an even number of hex digits');
  }
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** True when two byte arrays are equal (constant time in their common length). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] as number) ^ (b[i] as number);
  return diff === 0;
}

/** The number of chunks of `chunkBytes` that an object of `totalBytes` splits into. */
export function chunkCount(totalBytes: number, chunkBytes: number): number {
  return totalBytes === 0 ? 0 : Math.ceil(totalBytes / chunkBytes);
}

/** Byte length of chunk `index` of an object of `totalBytes`. */
export function chunkLength(index: number, totalBytes: number, chunkBytes: number): number {
  const start = index * chunkBytes;
  return Math.max(0, Math.min(chunkBytes, totalBytes - start));
}

/**
 * A chunk table: the SHA-256 of every chunk of an image, in order, concatenated
 * (`docs/protocol.md` §5). Its own SHA-256 is signed in the release statement.
 */
export class ChunkTable {
  /** Concatenated 32-byte digests. */
  readonly bytes: Uint8Array;
  readonly count: number;

  /**
   * @throws FetchbackError `FB_ERR_MSG_FIELD_LENGTH` when `bytes` is not a whole number of
   *   digests.
   */
  constructor(bytes: Uint8Array) {
    if (bytes.length % DIGEST_BYTES !== 0) {
      throw fbError('FB_ERR_MSG_FIELD_LENGTH', `chunk table of ${bytes.length} bytes`);
    }
    this.bytes = bytes;
    this.count = bytes.length / DIGEST_BYTES;
  }

  /**
   * Digest of chunk `index`.
   *
   * @throws FetchbackError `FB_ERR_CHUNK_RANGE` for an index outside the table.
   */
  digestOf(index: number): Uint8Array {
    if (!Number.isInteger(index) || index < 0 || index >= this.count) {
      throw fbError('FB_ERR_CHUNK_RANGE', `chunk ${index} of ${this.count}`);
    }
    return this.bytes.subarray(index * DIGEST_BYTES, (index + 1) * DIGEST_BYTES);
  }

  /**
   * True when `data` is chunk `index`.
   *
   * @throws FetchbackError `FB_ERR_CHUNK_RANGE` for an index outside the table.
   */
  verifyChunk(index: number, data: Uint8Array): boolean {
    return bytesEqual(sha256(data), this.digestOf(index));
  }

  /** SHA-256 of the table, as signed in the release statement. */
  digest(): Uint8Array {
    return sha256(this.bytes);
  }
}

/**
 * Builds a chunk table and the whole-image digest from a stream of pieces of any size.
 * Memory stays at one chunk whatever the image size.
 */
export class ChunkTableBuilder {
  private readonly chunkBytes: number;
  private readonly whole = createSha256();
  private current = createSha256();
  private inChunk = 0;
  private readonly digests: Uint8Array[] = [];
  private total = 0;

  /** @throws FetchbackError `FB_ERR_ARGUMENT` for a chunk size that is not a positive integer. */
  constructor(chunkBytes: number) {
    if (!Number.isInteger(chunkBytes) || chunkBytes <= 0) {
      throw fbError('FB_ERR_ARGUMENT', `"chunkBytes" expected a positive integer`);
    }
    this.chunkBytes = chunkBytes;
  }

  update(data: Uint8Array): this {
    this.whole.update(data);
    this.total += data.length;
    let offset = 0;
    while (offset < data.length) {
      const take = Math.min(this.chunkBytes - this.inChunk, data.length - offset);
      this.current.update(data.subarray(offset, offset + take));
      this.inChunk += take;
      offset += take;
      if (this.inChunk === this.chunkBytes) this.closeChunk();
    }
    return this;
  }

  private closeChunk(): void {
    this.digests.push(this.current.digest());
    this.current = createSha256();
    this.inChunk = 0;
  }

  /** Finishes; returns the table, the image digest and the image length. */
  finish(): { table: ChunkTable; imageDigest: Uint8Array; totalBytes: number } {
    if (this.inChunk > 0) this.closeChunk();
    const table = new Uint8Array(this.digests.length * DIGEST_BYTES);
    this.digests.forEach((d, i) => table.set(d, i * DIGEST_BYTES));
    return {
      table: new ChunkTable(table),
      imageDigest: this.whole.digest(),
      totalBytes: this.total,
    };
  }
}
