import { Encoder } from 'cbor-x';
import { describe, expect, it } from 'vitest';

import {
  type CborValue,
  type ManifestMessage,
  ManifestVerifier,
  decodeCbor,
  decodeManifest,
  encodeDeterministic,
  encodeManifest,
  fromHex,
  toHex,
  verifyBody,
} from '@fetchback/shared';

import {
  ASSIGNMENT_KEY,
  DEVICE_ID,
  HW_CLASS,
  NOW_MS,
  RELEASE_KEY,
  ROOT,
  buildManifest,
  plain,
} from './fixtures.js';

const hex = (value: CborValue): string => toHex(encodeDeterministic(value));

describe('core deterministic encoding (RFC 8949 §4.2.1)', () => {
  it('orders map keys by the bytewise order of their encodings: shorter keys first', () => {
    // "" = 60, "a" = 61 61, "b" = 61 62, "aa" = 62 61 61.
    expect(hex({ b: 1, aa: 3, '': 4, a: 2 })).toBe(
      'a4' + '6004' + '616102' + '616201' + '62616103',
    );
  });

  it('orders a 23-character key before a 24-character key whatever their letters', () => {
    const k23 = 'z'.repeat(23);
    const k24 = 'a'.repeat(24);
    const encoded = hex({ [k24]: 0, [k23]: 1 });
    expect(encoded.startsWith('a277' + toHex(new TextEncoder().encode(k23)) + '01')).toBe(true);
  });

  it('orders keys the same way whatever order the object was built in', () => {
    const forward = hex({ rid: 1, obj: new Uint8Array(2), idx: [3], v: 1, t: 'x' });
    const backward = hex({ t: 'x', v: 1, idx: [3], obj: new Uint8Array(2), rid: 1 });
    expect(forward).toBe(backward);
  });

  const integerHeads: [number | bigint, string][] = [
    [0, '00'],
    [23, '17'],
    [24, '1818'],
    [255, '18ff'],
    [256, '190100'],
    [65_535, '19ffff'],
    [65_536, '1a00010000'],
    [2 ** 32 - 1, '1affffffff'],
    [2 ** 32, '1b0000000100000000'],
    [Number.MAX_SAFE_INTEGER, '1b001fffffffffffff'],
    [2n ** 64n - 1n, '1bffffffffffffffff'],
    [-1, '20'],
    [-24, '37'],
    [-25, '3818'],
    [-256, '38ff'],
    [-257, '390100'],
    [-65_537, '3a00010000'],
    [-(2 ** 32) - 1, '3b0000000100000000'],
  ];
  for (const [value, expected] of integerHeads) {
    it(`writes the integer ${value} with its shortest head ${expected}`, () => {
      expect(hex(value)).toBe(expected);
    });
  }

  const lengthHeads: [number, string][] = [
    [23, '57'],
    [24, '5818'],
    [255, '58ff'],
    [256, '590100'],
    [65_535, '59ffff'],
    [65_536, '5a00010000'],
  ];
  for (const [length, expected] of lengthHeads) {
    it(`writes a byte string of ${length} bytes with the shortest length head ${expected}`, () => {
      expect(hex(new Uint8Array(length)).startsWith(expected)).toBe(true);
      expect(hex(new Uint8Array(length)).length).toBe(expected.length + 2 * length);
    });
  }

  it('writes text, array and map lengths with the shortest head too', () => {
    expect(hex('x'.repeat(23)).slice(0, 2)).toBe('77');
    expect(hex('x'.repeat(24)).slice(0, 4)).toBe('7818');
    expect(hex(new Array<number>(24).fill(0)).slice(0, 4)).toBe('9818');
    expect(hex(new Array<number>(256).fill(0)).slice(0, 6)).toBe('990100');
  });

  it('writes false, true and null as simple values and leaves undefined entries out', () => {
    expect(hex({ a: false, b: true, c: null, d: undefined })).toBe(
      'a3' + '6161f4' + '6162f5' + '6163f6',
    );
  });

  it('refuses values with no deterministic encoding here with FB_ERR_ARGUMENT', () => {
    for (const bad of [1.5, 2 ** 53, Number.NaN, 2n ** 64n, -(2n ** 64n) - 1n]) {
      expect(() => encodeDeterministic(bad), String(bad)).toThrow(
        expect.objectContaining({ code: 'FB_ERR_ARGUMENT' }),
      );
    }
  });

  it('decodes integers written with an 8-byte head as numbers while they are safe', () => {
    expect(decodeCbor(fromHex('1b0000000000000001'))).toBe(1);
    expect(decodeCbor(fromHex('1b0000019b6f6a3c00'))).toBe(0x19b6f6a3c00);
    expect(decodeCbor(fromHex('3b0000000100000000'))).toBe(-(2 ** 32) - 1);
    expect(decodeCbor(fromHex('1bffffffffffffffff'))).toBe(2n ** 64n - 1n);
  });
});

describe('signatures survive any conforming re-encoding (docs/protocol.md §3.3, §6.1)', () => {
  // cbor-x's own encoder writes keys in insertion order and map heads in 3 bytes: a
  // conforming but non-deterministic encoding of the same values.
  const cborx = new Encoder({ mapsAsObjects: true, useRecords: false, tagUint8Array: false });

  function reversedKeys(value: unknown): unknown {
    if (value instanceof Uint8Array) return Buffer.from(value);
    if (Array.isArray(value)) return value.map(reversedKeys);
    if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value).reverse();
      return Object.fromEntries(entries.map(([k, v]) => [k, reversedKeys(v)]));
    }
    return value;
  }

  it('a manifest re-encoded by cbor-x in reversed key order still verifies', () => {
    const canonical = encodeManifest(buildManifest());
    const reordered = new Uint8Array(cborx.encode(reversedKeys(decodeManifest(canonical))));
    expect(toHex(reordered)).not.toBe(toHex(canonical));

    const manifest = decodeManifest(reordered);
    expect(Object.keys(manifest.asg.body)[0]).toBe('ackby');
    const verifier = new ManifestVerifier({
      rootPublicKey: ROOT.publicKey,
      deviceId: DEVICE_ID,
      hardwareClass: HW_CLASS,
      maxImageBytes: 1 << 30,
      now: () => NOW_MS,
    });
    expect(verifier.verify(manifest, { lastSequence: 0, securityVersion: 0 }).release.ver).toBe(
      '1.2.3',
    );
    expect(toHex(encodeManifest(manifest))).toBe(toHex(canonical));
  });

  it('each signed body verifies on its own after the cbor-x round trip', () => {
    const signed = buildManifest();
    const decoded = decodeManifest(
      new Uint8Array(cborx.encode(reversedKeys(plain({ ...signed, v: 1, t: 'manifest' })))),
    ) as ManifestMessage;
    expect(
      verifyBody('assignment', decoded.asg.body, decoded.asg.sig, ASSIGNMENT_KEY.publicKey),
    ).toBe(true);
    expect(
      verifyBody('release', decoded.rel.body, decoded.rel.sigs[0]!, RELEASE_KEY.publicKey),
    ).toBe(true);
    expect(verifyBody('cert', decoded.certs[0]!.body, decoded.certs[0]!.sig, ROOT.publicKey)).toBe(
      true,
    );
  });

  it('a signature over a body does not verify for another purpose (domain separation)', () => {
    const { asg } = buildManifest();
    expect(verifyBody('release', asg.body, asg.sig, ASSIGNMENT_KEY.publicKey)).toBe(false);
    expect(verifyBody('ack', asg.body, asg.sig, ASSIGNMENT_KEY.publicKey)).toBe(false);
  });
});
