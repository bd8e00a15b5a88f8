/**
 * The built `fetchback` bin against a real server process (real ports, real data dir): device
 * add, release create, release list --json, assign, a device that connects with the printed
 * agent config and receives its manifest, a clean SIGTERM and a restart that keeps the data, and
 * the one-line start-up errors (port taken, unwritable data dir).
 */
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { decodeManifest } from '@fetchback/shared';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { tempDir } from './helpers.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = join(root, 'update-server', 'dist', 'cli', 'main.js');
const run = promisify(execFile);

interface ServerProcess {
  child: ChildProcess;
  apiUrl: string;
  token: string | undefined;
  output: () => string;
}

/** Starts `fetchback server` and waits for its banner. */
function startServerProcess(dataDir: string, extra: string[] = []): Promise<ServerProcess> {
  const args = [bin, 'server', '--data-dir', dataDir, '--host', '127.0.0.1'];
  const child = spawn(
    process.execPath,
    [...args, '--http-port', '0', '--mqtt-port', '0', '--log-level', 'warn', ...extra],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 20_000);
    const check = () => {
      const api = /HTTP API\s+(http:\/\/\S+)\/api\/v1/.exec(out);
      if (api?.[1]) {
        clearTimeout(timer);
        child.stdout?.off('data', check);
        resolve({
          child,
          apiUrl: api[1],
          token: /FETCHBACK_TOKEN=(\S+)/.exec(out)?.[1],
          output: () => out,
        });
      }
    };
    child.stdout?.on('data', check);
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${code}:\n${out}`));
    });
  });
}

function stop(server: ServerProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (server.child.exitCode !== null) return resolve(server.child.exitCode);
    server.child.removeAllListeners('exit');
    server.child.once('exit', (code) => resolve(code));
    server.child.kill('SIGTERM');
  });
}

let dir: string;
let cleanup: () => void;
let server: ServerProcess;
let env: NodeJS.ProcessEnv;

function cli(...args: string[]) {
  return run(process.execPath, [bin, ...args], { env, maxBuffer: 10 * 1024 * 1024 });
}

async function cliFails(...args: string[]): Promise<{ code: number; stderr: string }> {
  try {
    await cli(...args);
  } catch (err) {
    const e = err as { code: number; stderr: string };
    return { code: e.code, stderr: e.stderr };
  }
  throw new Error(`fetchback ${args.join(' ')} should have failed`);
}

beforeAll(async () => {
  if (!existsSync(bin)) {
    spawnSync('npx', ['tsc', '-b', 'update-server'], { cwd: root, stdio: 'inherit' });
  }
  ({ dir, cleanup } = tempDir('fb-cli-'));
  server = await startServerProcess(join(dir, 'data'));
  env = {
    ...process.env,
    FETCHBACK_URL: server.apiUrl,
    FETCHBACK_TOKEN: server.token,
    FETCHBACK_CLI_CONFIG: join(dir, 'no-cli.json'),
  };
});

afterAll(async () => {
  if (server) await stop(server);
  cleanup?.();
});

describe('fetchback CLI against a running server', () => {
  it('prints an admin token on the first start', () => {
    expect(server.token).toMatch(/^fbt_/);
  });

  it('registers a device, creates a release, lists it as JSON and assigns it; the device gets its manifest', async () => {
    const agentFile = join(dir, 'agent.json');
    await cli('device', 'add', 'dev-1', '--class', 'pi4', '--tag', 'site=lab', '--out', agentFile);
    expect(statSync(agentFile).mode & 0o777).toBe(0o600);
    const agent = JSON.parse(readFileSync(agentFile, 'utf8'));
    expect(agent).toMatchObject({ deviceId: 'dev-1', username: 'dev-1', hardwareClass: 'pi4' });

    const image = join(dir, 'image.bin');
    writeFileSync(image, randomBytes(2 * 1024 * 1024 + 5));
    const created = await cli(
      '--json',
      'release',
      'create',
      '--image',
      image,
      '--version',
      '1.2.0',
      '--class',
      'pi4',
      '--security-version',
      '2',
    );
    const release = JSON.parse(created.stdout);
    expect(release).toMatchObject({
      version: '1.2.0',
      hardwareClass: 'pi4',
      securityVersion: 2,
      size: 2 * 1024 * 1024 + 5,
    });

    const listed = JSON.parse((await cli('release', 'list', '--json')).stdout);
    expect(listed.items.map((r: { id: string }) => r.id)).toEqual([release.id]);

    const assigned = JSON.parse(
      (await cli('--json', 'assign', '--release', release.id, 'dev-1')).stdout,
    );
    expect(assigned.assignments).toEqual([{ deviceId: 'dev-1', seq: 1 }]);

    const client = await mqtt.connectAsync(agent.brokerUrl, {
      clientId: agent.deviceId,
      username: agent.username,
      password: agent.password,
      protocolVersion: 4,
      reconnectPeriod: 0,
    });
    try {
      const manifest = new Promise<Buffer>((resolve) =>
        client.on('message', (_t, payload) => resolve(payload)),
      );
      await client.subscribeAsync(`${agent.topicPrefix}/d/dev-1/in/manifest`, { qos: 1 });
      const decoded = decodeManifest(new Uint8Array(await manifest));
      expect(decoded.asg.body).toMatchObject({ dev: 'dev-1', seq: 1 });
      expect(decoded.rel.body).toMatchObject({ ver: '1.2.0', hw: 'pi4' });
    } finally {
      await client.endAsync();
    }

    const shown = JSON.parse((await cli('--json', 'device', 'show', 'dev-1')).stdout);
    expect(shown.history.assignments[0]).toMatchObject({ seq: 1, releaseId: release.id });
    expect(shown.deviceKey).toBeNull();
    const reset = await cli('device', 'reset-key', 'dev-1');
    expect(reset.stdout.trim()).toBe('dev-1 had no pinned key');
  });

  it('refuses a duplicate release and an unknown device with one coded line and exit 1', async () => {
    const image = join(dir, 'small.bin');
    writeFileSync(image, randomBytes(1000));
    await cli('release', 'create', '--image', image, '--version', '9.9.9', '--class', 'pi4');
    const dup = await cliFails(
      'release',
      'create',
      '--image',
      image,
      '--version',
      '9.9.9',
      '--class',
      'pi4',
    );
    expect(dup.code).toBe(1);
    expect(dup.stderr.trim().split('\n')).toHaveLength(1);
    expect(dup.stderr).toContain('FB_ERR_RELEASE_EXISTS');
    const unknown = await cliFails('device', 'show', 'nobody');
    expect(unknown.stderr).toContain('FB_ERR_DEVICE_UNKNOWN');
  });

  it('creates, lists and revokes tokens; a viewer token cannot change anything', async () => {
    const created = JSON.parse(
      (await cli('--json', 'token', 'create', '--name', 'watch', '--role', 'viewer')).stdout,
    );
    const viewerEnv = { ...env, FETCHBACK_TOKEN: created.token };
    const denied = await run(process.execPath, [bin, 'device', 'add', 'x', '--class', 'pi4'], {
      env: viewerEnv,
    }).catch((e: { stderr: string }) => e.stderr);
    expect(denied).toContain('FB_ERR_FORBIDDEN');
    const list = JSON.parse((await cli('--json', 'token', 'list')).stdout);
    expect(list.items.map((t: { name: string }) => t.name)).toContain('watch');
    await cli('token', 'revoke', 'watch');
  });

  it('reports a taken port in one line and exits 1', async () => {
    const port = new URL(server.apiUrl).port;
    const other = join(dir, 'other');
    const result = spawnSync(
      process.execPath,
      [
        bin,
        'server',
        '--data-dir',
        other,
        '--host',
        '127.0.0.1',
        '--http-port',
        port,
        '--mqtt-port',
        '0',
        '--log-level',
        'silent',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`"httpPort" ${port}`);
  });

  it('reports an unwritable data directory in one line and exits non-zero', () => {
    const file = join(dir, 'a-file');
    writeFileSync(file, 'x');
    const result = spawnSync(
      process.execPath,
      [
        bin,
        'server',
        '--data-dir',
        join(file, 'data'),
        '--http-port',
        '0',
        '--mqtt-port',
        '0',
        '--log-level',
        'silent',
      ],
      { encoding: 'utf8', timeout: 20_000 },
    );
    expect(result.status).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('"dataDir"');
  });

  it('stops cleanly on SIGTERM and keeps every release across a restart, without a new admin token', async () => {
    expect(await stop(server)).toBe(0);
    server = await startServerProcess(join(dir, 'data'));
    expect(server.token).toBeUndefined();
    env.FETCHBACK_URL = server.apiUrl;
    const listed = JSON.parse((await cli('release', 'list', '--json')).stdout);
    expect(listed.items.map((r: { version: string }) => r.version).sort()).toEqual([
      '1.2.0',
      '9.9.9',
    ]);
  });
});
