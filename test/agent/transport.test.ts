/**
 * The agent's transport over ws:// against the real server and its embedded broker: the path
 * that loads mqtt.js's own connection code on first use (mqtt:// uses PacketSocket, tested in
 * device-agent/test/packet-socket.test.ts; mqtts:// runs in update-e2e.test.ts).
 */
import { randomBytes } from 'node:crypto';

import { MqttTransport } from '@fetchback/device-agent';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type TestServer, startTestServer } from '../server/support/server-harness.js';

describe('MqttTransport over ws://', () => {
  let t: TestServer;
  let wsUrl: string;
  beforeAll(async () => {
    t = await startTestServer({ wsPort: 0 });
    wsUrl = `ws://127.0.0.1:${t.server.wsPort}`;
  });
  afterAll(async () => {
    await t?.close();
  });

  /** A registered device's transport over ws://. */
  async function transportOf(id: string) {
    const creds = await t.device(id);
    const transport = new MqttTransport({
      brokerUrl: wsUrl,
      clientId: creds.deviceId,
      username: creds.deviceId,
      password: creds.password,
    });
    return { transport, deviceId: creds.deviceId };
  }

  it('connects, subscribes and receives a chunk-sized message unchanged', async () => {
    const { transport, deviceId } = await transportOf('pi-ws-1');
    try {
      const got: Buffer[] = [];
      transport.onMessage((_topic, payload) => got.push(Buffer.from(payload)));
      await transport.connect();
      expect(transport.connected).toBe(true);
      await transport.subscribe(`fb/v1/d/${deviceId}/in/#`, 1);
      const payload = randomBytes(300 * 1024);
      await t.server.ctx.bus.publish(`fb/v1/d/${deviceId}/in/ack`, payload, { qos: 1 });
      await expect.poll(() => got.length, { timeout: 5000 }).toBe(1);
      expect(got[0]?.equals(payload)).toBe(true);
    } finally {
      await transport.close();
    }
  });

  it('does not connect when closed while its connection code is still loading', async () => {
    const { transport } = await transportOf('pi-ws-2');
    let connects = 0;
    transport.onConnect(() => connects++);
    const connecting = transport.connect();
    await transport.close();
    await connecting;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(connects).toBe(0);
    expect(transport.connected).toBe(false);
  });
});
