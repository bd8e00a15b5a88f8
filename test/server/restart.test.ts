import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { type AddressInfo, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { randomBytes } from 'node:crypto';

import { FetchbackClient } from '@fetchback/update-server';
import { afterAll, describe, expect, it } from 'vitest';

import { FakeDevice } from './support/fake-device.js';

const MAIN = resolve(import.meta.dirname, '../../update-server/dist/cli/main.js');

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Starts `fetchback server` as a child process; resolves once it prints its banner. */
async function spawnServer(dataDir: string, mqttPort: number, httpPort: number) {
  const child = spawn(
    process.execPath,
    [
      MAIN,
      'server',
      '--data-dir',
      dataDir,
      '--host',
      '127.0.0.1',
      '--mqtt-port',
      String(mqttPort),
      '--http-port',
      String(httpPort),
      '--log-level',
      'warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const ready = new Promise<string | undefined>((resolveReady, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start:\n${out}`)), 20_000);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('fetchback server ready')) {
        setTimeout(() => {
          clearTimeout(timer);
          resolveReady(/FETCHBACK_TOKEN=(\S+)/.exec(out)?.[1]);
        }, 50);
      }
    });
    child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
    child.once('exit', (code) => reject(new Error(`server exited ${code}:\n${out}`)));
  });
  return { child, token: await ready };
}

function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    child.once('exit', () => r());
    child.kill('SIGKILL');
  });
}

describe('restart after SIGKILL', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'fb-restart-'));
  const children: ChildProcess[] = [];
  afterAll(async () => {
    await Promise.all(children.map(kill));
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('keeps the release, the assignment, the sequence and the ACK answer across a SIGKILL', async () => {
    expect(existsSync(MAIN), `build first (npx tsc -b): ${MAIN} is missing`).toBe(true);
    const mqttPort = await freePort();
    const httpPort = await freePort();
    const first = await spawnServer(dataDir, mqttPort, httpPort);
    children.push(first.child);
    expect(first.token).toBeDefined();
    const api = new FetchbackClient({ url: `http://127.0.0.1:${httpPort}`, token: first.token });

    const { agentConfig } = await api.registerDevice({ id: 'pi-r1', hardwareClass: 'pi4' });
    const image = randomBytes(300 * 1024);
    const release = await api.createRelease(
      { name: 'fw', version: '2.0.0', hardwareClass: 'pi4' },
      Readable.from([image]),
      image.length,
    );
    expect((await api.assign(release.id, ['pi-r1'])).assignments[0]?.seq).toBe(1);
    const creds = {
      brokerUrl: `mqtt://127.0.0.1:${mqttPort}`,
      deviceId: 'pi-r1',
      password: agentConfig.password,
      rootPublicKey: agentConfig.rootPublicKey,
      hardwareClass: 'pi4',
    };
    const before = await FakeDevice.connect(creds);
    const manifest = await before.manifest();
    const firstAnswer = await before.ack(manifest, 'downloaded', 'rid-before-kill');
    expect(firstAnswer.resp).toMatchObject({ ok: true, code: 'OK' });
    await before.close();

    await kill(first.child);
    const second = await spawnServer(dataDir, mqttPort, httpPort);
    children.push(second.child);
    expect(second.token).toBeUndefined();

    expect((await api.getRelease(release.id)).imageDigest).toBe(release.imageDigest);
    const after = await FakeDevice.connect(creds);
    const again = await after.manifest();
    expect(again.assignment.seq).toBe(1);
    const image2 = await after.download(again, 8);
    expect(Buffer.from(image2).equals(image)).toBe(true);
    const retry = await after.ack(again, 'downloaded', 'rid-before-kill');
    expect(retry.resp).toMatchObject({ ok: true, code: 'OK', dup: true });
    expect((await api.assign(release.id, ['pi-r1'])).assignments[0]?.seq).toBe(2);
    expect((await api.getDevice('pi-r1')).history.acks).toHaveLength(1);
    await after.close();
  });
});
