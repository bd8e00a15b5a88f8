/**
 * The real agent process, run with the Node flags and environment of its systemd unit, against
 * the real server and its embedded broker, over MQTT and over MQTT with TLS: an update from
 * 1.0.0 to 1.1.0 commits, and a release whose health check fails rolls back. The server shows
 * both outcomes and holds exactly one ACK record per step.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { publicKeyOf, sha256, toHex } from '@fetchback/shared';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { type TestServer, startTestServer } from '../server/support/server-harness.js';
import { makeTestCertificates } from '../support/certificates.js';

const AGENT_CLI = fileURLToPath(new URL('../../device-agent/dist/cli.js', import.meta.url));
const UNIT = fileURLToPath(
  new URL('../../device-agent/systemd/fetchback-agent.service', import.meta.url),
);

/** The Node flags and environment of the systemd unit, so the agent runs here as it does there. */
function unitSettings(): { nodeFlags: string[]; env: Record<string, string> } {
  const unit = readFileSync(UNIT, 'utf8');
  const exec = /^ExecStart=\/usr\/bin\/env node (.*) \/opt\/\S+\/cli\.js /m.exec(unit);
  if (!exec?.[1]) throw new Error('ExecStart of the unit not understood');
  const env: Record<string, string> = {};
  for (const [, key, value] of unit.matchAll(/^Environment=([A-Z_]+)=(\S+)$/gm)) {
    env[key as string] = value as string;
  }
  return { nodeFlags: exec[1].split(' '), env };
}
const UNIT_SETTINGS = unitSettings();

/** Runs the built agent; restarts it when it exits 0 (its reboot), as systemd would. */
class SupervisedAgent {
  private child: ChildProcess | undefined;
  private stopped = false;
  starts = 0;
  output = '';

  constructor(private readonly configPath: string) {}

  start(): void {
    const { nodeFlags, env } = UNIT_SETTINGS;
    const args = [...nodeFlags, AGENT_CLI, '--config', this.configPath];
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...env },
    });
    this.starts++;
    const keep = (b: Buffer) => (this.output = (this.output + b.toString()).slice(-20_000));
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      if (this.child !== child || this.stopped) return;
      if (code === 0 && signal === null) this.start();
    });
    this.child = child;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 45_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Over plain MQTT, and over MQTT with TLS where the broker requires a client certificate whose
 * CN is the device id (the agent's `tls` config: private CA, certificate and key).
 */
describe.each([{ link: 'MQTT' }, { link: 'MQTT over TLS with a client certificate' }])(
  'the real agent process updates through the real server ($link)',
  ({ link }) => {
    const tls = link !== 'MQTT';
    let t: TestServer;
    let agent: SupervisedAgent;
    let dir: string;

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'fb-agent-e2e-'));
      const certs = tls ? makeTestCertificates(dir, ['pi-e2e-1']) : undefined;
      t = await startTestServer({
        logLevel: 'warn',
        ...(certs
          ? {
              tlsCertFile: certs.server.certFile,
              tlsKeyFile: certs.server.keyFile,
              tlsCaFile: certs.caFile,
              tlsRequireClientCert: true,
            }
          : {}),
      });
      const { agentConfig } = await t.api.registerDevice({ id: 'pi-e2e-1', hardwareClass: 'pi4' });
      const config = {
        ...agentConfig,
        brokerUrl: `${certs ? 'mqtts' : 'mqtt'}://127.0.0.1:${t.server.mqttPort}`,
        ...(certs ? { tls: { caFile: certs.caFile, ...certs.devices['pi-e2e-1'] } } : {}),
        dataDir: join(dir, 'data'),
        currentVersion: '1.0.0',
        installer: { type: 'ab-dir', reboot: 'exit' },
        // A release is healthy unless its image carries the marker BROKEN.
        healthCheck: { command: '! grep -q BROKEN "$FETCHBACK_IMAGE"', timeoutMs: 10_000 },
        logLevel: 'warn',
      };
      writeFileSync(join(dir, 'agent.json'), JSON.stringify(config));
      agent = new SupervisedAgent(join(dir, 'agent.json'));
      agent.start();
    });

    afterAll(async () => {
      await agent?.stop();
      await t?.close();
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    async function upload(version: string, image: Buffer): Promise<string> {
      const file = join(dir, `fw-${version}.img`);
      writeFileSync(file, image);
      const release = await t.api.createReleaseFromFile(
        { name: 'fw', version, hardwareClass: 'pi4' },
        file,
      );
      return release.id;
    }

    async function stepsFor(seq: number): Promise<string[]> {
      const detail = await t.api.getDevice('pi-e2e-1');
      return detail.history.acks
        .filter((a: { seq: number }) => a.seq === seq)
        .map((a: { step: string }) => a.step)
        .sort();
    }

    it('commits 1.1.0; the server records downloaded, installed, committed once', async () => {
      const image = randomBytes(3 * 1024 * 1024 + 12_345);
      const releaseId = await upload('1.1.0', image);
      const { assignments } = await t.api.assign(releaseId, ['pi-e2e-1']);
      const seq = assignments[0]!.seq;

      const device = await waitFor('1.1.0 committed', async () => {
        const d = await t.api.getDevice('pi-e2e-1');
        return d.device.state === 'committed' && d.device.currentVersion === '1.1.0'
          ? d
          : undefined;
      });
      expect(device.device.currentVersion).toBe('1.1.0');
      expect(await stepsFor(seq)).toEqual(['committed', 'downloaded', 'installed']);

      // Every ACK was signed by the key the agent keeps in its data directory, which the
      // server pinned (docs/protocol.md §8.5).
      expect(device.history.acks.every((a: { signed: boolean }) => a.signed)).toBe(true);
      const seed = readFileSync(join(dir, 'data', 'state', 'device-key.bin'));
      expect(device.deviceKey?.publicKey).toBe(toHex(publicKeyOf(new Uint8Array(seed))));

      // The active slot holds exactly the released bytes.
      const active = readFileSync(join(dir, 'data', 'slots', 'current'));
      expect(toHex(sha256(active))).toBe(toHex(sha256(image)));
      expect(agent.starts).toBeGreaterThanOrEqual(2); // the install rebooted the agent
    });

    it('rolls back a release whose health check fails and keeps running 1.1.0', async () => {
      const broken = Buffer.concat([Buffer.from('BROKEN'), randomBytes(1024 * 1024)]);
      const releaseId = await upload('1.2.0', broken);
      const { assignments } = await t.api.assign(releaseId, ['pi-e2e-1']);
      const seq = assignments[0]!.seq;

      await waitFor('rolled back', async () => {
        const steps = await stepsFor(seq);
        return steps.includes('rolled_back') ? steps : undefined;
      });
      // Give the outbox a moment: no step may be recorded twice, whatever the agent retries.
      await new Promise((r) => setTimeout(r, 500));
      expect(await stepsFor(seq)).toEqual(['downloaded', 'installed', 'rolled_back']);

      const detail = await t.api.getDevice('pi-e2e-1');
      const rolledBack = detail.history.acks.find(
        (a: { step: string }) => a.step === 'rolled_back',
      );
      expect(rolledBack.code).toBe('FB_ERR_HEALTH_CHECK_FAILED');
      await waitFor('version reported back to 1.1.0', async () => {
        const d = await t.api.getDevice('pi-e2e-1');
        return d.device.currentVersion === '1.1.0' ? d : undefined;
      });
    });
  },
);
