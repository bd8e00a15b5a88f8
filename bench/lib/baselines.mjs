// Baselines measured in the same run as Fetchback's own figures, so that ratios compare like
// with like on whatever machine runs the benchmark.
import { fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { Aedes } from 'aedes';
import mqtt from 'mqtt';

import { onClientCore } from './cpu-pin.mjs';

/** Starts a bare aedes broker on a free loopback port, Nagle off as Fetchback does. */
export async function startBareBroker() {
  const broker = await Aedes.createBroker();
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    broker.handle(socket);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  return {
    port,
    aedes: broker,
    async close() {
      await new Promise((resolve) => broker.close(resolve));
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/**
 * Raw MQTT: the bytes published as `chunkBytes` QoS 0 messages into a bare aedes broker
 * in-process (as Fetchback's embedded server publishes) and delivered over a real socket to one
 * mqtt.js subscriber; time from the first publish to the last byte received.
 */
export async function rawMqttTransfer(totalBytes, chunkBytes) {
  const broker = await startBareBroker();
  const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, { clientId: 'bench-sub' });
  await sub.subscribeAsync('bench/data', { qos: 0 });
  const chunk = Buffer.alloc(chunkBytes, 0xa5);
  const count = Math.ceil(totalBytes / chunkBytes);
  let received = 0;
  const done = new Promise((resolve) => {
    sub.on('message', (_topic, payload) => {
      received += payload.length;
      if (received >= count * chunkBytes) resolve();
    });
  });
  const started = process.hrtime.bigint();
  for (let i = 0; i < count; i++) {
    const packet = { cmd: 'publish', topic: 'bench/data', payload: chunk, qos: 0, retain: false };
    await new Promise((resolve) => broker.aedes.publish(packet, resolve));
  }
  await done;
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await sub.endAsync();
  await broker.close();
  return { bytes: count * chunkBytes, seconds, mbPerS: (count * chunkBytes) / seconds / 1e6 };
}

/**
 * Raw fetch: Fetchback's pattern with nothing of Fetchback in it. A client in a process of its
 * own (`raw-fetch-client.mjs`) keeps `window` requests for `chunkBytes` chunks in flight
 * through a bare aedes broker; the broker's side answers each from one buffer in memory and the
 * client hashes every chunk with SHA-256. What the fetch path could move on this machine with
 * these libraries, before any verification against a table, any write and any protocol
 * encoding. Time from the first request to the last chunk hashed.
 */
export async function rawFetchTransfer(totalBytes, chunkBytes, window) {
  const broker = await startBareBroker();
  const chunk = Buffer.alloc(chunkBytes, 0xa5);
  const chunks = Math.ceil(totalBytes / chunkBytes);
  await new Promise((resolve) =>
    broker.aedes.subscribe(
      'bench/req',
      (packet, done) => {
        done();
        for (const _ of JSON.parse(packet.payload.toString())) {
          const resp = { cmd: 'publish', topic: 'bench/resp', payload: chunk, qos: 0 };
          broker.aedes.publish({ ...resp, retain: false }, () => undefined);
        }
      },
      resolve,
    ),
  );
  const script = fileURLToPath(new URL('./raw-fetch-client.mjs', import.meta.url));
  const client = fork(script, [broker.port, chunks, window].map(String), {
    execArgv: ['--max-semi-space-size=1', '--initial-old-space-size=48'],
  });
  try {
    await once(client, 'message');
    const started = process.hrtime.bigint();
    client.send('go');
    await once(client, 'message');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const bytes = chunks * chunkBytes;
    return { bytes, seconds, mbPerS: bytes / seconds / 1e6 };
  } finally {
    client.kill();
    await broker.close();
  }
}

/**
 * Plain TCP: the agent's work with none of MQTT around it, what a Node agent doing that work
 * on one thread could move on this machine, whatever its protocol. A client in a process of its own (`tcp-fetch-client.mjs`, with the agent's
 * Node flags) keeps `window` chunk requests in flight on one TCP connection; a plain `net`
 * server answers each with the chunk's bytes from `file` held in memory. The client hashes
 * every chunk, writes it to a slot file, reads the slot back and checks the whole image's
 * SHA-256, all on its main thread as the agent does. Time from the first request to the
 * digest checked. `pinned`: the client on CPU 1 (the caller puts this process on CPU 0).
 * `work`: how much of that the client does (`tcp-fetch-client.mjs`); all of it by default.
 */
export async function tcpFetchTransfer(
  file,
  totalBytes,
  chunkBytes,
  window,
  { pinned = false, work = 'verify' } = {},
) {
  const image = readFileSync(file);
  if (image.length !== totalBytes) throw new Error(`${file} holds ${image.length} bytes`);
  const digestHex = createHash('sha256').update(image).digest('hex');
  const server = createNetServer((socket) => {
    socket.setNoDelay(true);
    let pending = Buffer.alloc(0);
    socket.on('data', (data) => {
      pending = pending.length === 0 ? data : Buffer.concat([pending, data]);
      while (pending.length >= 4) {
        const start = pending.readUInt32BE(0) * chunkBytes;
        pending = pending.subarray(4);
        socket.write(image.subarray(start, Math.min(start + chunkBytes, totalBytes)));
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const dir = mkdtempSync(join(tmpdir(), 'fb-bench-tcp-'));
  const script = fileURLToPath(new URL('./tcp-fetch-client.mjs', import.meta.url));
  const args = [server.address().port, totalBytes, chunkBytes, window, join(dir, 'slot')];
  const node = [
    process.execPath,
    ['--max-semi-space-size=1', '--initial-old-space-size=48', script, ...args.map(String)],
  ];
  node[1].push(digestHex, work);
  const client = spawn(...(pinned ? onClientCore(...node) : node), {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  try {
    await once(client, 'message');
    const started = process.hrtime.bigint();
    client.send('go');
    const [outcome] = await once(client, 'message');
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (outcome !== 'done') throw new Error(`plain TCP baseline: ${outcome}`);
    return { bytes: totalBytes, seconds, mbPerS: totalBytes / seconds / 1e6 };
  } finally {
    client.kill();
    server.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** HTTP: a plain Node HTTP server streams `file`; curl downloads it to /dev/null. */
export async function httpCurlTransfer(file, totalBytes) {
  const server = createHttpServer((req, res) => {
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': totalBytes,
    });
    createReadStream(file, { highWaterMark: 256 * 1024 }).pipe(res);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  const started = process.hrtime.bigint();
  const curl = spawn('curl', ['-s', '-o', '/dev/null', `http://127.0.0.1:${port}/image`], {
    stdio: 'inherit',
  });
  const [code] = await once(curl, 'exit');
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  await new Promise((resolve) => server.close(resolve));
  if (code !== 0) throw new Error(`curl exited ${code}`);
  return { bytes: totalBytes, seconds, mbPerS: totalBytes / seconds / 1e6 };
}

/**
 * Raw MQTT, fleet-shaped (added for the fleet benchmarks): `clients` mqtt.js subscribers on
 * their own connections to a bare aedes broker, each receiving `bytesPerClient` as
 * `chunkBytes` QoS 0 publishes made in-process, with `window` chunks in flight per client (the
 * next is published when one arrives, as Fetchback's fetch window paces its server). No
 * request, no verification, no ACK: the floor under a fleet update of the same bytes. Time
 * from the first publish to the last byte received.
 */
export async function rawMqttFleetTransfer(clients, bytesPerClient, chunkBytes, window = 8) {
  const broker = await startBareBroker();
  const chunk = Buffer.alloc(chunkBytes, 0x5a);
  const perClient = Math.ceil(bytesPerClient / chunkBytes);
  const subs = [];
  for (let i = 0; i < clients; i += 100) {
    const batch = Array.from({ length: Math.min(100, clients - i) }, async (_, j) => {
      const id = `raw-${i + j}`;
      const sub = await mqtt.connectAsync(`mqtt://127.0.0.1:${broker.port}`, {
        clientId: id,
        reconnectPeriod: 0,
      });
      await sub.subscribeAsync(`bench/d/${id}`, { qos: 0 });
      return { id, sub };
    });
    subs.push(...(await Promise.all(batch)));
  }
  const publish = (id) =>
    new Promise((resolve) =>
      broker.aedes.publish(
        { cmd: 'publish', topic: `bench/d/${id}`, payload: chunk, qos: 0, retain: false },
        resolve,
      ),
    );
  const started = process.hrtime.bigint();
  await Promise.all(
    subs.map(
      ({ id, sub }) =>
        new Promise((resolve) => {
          let sent = 0;
          let received = 0;
          sub.on('message', () => {
            received++;
            if (received === perClient) return resolve();
            if (sent < perClient) {
              sent++;
              void publish(id);
            }
          });
          for (; sent < Math.min(window, perClient); sent++) void publish(id);
        }),
    ),
  );
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const bytes = clients * perClient * chunkBytes;
  await Promise.all(subs.map(({ sub }) => sub.endAsync()));
  await broker.close();
  return { clients, bytes, seconds, mbPerS: bytes / seconds / 1e6 };
}
