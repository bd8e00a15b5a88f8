import { encodeFetchRequest, fromHex } from '@fetchback/shared';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type DeviceCredentials, FakeDevice } from './support/fake-device.js';
import { type TestServer, sleep, startTestServer } from './support/server-harness.js';

/** The SUBACK return codes of one SUBSCRIBE (mqtt.js rejects when any is a failure). */
async function subackCodes(client: mqtt.MqttClient, filters: mqtt.ISubscriptionMap) {
  try {
    return (await client.subscribeAsync(filters)).map((g) => g.qos);
  } catch (err) {
    const packet = (err as { packet?: { granted: (number | { qos: number })[] } }).packet;
    if (!packet) throw err;
    return packet.granted.map((g) => (typeof g === 'number' ? g : g.qos));
  }
}

describe('broker access control against the real server', () => {
  let t: TestServer;
  let a: DeviceCredentials;
  let b: DeviceCredentials;
  const open: FakeDevice[] = [];
  beforeAll(async () => {
    t = await startTestServer();
    a = await t.device('dev-a');
    b = await t.device('dev-b');
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await t?.close();
  });
  const connect = async (creds: DeviceCredentials, extra: mqtt.IClientOptions = {}) => {
    const d = await FakeDevice.connect(creds, extra);
    open.push(d);
    return d;
  };

  it('refuses an unauthenticated client and a wrong secret', async () => {
    const url = a.brokerUrl;
    await expect(
      mqtt.connectAsync(url, { clientId: 'dev-a', reconnectPeriod: 0 }),
    ).rejects.toThrow();
    await expect(
      mqtt.connectAsync(url, {
        clientId: 'dev-a',
        username: 'dev-a',
        password: 'not-it',
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    await expect(
      mqtt.connectAsync(url, {
        clientId: 'dev-b',
        username: 'dev-a',
        password: a.password,
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
    expect(await t.rejections('FB_ERR_BROKER_AUTH')).toBeGreaterThanOrEqual(2);
  });

  it("does not let device A subscribe to device B's topics", async () => {
    const devA = await connect(a);
    expect(
      await subackCodes(devA.client, {
        'fb/v1/d/dev-b/in/#': { qos: 1 },
        'fb/v1/d/+/in/#': { qos: 1 },
      }),
    ).toEqual([128, 128]);
    const seen: string[] = [];
    devA.client.on('message', (topic) => seen.push(topic));
    const { id } = await t.release(4096, '0.0.1');
    await t.api.assign(id, ['dev-b']);
    await sleep(300);
    expect(seen.filter((s) => s.includes('dev-b'))).toEqual([]);
  });

  it("does not let device A publish on B's out/ topics nor on any in/ topic", async () => {
    const records = t.server.ctx.db.prepare('SELECT COUNT(*) AS n FROM acks');
    for (const topic of [
      'fb/v1/d/dev-b/out/ack',
      'fb/v1/d/dev-b/in/manifest',
      'fb/v1/d/dev-a/in/manifest',
    ]) {
      const devA = await connect(a);
      const closed = new Promise<void>((resolve) => devA.client.once('close', () => resolve()));
      devA.client.publish(topic, Buffer.from('forged'), { qos: 1, retain: topic.includes('/in/') });
      await closed;
    }
    expect(records.get()).toEqual({ n: 0 });
    expect(await t.rejections('FB_ERR_TOPIC_FORBIDDEN')).toBeGreaterThanOrEqual(3);
  });

  it('refuses a fetch for an image the device is not assigned', async () => {
    const devA = await connect(a);
    const other = await t.api.listReleases();
    const target = other.items[0]!;
    const [refusal] = await devA.fetchRound(fromHex(target.imageDigest), [0]);
    expect(refusal).toMatchObject({ err: 'FB_ERR_NOT_ASSIGNED' });
    expect(refusal?.data).toBeUndefined();
  });

  it('does not leak queued messages of B to a persistent session of A that sent a mixed SUBSCRIBE', async () => {
    const spy = await mqtt.connectAsync(a.brokerUrl, {
      clientId: 'dev-a',
      username: 'dev-a',
      password: a.password,
      clean: false,
      reconnectPeriod: 0,
    });
    expect(
      await subackCodes(spy, {
        'fb/v1/d/dev-a/in/#': { qos: 1 },
        'fb/v1/d/dev-b/in/#': { qos: 1 },
      }),
    ).toEqual([1, 128]);
    await spy.endAsync();
    const { id } = await t.release(4096, '0.0.2');
    await t.api.assign(id, ['dev-b']);
    const devB = await connect(b);
    await devB.publish('fetch', encodeFetchRequest({ rid: 1, obj: new Uint8Array(32), idx: [0] }));
    await sleep(200);

    const back = mqtt.connect(a.brokerUrl, {
      clientId: 'dev-a',
      username: 'dev-a',
      password: a.password,
      clean: false,
      reconnectPeriod: 0,
    });
    const seen: string[] = [];
    back.on('message', (topic) => seen.push(topic));
    await new Promise((resolve) => back.once('connect', resolve));
    await sleep(300);
    await back.endAsync(true);
    expect(seen.filter((s) => s.includes('dev-b'))).toEqual([]);
  });
});
