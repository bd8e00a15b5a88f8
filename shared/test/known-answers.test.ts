import { randomBytes } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import {
  ChunkTable,
  ChunkTableBuilder,
  type HashImpl,
  type SignatureImpl,
  bytesEqual,
  chunkCount,
  chunkLength,
  createSha256,
  fromHex,
  generateKeyPair,
  isFetchbackError,
  keyId,
  publicKeyOf,
  sha256,
  signBytes,
  toHex,
  verifyBytes,
} from '@fetchback/shared';

import ed25519Vectors from './vectors/ed25519-rfc8032.json' with { type: 'json' };
import sha256Vectors from './vectors/sha256-fips180.json' with { type: 'json' };

const IMPLS: HashImpl[] = ['node', 'noble'];
const SIGNATURE_IMPLS: SignatureImpl[] = ['node', 'noble'];

/** ed25519's group order L (RFC 8032 §5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** The signature with S replaced by S + L, still below 2^256: same point, non-canonical S. */
function withSPlusL(signature: Uint8Array): Uint8Array {
  let s = 0n;
  for (let i = 63; i >= 32; i--) s = (s << 8n) | BigInt(signature[i] as number);
  s += L;
  const out = Uint8Array.from(signature);
  for (let i = 32; i < 64; i++) {
    out[i] = Number(s & 0xffn);
    s >>= 8n;
  }
  return out;
}

function messageOf(v: { ascii: string; repeat: number }): Uint8Array {
  return new TextEncoder().encode(v.ascii.repeat(v.repeat));
}

describe('ed25519 known answers (RFC 8032 §7.1)', () => {
  for (const v of ed25519Vectors.vectors) {
    const secretKey = fromHex(v.secretKey);
    const message = fromHex(v.message);
    const signature = fromHex(v.signature);

    for (const impl of SIGNATURE_IMPLS) {
      it(`${v.name}: publicKeyOf (${impl}) derives the published public key`, () => {
        expect(toHex(publicKeyOf(secretKey, impl))).toBe(v.publicKey);
      });
    }

    for (const impl of SIGNATURE_IMPLS) {
      it(`${v.name}: signBytes (${impl}) produces the published signature`, () => {
        expect(toHex(signBytes(secretKey, message, impl))).toBe(v.signature);
      });
    }

    for (const impl of SIGNATURE_IMPLS) {
      it(`${v.name}: verifyBytes (${impl}) accepts the published signature`, () => {
        expect(verifyBytes(fromHex(v.publicKey), message, signature, impl)).toBe(true);
      });

      it(`${v.name}: verifyBytes (${impl}) refuses the signature with any one bit flipped`, () => {
        for (const at of [0, 31, 32, 63]) {
          const bad = Uint8Array.from(signature);
          bad[at] = (bad[at] as number) ^ 0x01;
          expect(verifyBytes(fromHex(v.publicKey), message, bad, impl)).toBe(false);
        }
      });

      it(`${v.name}: verifyBytes (${impl}) refuses another message`, () => {
        const other = Uint8Array.of(...message, 0x00);
        expect(verifyBytes(fromHex(v.publicKey), other, signature, impl)).toBe(false);
      });

      it(`${v.name}: verifyBytes (${impl}) refuses S + L (RFC 8032 §5.1.7)`, () => {
        expect(verifyBytes(fromHex(v.publicKey), message, withSPlusL(signature), impl)).toBe(false);
      });
    }
  }

  it('both verifiers agree on random keys, messages and corrupted signatures', () => {
    for (let i = 0; i < 50; i++) {
      const key = generateKeyPair();
      const message = randomBytes(i * 7);
      const signature = signBytes(key.secretKey, message);
      expect(toHex(signBytes(key.secretKey, message, 'noble'))).toBe(toHex(signature));
      expect(toHex(publicKeyOf(key.secretKey, 'noble'))).toBe(toHex(key.publicKey));
      if (i % 2 === 1) signature[i % 64] = (signature[i % 64] as number) ^ (1 << (i % 8));
      const verdicts = SIGNATURE_IMPLS.map((impl) =>
        verifyBytes(key.publicKey, message, signature, impl),
      );
      expect(verdicts).toEqual([i % 2 === 0, i % 2 === 0]);
    }
  });

  it('verifyBytes returns false, never throws, for keys and signatures of the wrong length', () => {
    const v = ed25519Vectors.vectors[0]!;
    expect(verifyBytes(new Uint8Array(31), new Uint8Array(0), fromHex(v.signature))).toBe(false);
    expect(verifyBytes(fromHex(v.publicKey), new Uint8Array(0), new Uint8Array(63))).toBe(false);
    expect(verifyBytes(new Uint8Array(32).fill(0xff), new Uint8Array(0), new Uint8Array(64))).toBe(
      false,
    );
  });

  it('signBytes and publicKeyOf refuse a key of the wrong length (FB_ERR_KEY_INVALID)', () => {
    expect(() => signBytes(new Uint8Array(31), new Uint8Array(0))).toThrow(
      expect.objectContaining({ code: 'FB_ERR_KEY_INVALID' }),
    );
    expect(() => publicKeyOf(new Uint8Array(64))).toThrow(
      expect.objectContaining({ code: 'FB_ERR_KEY_INVALID' }),
    );
  });

  it('a key id is the SHA-256 of the 32-byte public key', () => {
    const pub = fromHex(ed25519Vectors.vectors[0]!.publicKey);
    expect(toHex(keyId(pub))).toBe(toHex(sha256(pub, 'noble')));
  });
});

describe('SHA-256 known answers (FIPS 180-4 examples)', () => {
  for (const v of sha256Vectors.vectors) {
    for (const impl of IMPLS) {
      it(`${v.name}: sha256 with the ${impl} implementation gives the published digest`, () => {
        expect(toHex(sha256(messageOf(v), impl))).toBe(v.digest);
      });

      it(`${v.name}: createSha256('${impl}') in uneven pieces gives the published digest`, () => {
        const message = messageOf(v);
        const hasher = createSha256(impl);
        let offset = 0;
        let piece = 1;
        while (offset < message.length) {
          hasher.update(message.subarray(offset, offset + piece));
          offset += piece;
          piece = (piece * 7 + 3) % 4099;
        }
        expect(toHex(hasher.digest())).toBe(v.digest);
      });
    }
  }

  it('the node and noble implementations agree on random inputs of many sizes', () => {
    const sizes = [0, 1, 2, 31, 32, 33, 55, 56, 63, 64, 65, 127, 128, 1000, 4096, 65_535, 65_537];
    for (let i = 0; i < 40; i++) sizes.push(Math.floor(Math.random() * 300_000));
    for (const size of sizes) {
      const data = randomBytes(size);
      const fromNode = toHex(sha256(data, 'node'));
      expect(toHex(sha256(data, 'noble')), `size ${size}`).toBe(fromNode);
      const split = Math.floor(size / 3);
      const incremental = createSha256('noble')
        .update(data.subarray(0, split))
        .update(data.subarray(split))
        .digest();
      expect(toHex(incremental), `size ${size}, incremental`).toBe(fromNode);
    }
  });
});

describe('chunk table (docs/protocol.md §5)', () => {
  const CHUNK = 4096;

  function tableByHand(image: Uint8Array, chunkBytes: number): Uint8Array {
    const digests: Uint8Array[] = [];
    for (let at = 0; at < image.length; at += chunkBytes) {
      digests.push(sha256(image.subarray(at, at + chunkBytes), 'noble'));
    }
    const out = new Uint8Array(digests.length * 32);
    digests.forEach((d, i) => out.set(d, i * 32));
    return out;
  }

  function feedInRandomPieces(builder: ChunkTableBuilder, image: Uint8Array): void {
    let offset = 0;
    while (offset < image.length) {
      const piece = 1 + Math.floor(Math.random() * CHUNK * 2.5);
      builder.update(image.subarray(offset, offset + piece));
      offset += piece;
    }
  }

  const sizes = [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 5 * CHUNK, 5 * CHUNK + 17];
  for (const size of sizes) {
    it(`ChunkTableBuilder agrees with hashing chunks by hand for an image of ${size} bytes`, () => {
      const image = randomBytes(size);
      for (let round = 0; round < 5; round++) {
        const builder = new ChunkTableBuilder(CHUNK);
        feedInRandomPieces(builder, image);
        const { table, imageDigest, totalBytes } = builder.finish();
        expect(toHex(table.bytes)).toBe(toHex(tableByHand(image, CHUNK)));
        expect(table.count).toBe(chunkCount(size, CHUNK));
        expect(toHex(imageDigest)).toBe(toHex(sha256(image, 'noble')));
        expect(totalBytes).toBe(size);
        expect(toHex(table.digest())).toBe(toHex(sha256(tableByHand(image, CHUNK), 'noble')));
      }
    });
  }

  it('verifyChunk accepts each chunk at its own index and refuses it at another', () => {
    const image = randomBytes(3 * CHUNK + 5);
    const { table } = new ChunkTableBuilder(CHUNK).update(image).finish();
    for (let i = 0; i < table.count; i++) {
      const chunk = image.subarray(i * CHUNK, (i + 1) * CHUNK);
      expect(table.verifyChunk(i, chunk)).toBe(true);
      expect(table.verifyChunk((i + 1) % table.count, chunk)).toBe(false);
    }
  });

  it('digestOf refuses an index beyond the table with FB_ERR_CHUNK_RANGE', () => {
    const table = new ChunkTable(new Uint8Array(64));
    for (const bad of [-1, 2, 1.5, Number.NaN]) {
      expect(() => table.digestOf(bad)).toThrow(
        expect.objectContaining({ code: 'FB_ERR_CHUNK_RANGE' }),
      );
    }
  });

  it('refuses a chunk table that is not whole digests with FB_ERR_MSG_FIELD_LENGTH', () => {
    let caught: unknown;
    try {
      new ChunkTable(new Uint8Array(33));
    } catch (err) {
      caught = err;
    }
    expect(isFetchbackError(caught, 'FB_ERR_MSG_FIELD_LENGTH')).toBe(true);
  });
});

describe('digest helpers', () => {
  it('chunkCount and chunkLength split an object at chunk boundaries, the last chunk short', () => {
    expect(chunkCount(0, 1024)).toBe(0);
    expect(chunkCount(1, 1024)).toBe(1);
    expect(chunkCount(1024, 1024)).toBe(1);
    expect(chunkCount(1025, 1024)).toBe(2);
    expect([0, 1, 2].map((i) => chunkLength(i, 2049, 1024))).toEqual([1024, 1024, 1]);
    expect(chunkLength(3, 2049, 1024)).toBe(0);
  });

  it('toHex and fromHex round-trip; fromHex refuses non-hex input (FB_ERR_ARGUMENT)', () => {
    const bytes = Uint8Array.of(0, 1, 0xab, 0xff);
    expect(toHex(bytes)).toBe('0001abff');
    expect(fromHex('0001ABff')).toEqual(bytes);
    for (const bad of ['abc', 'zz', '0x00', ' 00']) {
      expect(() => fromHex(bad), bad).toThrow(expect.objectContaining({ code: 'FB_ERR_ARGUMENT' }));
    }
  });

  it('bytesEqual compares length and content', () => {
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2))).toBe(true);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 3))).toBe(false);
    expect(bytesEqual(Uint8Array.of(1, 2), Uint8Array.of(1, 2, 0))).toBe(false);
  });

  it('ChunkTableBuilder refuses a chunk size that is not a positive integer', () => {
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      expect(() => new ChunkTableBuilder(bad)).toThrow(
        expect.objectContaining({ code: 'FB_ERR_ARGUMENT' }),
      );
    }
  });
});
