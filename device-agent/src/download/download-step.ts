/**
 * The `downloading` step: fetch and verify the chunk table, prepare the inactive slot, then
 * fetch every chunk not yet held, each checked against the table before it is written at its
 * offset. Resumes from the persisted table and bitmap after a crash.
 */
import {
  ChunkTable,
  bytesEqual,
  chunkCount,
  chunkLength,
  fbError,
  fromHex,
  isFetchbackError,
  sha256,
} from '@fetchback/shared';

import type { Outcome } from '../lifecycle/machine.js';
import { type DownloadContext, chunkTableBlob, heldBlob, windowFor } from './download-context.js';
import { HeldChunks } from './held-chunks.js';
import { type FetchTarget, ObjectFetcher } from './object-fetcher.js';

const TABLE_ATTEMPTS = 3;

export async function downloadImage(context: DownloadContext): Promise<Outcome> {
  try {
    checkDeadline(context);
    const table = await loadOrFetchChunkTable(context);
    const held = await openSlotAndBitmap(context);
    await fetchMissingChunks(context, table, held);
    await held.flush();
    return { event: 'chunks_complete' };
  } catch (err) {
    if (!isFetchbackError(err)) throw err;
    return { event: 'download_failed', code: err.code, detail: err.message };
  } finally {
    context.attach(undefined);
  }
}

function checkDeadline(context: DownloadContext): void {
  const { ackByMs } = context.job;
  if (ackByMs !== undefined && context.clock.now() >= ackByMs) {
    throw fbError('FB_ERR_DEADLINE_MISSED', `deadline ${new Date(ackByMs).toISOString()}`);
  }
}

/** The persisted chunk table of this job, or a freshly fetched and verified one. */
export async function loadOrFetchChunkTable(context: DownloadContext): Promise<ChunkTable> {
  const { job, store } = context;
  const expected = fromHex(job.release.chunkTableDigest);
  const stored = await store.readBytes(chunkTableBlob(job.seq));
  if (stored && bytesEqual(sha256(stored), expected)) return new ChunkTable(stored);

  for (let attempt = 1; attempt <= TABLE_ATTEMPTS; attempt++) {
    const bytes = await fetchChunkTable(context);
    if (bytesEqual(sha256(bytes), expected)) {
      await store.writeBytes(chunkTableBlob(job.seq), bytes);
      return new ChunkTable(bytes);
    }
    context.logger.warn({ attempt }, 'chunk table does not match its signed digest');
  }
  throw fbError('FB_ERR_CHUNK_TABLE_DIGEST', `${TABLE_ATTEMPTS} attempts`);
}

async function fetchChunkTable(context: DownloadContext): Promise<Uint8Array> {
  const { sizeBytes, chunkBytes, chunkTableDigest } = context.job.release;
  const tableBytes = chunkCount(sizeBytes, chunkBytes) * 32;
  const buffer = new Uint8Array(tableBytes);
  const count = chunkCount(tableBytes, chunkBytes);
  const target: FetchTarget = {
    obj: fromHex(chunkTableDigest),
    missing: Array.from({ length: count }, (_, i) => i),
    expectedBytes: (i) => chunkLength(i, tableBytes, chunkBytes),
    accept: async (i, data) => {
      buffer.set(data, i * chunkBytes);
      return true;
    },
  };
  await runFetcher(context, target);
  return buffer;
}

/** Creates the slot for a new download, or reopens it with its bitmap to resume one. */
async function openSlotAndBitmap(context: DownloadContext): Promise<HeldChunks> {
  const { job, store, slots } = context;
  const { sizeBytes, chunkBytes } = job.release;
  const resuming =
    (await store.readBytes(heldBlob(job.seq))) !== undefined &&
    (await slots.size(job.targetSlot)) === sizeBytes;
  if (!resuming) await slots.create(job.targetSlot, sizeBytes);

  const held = await HeldChunks.load({
    store,
    name: heldBlob(job.seq),
    count: chunkCount(sizeBytes, chunkBytes),
    clock: context.clock,
    flushEveryChunks: context.limits.heldFlushChunks,
    flushIntervalMs: context.limits.heldFlushMs,
    syncData: () => slots.sync(job.targetSlot),
  });
  if (!resuming) await held.flush();
  context.logger.info({ resuming, held: held.held }, 'download starts');
  return held;
}

async function fetchMissingChunks(
  context: DownloadContext,
  table: ChunkTable,
  held: HeldChunks,
): Promise<void> {
  const { job, slots } = context;
  const { sizeBytes, chunkBytes } = job.release;
  if (table.count !== chunkCount(sizeBytes, chunkBytes)) {
    throw fbError('FB_ERR_CHUNK_TABLE_DIGEST', `table has ${table.count} entries`);
  }
  const target: FetchTarget = {
    obj: fromHex(job.release.digest),
    missing: held.missing(),
    expectedBytes: (i) => chunkLength(i, sizeBytes, chunkBytes),
    accept: async (i, data) => {
      if (!table.verifyChunk(i, data)) return false;
      await slots.write(job.targetSlot, i * chunkBytes, data);
      held.mark(i);
      context.readBack?.written(held.contiguous() * chunkBytes);
      context.onProgress(held.held, table.count);
      return true;
    },
  };
  // Chunks held from before a restart can be read back at once.
  context.readBack?.written(held.contiguous() * chunkBytes);
  try {
    await runFetcher(context, target);
  } finally {
    held.dispose();
  }
}

async function runFetcher(context: DownloadContext, target: FetchTarget): Promise<void> {
  const { limits } = context;
  const fetcher = new ObjectFetcher(target, {
    window: windowFor(limits, context.job.release.chunkBytes),
    chunkStallMs: limits.chunkStallMs,
    maxStallRetries: limits.maxStallRetries,
    maxCorruptPerChunk: limits.maxCorruptPerChunk,
    busyBackoffBaseMs: limits.busyBackoffBaseMs,
    busyBackoffCapMs: limits.busyBackoffCapMs,
    clock: context.clock,
    random: context.random,
    send: context.send,
    nextRid: context.nextRid,
    online: context.online,
    signal: context.signal,
    onCorrupt: context.onCorrupt,
  });
  context.attach(fetcher);
  await fetcher.run();
}
