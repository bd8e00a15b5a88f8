/**
 * ACK_REQ signatures by the device key (`docs/protocol.md` §8.5): they survive the wire (the
 * signed body is re-encoded deterministically on the other side), cover every field, and are
 * refused for any change or any other key.
 */
import { describe, expect, it } from 'vitest';

import {
  type AckRequest,
  decodeAckRequest,
  encodeAckRequest,
  generateKeyPair,
  isFetchbackError,
  signAckRequest,
  verifyAckRequest,
} from '@fetchback/shared';

const device = generateKeyPair();

const ACK: AckRequest = {
  rid: 'ack:7:0011223344556677:committed',
  seq: 7,
  rel: new Uint8Array(32).fill(0x11),
  step: 'committed',
  code: 'OK',
  at: 1_796_000_000_000,
  ver: '1.2.0',
};

/** Signs, then sends through the codec as a device would. */
const onTheWire = (message: AckRequest) => decodeAckRequest(encodeAckRequest(message));

describe('ACK_REQ signatures', () => {
  it('verifies after encoding and decoding, with the key it carries', () => {
    const received = onTheWire(signAckRequest(ACK, device));
    expect(received.dk).toEqual(device.publicKey);
    expect(verifyAckRequest(received, device.publicKey)).toBe(true);
  });

  it('is refused for a change to any field, an added field included', () => {
    const signed = signAckRequest(ACK, device);
    const changes: Partial<Record<string, unknown>>[] = [
      { step: 'rolled_back' },
      { code: 'FB_ERR_HEALTH_CHECK_FAILED' },
      { seq: 8 },
      { at: ACK.at + 1 },
      { ver: '1.1.0' },
      { rel: new Uint8Array(32).fill(0x12) },
      { rid: 'ack:7:0011223344556677:installed' },
      { detail: 'added later' },
      { extra: 1 },
    ];
    for (const change of changes) {
      const tampered = onTheWire({ ...signed, ...change } as AckRequest);
      expect(verifyAckRequest(tampered, device.publicKey), JSON.stringify(change)).toBe(false);
    }
  });

  it('is refused with another key, and an unsigned ACK never verifies', () => {
    const other = generateKeyPair();
    const received = onTheWire(signAckRequest(ACK, device));
    expect(verifyAckRequest(received, other.publicKey)).toBe(false);
    // A signature by another key under this device's `dk`.
    const forged = onTheWire({ ...signAckRequest(ACK, other), dk: device.publicKey });
    expect(verifyAckRequest(forged, device.publicKey)).toBe(false);
    expect(verifyAckRequest(onTheWire(ACK), device.publicKey)).toBe(false);
  });

  it('keeps unknown fields under the signature', () => {
    const withExtra = { ...ACK, ext: 'from a newer agent' } as AckRequest;
    const received = onTheWire(signAckRequest(withExtra, device));
    expect(received.ext).toBe('from a newer agent');
    expect(verifyAckRequest(received, device.publicKey)).toBe(true);
  });

  it('refuses to decode dk without sig, sig without dk, and bad lengths', () => {
    const signed = signAckRequest(ACK, device);
    const cases: [Partial<AckRequest>, string][] = [
      [{ sig: undefined }, 'FB_ERR_MSG_FIELD_MISSING'],
      [{ dk: undefined }, 'FB_ERR_MSG_FIELD_MISSING'],
      [{ dk: new Uint8Array(31) }, 'FB_ERR_MSG_FIELD_LENGTH'],
      [{ sig: new Uint8Array(65) }, 'FB_ERR_MSG_FIELD_LENGTH'],
    ];
    for (const [change, code] of cases) {
      const message = { ...signed, ...change } as Record<string, unknown>;
      for (const key of Object.keys(change)) if (message[key] === undefined) delete message[key];
      const err = (() => {
        try {
          decodeAckRequest(encodeAckRequest(message as unknown as AckRequest));
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(isFetchbackError(err) && err.code, JSON.stringify(Object.keys(change))).toBe(code);
    }
  });
});
