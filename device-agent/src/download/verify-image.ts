/**
 * The `verifying` step: read the slot back in pieces, check every chunk against the chunk
 * table and the whole image against its signed digest. Memory stays at one piece whatever the
 * image size. A chunk that no longer matches (a torn write before a power cut) is forgotten and
 * fetched again, a bounded number of times; an image whose chunks all match but whose digest
 * does not is a bad release.
 */
import {
  bytesEqual,
  chunkCount,
  createSha256,
  fromHex,
  isFetchbackError,
  sha256,
} from '@fetchback/shared';

import type { Outcome } from '../lifecycle/machine.js';
import { type DownloadContext, heldBlob } from './download-context.js';
import { loadOrFetchChunkTable } from './download-step.js';
import { HeldChunks } from './held-chunks.js';

const PIECE_TARGET_BYTES = 1024 * 1024;

export async function verifyImage(context: DownloadContext): Promise<Outcome> {
  try {
    const { job, slots } = context;
    const { sizeBytes, chunkBytes } = job.release;
    const table = await loadOrFetchChunkTable(context);
    const whole = createSha256();
    const bad: number[] = [];
    const chunksPerPiece = Math.max(1, Math.floor(PIECE_TARGET_BYTES / chunkBytes));

    for (let first = 0; first < table.count; first += chunksPerPiece) {
      const offset = first * chunkBytes;
      const piece = await slots.read(job.targetSlot, offset, chunksPerPiece * chunkBytes);
      whole.update(piece);
      for (let i = first; i < Math.min(first + chunksPerPiece, table.count); i++) {
        const start = (i - first) * chunkBytes;
        const chunk = piece.subarray(start, Math.min(start + chunkBytes, sizeBytes - offset));
        if (!bytesEqual(sha256(chunk), table.digestOf(i))) bad.push(i);
      }
    }

    if (bad.length > 0) return await forgetBadChunks(context, bad);
    if (!bytesEqual(whole.digest(), fromHex(job.release.digest))) {
      return { event: 'image_failed', code: 'FB_ERR_IMAGE_DIGEST' };
    }
    return { event: 'image_verified' };
  } catch (err) {
    if (!isFetchbackError(err)) throw err;
    return { event: 'download_failed', code: err.code, detail: err.message };
  }
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
