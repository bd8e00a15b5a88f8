import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';

import { type Harness, nextMessage, startHarness } from '../support/delivery-harness.js';

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
});
