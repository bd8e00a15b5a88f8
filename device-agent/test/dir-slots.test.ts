/**
 * DirSlots on a real file system: the `current` pointer, and chunk writes that arrive out of
 * order and concurrently (the download window), each landing at its own offset.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { isFetchbackError } from '@fetchback/shared';

import { DirSlots } from '../src/storage/dir-slots.js';

let dir: string;
let slots: DirSlots;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fb-slots-'));
  slots = new DirSlots(dir);
});

afterEach(async () => {
  await slots.close();
  await rm(dir, { recursive: true, force: true });
});

describe('DirSlots', () => {
  it('names slot a active until the pointer is moved, then the slot it was moved to', async () => {
    expect(await slots.active()).toBe('a');
    await slots.setActive('b');
    expect(await slots.active()).toBe('b');
    expect(await readlink(join(dir, 'current'))).toBe('b.img');
    await slots.setActive('a');
    expect(await slots.active()).toBe('a');
  });

  it('creates a slot of the declared length filled with zeros', async () => {
    await slots.create('b', 10_000);
    expect(await slots.size('b')).toBe(10_000);
    expect(await slots.size('a')).toBeUndefined();
    expect(Buffer.from(await slots.read('b', 0, 10_000)).every((byte) => byte === 0)).toBe(true);
  });

  it('lands concurrent out-of-order chunk writes each at its own offset', async () => {
    const chunkBytes = 4096;
    const chunks = 200;
    const image = randomBytes(chunkBytes * chunks - 123);
    await slots.create('b', image.length);

    const order = [...Array(chunks).keys()].sort(() => Math.random() - 0.5);
    await Promise.all(
      order.map((index) =>
        slots.write(
          'b',
          index * chunkBytes,
          image.subarray(index * chunkBytes, (index + 1) * chunkBytes),
        ),
      ),
    );
    await slots.sync('b');

    expect(Buffer.compare(await readFile(slots.pathOf('b')), image)).toBe(0);
  });

  it('writes queued runs with gaps between them without filling the gaps', async () => {
    await slots.create('a', 16);
    const writes = [
      slots.write('a', 0, Buffer.from('aaaa')),
      slots.write('a', 12, Buffer.from('cccc')),
      slots.write('a', 4, Buffer.from('bbbb')),
    ];
    await Promise.all(writes);
    expect((await readFile(slots.pathOf('a'))).toString('latin1')).toBe('aaaabbbb\0\0\0\0cccc');
  });

  it('rejects a write to a slot that was never created with FB_ERR_STORAGE', async () => {
    const failure = await slots.write('b', 0, Uint8Array.of(1)).catch((err: unknown) => err);
    expect(isFetchbackError(failure) && failure.code).toBe('FB_ERR_STORAGE');
    // The queue is free again: the next write to a created slot goes through.
    await slots.create('b', 1);
    await slots.write('b', 0, Uint8Array.of(7));
    expect(await slots.read('b', 0, 1)).toEqual(Uint8Array.of(7));
  });
});
