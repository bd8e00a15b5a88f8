/**
 * The `verifying` step: read the slot back in pieces, check every chunk against the chunk
 * table and the whole image against its signed digest. Memory stays at one piece whatever the
 * image size. A chunk that no longer matches (a torn write before a power cut) is forgotten and
 * fetched again, a bounded number of times; an image whose chunks all match but whose digest
 * does not is a bad release.
 */
import {
  type ChunkTable,
  bytesEqual,
  chunkCount,
  fromHex,
  isFetchbackError,
  sha256,
} from '@fetchback/shared';

import type { Outcome } from '../lifecycle/machine.js';
import { type DownloadContext, heldBlob } from './download-context.js';
import { loadOrFetchChunkTable } from './download-step.js';
import { HeldChunks } from './held-chunks.js';
import { READ_BACK_PIECE_BYTES, ReadBack } from './read-back.js';

export async function verifyImage(context: DownloadContext): Promise<Outcome> {
  try {
    const { job } = context;
    const table = await loadOrFetchChunkTable(context);
    // The image digest is signed: when it matches, every chunk matches the table too, so the
    // chunks are only hashed one by one to find which to fetch again when it does not. Most of
    // the slot was usually read back during the download already (`read-back.ts`).
    const digest = (await context.readBack?.digest()) ?? (await readBackAll(context));
    if (digest && bytesEqual(digest, fromHex(job.release.digest))) {
      return { event: 'image_verified' };
    }

    const bad = await chunksNotMatching(context, table);
    if (bad.length > 0) return await forgetBadChunks(context, bad);
    return { event: 'image_failed', code: 'FB_ERR_IMAGE_DIGEST' };
  } catch (err) {
    if (!isFetchbackError(err)) throw err;
    return { event: 'download_failed', code: err.code, detail: err.message };
  }
}

/** The SHA-256 of the whole slot, read back from the start (no read-back ran before). */
function readBackAll(context: DownloadContext): Promise<Uint8Array | undefined> {
  const { job, slots } = context;
  const target = { slots, slot: job.targetSlot, sizeBytes: job.release.sizeBytes };
  return new ReadBack({ ...target, pieceBytes: READ_BACK_PIECE_BYTES }).digest();
}

/** Reads the slot back in pieces of whole chunks; `visit` gets each piece and its chunk range. */
async function forEachPiece(
  context: DownloadContext,
  chunks: number,
  visit: (piece: Uint8Array, first: number, end: number) => void,
): Promise<void> {
  const { job, slots } = context;
  const { chunkBytes } = job.release;
  const chunksPerPiece = Math.max(1, Math.floor(READ_BACK_PIECE_BYTES / chunkBytes));
  // One buffer for the whole pass: a fresh one per piece left hundreds of MiB for the
  // collector to find and raised the agent's peak RSS by tens of MiB.
  const buffer = new Uint8Array(chunksPerPiece * chunkBytes);
  for (let first = 0; first < chunks; first += chunksPerPiece) {
    const piece = await slots.read(job.targetSlot, first * chunkBytes, buffer.length, buffer);
    visit(piece, first, Math.min(first + chunksPerPiece, chunks));
  }
}

/** Indices of the chunks in the slot whose digest differs from the table's. */
async function chunksNotMatching(context: DownloadContext, table: ChunkTable): Promise<number[]> {
  const { sizeBytes, chunkBytes } = context.job.release;
  const bad: number[] = [];
  await forEachPiece(context, table.count, (piece, first, end) => {
    for (let i = first; i < end; i++) {
      const start = (i - first) * chunkBytes;
      const stop = Math.min(start + chunkBytes, sizeBytes - first * chunkBytes);
      if (!bytesEqual(sha256(piece.subarray(start, stop)), table.digestOf(i))) bad.push(i);
    }
  });
  return bad;
}

async function forgetBadChunks(context: DownloadContext, bad: number[]): Promise<Outcome> {
  const { job } = context;
  const detail = `${bad.length} chunks no longer match the chunk table`;
  if (job.repairs >= context.limits.maxRepairs) {
    return { event: 'image_failed', code: 'FB_ERR_IMAGE_DIGEST', detail };
  }
  const held = await HeldChunks.load({
    store: context.store,
    name: heldBlob(job.seq),
    count: chunkCount(job.release.sizeBytes, job.release.chunkBytes),
    clock: context.clock,
    flushEveryChunks: Number.MAX_SAFE_INTEGER,
    flushIntervalMs: Number.MAX_SAFE_INTEGER,
    syncData: async () => {},
  });
  bad.forEach((i) => held.unmark(i));
  await held.flush();
  context.logger.warn({ bad: bad.length }, 'chunks found bad on disk; fetching them again');
  return { event: 'repair', jobChanges: { repairs: job.repairs + 1 }, detail };
}
