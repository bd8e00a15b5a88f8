/**
 * `startServer` in-process on real ports and a real data dir, driven through `FetchbackClient`
 * over real HTTP: streamed uploads over the cap, the first-start token, and a clean close.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import { isFetchbackError } from '@fetchback/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { FetchbackClient } from '../src/cli/client.js';
import { resolveConfig } from '../src/config.js';
import { type RunningServer, startServer } from '../src/server.js';
import { tempDir } from './helpers.js';

const MiB = 1024 * 1024;
let dir: string;
let cleanup: () => void;
let server: RunningServer;
let client: FetchbackClient;

function options() {
  return resolveConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'data'),
      host: '127.0.0.1',
      httpPort: 0,
      mqttPort: 0,
      maxImageBytes: '1MiB',
      logLevel: 'silent',
    },
  });
}

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('fb-server-'));
  server = await startServer(options(), { announce: () => undefined });
  client = new FetchbackClient({
    url: `http://127.0.0.1:${server.httpPort}`,
    token: server.initialAdminToken,
  });
});

afterAll(async () => {
  await server?.close();
  cleanup?.();
});

async function* pieces(count: number, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < count; i++) yield new Uint8Array(size).fill(i);
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
  } catch (err) {
    return isFetchbackError(err) ? err.code : String(err);
  }
  return undefined;
}

describe('startServer over real HTTP', () => {
  it('creates an admin token on the first start only', async () => {
    expect(server.initialAdminToken).toMatch(/^fbt_/);
    expect((await client.listTokens()).items.map((t) => t.name)).toEqual(['admin']);
  });

  it('refuses a streamed upload without a length once it passes the cap, keeping no file', async () => {
    const upload = client.createRelease(
      { version: '1.0.0', hardwareClass: 'pi4' },
      Readable.from(pieces(32, 64 * 1024)),
    );
    expect(await codeOf(upload)).toBe('FB_ERR_UPLOAD_TOO_LARGE');
    expect(readdirSync(join(dir, 'data', 'images', 'tmp'))).toEqual([]);
  });

  it('refuses an upload whose declared length is over the cap before reading it', async () => {
    const upload = client.createRelease(
      { version: '1.0.0', hardwareClass: 'pi4' },
      Readable.from(pieces(64, 64 * 1024)),
      4 * MiB,
    );
    expect(await codeOf(upload)).toBe('FB_ERR_UPLOAD_TOO_LARGE');
  });

  it('accepts a streamed upload under the cap after refusals on the same server', async () => {
    const release = await client.createRelease(
      { version: '1.0.1', hardwareClass: 'pi4' },
      Readable.from(pieces(8, 64 * 1024)),
    );
    // The default chunk size, 256 KiB: two chunks.
    expect(release).toMatchObject({ size: 8 * 64 * 1024, chunkCount: 2 });
  });

  it('reports an unreachable server as FB_ERR_SERVER_UNREACHABLE', async () => {
    const nowhere = new FetchbackClient({ url: 'http://127.0.0.1:1' });
    expect(await codeOf(nowhere.health())).toBe('FB_ERR_SERVER_UNREACHABLE');
  });

  it('closes idempotently', async () => {
    await Promise.all([server.close(), server.close()]);
    expect(await codeOf(client.health())).toBe('FB_ERR_SERVER_UNREACHABLE');
  });
});
