import { connect as netConnect } from 'node:net';

import { afterEach, describe, expect, it } from 'vitest';

import { MqttFrameScanner } from '../../src/broker/frame-guard.js';
import { type Harness, sleep, startHarness } from '../support/delivery-harness.js';
import { varint } from '../support/mqtt-frames.js';

describe('MqttFrameScanner', () => {
  it('follows packets split across chunks and accepts those within the limit', () => {
    const scanner = new MqttFrameScanner(100);
    const packet = Uint8Array.from([0x30, ...varint(90), ...new Array(90).fill(1)]);
    for (let i = 0; i < packet.length; i += 7) {
      expect(scanner.feed(packet.subarray(i, i + 7))).toBeUndefined();
    }
    expect(scanner.feed(Uint8Array.from([0xc0, 0x00]))).toBeUndefined();
  });

  it('refuses a packet whose header declares more than the limit, before its body', () => {
    const scanner = new MqttFrameScanner(64 * 1024);
    const header = Uint8Array.from([0x30, ...varint(10 * 1024 * 1024)]);
    expect(scanner.feed(header)).toEqual({ kind: 'too-large', packetBytes: 10 * 1024 * 1024 + 5 });
  });

  it('refuses a remaining length of more than four bytes', () => {
    const scanner = new MqttFrameScanner(1024);
    expect(scanner.feed(Uint8Array.from([0x30, 0xff, 0xff, 0xff, 0xff]))?.kind).toBe(
      'malformed-length',
    );
  });
});

describe('packet-size guard on the embedded broker', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('drops a connection that sends an oversized packet and counts FB_ERR_PACKET_TOO_LARGE', async () => {
    h = await startHarness({ bus: { maxPacketBytes: 4096 } });
    const dev = h.devices.add('dev-big');
    const client = await h.connect(dev.id, dev.secret);
    const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
    client.publish('fb/v1/d/dev-big/out/status', Buffer.alloc(8192));
    await closed;
    expect(await h.rejections('FB_ERR_PACKET_TOO_LARGE')).toBe(1);
    expect(h.lines.some((l) => l.code === 'FB_ERR_PACKET_TOO_LARGE')).toBe(true);
  });

  it('drops a raw socket declaring a 200 MiB packet without waiting for its body', async () => {
    h = await startHarness();
    const socket = netConnect(h.bus.mqttPort as number, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => undefined);
    socket.write(Buffer.from([0x10, ...varint(200 * 1024 * 1024), 0, 4]));
    await closed;
    expect(await h.rejections('FB_ERR_PACKET_TOO_LARGE')).toBe(1);
  });

  it('keeps serving other clients after a guarded drop', async () => {
    h = await startHarness({ bus: { maxPacketBytes: 4096 } });
    const bad = h.devices.add('dev-bad');
    const good = h.devices.add('dev-good');
    const badClient = await h.connect(bad.id, bad.secret);
    badClient.on('error', () => undefined);
    badClient.publish('fb/v1/d/dev-bad/out/status', Buffer.alloc(100_000));
    await sleep(100);
    const goodClient = await h.connect(good.id, good.secret);
    expect(goodClient.connected).toBe(true);
  });
});
