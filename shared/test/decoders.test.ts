/**
 * Every decoder: round trips, unknown fields kept, and a table of malformed inputs each refused
 * with its own code (docs/protocol.md §3, §4, §9).
 */
import { describe, expect, it } from 'vitest';

import {
  type CborValue,
  type ErrorCode,
  LIMITS,
  type MessageType,
  MESSAGE_TYPES,
  PROTOCOL_VERSION,
  concatBytes,
  encodeDeterministic,
  fromHex,
  isFetchbackError,
  toHex,
} from '@fetchback/shared';

import { type Loose, plain } from './fixtures.js';
import { CODECS, encodeAs, sampleMessages } from './sample-messages.js';

const SAMPLES = sampleMessages();

function sampleOf(type: MessageType): Record<string, unknown> {
  return structuredClone(SAMPLES.find((s) => s.type === type)!.value);
}

function wireMap(type: MessageType): Record<string, unknown> {
  return { ...sampleOf(type), v: PROTOCOL_VERSION, t: type };
}

/** A CBOR map written entry by entry, so tests can place raw (even malformed) items. */
function rawMap(entries: readonly (readonly [Uint8Array, Uint8Array])[]): Uint8Array {
  const count = entries.length;
  const head = count < 24 ? Uint8Array.of(0xa0 | count) : Uint8Array.of(0xb8, count);
  return concatBytes([head, ...entries.flat()]);
}

const enc = (value: unknown): Uint8Array => encodeDeterministic(value as CborValue);

/** The valid message of `type` with fields replaced (`undefined` removes one) and raw extras. */
function withFields(
  type: MessageType,
  fields: Record<string, unknown>,
  raw: readonly (readonly [Uint8Array, Uint8Array])[] = [],
): Uint8Array {
  const map: Record<string, unknown> = { ...wireMap(type), ...fields };
  const entries = Object.entries(map)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => [enc(k), enc(v)] as const);
  return rawMap([...entries, ...raw]);
}

/** The valid message of `type` with one extra field whose value is the raw hex. */
function withRaw(type: MessageType, rawHex: string): Uint8Array {
  return withFields(type, {}, [[enc('zz'), fromHex(rawHex)]]);
}

/** The valid manifest after `mutate` changed its decoded form. */
function manifestWith(mutate: (m: Loose) => void): Uint8Array {
  const map = wireMap('manifest');
  mutate(map);
  return enc(map);
}

const MAX_BYTES: Record<MessageType, number> = {
  manifest: LIMITS.maxManifestBytes,
  fetch_req: LIMITS.maxControlBytes,
  fetch_resp: LIMITS.maxFetchRespBytes,
  ack_req: LIMITS.maxControlBytes,
  ack_resp: LIMITS.maxControlBytes,
  status: LIMITS.maxControlBytes,
  presence: LIMITS.maxControlBytes,
};

interface Case {
  readonly type: MessageType;
  readonly what: string;
  readonly bytes: () => Uint8Array;
  readonly code: ErrorCode;
}

/** Malformations every decoder must refuse the same way. */
function genericCases(type: MessageType): Case[] {
  const valid = () => encodeAs(type, sampleOf(type));
  const other = MESSAGE_TYPES.find((t) => t !== type)!;
  const c = (what: string, bytes: () => Uint8Array, code: ErrorCode): Case => ({
    type,
    what,
    bytes,
    code,
  });
  return [
    c('an empty payload', () => new Uint8Array(0), 'FB_ERR_CBOR_MALFORMED'),
    c('truncated CBOR', () => valid().subarray(0, valid().length - 1), 'FB_ERR_CBOR_MALFORMED'),
    c('CBOR cut after its first byte', () => valid().subarray(0, 1), 'FB_ERR_CBOR_MALFORMED'),
    c('trailing bytes', () => concatBytes([valid(), Uint8Array.of(0)]), 'FB_ERR_CBOR_MALFORMED'),
    c('an array, not a map', () => enc([1, 'fetch_req']), 'FB_ERR_MSG_NOT_MAP'),
    c('a bare integer, not a map', () => enc(1), 'FB_ERR_MSG_NOT_MAP'),
    c('an unknown major version 2', () => withFields(type, { v: 2 }), 'FB_ERR_MSG_VERSION'),
    c('version 0', () => withFields(type, { v: 0 }), 'FB_ERR_MSG_VERSION'),
    c('a missing version', () => withFields(type, { v: undefined }), 'FB_ERR_MSG_FIELD_MISSING'),
    c('a version of text', () => withFields(type, { v: '1' }), 'FB_ERR_MSG_FIELD_TYPE'),
    c('another message type', () => withFields(type, { t: other }), 'FB_ERR_MSG_TYPE'),
    c('a missing message type', () => withFields(type, { t: undefined }), 'FB_ERR_MSG_TYPE'),
    c('a tag (tag 1, epoch time)', () => withRaw(type, 'c100'), 'FB_ERR_CBOR_UNSUPPORTED'),
    c('a self-described CBOR tag', () => withRaw(type, 'd9d9f700'), 'FB_ERR_CBOR_UNSUPPORTED'),
    c('an indefinite-length map', () => withRaw(type, 'bf6161ff'), 'FB_ERR_CBOR_UNSUPPORTED'),
    c(
      'an indefinite-length byte string',
      () => withRaw(type, '5f4101ff'),
      'FB_ERR_CBOR_UNSUPPORTED',
    ),
    c(
      'a __proto__ key',
      () => withFields(type, {}, [[enc('__proto__'), enc({ polluted: true })]]),
      'FB_ERR_CBOR_UNSUPPORTED',
    ),
    c(
      'a __proto__ key in a nested map',
      () => withRaw(type, 'a1' + '695f5f70726f746f5f5f' + 'a0'),
      'FB_ERR_CBOR_UNSUPPORTED',
    ),
    c(
      'an integer map key',
      () => withFields(type, {}, [[enc(1), enc(2)]]),
      'FB_ERR_CBOR_UNSUPPORTED',
    ),
    c(
      'a duplicate map key',
      () => withFields(type, {}, [[enc('v'), enc(PROTOCOL_VERSION)]]),
      'FB_ERR_CBOR_MALFORMED',
    ),
    c('invalid UTF-8 in a text string', () => withRaw(type, '62c328'), 'FB_ERR_CBOR_MALFORMED'),
    c('the simple value undefined', () => withRaw(type, 'f7'), 'FB_ERR_CBOR_UNSUPPORTED'),
    c('a lone break byte', () => withRaw(type, 'ff'), 'FB_ERR_CBOR_UNSUPPORTED'),
    c('a truncated double-precision float', () => withRaw(type, 'fb0000'), 'FB_ERR_CBOR_MALFORMED'),
    c(
      'a reserved head (additional information 28)',
      () => withRaw(type, '1c'),
      'FB_ERR_CBOR_MALFORMED',
    ),
    c(
      'a text string declaring 2^32 bytes',
      () => withRaw(type, '7b0000000100000000'),
      'FB_ERR_CBOR_MALFORMED',
    ),
    c(
      'a huge declared array (2^32 items)',
      () => withRaw(type, '9b0000000100000000'),
      'FB_ERR_CBOR_TOO_MANY_ITEMS',
    ),
    c(
      'an array declaring more items than bytes follow',
      () => withRaw(type, '9903e8'),
      'FB_ERR_CBOR_MALFORMED',
    ),
    c(
      'an array of 5,000 items',
      () => withFields(type, { zz: new Array(5000).fill(0) }),
      'FB_ERR_CBOR_TOO_MANY_ITEMS',
    ),
    c(
      'deeply nested maps',
      () => withRaw(type, 'a16161'.repeat(20) + '00'),
      'FB_ERR_CBOR_TOO_DEEP',
    ),
    c('deeply nested arrays', () => withRaw(type, '81'.repeat(40) + '00'), 'FB_ERR_CBOR_TOO_DEEP'),
    c(
      'a payload over its size limit',
      () => withFields(type, { zz: new Uint8Array(MAX_BYTES[type]) }),
      'FB_ERR_CBOR_TOO_LARGE',
    ),
  ];
}

const bytes = (n: number, fill = 0): Uint8Array => new Uint8Array(n).fill(fill);
const f = (type: MessageType, what: string, fields: Record<string, unknown>, code: ErrorCode) => ({
  type,
  what,
  bytes: () => withFields(type, fields),
  code,
});
const m = (what: string, mutate: (m: Loose) => void, code: ErrorCode): Case => ({
  type: 'manifest',
  what,
  bytes: () => manifestWith(mutate),
  code,
});

const SPECIFIC_CASES: Case[] = [
  // MANIFEST
  m('a device id with the wildcard +', (x) => (x.asg.body.dev = 'dev+1'), 'FB_ERR_MSG_FIELD_RANGE'),
  m('a device id with the wildcard #', (x) => (x.asg.body.dev = 'dev#'), 'FB_ERR_MSG_FIELD_RANGE'),
  m('a device id with a /', (x) => (x.asg.body.dev = 'a/b'), 'FB_ERR_MSG_FIELD_RANGE'),
  m('a device id starting with $', (x) => (x.asg.body.dev = '$SYS'), 'FB_ERR_MSG_FIELD_RANGE'),
  m(
    'a device id of 65 characters',
    (x) => (x.asg.body.dev = 'd'.repeat(65)),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m('an empty device id', (x) => (x.asg.body.dev = ''), 'FB_ERR_MSG_FIELD_LENGTH'),
  m('a sequence number of 0', (x) => (x.asg.body.seq = 0), 'FB_ERR_MSG_FIELD_RANGE'),
  m('a negative image size', (x) => (x.rel.body.size = -1), 'FB_ERR_MSG_FIELD_RANGE'),
  m('an image size above 1 TiB', (x) => (x.rel.body.size = 2 ** 40 + 1), 'FB_ERR_MSG_FIELD_RANGE'),
  m(
    'an image size of 2^64 - 1',
    (x) => (x.rel.body.size = 2n ** 64n - 1n),
    'FB_ERR_MSG_FIELD_RANGE',
  ),
  m('an image size of text', (x) => (x.rel.body.size = '200000'), 'FB_ERR_MSG_FIELD_TYPE'),
  m('a chunk size below 1 KiB', (x) => (x.rel.body.cbytes = 512), 'FB_ERR_MSG_FIELD_RANGE'),
  m('a chunk size above 1 MiB', (x) => (x.rel.body.cbytes = 2 ** 20 + 1), 'FB_ERR_MSG_FIELD_RANGE'),
  m(
    'an image digest of 33 bytes',
    (x) => (x.rel.body.digest = bytes(33)),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m('a chunk table digest of text', (x) => (x.rel.body.ctab = 'ab'), 'FB_ERR_MSG_FIELD_TYPE'),
  m('a hardware class with a space', (x) => (x.rel.body.hw = 'rpi 4'), 'FB_ERR_MSG_FIELD_RANGE'),
  m(
    'a version of 65 characters',
    (x) => (x.rel.body.ver = '1'.repeat(65)),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m(
    'a security version above 2^32 - 1',
    (x) => (x.rel.body.secv = 2 ** 32),
    'FB_ERR_MSG_FIELD_RANGE',
  ),
  m('a release with no signature', (x) => (x.rel.sigs = []), 'FB_ERR_MSG_FIELD_LENGTH'),
  m(
    'a release with 9 signatures',
    (x) => (x.rel.sigs = new Array(9).fill(x.rel.sigs[0])),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m(
    '17 certificates',
    (x) => (x.certs = new Array(17).fill(x.certs[0])),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m('no certificates', (x) => (x.certs = []), 'FB_ERR_MSG_FIELD_LENGTH'),
  m('a certificate role "root"', (x) => (x.certs[0].body.role = 'root'), 'FB_ERR_MSG_FIELD_RANGE'),
  m(
    'a certified public key of 31 bytes',
    (x) => (x.certs[0].body.pub = bytes(31)),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m('a signature of 63 bytes', (x) => (x.asg.sig.sig = bytes(63)), 'FB_ERR_MSG_FIELD_LENGTH'),
  m(
    'a signature key id of 31 bytes',
    (x) => (x.rel.sigs[0].kid = bytes(31)),
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  m('a missing assignment', (x) => delete x.asg, 'FB_ERR_MSG_FIELD_MISSING'),
  m('a missing rollout id', (x) => delete x.asg.body.ro, 'FB_ERR_MSG_FIELD_MISSING'),
  m('a missing assignment signature', (x) => delete x.asg.sig, 'FB_ERR_MSG_FIELD_MISSING'),
  m('an assignment body of text', (x) => (x.asg.body = 'body'), 'FB_ERR_MSG_FIELD_TYPE'),
  m('a certificate that is an array', (x) => (x.certs[0] = [1]), 'FB_ERR_MSG_FIELD_TYPE'),
  {
    type: 'manifest',
    what: 'an expiry of 1.5 (floating point)',
    bytes: () => {
      const marked = toHex(manifestWith((x) => (x.asg.body.exp = 0x12345678)));
      return fromHex(marked.replace('1a12345678', 'fb3ff8000000000000'));
    },
    code: 'FB_ERR_MSG_FIELD_TYPE',
  },
  {
    type: 'manifest',
    what: 'an expiry of NaN (half-precision float)',
    bytes: () => {
      const marked = toHex(manifestWith((x) => (x.asg.body.exp = 0x12345678)));
      return fromHex(marked.replace('1a12345678', 'f97e00'));
    },
    code: 'FB_ERR_MSG_FIELD_TYPE',
  },

  // FETCH_REQ
  f('fetch_req', 'a request id of text', { rid: 'x' }, 'FB_ERR_MSG_FIELD_TYPE'),
  f('fetch_req', 'a negative request id', { rid: -1 }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('fetch_req', 'an object digest of 33 bytes', { obj: bytes(33) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('fetch_req', 'neither indices nor bitmap', { idx: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),
  f(
    'fetch_req',
    'a window of 257 indices',
    { idx: new Array(257).fill(1) },
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  f('fetch_req', 'an empty window', { idx: [] }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('fetch_req', 'a negative chunk index', { idx: [-1] }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('fetch_req', 'a chunk index beyond 2^30', { idx: [2 ** 30 + 1] }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('fetch_req', 'a chunk index of text', { idx: ['0'] }, 'FB_ERR_MSG_FIELD_TYPE'),
  f(
    'fetch_req',
    'a bitmap of 8,193 bytes',
    { bm: { base: 0, bits: bytes(8193) } },
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  f('fetch_req', 'an empty bitmap', { bm: { base: 0, bits: bytes(0) } }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('fetch_req', 'a bitmap that is not a map', { bm: bytes(4) }, 'FB_ERR_MSG_FIELD_TYPE'),
  f(
    'fetch_req',
    'a bitmap without a base',
    { bm: { bits: bytes(1, 1) } },
    'FB_ERR_MSG_FIELD_MISSING',
  ),

  // FETCH_RESP
  f('fetch_resp', 'both data and a refusal', { err: 'FB_ERR_BUSY' }, 'FB_ERR_MSG_FIELD_MISSING'),
  f('fetch_resp', 'neither data nor a refusal', { data: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),
  f('fetch_resp', 'empty chunk data', { data: bytes(0) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('fetch_resp', 'chunk data over 1 MiB', { data: bytes(2 ** 20 + 1) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f(
    'fetch_resp',
    'a refusal code with a space',
    { data: undefined, err: 'FB ERR' },
    'FB_ERR_MSG_FIELD_RANGE',
  ),
  f('fetch_resp', 'a chunk index of -5', { idx: -5 }, 'FB_ERR_MSG_FIELD_RANGE'),
  f(
    'fetch_resp',
    'a message of 257 characters',
    { msg: 'm'.repeat(257) },
    'FB_ERR_MSG_FIELD_LENGTH',
  ),

  // ACK_REQ
  f('ack_req', 'an unknown step', { step: 'exploded' }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('ack_req', 'a request id with +', { rid: 'a+b' }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('ack_req', 'a request id with #', { rid: 'a#' }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('ack_req', 'a request id with /', { rid: 'a/b' }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('ack_req', 'a request id of 65 characters', { rid: 'r'.repeat(65) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('ack_req', 'an empty request id', { rid: '' }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('ack_req', 'a release digest of 31 bytes', { rel: bytes(31) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('ack_req', 'a missing sequence number', { seq: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),
  f(
    'ack_req',
    'a detail of 257 characters',
    { detail: 'd'.repeat(257) },
    'FB_ERR_MSG_FIELD_LENGTH',
  ),
  f('ack_req', 'a negative time', { at: -1 }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('ack_req', 'a code of 65 characters', { code: 'C'.repeat(65) }, 'FB_ERR_MSG_FIELD_LENGTH'),

  // ACK_RESP
  f('ack_resp', 'ok of text', { ok: 'yes' }, 'FB_ERR_MSG_FIELD_TYPE'),
  f('ack_resp', 'dup of 1', { dup: 1 }, 'FB_ERR_MSG_FIELD_TYPE'),
  f('ack_resp', 'a missing code', { code: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),

  // STATUS
  f(
    'status',
    'a state with capitals and punctuation',
    { state: 'Down!' },
    'FB_ERR_MSG_FIELD_RANGE',
  ),
  f('status', 'a state of 33 characters', { state: 's'.repeat(33) }, 'FB_ERR_MSG_FIELD_LENGTH'),
  f('status', 'a negative chunk count', { have: -1 }, 'FB_ERR_MSG_FIELD_RANGE'),
  f('status', 'a missing request id', { rid: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),

  // PRESENCE
  f('presence', 'a missing online flag', { online: undefined }, 'FB_ERR_MSG_FIELD_MISSING'),
  f('presence', 'a time of text', { at: 'now' }, 'FB_ERR_MSG_FIELD_TYPE'),
  f('presence', 'an online flag of 1', { online: 1 }, 'FB_ERR_MSG_FIELD_TYPE'),
];

function codeOf(decode: (b: Uint8Array) => unknown, input: Uint8Array): string {
  try {
    decode(input);
  } catch (err) {
    return isFetchbackError(err) ? err.code : `not a FetchbackError: ${String(err)}`;
  }
  return 'decoded without error';
}

describe('every decoder round-trips and keeps unknown fields', () => {
  for (const sample of SAMPLES) {
    it(`${sample.name}: decode(encode(message)) is the message plus v and t`, () => {
      const decoded = CODECS[sample.type].decode(encodeAs(sample.type, sample.value));
      expect(plain(decoded)).toEqual(plain({ ...sample.value, v: 1, t: sample.type }));
    });

    it(`${sample.name}: unknown fields, nested ones included, survive decoding`, () => {
      const extra = { zz: { nested: [1, 'two', Uint8Array.of(3)] }, n: 2n ** 60n };
      const decoded = CODECS[sample.type].decode(
        encodeAs(sample.type, { ...sample.value, ...extra }),
      ) as Record<string, unknown>;
      expect(plain(decoded.zz)).toEqual(plain(extra.zz));
      expect(decoded.n).toBe(2n ** 60n);
    });
  }

  it('an unknown field inside a signed manifest body survives decoding', () => {
    const input = manifestWith((x) => (x.rel.body.note = 'kept'));
    const decoded = CODECS.manifest.decode(input) as { rel: { body: { note: string } } };
    expect(decoded.rel.body.note).toBe('kept');
  });

  it('a direct assignment (empty rollout id) decodes, and an empty optional text field too', () => {
    const input = manifestWith((x) => (x.asg.body.ro = ''));
    const decoded = CODECS.manifest.decode(input) as { asg: { body: { ro: string } } };
    expect(decoded.asg.body.ro).toBe('');
    expect(() => CODECS.ack_req.decode(withFields('ack_req', { ver: '' }))).not.toThrow();
  });

  it('a float holding an integral value is read as that integer (docs/protocol.md §3.2)', () => {
    const marked = toHex(withFields('presence', { at: 0x12345678 }));
    const input = fromHex(marked.replace('1a12345678', 'f93c00'));
    expect((CODECS.presence.decode(input) as { at: unknown }).at).toBe(1);
  });

  it('a version 1 message with a minor-version field is accepted', () => {
    expect(() => CODECS.presence.decode(withFields('presence', { minor: 7 }))).not.toThrow();
  });
});

describe('every decoder refuses malformed input with its own code', () => {
  const cases = [...MESSAGE_TYPES.flatMap(genericCases), ...SPECIFIC_CASES];

  it('the table holds at least 20 cases per decoder', () => {
    for (const type of MESSAGE_TYPES) {
      expect(cases.filter((c) => c.type === type).length, type).toBeGreaterThanOrEqual(20);
    }
  });

  for (const c of cases) {
    it(`${c.type}: refuses ${c.what} with ${c.code}`, () => {
      expect(codeOf(CODECS[c.type].decode, c.bytes())).toBe(c.code);
    });
  }
});

describe('decoder limits sit exactly where docs/protocol.md §9 puts them', () => {
  const presence = (extra: unknown) => withFields('presence', { zz: extra });
  const nested = (depth: number): unknown => (depth === 0 ? 0 : [nested(depth - 1)]);
  const itemsBefore = 1 + 2 * Object.keys(wireMap('presence')).length + 2;

  it('accepts containers nested 8 deep (the message map is depth 1) and refuses 9', () => {
    expect(() => CODECS.presence.decode(presence(nested(7)))).not.toThrow();
    expect(codeOf(CODECS.presence.decode, presence(nested(8)))).toBe('FB_ERR_CBOR_TOO_DEEP');
  });

  it('accepts 4,352 data items in a message and refuses 4,353', () => {
    const fill = (n: number) => new Array<number>(n).fill(0);
    expect(() => CODECS.presence.decode(presence(fill(4352 - itemsBefore)))).not.toThrow();
    expect(codeOf(CODECS.presence.decode, presence(fill(4353 - itemsBefore)))).toBe(
      'FB_ERR_CBOR_TOO_MANY_ITEMS',
    );
  });

  it('accepts a control message of exactly 16,384 bytes and refuses one byte more', () => {
    const sized = (total: number) => {
      const base = withFields('presence', { zz: new Uint8Array(0) }).length;
      // A byte string of n >= 256 bytes has a 3-byte head instead of the 1-byte head of 0.
      return withFields('presence', { zz: new Uint8Array(total - base - 2) });
    };
    expect(sized(LIMITS.maxControlBytes).length).toBe(16_384);
    expect(() => CODECS.presence.decode(sized(LIMITS.maxControlBytes))).not.toThrow();
    expect(codeOf(CODECS.presence.decode, sized(LIMITS.maxControlBytes + 1))).toBe(
      'FB_ERR_CBOR_TOO_LARGE',
    );
  });

  it('decodes a FETCH_RESP with a full 1 MiB chunk, and quickly', () => {
    const data = new Uint8Array(LIMITS.maxChunkBytes).fill(7);
    const input = withFields('fetch_resp', { data });
    const started = performance.now();
    const decoded = CODECS.fetch_resp.decode(input) as { data: Uint8Array };
    expect(decoded.data.length).toBe(LIMITS.maxChunkBytes);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
