import { ChunkTable, decodeFetchResponse, encodeFetchRequest, fromHex } from '@fetchback/shared';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';

import {
  type Harness,
  makeRelease,
  nextMessage,
  startHarness,
} from '../support/delivery-harness.js';

describe('MQTT over WebSocket', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
  });

  it('authenticates and delivers over ws:// with the same ACL as TCP', async () => {
    h = await startHarness({ bus: { wsPort: 0 } });
    const dev = h.devices.add('dev-ws');
    const url = `ws://127.0.0.1:${h.bus.wsPort}`;
    await expect(
      mqtt.connectAsync(url, {
        clientId: 'dev-ws',
        username: 'dev-ws',
        password: 'x',
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    const client = await mqtt.connectAsync(url, {
      clientId: 'dev-ws',
      username: 'dev-ws',
      password: dev.secret,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync('fb/v1/d/dev-ws/in/#', { qos: 1 });
    const got = nextMessage(client, 'fb/v1/d/dev-ws/in/ack');
    await h.bus.publish('fb/v1/d/dev-ws/in/ack', Buffer.from('over ws'), { qos: 1 });
    expect((await got).toString()).toBe('over ws');
    await client.endAsync();
  });

  it('serves chunks over ws://, written straight to the device connection', async () => {
    h = await startHarness({ bus: { wsPort: 0 } });
    const release = makeRelease(h.keys, {
      id: 'r1',
      sizeBytes: 20 * 65_536 + 9,
      chunkBytes: 65_536,
    });
    h.releases.add(release);
    const dev = h.devices.add('dev-ws');
    const client = await mqtt.connectAsync(`ws://127.0.0.1:${h.bus.wsPort}`, {
      clientId: 'dev-ws',
      username: 'dev-ws',
      password: dev.secret,
      reconnectPeriod: 0,
    });
    await client.subscribeAsync('fb/v1/d/dev-ws/in/#', { qos: 1 });
    h.delivery.assignments.assign('dev-ws', release.record.id);
    const table = new ChunkTable(release.table);
    const verified = new Set<number>();
    const all = new Promise<void>((resolve) => {
      client.on('message', (topic, payload) => {
        if (!topic.endsWith('/in/chunk')) return;
        const resp = decodeFetchResponse(payload);
        if (resp.idx !== undefined && table.verifyChunk(resp.idx, resp.data ?? new Uint8Array())) {
          verified.add(resp.idx);
        }
        if (verified.size === table.count) resolve();
      });
    });
    const idx = Array.from({ length: table.count }, (_, i) => i);
    const request = encodeFetchRequest({ rid: 1, obj: fromHex(release.record.imageDigest), idx });
    await client.publishAsync('fb/v1/d/dev-ws/out/fetch', Buffer.from(request));
    await all;
    expect(verified.size).toBe(21);
    await client.endAsync();
  });
});
