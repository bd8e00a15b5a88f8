/**
 * MQTT over TLS on the embedded broker, with certificates made by openssl for this test.
 */
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import net from 'node:net';

import mqtt from 'mqtt';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type TestCertificates, makeTestCertificates } from '../../../test/support/certificates.js';
import { type Harness, nextMessage, startHarness, tempDir } from '../support/delivery-harness.js';

const tmp = tempDir();
let certs: TestCertificates;
beforeAll(() => {
  certs = makeTestCertificates(tmp.dir, ['dev-a', 'dev-b']);
});
afterAll(() => tmp.remove());

const tlsOptions = (requireClientCert: boolean) => ({
  ...certs.server,
  caFile: certs.caFile,
  requireClientCert,
});

/** Connects over TLS; resolves with the client or rejects with why it could not. */
function connect(port: number, id: string, secret: string, cert?: string) {
  return mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
    clientId: id,
    username: id,
    password: secret,
    reconnectPeriod: 0,
    connectTimeout: 5_000,
    ca: readFileSync(certs.caFile),
    ...(cert
      ? {
          cert: readFileSync(certs.devices[cert]!.certFile),
          key: readFileSync(certs.devices[cert]!.keyFile),
        }
      : {}),
  });
}

/** Sends a plain MQTT 3.1.1 CONNECT; reports whether a CONNACK came and the socket closed. */
async function plainConnect(port: number): Promise<{ closed: boolean; connack: boolean }> {
  const socket = net.connect(port, '127.0.0.1');
  let connack = false;
  socket.on('data', (d: Buffer) => (connack ||= d[0] === 0x20));
  socket.on('error', () => undefined);
  await once(socket, 'connect');
  // CONNECT, protocol "MQTT" level 4, clean session, keepalive 60, client id "x".
  socket.write(Buffer.from('100d00044d5154540402003c000178', 'hex'));
  const closed = await Promise.race([
    once(socket, 'close').then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 5_000)),
  ]);
  socket.destroy();
  return { closed, connack };
}

describe('MQTT over TLS', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.close();
    h = undefined;
  });

  it('serves mqtts with the server certificate; refuses plain MQTT and wrong secrets', async () => {
    h = await startHarness({ bus: { tls: tlsOptions(false) } });
    const dev = h.devices.add('dev-a');
    const port = h.bus.mqttPort!;
    // A client that does not trust the CA refuses the server.
    await expect(
      mqtt.connectAsync(`mqtts://127.0.0.1:${port}`, {
        clientId: 'dev-a',
        username: 'dev-a',
        password: dev.secret,
        reconnectPeriod: 0,
        connectTimeout: 5_000,
      }),
    ).rejects.toThrow(/self-signed|certificate/i);
    await expect(connect(port, 'dev-a', 'wrong secret')).rejects.toThrow();
    // Plain MQTT on the TLS port: the listener closes the socket without a CONNACK.
    expect(await plainConnect(port)).toEqual({ closed: true, connack: false });

    const client = await connect(port, 'dev-a', dev.secret);
    await client.subscribeAsync('fb/v1/d/dev-a/in/#', { qos: 1 });
    const got = nextMessage(client, 'fb/v1/d/dev-a/in/ack');
    await h.bus.publish('fb/v1/d/dev-a/in/ack', Buffer.from('over tls'), { qos: 1 });
    expect((await got).toString()).toBe('over tls');
    // A chunk response, written straight to the device's TLS connection.
    const chunk = nextMessage(client, 'fb/v1/d/dev-a/in/chunk');
    await h.bus.publishParts('fb/v1/d/dev-a/in/chunk', [
      Buffer.from('head:'),
      Buffer.alloc(70_000, 7),
    ]);
    expect(
      Buffer.compare(await chunk, Buffer.concat([Buffer.from('head:'), Buffer.alloc(70_000, 7)])),
    ).toBe(0);
    await client.endAsync();
  });

  it('with client certificates required, the CN must be the username', async () => {
    h = await startHarness({ bus: { tls: tlsOptions(true) } });
    const a = h.devices.add('dev-a');
    h.devices.add('dev-b');
    const port = h.bus.mqttPort!;

    // No certificate: the TLS handshake itself fails.
    await expect(connect(port, 'dev-a', a.secret)).rejects.toThrow();
    // dev-b's certificate with dev-a's credentials: refused as not authorized.
    await expect(connect(port, 'dev-a', a.secret, 'dev-b')).rejects.toThrow(/authori[sz]ed/i);
    expect(await h.rejections('FB_ERR_BROKER_AUTH')).toBe(1);

    const client = await connect(port, 'dev-a', a.secret, 'dev-a');
    expect(client.connected).toBe(true);
    await client.endAsync();
  });
});
