/**
 * Property-based tests (fast-check): decoders never fail in an uncoded way, encode then decode
 * is the identity for every message type, the bitmap form of FETCH_REQ is exact, and the
 * deterministic encoder produces CBOR that any decoder reads back to the same value.
 */
import { Decoder } from 'cbor-x';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  ACK_STEPS,
  type CborValue,
  KEY_ROLES,
  type MessageType,
  MESSAGE_TYPES,
  chunkBitmap,
  encodeDeterministic,
  ManifestVerifier,
  decodeManifest,
  isFetchbackError,
  requestedChunks,
  toHex,
} from '@fetchback/shared';

import { DEVICE_ID, HW_CLASS, NOW_MS, ROOT, buildManifest, plain } from './fixtures.js';

const FRESH = { lastSequence: 0, securityVersion: 0 };
import { CODECS, encodeAs, sampleMessages } from './sample-messages.js';

const RUNS = 300;

/** Decodes or throws a FetchbackError; anything else fails the property. */
function decodesOrRefuses(type: MessageType, bytes: Uint8Array): boolean {
  try {
    CODECS[type].decode(bytes);
    return true;
  } catch (err) {
    if (isFetchbackError(err)) return true;
    throw new Error(`${type} threw a non-coded error: ${String(err)}`);
  }
}

describe('decoders given arbitrary bytes', () => {
  for (const type of MESSAGE_TYPES) {
    it(`${type}: any byte string decodes or throws a FetchbackError`, () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => decodesOrRefuses(type, bytes)),
        { numRuns: RUNS },
      );
    });
  }

  const samples = sampleMessages();
  const mutation = fc.array(
    fc.record({
      kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'cut'),
      at: fc.nat(),
      byte: fc.integer({ min: 0, max: 255 }),
    }),
    { minLength: 1, maxLength: 8 },
  );

  function mutate(input: Uint8Array, steps: { kind: string; at: number; byte: number }[]) {
    let bytes = Array.from(input);
    for (const { kind, at, byte } of steps) {
      const i = bytes.length === 0 ? 0 : at % bytes.length;
      if (kind === 'flip') bytes[i] = (bytes[i] ?? 0) ^ (1 << (byte & 7));
      else if (kind === 'set') bytes[i] = byte;
      else if (kind === 'insert') bytes.splice(i, 0, byte);
      else if (kind === 'delete') bytes.splice(i, 1);
      else bytes = bytes.slice(0, i);
    }
    return Uint8Array.from(bytes);
  }

  for (const sample of samples) {
    it(`${sample.name}: any mutation of it decodes or throws a FetchbackError`, () => {
      const valid = encodeAs(sample.type, sample.value);
      fc.assert(
        fc.property(mutation, (steps) => decodesOrRefuses(sample.type, mutate(valid, steps))),
        { numRuns: RUNS },
      );
    });
  }
});

describe('the verifier given mutated manifests', () => {
  const valid = encodeAs('manifest', buildManifest());
  const verifier = new ManifestVerifier({
    rootPublicKey: ROOT.publicKey,
    deviceId: DEVICE_ID,
    hardwareClass: HW_CLASS,
    maxImageBytes: 1 << 30,
    now: () => NOW_MS,
  });

  it('decode then verify either succeeds unchanged or throws a FetchbackError', () => {
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bytes = Uint8Array.from(valid);
        const i = at % bytes.length;
        bytes[i] = (bytes[i] as number) ^ xor;
        try {
          const verified = verifier.verify(decodeManifest(bytes), FRESH);
          // Every byte is either signed or checked by the decoder, so a flipped manifest that
          // still verifies would have to mean the same thing: it re-encodes to the original.
          expect(toHex(encodeAs('manifest', verified.manifest))).toBe(toHex(valid));
        } catch (err) {
          if (!isFetchbackError(err)) throw err;
        }
      }),
      { numRuns: 500 },
    );
  });
});

// Generators of valid messages (docs/protocol.md §4 bounds).
const digest = fc.uint8Array({ minLength: 32, maxLength: 32 });
const token = (max: number) => fc.stringMatching(new RegExp(`^[A-Za-z0-9._:-]{1,${max}}$`));
const className = fc.stringMatching(/^[A-Za-z0-9._-]{1,64}$/);
const deviceId = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);
/** Any Unicode text of at most `max` UTF-16 code units. */
const freeText = (max: number) =>
  fc.string({ unit: 'grapheme', maxLength: max >> 1 }).filter((t) => t.length <= max);
const seconds = fc.integer({ min: 0, max: 2 ** 40 });
const millis = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
const signature = fc.record({ kid: digest, sig: fc.uint8Array({ minLength: 64, maxLength: 64 }) });
const unknownValue: fc.Arbitrary<CborValue> = fc.oneof(
  fc.integer(),
  // Integers beyond ±(2^53 - 1) stay bigints; smaller ones decode as numbers.
  fc.bigInt({ min: 2n ** 53n, max: 2n ** 64n - 1n }),
  fc.bigInt({ min: -(2n ** 64n), max: -(2n ** 53n) }),
  fc.string({ maxLength: 20 }),
  fc.uint8Array({ maxLength: 20 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 4 }),
);
/** Unknown fields: keys no message defines. */
const unknownFields = fc.dictionary(fc.stringMatching(/^x_[a-z]{1,6}$/), unknownValue, {
  maxKeys: 3,
});

const withUnknown = <T extends object>(arb: fc.Arbitrary<T>) =>
  fc.tuple(arb, unknownFields).map(([m, extra]) => ({ ...extra, ...m }));

const certificate = fc.record({
  body: withUnknown(
    fc.record({
      kid: digest,
      pub: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      role: fc.constantFrom(...KEY_ROLES),
      iss: digest,
      iat: seconds,
      exp: seconds,
    }),
  ),
  sig: signature,
});

const GENERATORS: Record<MessageType, fc.Arbitrary<object>> = {
  manifest: withUnknown(
    fc.record({
      asg: fc.record({
        body: withUnknown(
          fc.record(
            {
              dev: deviceId,
              seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
              rel: digest,
              ro: fc.oneof(fc.constant(''), token(64)),
              iat: seconds,
              exp: seconds,
              ackby: seconds,
            },
            { requiredKeys: ['dev', 'seq', 'rel', 'ro', 'iat', 'exp'] },
          ),
        ),
        sig: signature,
      }),
      rel: fc.record({
        body: withUnknown(
          fc.record({
            name: className,
            ver: fc.stringMatching(/^[0-9A-Za-z.+_-]{1,64}$/),
            secv: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
            hw: className,
            size: fc.integer({ min: 0, max: 2 ** 40 }),
            digest,
            cbytes: fc.integer({ min: 1024, max: 2 ** 20 }),
            ctab: digest,
            iat: seconds,
          }),
        ),
        sigs: fc.array(signature, { minLength: 1, maxLength: 8 }),
      }),
      certs: fc.array(certificate, { minLength: 1, maxLength: 16 }),
    }),
  ),
  fetch_req: withUnknown(
    fc.record(
      {
        rid: fc.integer({ min: 0, max: 2 ** 32 }),
        obj: digest,
        idx: fc.array(fc.integer({ min: 0, max: 2 ** 30 }), { minLength: 1, maxLength: 256 }),
        bm: fc.record({
          base: fc.integer({ min: 0, max: 2 ** 30 }),
          bits: fc.uint8Array({ minLength: 1, maxLength: 64 }),
        }),
      },
      { requiredKeys: ['rid', 'obj', 'idx'] },
    ),
  ),
  fetch_resp: withUnknown(
    fc.oneof(
      fc.record(
        {
          rid: fc.nat(),
          obj: digest,
          idx: fc.integer({ min: 0, max: 2 ** 30 }),
          data: fc.uint8Array({ minLength: 1, maxLength: 2048 }),
        },
        { requiredKeys: ['rid', 'obj', 'data'] },
      ),
      fc.record(
        {
          rid: fc.nat(),
          obj: digest,
          err: fc.stringMatching(/^FB_ERR_[A-Z_]{1,20}$/),
          msg: freeText(256),
        },
        { requiredKeys: ['rid', 'obj', 'err'] },
      ),
    ),
  ),
  ack_req: withUnknown(
    fc.record(
      {
        rid: token(64),
        seq: fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }),
        rel: digest,
        step: fc.constantFrom(...ACK_STEPS),
        code: token(64),
        at: millis,
        ver: freeText(64),
        detail: freeText(256),
      },
      { requiredKeys: ['rid', 'seq', 'rel', 'step', 'code', 'at'] },
    ),
  ),
  ack_resp: withUnknown(
    fc.record(
      { rid: token(64), ok: fc.boolean(), code: token(64), dup: fc.boolean() },
      { requiredKeys: ['rid', 'ok', 'code'] },
    ),
  ),
  status: withUnknown(
    fc.record(
      {
        rid: token(64),
        state: fc.stringMatching(/^[a-z_]{1,32}$/),
        at: millis,
        ver: freeText(64),
        seq: fc.nat(),
        rel: digest,
        have: fc.nat(),
        total: fc.nat(),
        code: token(64),
        detail: freeText(256),
      },
      { requiredKeys: ['rid', 'state', 'at'] },
    ),
  ),
  presence: withUnknown(
    fc.record(
      { online: fc.boolean(), at: millis, ver: freeText(64), agent: freeText(256) },
      { requiredKeys: ['online', 'at'] },
    ),
  ),
};

describe('encode then decode is the identity', () => {
  for (const type of MESSAGE_TYPES) {
    it(`${type}: every generated valid message decodes to itself plus v and t`, () => {
      fc.assert(
        fc.property(GENERATORS[type], (message) => {
          const bytes = encodeAs(type, message);
          const decoded = CODECS[type].decode(bytes);
          expect(plain(decoded)).toEqual(plain({ ...message, v: 1, t: type }));
          expect(toHex(encodeAs(type, decoded as object))).toBe(toHex(bytes));
        }),
        { numRuns: type === 'manifest' ? 100 : RUNS },
      );
    });
  }
});

describe('FETCH_REQ bitmaps (docs/protocol.md §4.2)', () => {
  it('requestedChunks(chunkBitmap(set)) is the set in ascending order', () => {
    fc.assert(
      fc.property(
        fc
          .uniqueArray(fc.integer({ min: 0, max: 100_000 }), {
            minLength: 1,
            maxLength: 300,
            selector: (x) => x,
          })
          .filter((a) => Math.max(...a) - Math.min(...a) < 65_536),
        (set) => {
          const request = { rid: 1, obj: new Uint8Array(32), bm: chunkBitmap(set) };
          expect(requestedChunks(request)).toEqual([...set].sort((a, b) => a - b));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('the bitmap survives the wire and unions with a window of indices', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 100 }),
        fc.array(fc.integer({ min: 0, max: 4000 }), { minLength: 1, maxLength: 20 }),
        (set, idx) => {
          const request = CODECS.fetch_req.decode(
            encodeAs('fetch_req', { rid: 1, obj: new Uint8Array(32), idx, bm: chunkBitmap(set) }),
          ) as Parameters<typeof requestedChunks>[0];
          const union = [...new Set([...set, ...idx])].sort((a, b) => a - b);
          expect(requestedChunks(request)).toEqual(union);
          expect(requestedChunks(request, 5)).toEqual(union.slice(0, 5));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it('bit i of byte j (LSB first) names chunk base + 8j + i', () => {
    const request = {
      rid: 1,
      obj: new Uint8Array(32),
      bm: { base: 10, bits: Uint8Array.of(0x01, 0x80) },
    };
    expect(requestedChunks(request)).toEqual([10, 25]);
  });
});

describe('deterministic encoding', () => {
  const decoder = new Decoder({ mapsAsObjects: true, useRecords: false });
  const value: fc.Arbitrary<CborValue> = fc.letrec<{ v: CborValue }>((tie) => ({
    v: fc.oneof(
      { depthSize: 'small' },
      fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
      fc.maxSafeInteger(),
      fc.string(),
      fc.uint8Array({ maxLength: 40 }),
      fc.boolean(),
      fc.constant(null),
      fc.array(tie('v'), { maxLength: 5 }),
      fc.dictionary(
        fc.string({ maxLength: 8 }).filter((k) => k !== '__proto__'),
        tie('v'),
        { maxKeys: 5 },
      ),
    ),
  })).v;

  it('encodeDeterministic output decodes with cbor-x to an equal value', () => {
    fc.assert(
      fc.property(value, (v) => {
        const decoded = decoder.decode(encodeDeterministic(v)) as unknown;
        expect(plain(normalizeBigInts(decoded))).toEqual(plain(v));
      }),
      { numRuns: RUNS },
    );
  });

  it('encodeDeterministic is the same for any key order', () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.string({ maxLength: 6 }), fc.integer(), { maxKeys: 10 }),
        (d) => {
          const reversed = Object.fromEntries(Object.entries(d).reverse());
          expect(encodeDeterministic(reversed)).toEqual(encodeDeterministic(d));
        },
      ),
      { numRuns: RUNS },
    );
  });
});

/** cbor-x returns bigints for 8-byte heads; the encoder only writes them beyond 2^32. */
function normalizeBigInts(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (value instanceof Uint8Array) return value;
  if (Array.isArray(value)) return value.map(normalizeBigInts);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeBigInts(v)]));
  }
  return value;
}
