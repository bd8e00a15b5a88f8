/**
 * The `verifying` step on its own: the slot is read back and checked against the signed image
 * digest; chunks are hashed one by one only to find the ones to fetch again.
 */
import { randomBytes } from 'node:crypto';

import { ChunkTableBuilder, sha256, toHex } from '@fetchback/shared';
import pino from 'pino';
import { describe, expect, it } from 'vitest';

import { verifyImage } from '../src/download/verify-image.js';
import {
  type DownloadContext,
  HeldChunks,
  type Job,
  MemorySlots,
  MemoryStateStore,
  chunkTableBlob,
  heldBlob,
  systemClock,
  withLimits,
} from '../src/index.js';
import { ReadBack } from '../src/download/read-back.js';

const CHUNK_BYTES = 4096;

async function setUp(image: Uint8Array, signedDigest?: string) {
  const { table, imageDigest } = new ChunkTableBuilder(CHUNK_BYTES).update(image).finish();
  const job = {
    seq: 7,
    targetSlot: 'b',
    repairs: 0,
    release: {
      name: 'fw',
      version: '2.0.0',
      securityVersion: 1,
      sizeBytes: image.length,
      chunkBytes: CHUNK_BYTES,
      digest: signedDigest ?? toHex(imageDigest),
      chunkTableDigest: toHex(sha256(table.bytes)),
    },
  } as unknown as Job;
  const store = new MemoryStateStore();
  await store.writeBytes(chunkTableBlob(job.seq), table.bytes);
  const slots = new MemorySlots();
  await slots.create('b', image.length);
  await slots.write('b', 0, image);
  const held = await HeldChunks.load({
    store,
    name: heldBlob(job.seq),
    count: table.count,
    clock: systemClock,
    flushEveryChunks: 1_000_000,
    flushIntervalMs: 1_000_000,
    syncData: async () => {},
  });
  for (let i = 0; i < table.count; i++) held.mark(i);
  await held.flush();
  held.dispose();
  const context = {
    job,
    store,
    slots,
    clock: systemClock,
    limits: withLimits(),
    logger: pino({ level: 'silent' }),
  } as unknown as DownloadContext;
  return { context, slots, store, count: table.count };
}

describe('verifyImage', () => {
  it('accepts an image whose bytes match the signed digest', async () => {
    const { context } = await setUp(randomBytes(10 * CHUNK_BYTES + 123));
    expect(await verifyImage(context)).toEqual({ event: 'image_verified' });
  });

  it('accepts an image read back in several pieces', async () => {
    const { context } = await setUp(randomBytes(1000 * CHUNK_BYTES + 7));
    expect(await verifyImage(context)).toEqual({ event: 'image_verified' });
  });

  it('with the read-back of the download, reads back only what it left, once', async () => {
    const image = randomBytes(200 * CHUNK_BYTES + 3);
    const { context, slots } = await setUp(image);
    let bytesRead = 0;
    const read = slots.read.bind(slots);
    slots.read = async (...args: Parameters<typeof read>) => {
      const piece = await read(...args);
      bytesRead += piece.length;
      return piece;
    };
    const readBack = new ReadBack({
      slots,
      slot: 'b',
      sizeBytes: image.length,
      pieceBytes: 65_536,
    });
    readBack.written(100 * CHUNK_BYTES);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(bytesRead).toBeGreaterThan(0);
    const outcome = await verifyImage({ ...context, readBack });
    expect(outcome).toEqual({ event: 'image_verified' });
    expect(bytesRead).toBe(image.length);
  });

  it('sends the download back for exactly the chunks found bad on disk', async () => {
    const { context, slots, store, count } = await setUp(randomBytes(300 * CHUNK_BYTES + 5));
    await slots.write('b', 3 * CHUNK_BYTES + 10, Uint8Array.of(0xff, 0x00));
    await slots.write('b', 299 * CHUNK_BYTES, new Uint8Array(CHUNK_BYTES));

    const outcome = await verifyImage(context);

    expect(outcome).toMatchObject({ event: 'repair', jobChanges: { repairs: 1 } });
    const bits = (await store.readBytes(heldBlob(7))) as Uint8Array;
    const missing = Array.from({ length: count }, (_, i) => i).filter(
      (i) => (bits[i >> 3]! & (1 << (i & 7))) === 0,
    );
    expect(missing).toEqual([3, 299]);
  });

  it('refuses an image whose chunks all match the table but not the signed digest', async () => {
    const { context } = await setUp(randomBytes(8 * CHUNK_BYTES), toHex(sha256(Uint8Array.of(1))));
    expect(await verifyImage(context)).toEqual({
      event: 'image_failed',
      code: 'FB_ERR_IMAGE_DIGEST',
    });
  });
});
