/**
 * A real server (startServer: SQLite in a temp dir, embedded broker and HTTP API on free ports)
 * with the rollout engine attached and tokens of each role, for the rollout contract tests.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { pino } from 'pino';

import { resolveConfig } from '../../src/config.js';
import { ingestRelease } from '../../src/images/ingest.js';
import { attachRollouts } from '../../src/rollouts/attach.js';
import type { RolloutEngine } from '../../src/rollouts/engine.js';
import { startServer } from '../../src/server.js';
import type { RunningServer } from '../../src/server.js';

export interface RolloutServer {
  readonly server: RunningServer;
  readonly engine: RolloutEngine;
  readonly base: string;
  readonly tokens: { admin: string; operator: string; viewer: string };
  addDevices(ids: readonly string[], hwClass?: string, tags?: Record<string, string>): void;
  addRelease(version: string, hwClass?: string): Promise<string>;
  request(
    method: string,
    path: string,
    opts?: { token?: string | null; body?: unknown; raw?: string },
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- bodies are checked by shape
  ): Promise<{ status: number; type: string; body: any }>;
  close(): Promise<void>;
}

export async function startRolloutServer(): Promise<RolloutServer> {
  const dir = mkdtempSync(join(tmpdir(), 'fb-rollout-api-'));
  const options = resolveConfig({
    env: {},
    overrides: { dataDir: dir, host: '127.0.0.1', httpPort: 0, mqttPort: 0, logLevel: 'silent' },
  });
  const server = await startServer(options, {
    log: pino({ level: 'silent' }),
    announce: () => {},
  });
  const { ctx } = server;
  // startServer attached the engine already; this returns it.
  const engine = attachRollouts(ctx);
  const tokens = {
    admin: ctx.tokens.create('t-admin', 'admin').token,
    operator: ctx.tokens.create('t-operator', 'operator').token,
    viewer: ctx.tokens.create('t-viewer', 'viewer').token,
  };
  const base = `http://127.0.0.1:${server.httpPort}`;
  return {
    server,
    engine,
    base,
    tokens,
    addDevices(ids, hwClass = 'pi4', tags = {}) {
      for (const id of ids) ctx.devices.create({ id, hwClass, tags });
    },
    async addRelease(version, hwClass = 'pi4') {
      const image = (async function* () {
        yield new Uint8Array(4096).fill(version.length);
      })();
      const release = await ingestRelease(
        {
          images: ctx.images,
          releases: ctx.releases,
          releaseKey: ctx.keys.releaseKey,
          clock: ctx.clock,
          maxImageBytes: ctx.options.maxImageBytes,
          chunkBytes: ctx.options.chunkBytes,
        },
        { name: 'fw', version, hwClass, securityVersion: 1 },
        image,
      );
      return release.id;
    },
    async request(method, path, opts = {}) {
      const headers: Record<string, string> = {};
      const token = opts.token === undefined ? tokens.operator : opts.token;
      if (token !== null) headers.authorization = `Bearer ${token}`;
      let payload: string | undefined;
      if (opts.raw !== undefined || opts.body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = opts.raw ?? JSON.stringify(opts.body);
      }
      const res = await fetch(`${base}${path}`, { method, headers, body: payload });
      const type = res.headers.get('content-type') ?? '';
      const text = await res.text();
      return { status: res.status, type, body: text.length > 0 ? JSON.parse(text) : undefined };
    },
    async close() {
      engine.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
