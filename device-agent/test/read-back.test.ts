/**
 * The read-back that a download starts and the verifying step finishes, on DirSlots over a real
 * file system: it hashes the slot's bytes as written, in order, and only what is written.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { sha256 } from '@fetchback/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { ReadBack } from '../src/download/read-back.js';
import { DirSlots } from '../src/storage/dir-slots.js';
import type { SlotStorage } from '../src/storage/slot-storage.js';

let dir: string;
let slots: DirSlots;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-readback-'));
  slots = new DirSlots(dir);
});

afterEach(async () => {
  await slots.close();
  await rm(dir, { recursive: true, force: true });
});

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('ReadBack', () => {
  it('reads back whole pieces as the bytes before them are written, then the rest', async () => {
    const image = randomBytes(10 * 1000 + 17);
    await slots.create('b', image.length);
    const readBack = new ReadBack({ slots, slot: 'b', sizeBytes: image.length, pieceBytes: 1000 });
    for (let offset = 0; offset < 6500; offset += 500) {
      await slots.write('b', offset, image.subarray(offset, offset + 500));
      readBack.written(offset + 500);
    }
    await settle();
    // 6,500 bytes written: six whole pieces read back, the half piece not yet.
    expect(readBack.hashed).toBe(6000);
    await slots.write('b', 6500, image.subarray(6500));
    expect(Buffer.from((await readBack.digest()) ?? [])).toEqual(Buffer.from(sha256(image)));
    expect(readBack.hashed).toBe(image.length);
  });

  it('hashes what the slot holds, not what was meant to be written', async () => {
    const image = randomBytes(4000);
    await slots.create('a', image.length);
    await slots.write('a', 0, image);
    await slots.write('a', 1234, Uint8Array.of(0xff ^ (image[1234] as number)));
    const readBack = new ReadBack({ slots, slot: 'a', sizeBytes: image.length, pieceBytes: 1024 });
    readBack.written(image.length);
    const digest = await readBack.digest();
    expect(Buffer.from(digest ?? [])).not.toEqual(Buffer.from(sha256(image)));
  });

  it('gives up when a read fails, so that the verifying step reads everything again', async () => {
    const failing: SlotStorage = {
      ...slots,
      read: () => Promise.reject(new Error('EIO')),
    } as unknown as SlotStorage;
    const readBack = new ReadBack({ slots: failing, slot: 'a', sizeBytes: 4096, pieceBytes: 1024 });
    readBack.written(4096);
    expect(await readBack.digest()).toBeUndefined();
  });
});
