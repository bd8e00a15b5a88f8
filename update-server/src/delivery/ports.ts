/**
 * What delivery needs from the rest of the server. server-core's concrete classes satisfy these
 * structurally: `ReleaseRepository` (`store/releases.ts`), `ImageStore`
 * (`images/image-store.ts`), the key material of `keys/server-keys.ts`, and `DeviceRepository`
 * for `DevicePort` (declared with the broker, which needs it first).
 */
import type { KeyCertificate, KeyPair } from '@fetchback/shared';

export type { DevicePort, DeviceRecord, DeviceTouch } from '../broker/ports.js';

export interface ReleaseRecord {
  readonly id: string;
  readonly name: string;
  readonly version: string;
  readonly hwClass: string;
  readonly securityVersion: number;
  readonly size: number;
  /** Hex SHA-256 of the image. */
  readonly imageDigest: string;
  readonly chunkBytes: number;
  readonly chunkCount: number;
  /** Hex SHA-256 of the chunk table. */
  readonly tableDigest: string;
  /** CBOR of the SignedRelease. */
  readonly statement: Uint8Array;
  /** Hex `releaseDigest(body)`: what an assignment names. */
  readonly statementDigest: string;
  readonly createdAt: number;
}

export interface ReleasePort {
  get(id: string): ReleaseRecord | undefined;
  /** The release whose image digest or chunk-table digest (hex) is `digestHex`. */
  byObjectDigest(
    digestHex: string,
  ): { release: ReleaseRecord; kind: 'image' | 'table' } | undefined;
}

export interface ImagePort {
  /** Bytes of chunk `index` of the object with this digest (image or chunk table file). */
  readChunk(digestHex: string, index: number, chunkBytes: number): Promise<Uint8Array>;
  /** Reads chunk `index` into `into`, which is exactly the chunk's length. */
  readChunkInto(
    digestHex: string,
    index: number,
    chunkBytes: number,
    into: Uint8Array,
  ): Promise<void>;
  /** Total byte size of the stored object. */
  size(digestHex: string): number | undefined;
}

export interface ServerKeys {
  readonly rootPublicKey: Uint8Array;
  readonly assignmentKey: KeyPair;
  readonly releaseKey: KeyPair;
  readonly certificates: KeyCertificate[];
}
