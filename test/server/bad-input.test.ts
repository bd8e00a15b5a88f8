import { randomBytes } from 'node:crypto';

import {
  type CborValue,
  encodeDeterministic,
  encodeFetchRequest,
  encodePresence,
  fromHex,
} from '@fetchback/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DeviceCredentials, FakeDevice } from './support/fake-device.js';
import { type TestServer, sleep, startTestServer } from './support/server-harness.js';

const OUT_LEAVES = ['fetch', 'ack', 'status', 'presence'] as const;

describe('bad input on every out/ topic', () => {
  let t: TestServer;
  let bad: DeviceCredentials;
  let good: DeviceCredentials;
  let release: { id: string; image: Buffer };
  const open: FakeDevice[] = [];
  beforeAll(async () => {
    t = await startTestServer();
    bad = await t.device('dev-bad');
    good = await t.device('dev-good');
    release = await t.release(256 * 1024);
    await t.api.assign(release.id, ['dev-bad', 'dev-good']);
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await t?.close();
  });
  const connect = async (creds: DeviceCredentials) => {
    const d = await FakeDevice.connect(creds);
    open.push(d);
    return d;
  };

  it('survives random bytes, wrong types and malformed fields, logging and counting a code', async () => {
    const device = await connect(bad);
    const wrongType = encodePresence({ online: true, at: 1 });
    const wrongField = encodeDeterministic({ v: 1, t: 'ack_req', rid: 5, seq: 'one' } as CborValue);
    const futureVersion = encodeDeterministic({
      v: 9,
      t: 'status',
      rid: 'x',
      state: 'idle',
      at: 1,
    });
    for (const leaf of OUT_LEAVES) {
      await device.publish(leaf, randomBytes(512));
      await device.publish(leaf, leaf === 'presence' ? wrongField : wrongType);
      await device.publish(leaf, futureVersion);
      await device.publish(leaf, new Uint8Array(0));
    }
    await sleep(300);
    const refused = t.logs.filter((l) => l.msg === 'device message refused');
    expect(refused.length).toBe(OUT_LEAVES.length * 4);
    expect(
      refused.every((l) => typeof l.code === 'string' && String(l.code).startsWith('FB_ERR_')),
    ).toBe(true);
    expect(await t.rejections('FB_ERR_MSG_TYPE')).toBeGreaterThanOrEqual(3);
    expect(await t.rejections('FB_ERR_MSG_VERSION')).toBe(4);
  });

  it('answers a huge window with at most one protocol window of responses', async () => {
    const device = await connect(bad);
    const obj = fromHex((await t.api.getRelease(release.id)).imageDigest);
    const tooMany = encodeFetchRequest({ rid: 1, obj, idx: [...Array(300).keys()] });
    await device.publish('fetch', tooMany);
    const responses: unknown[] = [];
    device.client.on('message', (topic) => topic.endsWith('/in/chunk') && responses.push(topic));
    await device.publish(
      'fetch',
      encodeFetchRequest({ rid: 2, obj, bm: { base: 0, bits: new Uint8Array(8192).fill(0xff) } }),
    );
    await sleep(500);
    expect(responses.length).toBeLessThanOrEqual(256);
    expect(await t.rejections('FB_ERR_MSG_FIELD_LENGTH')).toBeGreaterThanOrEqual(1);
    expect(await t.rejections('FB_ERR_CHUNK_RANGE')).toBeGreaterThanOrEqual(1);
  });

  it('drops a connection that sends an oversized packet on any out/ topic', async () => {
    for (const leaf of OUT_LEAVES) {
      const device = await connect(bad);
      const closed = new Promise<void>((resolve) => device.client.once('close', () => resolve()));
      device.client.publish(device.topic('out', leaf), randomBytes(200 * 1024));
      await closed;
    }
    expect(await t.rejections('FB_ERR_PACKET_TOO_LARGE')).toBe(OUT_LEAVES.length);
  });

  it('still answers the next good request from another device', async () => {
    const device = await connect(good);
    const manifest = await device.manifest();
    const image = await device.download(manifest, 4);
    expect(Buffer.from(image).equals(release.image)).toBe(true);
    const { resp } = await device.ack(manifest, 'downloaded', 'good-1');
    expect(resp).toMatchObject({ ok: true, code: 'OK' });
    expect((await t.api.health()).status).toBeDefined();
  });
});
