import { createHash, randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';

import {
  type SignedRelease,
  decodeCbor,
  fromHex,
  isFetchbackError,
  releaseDigest,
  toHex,
  verifyBody,
} from '@fetchback/shared';
import { afterEach, describe, expect, it } from 'vitest';

import { ImageStore } from '../src/images/image-store.js';
import { ingestRelease } from '../src/images/ingest.js';
import { type TestContext, testContext } from './helpers.js';

const MiB = 1024 * 1024;
let t: TestContext;
afterEach(() => t?.close());

function depsOf(ctx: TestContext['ctx'], maxImageBytes = 16 * MiB, chunkBytes = 64 * 1024) {
  return {
    images: ctx.images,
    releases: ctx.releases,
    releaseKey: ctx.keys.releaseKey,
    clock: ctx.clock,
    maxImageBytes,
    chunkBytes,
  };
}

/** Yields `bytes` in pieces of uneven sizes, as a network upload arrives. */
async function* pieces(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  let offset = 0;
  let size = 1000;
  while (offset < bytes.length) {
    yield bytes.subarray(offset, offset + size);
    offset += size;
    size = ((size * 7) % 100_003) + 1;
  }
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest();

describe('release ingest', () => {
  it('stores a 5 MiB image under its digest with the chunk table a hand computation gives', async () => {
    t = testContext();
    const image = randomBytes(5 * MiB + 123);
    const chunkBytes = 64 * 1024;
    const record = await ingestRelease(
      depsOf(t.ctx),
      { name: 'firmware', version: '1.0.0', hwClass: 'pi4', securityVersion: 3 },
      pieces(image),
    );

    const byHand: Buffer[] = [];
    for (let o = 0; o < image.length; o += chunkBytes)
      byHand.push(sha(image.subarray(o, o + chunkBytes)));
    const table = Buffer.concat(byHand);
    expect(record.imageDigest).toBe(sha(image).toString('hex'));
    expect(record.chunkCount).toBe(byHand.length);
    expect(record.tableDigest).toBe(sha(table).toString('hex'));
    expect(t.ctx.images.size(record.imageDigest)).toBe(image.length);
    expect(t.ctx.images.size(record.tableDigest)).toBe(table.length);

    const last = record.chunkCount - 1;
    const chunk = await t.ctx.images.readChunk(record.imageDigest, last, chunkBytes);
    expect(Buffer.from(chunk)).toEqual(image.subarray(last * chunkBytes));
    const tableChunk = await t.ctx.images.readChunk(record.tableDigest, 0, 1024);
    expect(Buffer.from(tableChunk)).toEqual(table.subarray(0, 1024));
  });

  it('signs a release statement that verifies with the release key and names the image', async () => {
    t = testContext();
    const image = randomBytes(100_000);
    const record = await ingestRelease(
      depsOf(t.ctx),
      { name: 'fw', version: '2.0.0', hwClass: 'pi4', securityVersion: 1 },
      pieces(image),
    );
    const statement = decodeCbor(record.statement) as SignedRelease;
    expect(statement.body).toMatchObject({
      name: 'fw',
      ver: '2.0.0',
      hw: 'pi4',
      secv: 1,
      size: 100_000,
    });
    expect(toHex(statement.body.digest)).toBe(record.imageDigest);
    expect(toHex(statement.body.ctab)).toBe(record.tableDigest);
    expect(toHex(releaseDigest(statement.body))).toBe(record.statementDigest);
    const sig = statement.sigs[0];
    expect(sig && verifyBody('release', statement.body, sig, t.ctx.keys.releaseKey.publicKey)).toBe(
      true,
    );
  });

  it('refuses an upload over maxImageBytes and leaves no file behind', async () => {
    t = testContext();
    const before = readdirSync(t.ctx.images.dir).sort();
    const attempt = ingestRelease(
      depsOf(t.ctx, 1 * MiB),
      { name: 'fw', version: '1.0.0', hwClass: 'pi4', securityVersion: 0 },
      pieces(randomBytes(1 * MiB + 1)),
    );
    await expect(attempt).rejects.toSatisfy((e) => isFetchbackError(e, 'FB_ERR_UPLOAD_TOO_LARGE'));
    expect(readdirSync(t.ctx.images.dir).sort()).toEqual(before);
    expect(readdirSync(t.ctx.images.tempDir)).toEqual([]);
    expect(t.ctx.releases.list().total).toBe(0);
  });

  it('refuses a duplicate (name, class, version) before reading the image', async () => {
    t = testContext();
    const input = { name: 'fw', version: '1.0.0', hwClass: 'pi4', securityVersion: 0 };
    await ingestRelease(depsOf(t.ctx), input, pieces(randomBytes(5000)));
    let read = false;
    async function* tracking() {
      read = true;
      yield new Uint8Array(10);
    }
    await expect(ingestRelease(depsOf(t.ctx), input, tracking())).rejects.toSatisfy((e) =>
      isFetchbackError(e, 'FB_ERR_RELEASE_EXISTS'),
    );
    expect(read).toBe(false);
  });

  it('refuses an empty image', async () => {
    t = testContext();
    const input = { name: 'fw', version: '1.0.0', hwClass: 'pi4', securityVersion: 0 };
    await expect(ingestRelease(depsOf(t.ctx), input, pieces(new Uint8Array(0)))).rejects.toSatisfy(
      (e) => isFetchbackError(e, 'FB_ERR_ARGUMENT'),
    );
    expect(readdirSync(t.ctx.images.tempDir)).toEqual([]);
  });

  it('readChunk refuses unknown objects and indices beyond the object', async () => {
    t = testContext();
    const store = new ImageStore(join(t.dir, 'other-images'));
    const digest = store.putBytes(fromHex('00'.repeat(100)));
    await expect(store.readChunk(digest, 1, 64)).resolves.toHaveLength(36);
    await expect(store.readChunk(digest, 2, 64)).rejects.toSatisfy((e) =>
      isFetchbackError(e, 'FB_ERR_CHUNK_RANGE'),
    );
    await expect(store.readChunk('f'.repeat(64), 0, 64)).rejects.toSatisfy((e) =>
      isFetchbackError(e, 'FB_ERR_OBJECT_UNKNOWN'),
    );
    await store.close();
  });
});
