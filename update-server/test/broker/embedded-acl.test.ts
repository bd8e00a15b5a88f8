import mqtt from 'mqtt';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  type Harness,
  collect,
  nextMessage,
  sleep,
  startHarness,
} from '../support/delivery-harness.js';

describe('embedded broker access control (real aedes on a real socket)', () => {
  let h: Harness;
  let a: { id: string; secret: string };
  let b: { id: string; secret: string };

  beforeEach(async () => {
    h = await startHarness({ bus: { maxQueuedPerClient: 5 } });
    a = h.devices.add('dev-a');
    b = h.devices.add('dev-b');
  });
  afterEach(async () => {
    await h.close();
  });

  const refusedConnect = async (opts: mqtt.IClientOptions) => {
    await expect(
      mqtt.connectAsync(h.url, { protocolVersion: 4, reconnectPeriod: 0, ...opts }),
    ).rejects.toThrow();
  };

  it('refuses an unauthenticated, a wrong-secret and a mismatched-client-id connect', async () => {
    await refusedConnect({ clientId: 'dev-a' });
    await refusedConnect({ clientId: 'dev-a', username: 'dev-a', password: 'wrong' });
    await refusedConnect({ clientId: 'dev-x', username: 'dev-a', password: a.secret });
    expect(await h.rejections('FB_ERR_BROKER_AUTH')).toBe(2);
    expect(await h.rejections('FB_ERR_CLIENT_ID_MISMATCH')).toBe(1);
  });

  it('refuses a decommissioned device', async () => {
    h.devices.decommission('dev-b');
    await refusedConnect({ clientId: 'dev-b', username: 'dev-b', password: b.secret });
  });

  it("answers a SUBACK failure to a subscription on another device's topics", async () => {
    const client = await h.connect(a.id, a.secret);
    const granted = await subackCodes(client, {
      'fb/v1/d/dev-b/in/#': { qos: 1 },
      'fb/v1/d/+/in/chunk': { qos: 1 },
      '#': { qos: 1 },
    });
    expect(granted).toEqual([128, 128, 128]);
    const own = await client.subscribeAsync('fb/v1/d/dev-a/in/#', { qos: 1 });
    expect(own[0]?.qos).toBe(1);
    expect(await h.rejections('FB_ERR_TOPIC_FORBIDDEN')).toBe(3);
  });

  it("closes the connection of a device publishing on another device's out/ topic", async () => {
    const client = await h.connect(a.id, a.secret);
    const server = collectServer(h, 'fb/v1/d/dev-b/out/ack');
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('fb/v1/d/dev-b/out/ack', Buffer.from('x'), { qos: 1 });
    await closed;
    expect(server).toHaveLength(0);
    expect(await h.rejections('FB_ERR_TOPIC_FORBIDDEN')).toBe(1);
  });

  it('closes the connection of a device publishing on any in/ topic, its own included', async () => {
    for (const topic of ['fb/v1/d/dev-a/in/manifest', 'fb/v1/d/dev-b/in/ack']) {
      const client = await h.connect(a.id, a.secret);
      const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
      client.publish(topic, Buffer.from('forged'), { qos: 1, retain: true });
      await closed;
    }
    expect(await h.rejections('FB_ERR_TOPIC_FORBIDDEN')).toBe(2);
  });

  it('refuses a retained publish outside out/presence', async () => {
    const client = await h.connect(a.id, a.secret);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('fb/v1/d/dev-a/out/status', Buffer.from('x'), { retain: true });
    await closed;
    expect(await h.rejections('FB_ERR_RETAIN_FORBIDDEN')).toBe(1);
  });

  it("does not leak another device's messages to a persistent session that sent a mixed SUBSCRIBE", async () => {
    const opts = { clean: false };
    const spy = await h.connect(a.id, a.secret, opts);
    const granted = await subackCodes(spy, {
      'fb/v1/d/dev-a/in/#': { qos: 1 },
      'fb/v1/d/dev-b/in/#': { qos: 1 },
    });
    expect(granted).toEqual([1, 128]);
    const live = collect(spy);
    await h.bus.publish('fb/v1/d/dev-b/in/ack', Buffer.from('live secret'), { qos: 1 });
    await h.bus.publish('fb/v1/d/dev-b/in/manifest', Buffer.from('retained'), {
      qos: 1,
      retain: true,
    });
    await sleep(200);
    await spy.endAsync();

    await h.bus.publish('fb/v1/d/dev-b/in/ack', Buffer.from('queued secret'), { qos: 1 });
    await h.bus.publish('fb/v1/d/dev-a/in/ack', Buffer.from('mine'), { qos: 1 });
    const back = mqtt.connect(h.url, {
      clientId: a.id,
      username: a.id,
      password: a.secret,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
    });
    const seen = collect(back);
    await new Promise((resolve) => back.once('connect', resolve));
    await sleep(300);
    await back.endAsync();

    const topicsSeen = [...live, ...seen].map((m) => m.topic);
    expect(topicsSeen).toContain('fb/v1/d/dev-a/in/ack');
    expect(topicsSeen.filter((t) => t.includes('dev-b'))).toEqual([]);
  });

  it('bounds the offline queue of a persistent session', async () => {
    const first = await h.connect(a.id, a.secret, { clean: false });
    await first.subscribeAsync('fb/v1/d/dev-a/in/ack', { qos: 1 });
    await first.endAsync();
    for (let i = 0; i < 12; i++) {
      await h.bus.publish('fb/v1/d/dev-a/in/ack', Buffer.from(`m${i}`), { qos: 1 });
    }
    const back = mqtt.connect(h.url, {
      clientId: a.id,
      username: a.id,
      password: a.secret,
      protocolVersion: 4,
      clean: false,
      reconnectPeriod: 0,
    });
    const seen = collect(back);
    await new Promise((resolve) => back.once('connect', resolve));
    await sleep(300);
    await back.endAsync();
    expect(seen.map((m) => m.payload.toString())).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
    expect(await h.rejections('FB_ERR_QUEUE_FULL')).toBe(7);
  });

  it('delivers the server manifest to the device it is addressed to', async () => {
    const client = await h.connect(a.id, a.secret);
    await client.subscribeAsync('fb/v1/d/dev-a/in/#', { qos: 1 });
    const got = nextMessage(client, 'fb/v1/d/dev-a/in/chunk');
    await h.bus.publish('fb/v1/d/dev-a/in/chunk', Buffer.from('hello'), { qos: 0 });
    expect((await got).toString()).toBe('hello');
  });

  it('drops a live connection on disconnectDevice', async () => {
    const client = await h.connect(a.id, a.secret);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    h.bus.disconnectDevice(a.id);
    await closed;
  });
});

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

function collectServer(h: Harness, filter: string): Buffer[] {
  const got: Buffer[] = [];
  void h.bus.subscribe(filter, (_t, p) => got.push(p));
  return got;
}
