/**
 * `npm run demo`: one command that shows Fetchback end to end. It starts a server with its
 * embedded broker in a temporary data directory, 200 simulated devices on the real agent code
 * (with a mildly unreliable network and a few unhealthy devices), uploads a release, runs a
 * three-wave rollout through the rollout API to completion, and prints the report and where
 * its HTML page is.
 *
 *     npm run demo                       # 200 devices
 *     npm run demo -- --devices 50 --faults none
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Command } from 'commander';

import { PROFILES, resolveFaults } from './faults/profiles.js';
import { startLocalServer, testImage, uploadRelease } from './local-server.js';
import { renderHtml } from './report/html.js';
import { formatReport } from './report/report.js';
import { DEFAULT_SIMULATION, Simulation } from './simulation.js';

/** The demo's faults unless `--faults` names a profile: a slightly lossy link, a few bad ones. */
const DEMO_FAULTS = [
  'latency=10',
  'jitter=20',
  'drop-in=0.002',
  'drop-out=0.002',
  'corrupt=0.002',
  'crash-download=0.02',
  'health-fail=0.03',
];

const IMAGE_BYTES = 2 * 1024 * 1024;

interface RolloutView {
  id: string;
  state: string;
  reason: string | null;
  currentWave: number;
  counts: Record<string, number>;
  waves: { wave: number; size: number; state: string }[];
}

async function main(): Promise<void> {
  const opts = new Command('demo')
    .option('--devices <n>', 'simulated devices', '200')
    .option(
      '--faults <profile>',
      `fault profile instead of the demo's own: ${Object.keys(PROFILES).join(', ')}`,
    )
    .parse(process.argv)
    .opts<{ devices: string; faults?: string }>();
  const devices = Number(opts.devices);
  const rates = opts.faults ? resolveFaults(opts.faults) : resolveFaults('none', DEMO_FAULTS);
  const outDir = join(tmpdir(), `fetchback-demo-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(outDir, { recursive: true });

  step('starting a Fetchback server with its embedded MQTT broker (temporary data directory)');
  const local = await startLocalServer();
  console.log(`  HTTP API ${local.url}/api/v1   MQTT mqtt://127.0.0.1:${local.server.mqttPort}`);
  try {
    step(`starting ${devices} simulated devices (real agent code, one MQTT connection each)`);
    const simulation = await Simulation.start({
      ...DEFAULT_SIMULATION,
      server: local.url,
      token: local.token,
      devices,
      prefix: 'demo',
      rates,
      stateDir: join(outDir, 'state'),
    });

    step(
      `uploading release 1.1.0 (${IMAGE_BYTES / 1024 / 1024} MiB image, signed by the release key)`,
    );
    const release = await uploadRelease(
      local.client,
      { name: 'demo-firmware', version: '1.1.0', hardwareClass: 'pi4' },
      testImage('1.1.0', IMAGE_BYTES),
    );
    console.log(
      `  ${release.id}: ${release.chunkCount} chunks of ${release.chunkBytes / 1024} KiB`,
    );

    step('creating and starting a three-wave rollout: 10 %, 50 %, 100 % of the fleet');
    const rollout = await startRollout(local.client, release.id);
    const final = await follow(local.client, rollout.id, simulation);
    await simulation.waitForEnd({ untilIdle: true, idleTimeoutMs: 15_000, durationMs: 60_000 });
    const report = await simulation.finish();

    console.log(`\nrollout ${final.id} ${final.state}${final.reason ? ` (${final.reason})` : ''}`);
    console.log(formatReport(report));
    const htmlFile = join(outDir, 'report.html');
    await writeFile(join(outDir, 'report.json'), `${JSON.stringify(report, null, 1)}\n`);
    await writeFile(htmlFile, renderHtml(report));
    console.log(`\nreport: ${join(outDir, 'report.json')}`);
    console.log(`update curve (open in a browser): file://${htmlFile}`);
  } finally {
    await local.close();
  }
}

async function startRollout(client: Simulation['client'], releaseId: string): Promise<RolloutView> {
  const created = await client.request<RolloutView>('POST', '/api/v1/rollouts', {
    json: {
      releaseId,
      name: 'demo 1.1.0',
      target: { tags: { fleet: 'demo' } },
      strategy: {
        waves: [{ percent: 10 }, { percent: 50 }, { percent: 100 }],
        soakMs: 2_000,
        successThresholdPercent: 80,
        failureThreshold: { percent: 20, minCount: 5, action: 'pause' },
        maxConcurrent: 200,
        deviceTimeoutMs: 120_000,
        maxRetries: 1,
        retryBackoffMs: 2_000,
      },
    },
  });
  return client.request<RolloutView>('POST', `/api/v1/rollouts/${created.id}/start`);
}

/** Polls the rollout until it ends, showing its wave on the simulator's progress line. */
async function follow(
  client: Simulation['client'],
  id: string,
  simulation: Simulation,
): Promise<RolloutView> {
  for (;;) {
    const rollout = await client.request<RolloutView>('GET', `/api/v1/rollouts/${id}`);
    // `currentWave` counts from 0; people count waves from 1, as `fetchback rollout status` does.
    const waves = rollout.waves.length;
    const wave = `wave ${Math.min(rollout.currentWave + 1, waves)}/${waves}`;
    simulation.note = `rollout ${rollout.state} ${wave}`;
    if (!process.stderr.isTTY) console.log(`  rollout ${rollout.state}, ${wave}`);
    if (['completed', 'aborted', 'paused'].includes(rollout.state)) return rollout;
    await new Promise((resolve) => setTimeout(resolve, process.stderr.isTTY ? 500 : 5_000));
  }
}

function step(text: string): void {
  console.log(`\n> ${text}`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`demo failed: ${(err as Error).message}`);
    process.exit(1);
  },
);
