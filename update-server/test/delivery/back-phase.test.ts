import {
  decodeAckResponse,
  encodeAckRequest,
  encodePresence,
  encodeStatus,
  fromHex,
} from '@fetchback/shared';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  type Harness,
  makeRelease,
  nextMessage,
  sleep,
  startHarness,
} from '../support/delivery-harness.js';

describe('back phase over the embedded broker', () => {
  let h: Harness;
  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  const device = async () => {
    const d = h.devices.add('dev-1');
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 4096, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await h.connect(d.id, d.secret);
    await client.subscribeAsync('fb/v1/d/dev-1/in/#', { qos: 1 });
    const { seq } = h.delivery.assignments.assign('dev-1', 'r1');
    return { client, seq, rel: fromHex(release.record.statementDigest) };
  };

  it('records an ACK_REQ sent three times once, and answers the retries identically with dup', async () => {
    const { client, seq, rel } = await device();
    const acks: unknown[] = [];
    h.events.on('device.ack', (e) => acks.push(e));
    const req = encodeAckRequest({ rid: 'a-1', seq, rel, step: 'downloaded', code: 'OK', at: 1 });

    const answers: Buffer[] = [];
    for (let i = 0; i < 3; i++) {
      const answer = nextMessage(client, 'fb/v1/d/dev-1/in/ack');
      await client.publishAsync('fb/v1/d/dev-1/out/ack', Buffer.from(req), { qos: 1 });
      answers.push(await answer);
    }

    expect(h.db.prepare('SELECT COUNT(*) AS n FROM acks').get()).toEqual({ n: 1 });
    expect(decodeAckResponse(answers[0]!)).toMatchObject({ rid: 'a-1', ok: true, code: 'OK' });
    expect(decodeAckResponse(answers[0]!).dup).toBeUndefined();
    expect(decodeAckResponse(answers[1]!)).toMatchObject({ ok: true, code: 'OK', dup: true });
    expect(answers[2]!.equals(answers[1]!)).toBe(true);
    expect(acks).toEqual([
      expect.objectContaining({ deviceId: 'dev-1', seq, step: 'downloaded', releaseId: 'r1' }),
    ]);
    expect(h.devices.touches.some((t) => t.fields.state === 'downloaded')).toBe(true);
  });

  it('answers an ACK for an assignment never issued with FB_ERR_ACK_UNKNOWN_ASSIGNMENT', async () => {
    const { client, seq, rel } = await device();
    for (const [s, r] of [
      [seq + 5, rel],
      [seq, new Uint8Array(32)],
    ] as const) {
      const answer = nextMessage(client, 'fb/v1/d/dev-1/in/ack');
      const req = encodeAckRequest({
        rid: `x-${s}-${r[0]}`,
        seq: s,
        rel: r,
        step: 'installed',
        code: 'OK',
        at: 1,
      });
      await client.publishAsync('fb/v1/d/dev-1/out/ack', Buffer.from(req), { qos: 1 });
      expect(decodeAckResponse(await answer)).toMatchObject({
        ok: false,
        code: 'FB_ERR_ACK_UNKNOWN_ASSIGNMENT',
      });
    }
    expect(h.db.prepare('SELECT COUNT(*) AS n FROM acks').get()).toEqual({ n: 0 });
    expect(await h.rejections('FB_ERR_ACK_UNKNOWN_ASSIGNMENT')).toBe(2);
  });

  it('appends status reports to the history once per request id and answers each', async () => {
    const { client } = await device();
    const statuses: unknown[] = [];
    h.events.on('device.status', (e) => statuses.push(e));
    for (const rid of ['s-1', 's-1', 's-2']) {
      const answer = nextMessage(client, 'fb/v1/d/dev-1/in/ack');
      const report = encodeStatus({ rid, state: 'downloading', at: 5, have: 1, total: 4 });
      await client.publishAsync('fb/v1/d/dev-1/out/status', Buffer.from(report), { qos: 1 });
      expect(decodeAckResponse(await answer)).toMatchObject({ rid, ok: true });
    }
    expect(h.delivery.back.statuses('dev-1').map((s) => s.requestId)).toEqual(['s-2', 's-1']);
    expect(statuses).toHaveLength(2);
  });

  it('tracks presence from the retained message and from the last will', async () => {
    const d = h.devices.add('dev-p');
    const presence: { online: boolean }[] = [];
    h.events.on('device.presence', (e) => presence.push(e));
    const client = await h.connect(d.id, d.secret, {
      will: {
        topic: 'fb/v1/d/dev-p/out/presence',
        payload: Buffer.from(encodePresence({ online: false, at: Date.now() })),
        qos: 1,
        retain: true,
      },
    });
    await client.publishAsync(
      'fb/v1/d/dev-p/out/presence',
      Buffer.from(encodePresence({ online: true, at: Date.now() + 1 })),
      { qos: 1, retain: true },
    );
    await sleep(100);
    expect(h.delivery.back.presence('dev-p')?.online).toBe(true);

    // A will that is older than the stored presence is stale: the device reconnected since.
    (client as unknown as { stream: { destroy(): void } }).stream.destroy();
    await sleep(200);
    expect(h.delivery.back.presence('dev-p')?.online).toBe(true);
    expect(presence.map((p) => p.online)).toEqual([true]);

    const c2 = await h.connect(d.id, d.secret, {
      will: {
        topic: 'fb/v1/d/dev-p/out/presence',
        payload: Buffer.from(encodePresence({ online: false, at: Date.now() + 10 })),
        qos: 1,
        retain: true,
      },
    });
    (c2 as unknown as { stream: { destroy(): void } }).stream.destroy();
    await sleep(200);
    expect(h.delivery.back.presence('dev-p')?.online).toBe(false);
    expect(presence.map((p) => p.online)).toEqual([true, false]);
  });
});
