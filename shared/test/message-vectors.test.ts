/**
 * Fixed hex vectors for every message type (`vectors/messages.json`). A change of the wire
 * format breaks these tests on purpose: if the change is intended, regenerate the file with
 * `FB_WRITE_VECTORS=1 npx vitest run shared/test/message-vectors.test.ts`, review the diff, and
 * update the worked examples in docs/protocol.md.
 *
 * In the JSON, a byte string is written `{ "$bytes": "<hex>" }`.
 */
import { readFileSync, writeFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import {
  type CborValue,
  type ManifestMessage,
  ManifestVerifier,
  type MessageType,
  PROTOCOL_VERSION,
  fromHex,
  keyId,
  releaseDigest,
  decodeAckRequest,
  signingInput,
  toHex,
  verifyAckRequest,
} from '@fetchback/shared';

import {
  ASSIGNMENT_KEY,
  DEVICE_ID,
  HW_CLASS,
  NOW_MS,
  RELEASE_KEY,
  ROOT,
  plain,
  releaseBody,
} from './fixtures.js';
import { CODECS, encodeAs, sampleMessages } from './sample-messages.js';

const VECTORS_URL = new URL('./vectors/messages.json', import.meta.url);

interface Vector {
  name: string;
  type: MessageType;
  value: unknown;
  hex: string;
}

function toJson(value: unknown): unknown {
  if (value instanceof Uint8Array) return { $bytes: toHex(value) };
  if (Array.isArray(value)) return value.map(toJson);
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJson(v)]));
  }
  return value;
}

function fromJson(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(fromJson);
  if (typeof value === 'object' && value !== null) {
    const map = value as Record<string, unknown>;
    if (typeof map.$bytes === 'string') return fromHex(map.$bytes);
    return Object.fromEntries(Object.entries(map).map(([k, v]) => [k, fromJson(v)]));
  }
  return value;
}

function buildVectors(): Vector[] {
  return sampleMessages().map((s) => ({
    name: s.name,
    type: s.type,
    value: toJson(s.value),
    hex: toHex(encodeAs(s.type, s.value)),
  }));
}

if (process.env.FB_WRITE_VECTORS === '1') {
  const file = { format: 'docs/protocol.md §4', vectors: buildVectors() };
  writeFileSync(VECTORS_URL, `${JSON.stringify(file, null, 2)}\n`);
}

const stored = JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as { vectors: Vector[] };

describe('fixed message vectors (docs/protocol.md §4)', () => {
  it('cover every message type', () => {
    const types = new Set(stored.vectors.map((v) => v.type));
    expect([...types].sort()).toEqual(Object.keys(CODECS).sort());
  });

  for (const vector of stored.vectors) {
    it(`${vector.name}: encoding the documented value gives the stored hex`, () => {
      const value = fromJson(vector.value) as object;
      expect(toHex(encodeAs(vector.type, value))).toBe(vector.hex);
    });

    it(`${vector.name}: decoding the stored hex gives the documented value`, () => {
      const decoded = CODECS[vector.type].decode(fromHex(vector.hex));
      const expected = { ...(fromJson(vector.value) as object), v: PROTOCOL_VERSION };
      expect(plain(decoded)).toEqual(plain({ ...expected, t: vector.type }));
    });

    it(`${vector.name}: re-encoding the decoded message gives the same bytes`, () => {
      const decoded = CODECS[vector.type].decode(fromHex(vector.hex)) as object;
      expect(toHex(encodeAs(vector.type, decoded))).toBe(vector.hex);
    });
  }

  it('the stored values are what the fixed seeds and times produce today', () => {
    expect(stored.vectors).toEqual(JSON.parse(JSON.stringify(buildVectors())));
  });

  it('the stored manifest verifies against the root derived from its fixed seed', () => {
    const vector = stored.vectors.find((v) => v.type === 'manifest');
    const manifest = CODECS.manifest.decode(fromHex(vector!.hex)) as ManifestMessage;
    const verifier = new ManifestVerifier({
      rootPublicKey: ROOT.publicKey,
      deviceId: DEVICE_ID,
      hardwareClass: HW_CLASS,
      maxImageBytes: 1 << 30,
      now: () => NOW_MS,
    });
    const verified = verifier.verify(manifest, { lastSequence: 0, securityVersion: 0 });
    expect(verified.assignment.seq).toBe(7);
  });

  it('the stored signed ack_req verifies with the device key it carries, and only with it', () => {
    const vector = stored.vectors.find((v) => v.type === 'ack_req' && v.name.includes('signed'));
    const ack = decodeAckRequest(fromHex(vector!.hex));
    expect(ack.dk).toBeDefined();
    expect(verifyAckRequest(ack, ack.dk!)).toBe(true);
    expect(verifyAckRequest({ ...ack, step: 'rolled_back' }, ack.dk!)).toBe(false);
    expect(verifyAckRequest(ack, ROOT.publicKey)).toBe(false);
  });
});

describe('the worked examples of docs/protocol.md §10', () => {
  const doc = readFileSync(new URL('../../docs/protocol.md', import.meta.url), 'utf8');
  const section = doc.slice(doc.indexOf('## 10. Worked examples'), doc.indexOf('## 11.'));
  const blocks = [...section.matchAll(/```\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const vectorHexes = new Set(stored.vectors.map((v) => v.hex));

  it('every plain hex block is a stored vector, whole or line by line', () => {
    const plainBlocks = blocks.filter((b) => /^[0-9a-f\s]+$/.test(b));
    expect(plainBlocks.length).toBeGreaterThanOrEqual(5);
    for (const block of plainBlocks) {
      const whole = block.replace(/\s+/g, '');
      if (vectorHexes.has(whole)) continue;
      for (const line of block.trim().split('\n')) {
        expect(vectorHexes.has(line.replace(/\s+/g, '')), line.slice(0, 40)).toBe(true);
      }
    }
  });

  it('the annotated blocks hold the same bytes as the vectors and the signing input', () => {
    // Annotated blocks: hex, then an optional `# comment` on each line.
    const hexOf = (block: string) =>
      block
        .split('\n')
        .map((line) => line.split('#')[0]!.replace(/\s+/g, ''))
        .join('');
    const annotated = blocks.filter((b) => !/^[0-9a-f\s]+$/.test(b)).map(hexOf);
    const fetchReq = stored.vectors.find((v) => v.name === 'fetch_req with a window of indices');
    expect(annotated.every((h) => /^[0-9a-f]+$/.test(h))).toBe(true);
    expect(annotated).toContain(fetchReq!.hex);
    expect(annotated).toContain(
      toHex(signingInput('release', releaseBody() as unknown as CborValue)),
    );
  });

  it('lists the fixed keys, key ids and release digest the vectors use', () => {
    for (const key of [ROOT, RELEASE_KEY, ASSIGNMENT_KEY]) {
      expect(section).toContain(toHex(key.publicKey));
      expect(section).toContain(toHex(keyId(key.publicKey)));
    }
    expect(section).toContain(toHex(releaseDigest(releaseBody())));
  });
});
