import { randomBytes } from 'node:crypto';

import {
  ChunkTable,
  type FetchResponse,
  chunkBitmap,
  decodeFetchResponse,
  encodeFetchRequest,
  fromHex,
} from '@fetchback/shared';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';

import {
  type Harness,
  type TestRelease,
  makeRelease,
  sleep,
  startHarness,
} from '../support/delivery-harness.js';

/** Sends one FETCH_REQ and gathers `expected` FETCH_RESPs (or what came within `ms`). */
async function fetchOnce(
  client: MqttClient,
  deviceId: string,
  request: Parameters<typeof encodeFetchRequest>[0],
  expected: number,
  ms = 2000,
): Promise<FetchResponse[]> {
  const got: FetchResponse[] = [];
  const topic = `fb/v1/d/${deviceId}/in/chunk`;
  const done = new Promise<void>((resolve) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      client.off('message', onMessage);
      resolve();
    }
    function onMessage(t: string, payload: Buffer) {
      if (t !== topic) return;
      const resp = decodeFetchResponse(payload);
      if (resp.rid !== request.rid) return;
      got.push(resp);
      if (got.length >= expected) finish();
    }
    client.on('message', onMessage);
  });
  await client.publishAsync(
    `fb/v1/d/${deviceId}/out/fetch`,
    Buffer.from(encodeFetchRequest(request)),
  );
  await done;
  return got;
}

describe('fetch service over the embedded broker', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  async function assigned(id: string, release: TestRelease, assign = true) {
    const d = h.devices.add(id);
    const client = await h.connect(d.id, d.secret);
    await client.subscribeAsync(`fb/v1/d/${id}/in/#`, { qos: 1 });
    if (assign) h.delivery.assignments.assign(id, release.record.id);
    return client;
  }

  it('serves every requested chunk of the assigned image, each matching the table', async () => {
    h = await startHarness();
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 10_000, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    const obj = fromHex(release.record.imageDigest);
    const table = new ChunkTable(release.table);

    const got = await fetchOnce(
      client,
      'dev-1',
      { rid: 1, obj, bm: chunkBitmap([...Array(10).keys()]) },
      10,
    );
    expect(got.map((r) => r.idx).sort((a, b) => a! - b!)).toEqual([...Array(10).keys()]);
    for (const r of got) expect(table.verifyChunk(r.idx!, r.data!)).toBe(true);

    const tableChunks = await fetchOnce(
      client,
      'dev-1',
      { rid: 2, obj: fromHex(release.record.tableDigest), idx: [0] },
      1,
    );
    expect(Buffer.from(tableChunks[0]!.data!).equals(Buffer.from(release.table))).toBe(true);
  });

  it('refuses an image the device is not assigned with FB_ERR_NOT_ASSIGNED', async () => {
    h = await startHarness();
    const mine = makeRelease(h.keys, { id: 'mine', sizeBytes: 2048, chunkBytes: 1024 });
    const theirs = makeRelease(h.keys, { id: 'theirs', sizeBytes: 2048, chunkBytes: 1024 });
    h.releases.add(mine);
    h.releases.add(theirs);
    const client = await assigned('dev-1', mine);
    const unassigned = await assigned('dev-2', mine, false);

    const [refusal] = await fetchOnce(
      client,
      'dev-1',
      { rid: 7, obj: fromHex(theirs.record.imageDigest), idx: [0] },
      1,
    );
    expect(refusal).toMatchObject({ rid: 7, err: 'FB_ERR_NOT_ASSIGNED' });
    expect(refusal?.data).toBeUndefined();
    const [none] = await fetchOnce(
      unassigned,
      'dev-2',
      { rid: 8, obj: fromHex(mine.record.imageDigest), idx: [0] },
      1,
    );
    expect(none).toMatchObject({ err: 'FB_ERR_NOT_ASSIGNED' });
    expect(await h.rejections('FB_ERR_NOT_ASSIGNED')).toBe(2);
  });

  it('refuses an unknown object and chunk indices beyond the object', async () => {
    h = await startHarness();
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 3000, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);

    const [unknown] = await fetchOnce(
      client,
      'dev-1',
      { rid: 1, obj: randomBytes(32), idx: [0] },
      1,
    );
    expect(unknown?.err).toBe('FB_ERR_OBJECT_UNKNOWN');
    const got = await fetchOnce(
      client,
      'dev-1',
      { rid: 2, obj: fromHex(release.record.imageDigest), idx: [2, 3, 99] },
      3,
    );
    expect(got.filter((r) => r.data).map((r) => r.idx)).toEqual([2]);
    expect(
      got
        .filter((r) => r.err === 'FB_ERR_CHUNK_RANGE')
        .map((r) => r.idx)
        .sort(),
    ).toEqual([3, 99]);
  });

  it('answers FB_ERR_BUSY beyond the per-device in-flight cap', async () => {
    h = await startHarness({ delivery: { maxInFlightPerDevice: 2 } });
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 8 * 1024, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    const got = await fetchOnce(
      client,
      'dev-1',
      { rid: 3, obj: fromHex(release.record.imageDigest), idx: [0, 1, 2, 3, 4, 5] },
      6,
    );
    expect(got.filter((r) => r.data)).toHaveLength(2);
    expect(got.filter((r) => r.err === 'FB_ERR_BUSY')).toHaveLength(4);
  });

  it('queues chunks over the global byte budget and serves them all in turn', async () => {
    h = await startHarness({ delivery: { globalBudgetBytes: 3 * 1024 } });
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 8 * 1024, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    let mostReserved = 0;
    const sampler = setInterval(() => {
      mostReserved = Math.max(mostReserved, h.delivery.fetch.budgetUsedBytes);
    }, 0);
    const got = await fetchOnce(
      client,
      'dev-1',
      { rid: 4, obj: fromHex(release.record.imageDigest), idx: [0, 1, 2, 3, 4, 5, 6, 7] },
      8,
    );
    clearInterval(sampler);
    expect(got.filter((r) => r.err)).toEqual([]);
    expect(got.map((r) => r.idx).sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(mostReserved).toBeLessThanOrEqual(3 * 1024);
    // The last publish completes on the server just after the device has its bytes.
    for (let i = 0; i < 100 && h.delivery.fetch.budgetUsedBytes > 0; i++) await sleep(10);
    expect(h.delivery.fetch.budgetUsedBytes).toBe(0);
    expect(h.delivery.fetch.waitingChunks).toBe(0);
    const scraped = await h.registry.metrics();
    expect(scraped).toMatch(/^fetchback_fetch_waiting_chunks 0$/m);
    expect(scraped).toMatch(/^fetchback_fetch_budget_used_bytes 0$/m);
  });

  it('answers FB_ERR_BUSY over the global byte budget once the waiting queue is full', async () => {
    h = await startHarness({ delivery: { globalBudgetBytes: 3 * 1024, maxWaitingChunks: 2 } });
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 8 * 1024, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    const got = await fetchOnce(
      client,
      'dev-1',
      { rid: 4, obj: fromHex(release.record.imageDigest), idx: [0, 1, 2, 3, 4, 5, 6, 7] },
      8,
    );
    expect(got.filter((r) => r.data)).toHaveLength(5);
    expect(got.filter((r) => r.err === 'FB_ERR_BUSY').map((r) => r.idx)).toEqual([5, 6, 7]);
  });

  it('serves a chunk asked by many devices from one read of the image store', async () => {
    h = await startHarness();
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 4096, chunkBytes: 1024 });
    h.releases.add(release);
    const clients = await Promise.all(['d1', 'd2', 'd3'].map((id) => assigned(id, release)));
    for (const [i, c] of clients.entries()) {
      const got = await fetchOnce(
        c,
        ['d1', 'd2', 'd3'][i]!,
        { rid: 1, obj: fromHex(release.record.imageDigest), idx: [0, 1] },
        2,
      );
      expect(got.every((r) => r.data)).toBe(true);
    }
    // Chunks 0 and 1 asked for, 2 and 3 read ahead: each of the four read once for all.
    expect(h.releases.reads).toBe(4);
    const scraped = await h.registry.metrics();
    expect(scraped).toMatch(/^fetchback_chunk_store_reads_total 4$/m);
    expect(scraped).toMatch(/^fetchback_chunks_served_total 6$/m);
  });

  it('reads the chunks after a served one ahead, so the next request costs no read', async () => {
    h = await startHarness();
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 8 * 1024, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    const obj = fromHex(release.record.imageDigest);
    const first = await fetchOnce(client, 'dev-1', { rid: 1, obj, idx: [0] }, 1);
    expect(first[0]?.data).toBeDefined();
    for (let i = 0; i < 100 && h.releases.reads < 5; i++) await sleep(5);
    expect(h.releases.reads).toBe(5);

    const next = await fetchOnce(client, 'dev-1', { rid: 2, obj, idx: [1, 2, 3, 4] }, 4);
    const table = new ChunkTable(release.table);
    expect(next.map((r) => table.verifyChunk(r.idx ?? -1, r.data ?? new Uint8Array()))).toEqual([
      true,
      true,
      true,
      true,
    ]);
    // Serving 1 to 4 read 5 to 7 ahead, the rest of the image, and nothing twice.
    for (let i = 0; i < 100 && h.releases.reads < 8; i++) await sleep(5);
    expect(h.releases.reads).toBe(8);
  });

  it('serves a device that keeps 48 chunks requested with no FB_ERR_BUSY', async () => {
    // The per-device cap is 64 chunks: a chunk counts until its bytes are written to the
    // socket, not until the stream is next empty, which a deep window keeps from happening.
    h = await startHarness();
    const chunkBytes = 256 * 1024;
    const count = 96;
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: count * chunkBytes, chunkBytes });
    h.releases.add(release);
    const client = await assigned('dev-1', release);
    const obj = fromHex(release.record.imageDigest);
    const table = new ChunkTable(release.table);
    const good = new Set<number>();
    const refusals: string[] = [];
    let next = 0;
    let rid = 1;
    const ask = (n: number) => {
      const idx = Array.from({ length: Math.min(n, count - next) }, () => next++);
      if (idx.length === 0) return;
      const payload = Buffer.from(encodeFetchRequest({ rid: rid++, obj, idx }));
      client.publish('fb/v1/d/dev-1/out/fetch', payload);
    };
    const done = new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        if (!topic.endsWith('/in/chunk')) return;
        const resp = decodeFetchResponse(payload);
        if (resp.err) refusals.push(resp.err);
        else if (table.verifyChunk(resp.idx ?? -1, resp.data ?? new Uint8Array())) {
          good.add(resp.idx ?? -1);
        }
        if (good.size + refusals.length >= count) resolve();
        else ask(1);
      });
    });
    ask(48);
    await done;
    expect(refusals).toEqual([]);
    expect(good.size).toBe(count);
  });

  it('publishes chunk parts to a device only once it is connected and subscribed', async () => {
    h = await startHarness();
    const topic = 'fb/v1/d/dev-1/in/chunk';
    const parts = [Buffer.from('head'), Buffer.alloc(1000, 3)];
    // Not connected: dropped, as QoS 0 is.
    await h.bus.publishParts(topic, parts);
    const d = h.devices.add('dev-1');
    const client = await h.connect(d.id, d.secret);
    const got: Buffer[] = [];
    client.on('message', (_t, payload) => got.push(payload));
    // Connected but not subscribed: aedes' path, which has no subscriber to deliver to.
    await h.bus.publishParts(topic, parts);
    await sleep(100);
    expect(got).toEqual([]);
    await client.subscribeAsync('fb/v1/d/dev-1/in/#', { qos: 1 });
    await h.bus.publishParts(topic, parts);
    for (let i = 0; i < 100 && got.length === 0; i++) await sleep(5);
    expect(got).toEqual([Buffer.concat(parts)]);
  });

  it('drops undecodable FETCH_REQs with a logged, counted code and keeps serving', async () => {
    h = await startHarness();
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 2048, chunkBytes: 1024 });
    h.releases.add(release);
    const bad = await assigned('dev-bad', release);
    const good = await assigned('dev-good', release);

    await bad.publishAsync('fb/v1/d/dev-bad/out/fetch', randomBytes(300));
    await bad.publishAsync(
      'fb/v1/d/dev-bad/out/fetch',
      Buffer.from(encodeFetchRequest({ rid: 1, obj: new Uint8Array(5), idx: [0] })),
    );
    const huge = new Uint8Array(9000).fill(0xff);
    await bad.publishAsync(
      'fb/v1/d/dev-bad/out/fetch',
      Buffer.from(
        encodeFetchRequest({
          rid: 2,
          obj: new Uint8Array(32),
          bm: { base: 0, bits: huge },
        } as never),
      ),
    );
    await sleep(200);

    const got = await fetchOnce(
      good,
      'dev-good',
      { rid: 9, obj: fromHex(release.record.imageDigest), idx: [0, 1] },
      2,
    );
    expect(got.every((r) => r.data)).toBe(true);
    const codes = h.lines.filter((l) => l.msg === 'device message refused').map((l) => l.code);
    expect(codes).toHaveLength(3);
    expect(codes).toContain('FB_ERR_MSG_FIELD_LENGTH');
    expect(await h.rejections(codes[0] as string)).toBeGreaterThan(0);
  });
});
