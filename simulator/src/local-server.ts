/**
 * A Fetchback server with its embedded broker in a temporary data directory, in this process:
 * what the demo, the simulator's tests and the fleet benchmarks run against. Also makes test
 * images and uploads them as releases through the API.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';

import {
  FetchbackClient,
  type RunningServer,
  type ServerOptions,
  resolveConfig,
  startServer,
} from '@fetchback/update-server';
import { pino } from 'pino';

export interface LocalServer {
  readonly server: RunningServer;
  /** HTTP base URL. */
  readonly url: string;
  /** The first admin token. */
  readonly token: string;
  readonly client: FetchbackClient;
  readonly dataDir: string;
  close(): Promise<void>;
}

/** Starts a server on free loopback ports; options override the defaults by key. */
export async function startLocalServer(
  overrides: Partial<Record<keyof ServerOptions, unknown>> = {},
): Promise<LocalServer> {
  const dataDir = await mkdtemp(join(tmpdir(), 'fetchback-sim-server-'));
  const options = resolveConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      mqttPort: 0,
      httpPort: 0,
      logLevel: 'silent',
      ...overrides,
    },
  });
  const server = await startServer(options, {
    log: pino({ level: 'silent' }),
    announce: () => {},
  });
  const token = server.initialAdminToken as string;
  const url = `http://127.0.0.1:${server.httpPort}`;
  return {
    server,
    url,
    token,
    client: new FetchbackClient({ url, token }),
    dataDir,
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** A deterministic image of `sizeBytes` for `version` (the same version gives the same bytes). */
export function testImage(version: string, sizeBytes: number): Uint8Array {
  const image = new Uint8Array(sizeBytes);
  let block = createHash('sha256').update(`fetchback-sim image ${version}`).digest();
  for (let offset = 0; offset < sizeBytes; offset += block.length) {
    image.set(block.subarray(0, Math.min(block.length, sizeBytes - offset)), offset);
    block = createHash('sha256').update(block).digest();
  }
  return image;
}

/** Uploads `image` as a release through the API and returns its record. */
export function uploadRelease(
  client: FetchbackClient,
  input: { version: string; hardwareClass: string; name?: string },
  image: Uint8Array,
): ReturnType<FetchbackClient['createRelease']> {
  const stream = Readable.from([Buffer.from(image)]);
  return client.createRelease(input, stream, image.length);
}
