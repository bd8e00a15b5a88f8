/** Starts the real server (`startServer`) on free ports over a temp data directory. */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
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
import pino from 'pino';

import type { DeviceCredentials } from './fake-device.js';

export interface TestServer {
  readonly server: RunningServer;
  readonly api: FetchbackClient;
  readonly dataDir: string;
  readonly logs: Record<string, unknown>[];
  /** Registers a device and returns its broker credentials. */
  device(id: string, hardwareClass?: string): Promise<DeviceCredentials>;
  /** Uploads a random image as a release; returns its id and bytes. */
  release(
    sizeBytes: number,
    version?: string,
    hardwareClass?: string,
  ): Promise<{ id: string; image: Buffer }>;
  /** Value of `fetchback_rejections_total{code}` as /metrics shows it. */
  rejections(code: string): Promise<number>;
  close(): Promise<void>;
}

export async function startTestServer(overrides: Partial<ServerOptions> = {}): Promise<TestServer> {
  const dataDir = overrides.dataDir ?? mkdtempSync(join(tmpdir(), 'fb-e2e-'));
  const options = resolveConfig({
    env: {},
    overrides: {
      dataDir,
      host: '127.0.0.1',
      mqttPort: 0,
      httpPort: 0,
      logLevel: 'debug',
      ...overrides,
    },
  });
  const logs: Record<string, unknown>[] = [];
  const log = pino(
    { level: 'debug' },
    { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) },
  );
  const server = await startServer(options, { log, announce: () => undefined });
  const token = server.initialAdminToken;
  if (!token) throw new Error('a fresh server must print an admin token');
  const api = new FetchbackClient({ url: `http://127.0.0.1:${server.httpPort}`, token });
  const brokerUrl = overrides.brokerUrl ?? `mqtt://127.0.0.1:${server.mqttPort}`;
  return {
    server,
    api,
    dataDir,
    logs,
    async device(id, hardwareClass = 'pi4') {
      const { agentConfig } = await api.registerDevice({ id, hardwareClass });
      return {
        brokerUrl,
        deviceId: agentConfig.deviceId,
        password: agentConfig.password,
        rootPublicKey: agentConfig.rootPublicKey,
        hardwareClass,
      };
    },
    async release(sizeBytes, version = '1.0.0', hardwareClass = 'pi4') {
      const image = randomBytes(sizeBytes);
      const release = await api.createRelease(
        { name: 'fw', version, hardwareClass },
        Readable.from([image]),
        image.length,
      );
      return { id: release.id, image };
    },
    async rejections(code) {
      const text = await api.request<string>('GET', '/metrics');
      const line = text
        .split('\n')
        .find((l) => l.startsWith(`fetchback_rejections_total{code="${code}"}`));
      return line ? Number(line.split(' ').pop()) : 0;
    },
    async close() {
      await server.close();
      if (!overrides.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
