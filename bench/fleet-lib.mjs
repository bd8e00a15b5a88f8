// Shared machinery of the fleet benchmarks (fleet, scale, slow links): the update server as a
// child process (so that its CPU and memory are measured apart from the simulator's), and one
// measured fleet update: devices started, a release uploaded, assigned to all, and timed until
// every device has finished and reported.
/* global AbortController -- a Node global the lint config does not list */
import { fork } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import {
  DEFAULT_SIMULATION,
  Simulation,
  resolveFaults,
  testImage,
  uploadRelease,
} from '../simulator/dist/index.js';
import { DEFAULT_LIMITS } from '../device-agent/dist/index.js';
import { FetchbackClient } from '../update-server/dist/index.js';

const SERVER_PROCESS = fileURLToPath(
  new URL('../simulator/dist/bench/server-process.js', import.meta.url),
);
const MiB = 1024 * 1024;
const ASSIGN_BATCH = 1000;

/**
 * Starts the server child; resolves once it listens. `execArgv` adds Node flags to the child.
 * If the child dies mid-run (a crash of the server is a finding, not a reason to hang), every
 * pending and later `stats()` rejects with how it ended, and `exited` says so.
 */
export async function startServerProcess(overrides = {}, { execArgv = [] } = {}) {
  const child = fork(SERVER_PROCESS, [JSON.stringify(overrides)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    execArgv: ['--max-old-space-size=8192', ...execArgv],
  });
  let exited = null;
  const waiting = [];
  const exit = new Promise((resolve) =>
    child.once('exit', (code, signal) => {
      exited = { code, signal };
      for (const w of waiting.splice(0)) w.reject(serverGone(exited));
      resolve();
    }),
  );
  // A send to a child that just died fails with EPIPE; the exit handler reports it.
  child.on('error', () => undefined);
  const ready = await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code, signal) => reject(serverGone({ code, signal })));
  });
  if (ready.type !== 'ready') throw new Error(`server child said ${JSON.stringify(ready)}`);
  // Replies come in the order of the requests: one listener answers them first come first served.
  child.on('message', (m) => {
    if (m.type === 'stats') waiting.shift()?.resolve(m);
  });
  let peakRss = 0;
  const stats = () =>
    new Promise((resolve, reject) => {
      if (exited) return reject(serverGone(exited));
      waiting.push({
        resolve: (m) => {
          peakRss = Math.max(peakRss, m.memory.rss);
          resolve(m);
        },
        reject,
      });
      child.send({ type: 'stats' });
    });
  return {
    url: ready.url,
    token: ready.token,
    mqttPort: ready.mqttPort,
    pid: child.pid,
    stats,
    get peakRss() {
      return peakRss;
    },
    get exited() {
      return exited;
    },
    async stop() {
      if (!exited) child.send({ type: 'stop' });
      await exit;
    },
  };
}

function serverGone({ code, signal }) {
  return new Error(`the server process ended mid-run (exit ${code ?? signal})`);
}

/** Samples a value every `intervalMs`, keeping the peak. */
function peakSampler(read, intervalMs = 250) {
  let peak = 0;
  const sample = async () => {
    try {
      peak = Math.max(peak, await read());
    } catch {
      // The process is gone; its peak so far stands.
    }
  };
  const timer = setInterval(sample, intervalMs);
  return {
    async stop() {
      clearInterval(timer);
      await sample();
      return peak;
    },
  };
}

const cpuSeconds = (u) => (u.user + u.system) / 1e6;

/**
 * One measured fleet update against `server` (a started server process): `devices` virtual
 * devices, an image of `imageBytes`, `faults` as `name=value` strings. Returns the figures.
 */
export async function measureFleetUpdate({
  server,
  devices,
  imageBytes = MiB,
  faults = [],
  // The agent's shipped defaults, not the simulator's shortened waits (SIM_LIMITS): with no
  // faults injected there is nothing to hurry, and a fleet in the field runs these.
  limits = DEFAULT_LIMITS,
  prefix = 'bench',
  startConcurrency = 100,
  timeoutMs = 15 * 60_000,
  /** Interval of the progress lines on `log`, in milliseconds. */
  progressMs = 10_000,
  // The simulated installer, health check and boot take no time here: the benchmark measures
  // Fetchback, not the simulated device.
  sim = { installMs: 0, healthCheckMs: 0, bootMs: 50 },
  log = (line) => process.stderr.write(`${line}\n`),
}) {
  const stateDir = await mkdtemp(join(tmpdir(), 'fetchback-bench-'));
  const client = new FetchbackClient({ url: server.url, token: server.token });
  const rssBefore = { sim: process.memoryUsage().rss, server: (await server.stats()).memory.rss };

  log(`  starting ${devices} devices`);
  const startMs = Date.now();
  const simulation = await Simulation.start({
    ...DEFAULT_SIMULATION,
    server: server.url,
    token: server.token,
    devices,
    prefix,
    rates: resolveFaults('none', faults),
    stateDir,
    progress: false,
    startConcurrency,
    sampleMs: 1000,
    ...sim,
    limits,
  });
  const connectSeconds = (Date.now() - startMs) / 1000;
  globalThis.gc?.();
  const rssConnected = {
    sim: process.memoryUsage().rss,
    server: (await server.stats()).memory.rss,
  };

  const release = await uploadRelease(
    client,
    { name: `${prefix}-fw`, version: '1.1.0', hardwareClass: 'pi4' },
    testImage(`${prefix}-1.1.0`, imageBytes),
  );
  const simPeak = peakSampler(() => process.memoryUsage().rss);
  const serverPeak = peakSampler(async () => (await server.stats()).memory.rss);
  const cpuBefore = (await server.stats()).cpu;
  const simCpuBefore = process.cpuUsage();

  log(`  assigning ${release.id} (${imageBytes} bytes) to ${devices} devices`);
  const assignedMs = Date.now();
  const ids = simulation.fleet.devices.map((d) => d.id);
  for (let i = 0; i < ids.length; i += ASSIGN_BATCH) {
    await client.assign(release.id, ids.slice(i, i + ASSIGN_BATCH));
  }
  const progress = setInterval(() => {
    const seconds = Math.round((Date.now() - assignedMs) / 1000);
    const states = Object.entries(simulation.tracker.states)
      .map(([state, n]) => `${state} ${n}`)
      .join(', ');
    const pending = simulation.fleet.devices.reduce((n, d) => n + d.pendingReports, 0);
    log(`  ${seconds} s: ${states}; ${simulation.tracker.bytes} bytes; ${pending} reports pending`);
  }, progressMs);
  const serverDied = new AbortController();
  const watchServer = setInterval(() => server.exited && serverDied.abort(), 500);
  const endReason = await simulation.waitForEnd({
    untilIdle: true,
    idleTimeoutMs: 60_000,
    durationMs: timeoutMs,
    signal: serverDied.signal,
  });
  clearInterval(progress);
  clearInterval(watchServer);
  const wallSeconds = (Date.now() - assignedMs) / 1000;
  const reason = server.exited ? 'server-exited' : endReason;
  if (server.exited) log(`  the server process ended mid-run: ${JSON.stringify(server.exited)}`);
  const serverMetrics = await fetchbackMetrics(client).catch(() => null);
  const cpuAfter = server.exited ? null : (await server.stats()).cpu;
  const simCpu = process.cpuUsage(simCpuBefore);
  const peaks = { sim: await simPeak.stop(), server: await serverPeak.stop() };
  const report = await simulation.finish();
  await rm(stateDir, { recursive: true, force: true });

  const committed = report.finalStates.committed ?? 0;
  const serverCpuSeconds = cpuAfter ? cpuSeconds(cpuAfter) - cpuSeconds(cpuBefore) : NaN;
  return {
    devices,
    imageBytes,
    chunkBytes: release.chunkBytes,
    faults,
    endReason: reason,
    serverExit: server.exited,
    committed,
    finalStates: report.finalStates,
    connectSeconds: round(connectSeconds),
    wallSeconds: round(wallSeconds),
    // From the assignment, not from the fleet's start.
    commitSeconds: sinceAssignment(
      report.timeToCommit,
      assignedMs - simulation.tracker.startedAtMs,
    ),
    payloadMBps: round((committed * imageBytes) / wallSeconds / 1e6),
    bytesDelivered: report.bytes.delivered,
    serverMetrics,
    bytesRatio: report.bytes.ratio,
    serverCpuSeconds: round(serverCpuSeconds),
    serverCpuPercentOfOneCore: round((serverCpuSeconds / wallSeconds) * 100),
    simCpuSeconds: round(cpuSeconds(simCpu)),
    memory: {
      serverRssBeforeMiB: mib(rssBefore.server),
      serverRssConnectedMiB: mib(rssConnected.server),
      serverRssPeakMiB: mib(peaks.server),
      simRssBeforeMiB: mib(rssBefore.sim),
      simRssConnectedMiB: mib(rssConnected.sim),
      simRssPeakMiB: mib(peaks.sim),
      serverKiBPerDeviceConnected: round((rssConnected.server - rssBefore.server) / devices / 1024),
      simKiBPerDeviceConnected: round((rssConnected.sim - rssBefore.sim) / devices / 1024),
      serverKiBPerDevicePeak: round((peaks.server - rssBefore.server) / devices / 1024),
      simKiBPerDevicePeak: round((peaks.sim - rssBefore.sim) / devices / 1024),
    },
  };
}

/** The server's own counters of this run: chunks served and fetches refused, by code. */
async function fetchbackMetrics(client) {
  const text = await client.request('GET', '/metrics');
  const picked = {};
  for (const line of String(text).split('\n')) {
    if (!line.startsWith('fetchback_') || line.includes('_bucket')) continue;
    if (!/(chunks_served|bytes_served|store_reads|reject|refus|busy)/i.test(line)) continue;
    const [name, value] = line.split(/ (?=[^ ]+$)/);
    picked[name] = Number(value);
  }
  return picked;
}

export const round = (x, digits = 2) => Math.round(x * 10 ** digits) / 10 ** digits;
const mib = (bytes) => round(bytes / MiB, 1);
function sinceAssignment(times, offsetMs) {
  const sec = (ms) => (ms === null ? null : round((ms - offsetMs) / 1000));
  return { p50: sec(times.p50Ms), p90: sec(times.p90Ms), p100: sec(times.p100Ms) };
}
