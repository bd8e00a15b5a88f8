/**
 * Device keys in the back phase (`docs/protocol.md` §8.5), over the embedded broker: the first
 * signed ACK pins the device's key; afterwards an unsigned ACK, one by another key and a forged
 * signature are each refused with FB_ERR_ACK_SIGNATURE and not recorded; a signed ACK is kept
 * with its bytes, which verify again later with the pinned key.
 */
import {
  type AckRequest,
  decodeAckRequest,
  decodeAckResponse,
  encodeAckRequest,
  fromHex,
  generateKeyPair,
  signAckRequest,
  verifyAckRequest,
} from '@fetchback/shared';
import type { MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';

import {
  type Harness,
  makeRelease,
  nextMessage,
  startHarness,
} from '../support/delivery-harness.js';

describe('ACK signatures by the device key', () => {
  let h: Harness;
  afterEach(async () => {
    await h.close();
  });

  const setUp = async (opts: { requireSignedAcks?: boolean } = {}) => {
    h = await startHarness({ delivery: opts });
    const d = h.devices.add('dev-1');
    const release = makeRelease(h.keys, { id: 'r1', sizeBytes: 4096, chunkBytes: 1024 });
    h.releases.add(release);
    const client = await h.connect(d.id, d.secret);
    await client.subscribeAsync('fb/v1/d/dev-1/in/#', { qos: 1 });
    const { seq } = h.delivery.assignments.assign('dev-1', 'r1');
    const ack = (rid: string, step: AckRequest['step'] = 'downloaded'): AckRequest => ({
      rid,
      seq,
      rel: fromHex(release.record.statementDigest),
      step,
      code: 'OK',
      at: 1,
    });
    return { client, ack };
  };

  const send = async (client: MqttClient, message: AckRequest) => {
    const answer = nextMessage(client, 'fb/v1/d/dev-1/in/ack');
    await client.publishAsync('fb/v1/d/dev-1/out/ack', Buffer.from(encodeAckRequest(message)), {
      qos: 1,
    });
    return decodeAckResponse(await answer);
  };

  const recorded = () =>
    h.db.prepare('SELECT request_id, signature, request FROM acks ORDER BY rowid').all() as {
      request_id: string;
      signature: Buffer | null;
      request: Buffer | null;
    }[];

  it('pins the key of the first signed ACK and keeps the signed bytes as proof', async () => {
    const { client, ack } = await setUp();
    const key = generateKeyPair();

    expect(await send(client, signAckRequest(ack('a-1'), key))).toMatchObject({ ok: true });

    expect(h.delivery.back.deviceKey('dev-1')).toEqual(key.publicKey);
    const [row] = recorded();
    expect(row?.signature).not.toBeNull();
    const proof = decodeAckRequest(new Uint8Array(row!.request!));
    expect(verifyAckRequest(proof, key.publicKey)).toBe(true);
    expect(proof.step).toBe('downloaded');
  });

  it('refuses, once a key is pinned, unsigned ACKs, other keys and forged signatures', async () => {
    const { client, ack } = await setUp();
    const key = generateKeyPair();
    const other = generateKeyPair();
    await send(client, signAckRequest(ack('a-1'), key));

    const forged = { ...signAckRequest(ack('a-4', 'committed'), other), dk: key.publicKey };
    for (const message of [
      ack('a-2', 'installed'),
      signAckRequest(ack('a-3', 'installed'), other),
      forged,
    ]) {
      expect(await send(client, message)).toMatchObject({
        ok: false,
        code: 'FB_ERR_ACK_SIGNATURE',
      });
    }

    expect(recorded().map((r) => r.request_id)).toEqual(['a-1']);
    expect(await h.rejections('FB_ERR_ACK_SIGNATURE')).toBe(3);
    expect(await send(client, signAckRequest(ack('a-5', 'installed'), key))).toMatchObject({
      ok: true,
    });
  });

  it('accepts unsigned ACKs until a key is pinned, unless signatures are required', async () => {
    const lenient = await setUp();
    expect(await send(lenient.client, lenient.ack('u-1'))).toMatchObject({ ok: true });
    expect(recorded()[0]?.signature).toBeNull();
    await h.close();

    const strict = await setUp({ requireSignedAcks: true });
    expect(await send(strict.client, strict.ack('u-1'))).toMatchObject({
      ok: false,
      code: 'FB_ERR_ACK_SIGNATURE',
    });
    expect(recorded()).toEqual([]);
  });

  it('with a key pinned at registration, refuses a first ACK by another key', async () => {
    const { client, ack } = await setUp();
    const provisioned = generateKeyPair();
    h.delivery.back.pinDeviceKey('dev-1', provisioned.publicKey, 1);

    const intruder = generateKeyPair();
    expect(await send(client, signAckRequest(ack('a-1'), intruder))).toMatchObject({
      ok: false,
      code: 'FB_ERR_ACK_SIGNATURE',
    });
    expect(await send(client, signAckRequest(ack('a-2'), provisioned))).toMatchObject({
      ok: true,
    });
    expect(recorded().map((r) => r.request_id)).toEqual(['a-2']);
  });

  it('pins a new key after the operator forgets the old one', async () => {
    const { client, ack } = await setUp();
    const lost = generateKeyPair();
    const replacement = generateKeyPair();
    await send(client, signAckRequest(ack('a-1'), lost));

    expect(h.delivery.back.forgetDeviceKey('dev-1')).toBe(true);
    expect(await send(client, signAckRequest(ack('a-2', 'installed'), replacement))).toMatchObject({
      ok: true,
    });
    expect(h.delivery.back.deviceKey('dev-1')).toEqual(replacement.publicKey);
  });
});
