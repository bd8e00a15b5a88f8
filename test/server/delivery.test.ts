import { bytesEqual, encodeStatus } from '@fetchback/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FakeDevice } from './support/fake-device.js';
import { type TestServer, startTestServer } from './support/server-harness.js';

describe('end-to-end delivery on a real socket', () => {
  let t: TestServer;
  const devices: FakeDevice[] = [];
  beforeAll(async () => {
    t = await startTestServer();
  });
  afterAll(async () => {
    await Promise.all(devices.map((d) => d.close()));
    await t?.close();
  });

  it('delivers a 5 MiB release chunk by chunk and records an ACK sent three times once', async () => {
    const creds = await t.device('pi-0001');
    const { id: releaseId, image } = await t.release(5 * 1024 * 1024);
    const assigned = await t.api.assign(releaseId, ['pi-0001']);
    expect(assigned.assignments).toEqual([{ deviceId: 'pi-0001', seq: 1 }]);

    const device = await FakeDevice.connect(creds);
    devices.push(device);
    const manifest = await device.manifest();
    expect(manifest.assignment.seq).toBe(1);
    const downloaded = await device.download(manifest, 16);
    expect(bytesEqual(downloaded, image)).toBe(true);

    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await device.ack(manifest, 'downloaded', 'ack-dl-1'));
    expect(answers.map((a) => a.resp.ok)).toEqual([true, true, true]);
    expect(answers.map((a) => a.resp.dup ?? false)).toEqual([false, true, true]);
    expect(answers[2]!.raw.equals(answers[1]!.raw)).toBe(true);

    const status = device.next('ack');
    await device.publish(
      'status',
      encodeStatus({ rid: 'st-1', state: 'downloaded', at: Date.now() }),
    );
    expect((await status).length).toBeGreaterThan(0);

    const detail = await t.api.getDevice('pi-0001');
    expect(detail.history.acks).toHaveLength(1);
    expect(detail.history.acks[0]).toMatchObject({
      requestId: 'ack-dl-1',
      seq: 1,
      step: 'downloaded',
    });
    expect(detail.device.state).toBe('downloaded');
  });
});
