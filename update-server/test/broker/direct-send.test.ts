/**
 * DirectSender over real loopback sockets: the bytes it writes are MQTT PUBLISH packets that
 * mqtt-packet parses back, a send settles when its own bytes are written (not when the stream
 * is next empty), and a reader that stops reading is dropped after the stall timeout.
 */
import { once } from 'node:events';
import { type Server, type Socket, connect, createServer } from 'node:net';
import { Writable } from 'node:stream';

import mqttPacket from 'mqtt-packet';
import { afterEach, describe, expect, it } from 'vitest';

import { DirectSender, publishHead } from '../../src/broker/direct-send.js';
import { publishFrame } from '../support/mqtt-frames.js';

let server: Server | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  sockets.forEach((s) => s.destroy());
  sockets.length = 0;
  if (server) await new Promise((resolve) => server?.close(resolve));
  server = undefined;
});

/** A connected pair: `sender` is the server side, `reader` the client side. */
async function socketPair(): Promise<{ sender: Socket; reader: Socket }> {
  const accepted = new Promise<Socket>((resolve) => {
    server = createServer((s) => resolve(s));
  });
  server?.listen(0, '127.0.0.1');
  await once(server as Server, 'listening');
  const { port } = server?.address() as { port: number };
  const reader = connect(port, '127.0.0.1');
  const sender = await accepted;
  sockets.push(sender, reader);
  return { sender, reader };
}

function parsedPublishes(reader: Socket): { topic: string; payload: Buffer }[] {
  const packets: { topic: string; payload: Buffer }[] = [];
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on('packet', (p) => {
    if (p.cmd === 'publish') packets.push({ topic: p.topic, payload: p.payload as Buffer });
  });
  reader.on('data', (chunk) => parser.parse(chunk));
  return packets;
}

describe('publishHead', () => {
  it('with the parts after it, is byte for byte a QoS 0 PUBLISH, for 1 to 3 length bytes', () => {
    for (const size of [0, 100, 127, 128, 16_383, 16_384, 300_000]) {
      const payload = Buffer.alloc(size, 0x5a);
      const parts = [payload.subarray(0, size >> 1), payload.subarray(size >> 1)];
      const topic = 'fb/v1/d/dev-1/in/chunk';
      expect(Buffer.concat([publishHead(topic, parts), ...parts])).toEqual(
        publishFrame(topic, payload),
      );
    }
  });
});

describe('DirectSender', () => {
  it('delivers packets that parse back in order, each payload its parts joined', async () => {
    const { sender, reader } = await socketPair();
    const packets = parsedPublishes(reader);
    const direct = new DirectSender(5000, () => undefined);
    const sends = Array.from({ length: 40 }, (_, i) =>
      direct.send(sender, `t/${i}`, [Buffer.from([i]), Buffer.alloc(64 * 1024, i)]),
    );
    await Promise.all(sends);
    for (let i = 0; i < 100 && packets.length < 40; i++)
      await new Promise((r) => setTimeout(r, 10));
    expect(packets.map((p) => p.topic)).toEqual(Array.from({ length: 40 }, (_, i) => `t/${i}`));
    expect(packets.every((p, i) => p.payload.length === 64 * 1024 + 1 && p.payload[0] === i)).toBe(
      true,
    );
  });

  it('settles a send once its bytes are written, while later ones still wait', async () => {
    // A stream that completes one write per tick of ours: `drain` would come only at the end.
    const completions: (() => void)[] = [];
    const stream = new Writable({
      highWaterMark: 1,
      write(_chunk, _enc, done) {
        completions.push(() => done());
      },
      writev(_chunks, done) {
        completions.push(() => done());
      },
    });
    let drained = false;
    stream.on('drain', () => (drained = true));
    const direct = new DirectSender(5000, () => undefined);
    const settled: number[] = [];
    const asDuplex = stream as unknown as Parameters<DirectSender['send']>[0];
    for (const i of [0, 1, 2]) {
      void direct.send(asDuplex, 't', [Buffer.alloc(10, i)]).then(() => settled.push(i));
    }
    completions.shift()?.();
    await new Promise((r) => setImmediate(r));
    expect(settled).toEqual([0]);
    expect(drained).toBe(false);
    while (completions.length > 0) {
      completions.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    expect(settled).toEqual([0, 1, 2]);
  });

  it('drops a connection whose reader stops reading, and settles every pending send', async () => {
    const { sender, reader } = await socketPair();
    reader.pause();
    const stalled: Socket[] = [];
    const direct = new DirectSender(300, (conn) => stalled.push(conn as Socket));
    const closed = once(sender, 'close');
    const chunk = Buffer.alloc(256 * 1024);
    // Far more than the socket buffers of both ends hold.
    const sends = Array.from({ length: 256 }, () => direct.send(sender, 't', [chunk]));
    await Promise.all(sends);
    await closed;
    expect(stalled).toEqual([sender]);
    expect(sender.destroyed).toBe(true);
  });

  it('does not drop a reader that is slow but keeps reading', async () => {
    const { sender, reader } = await socketPair();
    let received = 0;
    reader.on('data', (c: Buffer) => {
      received += c.length;
      reader.pause();
      setTimeout(() => reader.resume(), 5);
    });
    const direct = new DirectSender(300, () => undefined);
    const chunk = Buffer.alloc(256 * 1024);
    const total = 64 * (publishHead('t', [chunk]).length + chunk.length);
    // About a second of sending at this reader's pace: longer than the stall timeout.
    await Promise.all(Array.from({ length: 64 }, () => direct.send(sender, 't', [chunk])));
    expect(sender.destroyed).toBe(false);
    for (let i = 0; i < 200 && received < total; i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(received).toBe(total);
  });
});
