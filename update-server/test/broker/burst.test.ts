/**
 * A burst of packets already in the socket must not recurse through aedes: its parser reads
 * the next packet from the completion of the last one, and an in-process subscriber that
 * completes synchronously turned that into one stack frame chain per packet. The scale
 * benchmark crashed the server this way ("Maximum call stack size exceeded") at 2,000 devices.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type Harness, startHarness } from '../support/delivery-harness.js';
import { publishFrame } from '../support/mqtt-frames.js';

describe('embedded broker under a burst of packets', () => {
  let h: Harness;

  beforeEach(async () => {
    h = await startHarness();
  });
  afterEach(async () => {
    await h.close();
  });

  it('hands every packet of a 20,000-packet burst to the server and stays up', async () => {
    const device = h.devices.add('dev-a');
    const topic = 'fb/v1/d/dev-a/out/status';
    let received = 0;
    await h.bus.subscribe(topic, () => received++);
    const client = await h.connect(device.id, device.secret);

    client.stream.write(burst(topic, 20_000));

    await until(() => received === 20_000);
    // The same connection still works: the broker neither crashed nor dropped it.
    await client.publishAsync(topic, Buffer.from([0xa0]), { qos: 1 });
    expect(received).toBe(20_001);
  }, 30_000);

  it('drains a burst queued behind a slow subscriber without recursing', async () => {
    // A device that stops reading holds aedes' deliveries to it in flight, until more are in
    // flight than aedes' emitter runs at once and later messages queue; the burst of another
    // device then waits in that queue and is released all at once when the reader resumes.
    const slow = h.devices.add('dev-slow');
    const busy = h.devices.add('dev-busy');
    const slowClient = await h.connect(slow.id, slow.secret);
    await slowClient.subscribeAsync('fb/v1/d/dev-slow/in/chunk', { qos: 0 });
    const slowSocket = slowClient.stream as unknown as { pause(): void; resume(): void };
    slowSocket.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const served = Array.from({ length: 400 }, () =>
      h.bus.publish('fb/v1/d/dev-slow/in/chunk', chunk, { qos: 0 }),
    );

    const topic = 'fb/v1/d/dev-busy/out/status';
    let received = 0;
    await h.bus.subscribe(topic, () => received++);
    const busyClient = await h.connect(busy.id, busy.secret);
    busyClient.stream.write(burst(topic, 20_000));
    await new Promise((r) => setTimeout(r, 500));

    slowSocket.resume();
    await Promise.all(served);
    await until(() => received === 20_000);
    expect(received).toBe(20_000);
  }, 30_000);
});

/** `count` PUBLISH packets on `topic` with a one-byte payload, as one buffer. */
function burst(topic: string, count: number): Buffer {
  const frame = publishFrame(topic, Buffer.from([0xa0]));
  return Buffer.concat(Array.from({ length: count }, () => frame));
}

async function until(done: () => boolean, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
