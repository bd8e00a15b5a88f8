import { randomBytes } from 'node:crypto';

import { decodeFetchResponse, encodeFetchResponse } from '@fetchback/shared';
import { describe, expect, it } from 'vitest';

import { chunkResponseHead } from '../../src/delivery/chunk-response.js';

describe('chunkResponseHead', () => {
  const obj = randomBytes(32);
  const rids = [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER];
  const lengths = [1, 23, 24, 255, 256, 65_535, 65_536, 1024 * 1024];

  it('with the data after it, is byte for byte encodeFetchResponse, for every head size', () => {
    for (const rid of rids) {
      for (const [i, length] of lengths.entries()) {
        const data = randomBytes(length);
        const idx = rids[i] ?? 0;
        const head = chunkResponseHead(rid, obj, idx, length);
        expect(
          Buffer.concat([head, data]).equals(encodeFetchResponse({ rid, obj, idx, data })),
        ).toBe(true);
      }
    }
  });

  it('announces exactly the chunk length, so head and data decode back', () => {
    const data = new Uint8Array(1000).fill(0xab);
    const resp = decodeFetchResponse(Buffer.concat([chunkResponseHead(7, obj, 3, 1000), data]));
    expect(resp).toMatchObject({ rid: 7, idx: 3 });
    expect(Buffer.from(resp.data ?? []).equals(data)).toBe(true);
  });
});
