/**
 * The chunk cache: shared reads, least-recently-used eviction in bytes, and buffer reuse that
 * never hands out a buffer someone still holds.
 */
import { describe, expect, it } from 'vitest';

import { ChunkCache, type ChunkReader } from '../src/delivery/chunk-cache.js';

const CHUNK = 1024;
const DIGEST = 'ab'.repeat(32);

/** A store whose chunk `i` is every byte `i + 1`; counts reads, can fail or hold them. */
function store() {
  const reads: number[] = [];
  const failing = new Set<number>();
  const reader: ChunkReader = async (_digest, index, _chunkBytes, into) => {
    reads.push(index);
    await new Promise((resolve) => setImmediate(resolve));
    if (failing.has(index)) throw new Error(`chunk ${index} unreadable`);
    into.fill((index + 1) & 0xff);
  };
  return { reads, failing, reader };
}

const get = (cache: ChunkCache, index: number, length = CHUNK) =>
  cache.get(DIGEST, index, CHUNK, length);

const filledWith = (data: Uint8Array, byte: number) => data.every((b) => b === byte);

describe('ChunkCache', () => {
  it('reads a chunk once for concurrent and later requests', async () => {
    const s = store();
    const cache = new ChunkCache(8 * CHUNK, s.reader);
    const [a, b] = await Promise.all([get(cache, 3), get(cache, 3)]);
    const c = await get(cache, 3);
    expect(s.reads).toEqual([3]);
    expect(a).toBe(b);
    expect(c).toBe(a);
    expect(filledWith(a, 4)).toBe(true);
  });

  it('evicts the least recently used chunk past its bound in bytes', async () => {
    const s = store();
    const cache = new ChunkCache(2 * CHUNK, s.reader);
    await get(cache, 0);
    await get(cache, 1);
    await get(cache, 0); // 0 is now the most recent
    await get(cache, 2); // evicts 1
    expect(cache.sizeBytes).toBe(2 * CHUNK);
    await get(cache, 0);
    await get(cache, 1);
    expect(s.reads).toEqual([0, 1, 2, 1]);
  });

  it('reads the next chunk into the buffer of one evicted and released', async () => {
    const s = store();
    const cache = new ChunkCache(CHUNK, s.reader);
    const first = await get(cache, 0);
    cache.release(first);
    const second = await get(cache, 1); // evicts 0, whose buffer no one holds
    expect(cache.spareBuffers).toBe(1);
    const third = await get(cache, 2); // evicts 1 (still held), reads into 0's buffer
    expect(third).toBe(first);
    expect(filledWith(third, 3)).toBe(true);
    expect(second).not.toBe(first);
    expect(filledWith(second, 2)).toBe(true);
  });

  it('never reuses a buffer that is still held, evicted or not', async () => {
    const s = store();
    const cache = new ChunkCache(CHUNK, s.reader);
    const held = await get(cache, 0); // never released
    const seen = new Set<Uint8Array>();
    for (let i = 1; i <= 20; i++) {
      const data = await get(cache, i);
      seen.add(data);
      cache.release(data);
    }
    expect(seen.has(held)).toBe(false);
    expect(filledWith(held, 1)).toBe(true);
    // Released late, after its eviction: it becomes a spare and is reused.
    cache.release(held);
    let reused = false;
    for (let i = 21; i <= 40 && !reused; i++) {
      const data = await get(cache, i);
      reused = data === held;
      cache.release(data);
    }
    expect(reused).toBe(true);
  });

  it('counts a user from the request, not from the end of the read', async () => {
    const s = store();
    const cache = new ChunkCache(CHUNK, s.reader);
    // Two requests for chunk 0 while it is read, then chunk 1 evicts it.
    const [a, b] = await Promise.all([get(cache, 0), get(cache, 0)]);
    await get(cache, 1);
    cache.release(a);
    for (let i = 2; i <= 10; i++) {
      const data = await get(cache, i);
      expect(data).not.toBe(b); // b's request still holds it
      cache.release(data);
    }
    expect(filledWith(b, 1)).toBe(true);
  });

  it('reuses buffers only for chunks of the same length', async () => {
    const s = store();
    const cache = new ChunkCache(CHUNK, s.reader);
    const full = await get(cache, 0);
    cache.release(full);
    await get(cache, 1); // evicts 0: a spare of CHUNK bytes
    const short = await get(cache, 2, 100);
    expect(short.length).toBe(100);
    expect(short).not.toBe(full);
  });

  it('with a bound of 0 keeps nothing, reads each time, and reuses released buffers', async () => {
    const s = store();
    const cache = new ChunkCache(0, s.reader);
    const a = await get(cache, 5);
    cache.release(a);
    const b = await get(cache, 5);
    expect(s.reads).toEqual([5, 5]);
    expect(cache.sizeBytes).toBe(0);
    expect(b).toBe(a);
    expect(filledWith(b, 6)).toBe(true);
  });

  it('gives every waiter the read error, keeps nothing, and reads again next time', async () => {
    const s = store();
    const cache = new ChunkCache(4 * CHUNK, s.reader);
    s.failing.add(7);
    const results = await Promise.allSettled([get(cache, 7), get(cache, 7)]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    expect(cache.sizeBytes).toBe(0);
    expect(cache.spareBuffers).toBe(0);
    s.failing.delete(7);
    expect(filledWith(await get(cache, 7), 8)).toBe(true);
    expect(s.reads).toEqual([7, 7]);
  });

  it('reads ahead only what is neither held nor being read, and forgets failures', async () => {
    const s = store();
    const cache = new ChunkCache(8 * CHUNK, s.reader);
    await get(cache, 1);
    s.failing.add(3);
    const chunks = [1, 2, 3].map((index) => ({ index, length: CHUNK }));
    cache.readAhead(DIGEST, CHUNK, chunks);
    cache.readAhead(DIGEST, CHUNK, chunks);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(s.reads).toEqual([1, 2, 3]);
    expect(cache.sizeBytes).toBe(2 * CHUNK);
    s.failing.delete(3);
    await get(cache, 2);
    expect(filledWith(await get(cache, 3), 4)).toBe(true);
    expect(s.reads).toEqual([1, 2, 3, 3]);
  });

  it('reads ahead at most half the cache of chunks not asked for yet', async () => {
    const s = store();
    const cache = new ChunkCache(8 * CHUNK, s.reader);
    // Five devices spread over an image, each wanting the 4 chunks after its own.
    for (const start of [0, 10, 20, 30, 40]) {
      const ahead = [1, 2, 3, 4].map((d) => ({ index: start + d, length: CHUNK }));
      cache.readAhead(DIGEST, CHUNK, ahead);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(s.reads).toEqual([1, 2, 3, 4]);
    expect(cache.readAheadBytes).toBe(4 * CHUNK);
    // Asking for one makes room for one more.
    await get(cache, 1);
    expect(cache.readAheadBytes).toBe(3 * CHUNK);
    cache.readAhead(
      DIGEST,
      CHUNK,
      [11, 12].map((index) => ({ index, length: CHUNK })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(s.reads).toEqual([1, 2, 3, 4, 11]); // 1 was a hit; 12 waits for room
    expect(cache.readAheadBytes).toBe(4 * CHUNK);
  });

  it('no longer counts a chunk read ahead once it leaves the cache unasked', async () => {
    const s = store();
    const cache = new ChunkCache(4 * CHUNK, s.reader);
    cache.readAhead(
      DIGEST,
      CHUNK,
      [1, 2].map((index) => ({ index, length: CHUNK })),
    );
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cache.readAheadBytes).toBe(2 * CHUNK);
    for (let i = 10; i < 14; i++) cache.release(await get(cache, i)); // evicts 1 and 2
    expect(cache.readAheadBytes).toBe(0);
    s.failing.add(20);
    cache.readAhead(DIGEST, CHUNK, [{ index: 20, length: CHUNK }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(cache.readAheadBytes).toBe(0); // a failed read ahead holds no room either
  });

  it('ignores a release of a buffer it did not hand out', () => {
    const cache = new ChunkCache(CHUNK, store().reader);
    cache.release(new Uint8Array(CHUNK));
    expect(cache.spareBuffers).toBe(0);
  });
});
