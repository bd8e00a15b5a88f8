/**
 * Release ingest: an uploaded image is streamed to a temporary file while it is hashed (never
 * wholly in memory), capped at `maxImageBytes`, renamed into the content-addressed store, and
 * described by a release statement signed with the release key (`docs/protocol.md` §5).
 */
import { randomBytes } from 'node:crypto';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { join } from 'node:path';

import {
  type CborValue,
  ChunkTableBuilder,
  type KeyPair,
  LIMITS,
  type ReleaseBody,
  encodeDeterministic,
  fbError,
  fromHex,
  releaseDigest,
  signRelease,
  toHex,
} from '@fetchback/shared';

import type { Clock } from '../clock.js';
import type { ReleaseRecord, ReleaseRepository } from '../store/releases.js';
import { assertHardwareClass, assertReleaseName, assertVersion } from '../store/validate.js';
import type { ImageStore } from './image-store.js';

export interface ReleaseInput {
  name: string;
  version: string;
  hwClass: string;
  securityVersion: number;
}

export interface IngestDeps {
  images: ImageStore;
  releases: ReleaseRepository;
  releaseKey: KeyPair;
  clock: Clock;
  maxImageBytes: number;
  chunkBytes: number;
}

interface StagedImage {
  tempFile: string;
  imageDigest: string;
  table: Uint8Array;
  tableDigest: string;
  size: number;
  chunkCount: number;
}

/**
 * Checks the release fields, before a byte of the image is read.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT`, `FB_ERR_RELEASE_EXISTS`
 */
export function checkReleaseInput(input: ReleaseInput, releases: ReleaseRepository): ReleaseInput {
  const checked = {
    name: assertReleaseName(input.name),
    version: assertVersion(input.version),
    hwClass: assertHardwareClass(input.hwClass),
    securityVersion: input.securityVersion,
  };
  if (!Number.isInteger(checked.securityVersion) || checked.securityVersion < 0) {
    throw fbError('FB_ERR_ARGUMENT', `"securityVersion" expected an integer >= 0`);
  }
  if (checked.securityVersion > 2 ** 32 - 1) {
    throw fbError('FB_ERR_ARGUMENT', `"securityVersion" expected at most 2^32-1`);
  }
  if (releases.exists(checked.name, checked.hwClass, checked.version)) {
    throw fbError(
      'FB_ERR_RELEASE_EXISTS',
      `${checked.name} ${checked.version} for ${checked.hwClass}`,
    );
  }
  return checked;
}

/**
 * Ingests one image: stage, store, sign, record.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT`, `FB_ERR_RELEASE_EXISTS`, `FB_ERR_UPLOAD_TOO_LARGE`
 */
export async function ingestRelease(
  deps: IngestDeps,
  input: ReleaseInput,
  image: AsyncIterable<Uint8Array>,
): Promise<ReleaseRecord> {
  const release = checkReleaseInput(input, deps.releases);
  const staged = await stageImage(deps, image);
  deps.images.adopt(staged.tempFile, staged.imageDigest);
  deps.images.putBytes(staged.table);
  return deps.releases.create(signedRecord(deps, release, staged));
}

/** Streams the image to a temporary file, hashing as it goes; the file is removed on failure. */
async function stageImage(
  deps: IngestDeps,
  image: AsyncIterable<Uint8Array>,
): Promise<StagedImage> {
  const tempFile = join(deps.images.tempDir, `upload-${randomBytes(8).toString('hex')}`);
  const builder = new ChunkTableBuilder(deps.chunkBytes);
  let size = 0;
  let file: FileHandle | undefined;
  try {
    file = await open(tempFile, 'wx', 0o644);
    for await (const piece of image) {
      size += piece.length;
      if (size > deps.maxImageBytes) {
        throw fbError('FB_ERR_UPLOAD_TOO_LARGE', `more than ${deps.maxImageBytes} bytes`);
      }
      builder.update(piece);
      await file.write(piece);
    }
    if (size === 0) throw fbError('FB_ERR_ARGUMENT', '"image" expected at least 1 byte, got 0');
    await file.sync();
    await file.close();
    file = undefined;
  } catch (err) {
    await file?.close().catch(() => undefined);
    await rm(tempFile, { force: true });
    throw err;
  }
  const { table, imageDigest, totalBytes } = builder.finish();
  return {
    tempFile,
    imageDigest: toHex(imageDigest),
    table: table.bytes,
    tableDigest: toHex(table.digest()),
    size: totalBytes,
    chunkCount: table.count,
  };
}

function signedRecord(deps: IngestDeps, release: ReleaseInput, staged: StagedImage): ReleaseRecord {
  const now = deps.clock.now();
  const body: ReleaseBody = {
    name: release.name,
    ver: release.version,
    secv: release.securityVersion,
    hw: release.hwClass,
    size: staged.size,
    digest: fromHex(staged.imageDigest),
    cbytes: deps.chunkBytes,
    ctab: fromHex(staged.tableDigest),
    iat: Math.floor(now / 1000),
  };
  const signed = signRelease(body, [deps.releaseKey]);
  const statementDigest = toHex(releaseDigest(body));
  return {
    id: `rel-${statementDigest.slice(0, 16)}`,
    name: release.name,
    version: release.version,
    hwClass: release.hwClass,
    securityVersion: release.securityVersion,
    size: staged.size,
    imageDigest: staged.imageDigest,
    chunkBytes: deps.chunkBytes,
    chunkCount: staged.chunkCount,
    tableDigest: staged.tableDigest,
    statement: encodeDeterministic(signed as unknown as CborValue),
    statementDigest,
    createdAt: now,
  };
}

/** Chunk sizes the protocol allows (`docs/protocol.md` §4). */
export const CHUNK_BYTES_RANGE = { min: LIMITS.minChunkBytes, max: LIMITS.maxChunkBytes };
