import { randomBytes } from 'node:crypto';

import { bytesEqual } from '@fetchback/shared';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FakeDevice } from './support/fake-device.js';
import { type RunningMosquitto, startMosquitto } from './support/mosquitto.js';
import { type TestServer, startTestServer } from './support/server-harness.js';

describe('delivery through an external Mosquitto', () => {
  let mosquitto: RunningMosquitto | undefined;
  let t: TestServer | undefined;
  let unavailable: string | undefined;
  const open: FakeDevice[] = [];

  beforeAll(async () => {
    const serverPassword = randomBytes(12).toString('hex');
    try {
      mosquitto = await startMosquitto(serverPassword);
    } catch (err) {
      unavailable = (err as Error).message;
      // In CI Mosquitto is installed by .ci/run: its absence is a failure, not a skip.
      if (process.env.CI) throw new Error(`Mosquitto must run in CI: ${unavailable}`);
      console.warn(
        `\n!!! SKIPPING the external-broker tests: Mosquitto cannot start (${unavailable}).\n`,
      );
      return;
    }
    t = await startTestServer({ brokerUrl: mosquitto.url, brokerPassword: serverPassword });
  });
  afterAll(async () => {
    await Promise.all(open.map((d) => d.close()));
    await t?.close();
    await mosquitto?.stop();
  });

  it('delivers a 5 MiB release and records an ACK sent three times once', async (ctx) => {
    if (unavailable) return ctx.skip();
    const creds = await t!.device('pi-ext-1');
    await mosquitto!.addUser(creds.deviceId, creds.password);
    const { id, image } = await t!.release(5 * 1024 * 1024);
    await t!.api.assign(id, ['pi-ext-1']);

    const device = await FakeDevice.connect(creds);
    open.push(device);
    const manifest = await device.manifest();
    expect(bytesEqual(await device.download(manifest, 16), image)).toBe(true);
    const answers = [];
    for (let i = 0; i < 3; i++) answers.push(await device.ack(manifest, 'downloaded', 'ext-ack-1'));
    expect(answers.map((a) => a.resp.dup ?? false)).toEqual([false, true, true]);
    expect((await t!.api.getDevice('pi-ext-1')).history.acks).toHaveLength(1);
  });

  it("delivers a release through Mosquitto to the agent's own MQTT connection", async (ctx) => {
    if (unavailable) return ctx.skip();
    const creds = await t!.device('pi-ext-agent');
    await mosquitto!.addUser(creds.deviceId, creds.password);
    const { id, image } = await t!.release(3 * 1024 * 1024 + 777, '1.2.0');
    await t!.api.assign(id, ['pi-ext-agent']);
    const device = await FakeDevice.connectAsAgent(creds);
    open.push(device);
    expect(device.client.stream.constructor.name).toBe('PacketSocket');
    const manifest = await device.manifest();
    expect(bytesEqual(await device.download(manifest, 4), image)).toBe(true);
  });

  it("enforces the documented ACL: a device cannot read another device's topics", async (ctx) => {
    if (unavailable) return ctx.skip();
    const a = await t!.device('pi-ext-a');
    const b = await t!.device('pi-ext-b');
    await mosquitto!.addUser(a.deviceId, a.password);
    await mosquitto!.addUser(b.deviceId, b.password);
    const spy = await mqtt.connectAsync(a.brokerUrl, {
      clientId: 'pi-ext-a',
      username: 'pi-ext-a',
      password: a.password,
      reconnectPeriod: 0,
    });
    const seen: string[] = [];
    spy.on('message', (topic) => seen.push(topic));
    // Mosquitto grants the SUBSCRIBE but filters delivery by the read ACL.
    await spy.subscribeAsync('fb/v1/d/pi-ext-b/in/#', { qos: 1 }).catch(() => undefined);
    const { id } = await t!.release(4096, '0.0.9');
    await t!.api.assign(id, ['pi-ext-b']);
    await new Promise((r) => setTimeout(r, 500));
    await spy.endAsync(true);
    expect(seen).toEqual([]);
    const devB = await FakeDevice.connect(b);
    open.push(devB);
    expect((await devB.manifest()).assignment.dev).toBe('pi-ext-b');
    await expect(
      mqtt.connectAsync(a.brokerUrl, {
        clientId: 'x',
        username: 'pi-ext-a',
        password: 'wrong',
        reconnectPeriod: 0,
      }),
    ).rejects.toThrow();
  });
});
