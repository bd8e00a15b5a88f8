/**
 * PacketSocket against a real TCP peer that writes MQTT bytes cut at every kind of boundary,
 * and MqttTransport through a real aedes broker on a real socket with messages of every size.
 */
import { randomBytes } from 'node:crypto';
import { type AddressInfo, type Server, type Socket, createServer } from 'node:net';

import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';

import {
  MAX_ASSEMBLING_BYTES,
  PacketSocket,
  assemblingBytesNow,
} from '../src/transport/packet-socket.js';
import { MqttTransport } from '../src/transport/mqtt-transport.js';
import { startAedes } from './helpers/aedes-bus.js';

/** A fixed header (type byte and remaining length) and `body`. */
function packet(type: number, body: Buffer): Buffer {
  const length: number[] = [];
  let n = body.length;
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    length.push(byte);
  } while (n > 0);
  return Buffer.concat([Buffer.from([type, ...length]), body]);
}

/** A QoS 0 PUBLISH of `payload` to topic "t". */
const publish = (payload: Buffer): Buffer =>
  packet(0x30, Buffer.concat([Buffer.from([0, 1, 0x74]), payload]));

/** A small deterministic generator, so that a failing cut can be run again. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

interface Peer {
  readonly port: number;
  /** The server side of the first connection. */
  readonly connection: Promise<Socket>;
  readonly received: Buffer[];
  close(): Promise<void>;
}

async function startPeer(): Promise<Peer> {
  const received: Buffer[] = [];
  let accept: (s: Socket) => void = () => undefined;
  const connection = new Promise<Socket>((resolve) => (accept = resolve));
  const sockets: Socket[] = [];
  const server: Server = createServer((s) => {
    sockets.push(s);
    s.on('data', (d: Buffer) => received.push(d));
    s.on('error', () => undefined);
    accept(s);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connection,
    received,
    close: async () => {
      sockets.forEach((s) => s.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** Writes `bytes` in pieces of random sizes, each in a turn of the event loop of its own. */
async function writeCut(socket: Socket, bytes: Buffer, random: () => number, most: number) {
  for (let at = 0; at < bytes.length;) {
    const n = Math.max(1, Math.floor(random() * most));
    socket.write(bytes.subarray(at, at + n));
    at += n;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** Collects what `ps` delivers until `total` bytes have come. */
function collect(ps: PacketSocket, total: number): Promise<Buffer[]> {
  const out: Buffer[] = [];
  let bytes = 0;
  return new Promise((resolve, reject) => {
    ps.on('data', (b: Buffer) => {
      out.push(Buffer.from(b));
      bytes += b.length;
      if (bytes >= total) resolve(out);
    });
    ps.on('error', reject);
  });
}

const opened: Array<{ close(): Promise<void> } | PacketSocket> = [];
afterEach(async () => {
  for (const o of opened.splice(0)) {
    if (o instanceof PacketSocket) o.destroy();
    else await o.close();
  }
});

describe('PacketSocket', () => {
  const packets = [
    publish(randomBytes(300 * 1024)), // read mostly straight into its own buffer
    packet(0xd0, Buffer.alloc(0)), // PINGRESP: a header and nothing else
    publish(Buffer.alloc(0)),
    publish(randomBytes(1)),
    publish(randomBytes(127 - 3)), // remaining length 127: one length byte
    publish(randomBytes(128 - 3)), // 128: two length bytes
    publish(randomBytes(16 * 1024 + 5)), // about the size where reads go straight in
    publish(randomBytes(20_000)),
    packet(0x90, Buffer.from([0, 7, 0])), // SUBACK
    publish(randomBytes(1024 * 1024)),
  ];
  const stream = Buffer.concat(packets);

  for (const [name, most] of [
    ['one byte at a time', 1],
    ['in pieces of up to 7 bytes', 7],
    ['in pieces of up to 5,000 bytes', 5000],
    ['in pieces of up to 200 KiB', 200 * 1024],
    ['all at once', stream.length],
  ] as const) {
    // A few bytes at a time through 1.4 MB would take a while: those cuts get the small packets.
    const small = most < 10;
    const input = small ? Buffer.concat(packets.slice(1, 9)) : stream;
    const expected = small ? packets.slice(1, 9) : packets;
    it(`delivers each packet whole, in order, when the peer writes ${name}`, async () => {
      const peer = await startPeer();
      opened.push(peer);
      const ps = new PacketSocket({ host: '127.0.0.1', port: peer.port });
      opened.push(ps);
      const got = collect(ps, input.length);
      await writeCut(await peer.connection, input, lcg(most), most);
      const buffers = await got;
      expect(buffers.length).toBe(expected.length);
      buffers.forEach((b, i) => expect(b.equals(expected[i] as Buffer)).toBe(true));
    });
  }

  it('passes a packet above the bound on as it arrives, and whole ones around it', async () => {
    const peer = await startPeer();
    opened.push(peer);
    const ps = new PacketSocket({
      host: '127.0.0.1',
      port: peer.port,
      maxWholePacketBytes: 64 * 1024,
    });
    opened.push(ps);
    const before = publish(randomBytes(1000));
    const big = publish(randomBytes(200 * 1024));
    const after = publish(randomBytes(60 * 1024));
    const input = Buffer.concat([before, big, after]);
    const got = collect(ps, input.length);
    await writeCut(await peer.connection, input, lcg(3), 50 * 1024);
    const buffers = await got;
    expect(Buffer.concat(buffers).equals(input)).toBe(true);
    expect(buffers[0]?.equals(before)).toBe(true);
    expect(buffers.at(-1)?.equals(after)).toBe(true);
    // The big one came in more than one piece, none of them larger than what was written.
    expect(buffers.length).toBeGreaterThan(3);
  });

  it('passes bytes on unchanged after a remaining length longer than four bytes', async () => {
    const peer = await startPeer();
    opened.push(peer);
    const ps = new PacketSocket({ host: '127.0.0.1', port: peer.port });
    opened.push(ps);
    const good = publish(randomBytes(10));
    const bad = Buffer.from([0x30, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]);
    const input = Buffer.concat([good, bad]);
    const got = collect(ps, input.length);
    (await peer.connection).write(input);
    const buffers = await got;
    expect(buffers[0]?.equals(good)).toBe(true);
    expect(Buffer.concat(buffers).equals(input)).toBe(true);
  });

  it('writes what it is given to the peer, and ends and closes when the peer closes', async () => {
    const peer = await startPeer();
    opened.push(peer);
    const ps = new PacketSocket({ host: '127.0.0.1', port: peer.port });
    opened.push(ps);
    const server = await peer.connection;
    ps.cork();
    ps.write(Buffer.from('fetch'));
    ps.write(Buffer.from('back'));
    process.nextTick(() => ps.uncork());
    await expect
      .poll(() => Buffer.concat(peer.received).toString(), { timeout: 5000 })
      .toBe('fetchback');
    const closed = new Promise<void>((resolve) => ps.on('close', () => resolve()));
    const ended = new Promise<void>((resolve) => ps.on('end', () => resolve()));
    ps.resume();
    server.end();
    await Promise.all([ended, closed]);
    expect(ps.destroyed).toBe(true);
  });

  it('keeps every packet, in order, for a reader that pauses', async () => {
    const peer = await startPeer();
    opened.push(peer);
    const ps = new PacketSocket({ host: '127.0.0.1', port: peer.port });
    opened.push(ps);
    const many = Array.from({ length: 40 }, (_, i) => publish(randomBytes(50_000 + i)));
    const input = Buffer.concat(many);
    const out: Buffer[] = [];
    ps.pause();
    (await peer.connection).write(input);
    await new Promise((resolve) => setTimeout(resolve, 200));
    // Paused, it holds at most a little over its high-water mark: the socket stopped reading.
    expect(ps.readableLength).toBeLessThan(input.length);
    await new Promise<void>((resolve) => {
      ps.on('data', (b: Buffer) => {
        out.push(b);
        if (out.length === many.length) resolve();
      });
      ps.resume();
    });
    out.forEach((b, i) => expect(b.equals(many[i] as Buffer)).toBe(true));
  });

  it('assembles at most MAX_ASSEMBLING_BYTES of large packets at once in a process', async () => {
    const n = 12;
    const size = 1024 * 1024;
    const peers = await Promise.all(Array.from({ length: n }, () => startPeer()));
    opened.push(...peers);
    const sockets = peers.map((p) => new PacketSocket({ host: '127.0.0.1', port: p.port }));
    opened.push(...sockets);
    const packets = sockets.map(() => publish(randomBytes(size)));
    const got = sockets.map((ps, i) => collect(ps, (packets[i] as Buffer).length));
    const servers = await Promise.all(peers.map((p) => p.connection));
    // Every peer sends the head of its packet and holds back the rest.
    servers.forEach((s, i) => s.write((packets[i] as Buffer).subarray(0, 1000)));
    await expect.poll(() => assemblingBytesNow(), { timeout: 5000 }).toBeGreaterThan(0);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const held = assemblingBytesNow();
    expect(held).toBeLessThanOrEqual(MAX_ASSEMBLING_BYTES);
    expect(held).toBeGreaterThan(MAX_ASSEMBLING_BYTES - 2 * size);
    servers.forEach((s, i) => s.write((packets[i] as Buffer).subarray(1000)));
    const received = await Promise.all(got);
    received.forEach((buffers, i) => {
      expect(Buffer.concat(buffers).equals(packets[i] as Buffer)).toBe(true);
    });
    const whole = received.filter((buffers) => buffers.length === 1).length;
    expect(whole).toBe(Math.floor(MAX_ASSEMBLING_BYTES / (packets[0] as Buffer).length));
    expect(assemblingBytesNow()).toBe(0);
  });

  it('gives back what a connection was assembling when it closes mid-packet', async () => {
    const peer = await startPeer();
    opened.push(peer);
    const ps = new PacketSocket({ host: '127.0.0.1', port: peer.port });
    const closed = new Promise<void>((resolve) => ps.on('close', () => resolve()));
    ps.resume();
    const before = assemblingBytesNow();
    (await peer.connection).write(publish(randomBytes(300 * 1024)).subarray(0, 5000));
    await expect.poll(() => assemblingBytesNow(), { timeout: 5000 }).toBeGreaterThan(before);
    (await peer.connection).destroy();
    await closed;
    expect(assemblingBytesNow()).toBe(before);
  });

  it('reports a refused connection as an error and closes', async () => {
    const peer = await startPeer();
    const port = peer.port;
    await peer.close();
    const ps = new PacketSocket({ host: '127.0.0.1', port });
    const error = new Promise<Error>((resolve) => ps.on('error', resolve));
    const closed = new Promise<void>((resolve) => ps.on('close', () => resolve()));
    expect(((await error) as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    await closed;
  });
});

describe('MqttTransport over mqtt:// (PacketSocket) through aedes', () => {
  it('connects to an IPv6 address in brackets', async (ctx) => {
    const broker = await Aedes.createBroker();
    const server = createServer(broker.handle);
    const listening = await new Promise<string | undefined>((resolve) => {
      server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code));
      server.listen(0, '::1', () => resolve(undefined));
    });
    if (listening === 'EADDRNOTAVAIL' || listening === 'EAFNOSUPPORT') {
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      return ctx.skip(`no IPv6 loopback here (${listening})`);
    }
    expect(listening).toBeUndefined();
    const { port } = server.address() as AddressInfo;
    const transport = new MqttTransport({ brokerUrl: `mqtt://[::1]:${port}`, clientId: 'ps-v6' });
    try {
      await transport.connect();
      expect(transport.connected).toBe(true);
    } finally {
      await transport.close();
      await new Promise<void>((resolve) => broker.close(() => resolve()));
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('receives messages of every size unchanged, above the whole-packet bound too', async () => {
    const broker = await startAedes();
    opened.push(broker);
    const transport = new MqttTransport({ brokerUrl: broker.url, clientId: 'ps-1' });
    opened.push(transport);
    const got: Array<[string, Buffer]> = [];
    transport.onMessage((topic, payload) => got.push([topic, Buffer.from(payload)]));
    await transport.connect();
    await transport.subscribe('fb/t/#', 0);
    // 1,088 KiB is the whole-packet bound; 3 MiB goes through piece by piece.
    const sizes = [0, 1, 100, 64 * 1024, 256 * 1024 + 17, 1024 * 1024, 3 * 1024 * 1024];
    const sent = sizes.map((n) => randomBytes(n));
    sent.forEach((p, i) => broker.bus.publish(`fb/t/${i}`, p, false));
    await expect.poll(() => got.length, { timeout: 10_000 }).toBe(sizes.length);
    got.forEach(([topic, payload], i) => {
      expect(topic).toBe(`fb/t/${i}`);
      expect(payload.equals(sent[i] as Buffer)).toBe(true);
    });
    // And the other way: what the agent publishes reaches the broker's subscribers.
    const back: Buffer[] = [];
    broker.bus.subscribe('fb/up', (_t, p) => back.push(Buffer.from(p)));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const up = randomBytes(5000);
    transport.publish('fb/up', up, { qos: 1 });
    await expect.poll(() => back.length, { timeout: 5000 }).toBe(1);
    expect(back[0]?.equals(up)).toBe(true);
  });
});
