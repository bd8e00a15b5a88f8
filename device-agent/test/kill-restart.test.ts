/**
 * Kill and restart with the real agent process: a real aedes broker on a real socket, the
 * responder as an in-process peer on it, and `dist/cli.js` as a child process with a temporary
 * data directory and the ab-dir installer whose reboot hook exits the process. The agent is
 * SIGKILLed at each persisted state, restarted, and must resume, fetch no chunk it had
 * persisted as held, and end committed (or rolled back when the health check fails).
 */
import { execFileSync } from 'node:child_process';
import { mkdtemp, readFile, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';

import { toHex } from '@fetchback/shared';

import { type RunningBroker, startAedes } from './helpers/aedes-bus.js';
import { AgentProcess, waitUntil } from './helpers/agent-process.js';
import { randomImage } from './helpers/memory-device.js';
import { Responder, type TestRelease } from './helpers/responder.js';

const CHUNK_BYTES = 4096;
const CHUNKS = 120;
const WINDOW = 4;
const FLUSH_CHUNKS = 16;

let broker: RunningBroker;
let responder: Responder;
let dataDir: string;
let agent: AgentProcess;
let release: TestRelease;

beforeAll(() => {
  execFileSync('npx', ['tsc', '-b', 'device-agent'], { cwd: new URL('../..', import.meta.url) });
}, 120_000);

beforeEach(async () => {
  broker = await startAedes();
  responder = new Responder(broker.bus);
  dataDir = await mkdtemp(join(tmpdir(), 'fb-agent-'));
  release = responder.release('1.1.0', randomImage(CHUNKS * CHUNK_BYTES - 100), {
    chunkBytes: CHUNK_BYTES,
  });
  agent = new AgentProcess(join(dataDir, 'agent.json'), {
    brokerUrl: broker.url,
    deviceId: 'dev-1',
    rootPublicKey: toHex(responder.root.publicKey),
    hardwareClass: 'pi4',
    dataDir: join(dataDir, 'data'),
    currentVersion: '1.0.0',
    logLevel: 'warn',
    installer: { type: 'ab-dir', reboot: 'exit' },
    healthCheck: { command: 'true', timeoutMs: 30_000 },
    reconnectPeriodMs: 200,
    limits: {
      window: WINDOW,
      heldFlushChunks: FLUSH_CHUNKS,
      heldFlushMs: 100,
      chunkStallMs: 1000,
      progressIntervalMs: 0,
      rebootFlushMs: 500,
      outbox: { retryAfterMs: 500, backoffBaseMs: 100, backoffCapMs: 1000 },
    },
  });
});

afterEach(async () => {
  if (process.env.FB_DEBUG_TIMES) {
    const t0 = responder.statuses[0]?.at ?? 0;
    console.log(responder.statuses.map((s) => `${s.state}@${s.at - t0}`).join(' '));
  }
  await agent.kill();
  await broker.close();
  await rm(dataDir, { recursive: true, force: true });
});

afterAll(() => undefined);

const stateDir = () => join(dataDir, 'data', 'state');
const states = () => responder.statuses.map((s) => s.state);
const hasState = (state: string) => () => states().includes(state);
const ackSteps = () => responder.acks.map((a) => `${a.step}:${a.code}`);

async function persistedState(): Promise<string> {
  const doc = JSON.parse(await readFile(join(stateDir(), 'state.json'), 'utf8'));
  return doc.state as string;
}

async function persistedHeld(): Promise<Set<number>> {
  const held = new Set<number>();
  const bits = await readFile(join(stateDir(), 'held-1.bin')).catch(() => Buffer.alloc(0));
  for (let i = 0; i < CHUNKS; i++) if ((bits[i >> 3] ?? 0) & (1 << (i & 7))) held.add(i);
  return held;
}

async function assign(): Promise<void> {
  await agent.start();
  await waitUntil(() => responder.statuses.length > 0 || agent.starts > 0, 'agent up');
  responder.assign('dev-1', responder.manifest(release, { seq: 1 }));
}

async function expectCommitted(): Promise<void> {
  await waitUntil(hasState('committed'), `committed; states ${states().join(' ')}`);
  await waitUntil(async () => (await persistedState()) === 'committed', 'committed on disk');
  expect(ackSteps()).toEqual(['downloaded:OK', 'installed:OK', 'committed:OK']);
  expect(await readlink(join(dataDir, 'data', 'slots', 'current'))).toBe('b.img');
  const image = await readFile(join(dataDir, 'data', 'slots', 'b.img'));
  expect(new Uint8Array(image)).toEqual(release.image);
}

async function killInHook(state: string): Promise<void> {
  agent.config = { ...agent.config, hooks: { [state]: 'sleep 30' } };
  await assign();
  await waitUntil(hasState(state), state);
  await waitUntil(async () => (await persistedState()) === state, `${state} on disk`);
  await agent.kill();
  const { hooks: _hooks, ...rest } = agent.config;
  agent.config = rest;
}

describe('kill and restart of the real agent process', () => {
  it('resumes a download killed midway and fetches no chunk it had persisted as held', async () => {
    responder.faults.imageBudget = 60;
    await assign();
    await waitUntil(() => responder.requestedFor(release).length >= 60, '60 chunks served');
    await new Promise((r) => setTimeout(r, 300)); // Let the batched bitmap flush.
    expect(await persistedState()).toBe('downloading');
    await agent.kill();

    const held = await persistedHeld();
    const before = responder.requestedFor(release).length;
    expect(held.size).toBeGreaterThan(0);
    responder.faults.imageBudget = Infinity;
    await agent.start();
    await expectCommitted();

    const after = responder.requestedFor(release).slice(before);
    expect(after.filter((i) => held.has(i))).toEqual([]);
    expect(new Set(after).size).toBe(CHUNKS - held.size);
    // Refetched beyond the persisted set: at most the window in flight plus one flush batch.
    const servedBefore = new Set(responder.requestedFor(release).slice(0, before));
    const lost = [...servedBefore].filter((i) => !held.has(i));
    expect(lost.length).toBeLessThanOrEqual(WINDOW + FLUSH_CHUNKS);
  });

  for (const state of ['downloaded', 'installing', 'rebooting']) {
    it(`resumes after a kill in ${state} without fetching any chunk again`, async () => {
      await killInHook(state);
      const before = responder.totalRequested;
      await agent.start();
      await expectCommitted();
      expect(responder.totalRequested).toBe(before);
    });
  }

  it('counts a boot and commits after a kill on trial', async () => {
    agent.config = { ...agent.config, healthCheck: { command: 'sleep 30', timeoutMs: 60_000 } };
    await assign();
    await waitUntil(hasState('trial'), 'trial');
    await agent.kill();
    agent.config = { ...agent.config, healthCheck: { command: 'true', timeoutMs: 30_000 } };
    const before = responder.totalRequested;
    await agent.start();
    await expectCommitted();
    expect(responder.totalRequested).toBe(before);
    const doc = JSON.parse(await readFile(join(stateDir(), 'state.json'), 'utf8'));
    expect(doc.job.bootCount).toBe(2);
    expect(doc.firmwareVersion).toBe('1.1.0');
  });

  it('rolls back to the previous slot when the health check fails after the reboot', async () => {
    agent.config = {
      ...agent.config,
      healthCheck: { command: 'echo unhealthy; exit 1', timeoutMs: 30_000 },
    };
    await assign();
    await waitUntil(hasState('rolled_back'), `rolled_back; states ${states().join(' ')}`);
    await waitUntil(async () => (await persistedState()) === 'rolled_back', 'on disk');
    await waitUntil(() => ackSteps().length === 3, 'three acks');
    expect(ackSteps()).toEqual([
      'downloaded:OK',
      'installed:OK',
      'rolled_back:FB_ERR_HEALTH_CHECK_FAILED',
    ]);
    await waitUntil(
      async () => (await readlink(join(dataDir, 'data', 'slots', 'current'))) === 'a.img',
      'pointer back on a',
    );
    expect(agent.starts).toBe(2);
  });

  it('stops cleanly on SIGTERM with exit code 0', async () => {
    await agent.start();
    await waitUntil(() => responder.presence.some((p) => p.online), 'online presence');
    expect(await agent.stop()).toBe(0);
    await waitUntil(() => responder.presence.at(-1)?.online === false, 'offline presence');
  });
});
