import { randomBytes } from 'node:crypto';

import { decodeFetchResponse, encodeFetchResponse } from '@fetchback/shared';
import { describe, expect, it } from 'vitest';

import { chunkFrame } from '../../src/delivery/chunk-response.js';

describe('chunkFrame', () => {
  const obj = randomBytes(32);
  const rids = [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  const lengths = [1, 23, 24, 255, 256, 65_535, 65_536, 1024 * 1024];

  it('writes byte for byte what encodeFetchResponse writes, for every head size', () => {
    for (const rid of rids) {
      for (const [i, length] of lengths.entries()) {
        const data = randomBytes(length);
        const idx = rids[i] ?? 0;
        const frame = chunkFrame(rid, obj, idx, length);
        frame.data.set(data);
        expect(
          Buffer.from(frame.payload).equals(encodeFetchResponse({ rid, obj, idx, data })),
        ).toBe(true);
      }
    }
  });

  it('leaves exactly the chunk length for the data, which decodes back', () => {
    const frame = chunkFrame(7, obj, 3, 1000);
    expect(frame.data.length).toBe(1000);
    frame.data.fill(0xab);
    const resp = decodeFetchResponse(frame.payload);
    expect(resp).toMatchObject({ rid: 7, idx: 3 });
    expect(resp.data).toEqual(new Uint8Array(1000).fill(0xab));
  });
});
