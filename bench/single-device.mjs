// Single-device throughput and agent memory.
//
// One real agent process (device-agent/dist/cli.js) downloads an image from the real server
// (update-server/dist, in this process) through the embedded aedes broker: chunk table, every
// chunk verified against it and written to the inactive slot, the whole image digest checked,
// then ACK "downloaded". Timed from the assignment to that ACK. The agent's peak RSS is its
// VmHWM from /proc, read at that moment. The agent runs with the Node flags and malloc settings
// of its systemd unit (--max-semi-space-size=1, --initial-old-space-size=48, MALLOC_ARENA_MAX).
// CPU seconds of both sides during the transfer are returned too.
//
// Baselines in the same run: (a) the same bytes published raw through a bare aedes broker to
// one mqtt.js subscriber, (b) the fetch pattern alone (bench/lib/raw-fetch-client.mjs: a client
// process requesting chunks by index with a window, hashing each, answered from memory), with
// Fetchback's chunk size and window and with the 64 KiB chunks and 4 in flight, (c) an
// HTTP download of the same file with curl from a plain Node HTTP server (what Mender and
// hawkBit devices do), (d) the agent's own work on every byte over plain TCP, with no MQTT
// (bench/lib/tcp-fetch-client.mjs: each chunk hashed and written to a slot file, the slot read
// back and its digest checked, all on one thread as in the agent), with both chunk sizes: what
// a Node agent doing that work on one thread could move here, whatever its protocol; with the
// issue's 64 KiB x 4 also stopping after each step (receive only, hash, write).
// Fetchback runs a second time on each size with the server's chunks at 512 KiB (the agent's
// same 1 MiB in flight: 2 chunks), which is not the default: its MB/s, peak RSS and CPU show
// that trade-off in every run. Last, Fetchback at its defaults and (d) run once more with each
// side on a core of its own (bench/lib/cpu-pin.mjs), as a server and a device are in
// production; skipped, with the reason in the results, where the machine cannot pin.
//
//   node bench/single-device.mjs [sizeMiB ...]        (default: 64 256)
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { FetchbackClient, resolveConfig, startServer } from '@fetchback/update-server';
import pino from 'pino';

import { DEFAULT_LIMITS } from '../device-agent/dist/index.js';

import { cannotPin, onClientCore, onServerCore } from './lib/cpu-pin.mjs';
import {
  httpCurlTransfer,
  rawFetchTransfer,
  rawMqttTransfer,
  tcpFetchTransfer,
} from './lib/baselines.mjs';

const AGENT_CLI = fileURLToPath(new URL('../device-agent/dist/cli.js', import.meta.url));
/** Node flags and malloc settings of the agent, as its systemd unit runs it. */
const AGENT_NODE_FLAGS = ['--max-semi-space-size=1', '--initial-old-space-size=48'];
const AGENT_ENV = { MALLOC_ARENA_MAX: '2' };
const MiB = 1024 * 1024;

function writeRandomFile(file, bytes) {
  const fd = openSync(file, 'w');
  for (let done = 0; done < bytes; done += 4 * MiB)
    writeSync(fd, randomBytes(Math.min(4 * MiB, bytes - done)));
  closeSync(fd);
}

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function peakRssMiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/VmHWM:\s+(\d+)/.exec(status)?.[1] ?? 0);
  return kb / 1024;
}

/** Downloads one image of `sizeBytes` with the real agent; returns the figures. */
export async function agentDownload(
  sizeBytes,
  { window, chunkBytes, agentNodeArgs = [], pinned = false } = {},
) {
  const dir = mkdtempSync(join(tmpdir(), 'fb-bench-'));
  // The image lives apart: the caller still needs it for the HTTP baseline.
  const imageDir = mkdtempSync(join(tmpdir(), 'fb-bench-image-'));
  const removeImage = () => rmSync(imageDir, { recursive: true, force: true });
  let finished = false;
  const options = resolveConfig({
    env: {},
    overrides: {
      dataDir: join(dir, 'server'),
      host: '127.0.0.1',
      mqttPort: 0,
      httpPort: 0,
      logLevel: 'warn',
      ...(chunkBytes ? { chunkBytes } : {}),
    },
  });
  const server = await startServer(options, {
    log: pino({ level: 'warn' }),
    announce: () => undefined,
  });
  const api = new FetchbackClient({
    url: `http://127.0.0.1:${server.httpPort}`,
    token: server.initialAdminToken,
  });
  let agent;
  try {
    const image = join(imageDir, 'image.bin');
    writeRandomFile(image, sizeBytes);
    const release = await api.createReleaseFromFile(
      { name: 'bench', version: '2.0.0', hardwareClass: 'pi4' },
      image,
    );
    const { agentConfig } = await api.registerDevice({ id: 'bench-1', hardwareClass: 'pi4' });
    const config = {
      ...agentConfig,
      brokerUrl: `mqtt://127.0.0.1:${server.mqttPort}`,
      dataDir: join(dir, 'agent'),
      currentVersion: '1.0.0',
      installer: { type: 'ab-dir', reboot: 'exit' },
      logLevel: 'warn',
      limits: { maxImageBytes: 4 * 1024 * MiB, ...(window ? { window } : {}) },
    };
    await writeFile(join(dir, 'agent.json'), JSON.stringify(config));
    const agentArgs = [...AGENT_NODE_FLAGS, ...agentNodeArgs, AGENT_CLI];
    const command = [process.execPath, [...agentArgs, '--config', join(dir, 'agent.json')]];
    agent = spawn(...(pinned ? onClientCore(...command) : command), {
      stdio: 'ignore',
      env: { ...process.env, ...AGENT_ENV },
    });

    const downloaded = new Promise((resolve) => {
      server.ctx.events.on('device.ack', (e) => {
        if (e.deviceId === 'bench-1' && e.step === 'downloaded') resolve(e);
      });
    });
    // Let the agent connect first so that connection set-up is not timed.
    await new Promise((r) => setTimeout(r, 1500));
    const agentCpuBefore = cpuSeconds(agent.pid);
    const serverCpuBefore = process.cpuUsage();
    const started = process.hrtime.bigint();
    await api.assign(release.id, ['bench-1']);
    await downloaded;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const serverCpu = process.cpuUsage(serverCpuBefore);
    const agentCpuS = cpuSeconds(agent.pid) - agentCpuBefore;
    const rss = peakRssMiB(agent.pid);
    finished = true;
    return {
      bytes: sizeBytes,
      seconds,
      mbPerS: sizeBytes / seconds / 1e6,
      agentPeakRssMiB: rss,
      // CPU time of each side during the transfer; the server's includes the embedded broker.
      serverCpuS: (serverCpu.user + serverCpu.system) / 1e6,
      agentCpuS,
      image,
      removeImage,
    };
  } finally {
    // With node flags (a profiler), stop it gently so that it writes its output.
    if (agent && agentNodeArgs.length > 0 && agent.exitCode === null) {
      agent.kill('SIGTERM');
      await new Promise((resolve) => agent.once('exit', resolve));
    }
    agent?.kill('SIGKILL');
    await server.close();
    // Three copies of the image (upload, image store, slot) per run: never leave them behind.
    rmSync(dir, { recursive: true, force: true });
    if (!finished) removeImage();
  }
}

/** The whole benchmark: Fetchback against both baselines, and RSS at each size. */
export async function singleDevice(sizesMiB = [64, 256]) {
  const results = [];
  const whyNotPinned = cannotPin();
  for (const mib of sizesMiB) {
    const bytes = mib * MiB;
    const fb = await agentDownload(bytes);
    // The same image in 512 KiB chunks, the same 1 MiB in flight (2 chunks): not the default
    // (docs/performance.md), measured here so that the trade-off is in every run.
    const fb512k = await agentDownload(bytes, { chunkBytes: 512 * 1024 });
    fb512k.removeImage();
    let raw;
    let fetch;
    let fetch64k;
    let http;
    let tcp;
    let tcp64k;
    let pinnedFb;
    let pinnedTcp;
    const tcpSteps = {};
    try {
      // Raw publishes of the same size as Fetchback's chunks (the server's default).
      const { chunkBytes } = resolveConfig({ env: {} });
      raw = await rawMqttTransfer(bytes, chunkBytes);
      // The fetch pattern alone, with Fetchback's chunk size and window, then with the
      // prototype's 64 KiB chunks and 4 in flight that the bar was measured with.
      const window = DEFAULT_LIMITS.windowBytes / chunkBytes;
      fetch = await rawFetchTransfer(bytes, chunkBytes, window);
      fetch64k = await rawFetchTransfer(bytes, 64 * 1024, 4);
      http = await httpCurlTransfer(fb.image, bytes);
      tcp = await tcpFetchTransfer(fb.image, bytes, chunkBytes, window);
      tcp64k = await tcpFetchTransfer(fb.image, bytes, 64 * 1024, 4);
      // What each step of that work costs, with the 64 KiB x 4.
      for (const work of ['receive', 'hash', 'write']) {
        tcpSteps[work] = round(
          (await tcpFetchTransfer(fb.image, bytes, 64 * 1024, 4, { work })).mbPerS,
        );
      }
      tcpSteps.verify = round(tcp64k.mbPerS);
      // Each side on a core of its own, as a server and a device are in production: Fetchback
      // at its defaults, and the plain-TCP baseline with the same chunks and window.
      if (!whyNotPinned) {
        pinnedFb = await onServerCore(() => agentDownload(bytes, { pinned: true }));
        pinnedFb.removeImage();
        pinnedTcp = await onServerCore(() =>
          tcpFetchTransfer(fb.image, bytes, chunkBytes, window, { pinned: true }),
        );
      }
    } finally {
      fb.removeImage();
    }
    results.push({
      sizeMiB: mib,
      fetchbackMBps: round(fb.mbPerS),
      rawMqttMBps: round(raw.mbPerS),
      rawFetchMBps: round(fetch.mbPerS),
      rawFetch64kMBps: round(fetch64k.mbPerS),
      httpCurlMBps: round(http.mbPerS),
      plainTcpMBps: round(tcp.mbPerS),
      plainTcp64kMBps: round(tcp64k.mbPerS),
      plainTcp64kStepsMBps: tcpSteps,
      ratioVsPlainTcp: round(fb.mbPerS / tcp.mbPerS, 2),
      ratioVsRawMqtt: round(fb.mbPerS / raw.mbPerS, 2),
      ratioVsRawFetch: round(fb.mbPerS / fetch.mbPerS, 2),
      ratioVsHttp: round(fb.mbPerS / http.mbPerS, 2),
      agentPeakRssMiB: round(fb.agentPeakRssMiB),
      // CPU per MiB moved, each side (the server's includes the embedded broker).
      serverCpuMsPerMiB: round((fb.serverCpuS * 1000) / mib, 1),
      agentCpuMsPerMiB: round((fb.agentCpuS * 1000) / mib, 1),
      // null, with the reason, where the machine cannot pin (fewer than 2 CPUs, no taskset).
      pinned: pinnedFb
        ? {
            fetchbackMBps: round(pinnedFb.mbPerS),
            plainTcpMBps: round(pinnedTcp.mbPerS),
            ratioVsPlainTcp: round(pinnedFb.mbPerS / pinnedTcp.mbPerS, 2),
            agentPeakRssMiB: round(pinnedFb.agentPeakRssMiB),
            cpuMsPerMiB: [pinnedFb.serverCpuS, pinnedFb.agentCpuS].map((c) =>
              round((c * 1000) / mib, 1),
            ),
          }
        : { skipped: whyNotPinned },
      chunks512kMBps: round(fb512k.mbPerS),
      chunks512kRatio: round(fb512k.mbPerS / fb.mbPerS, 2),
      chunks512kAgentPeakRssMiB: round(fb512k.agentPeakRssMiB),
      chunks512kCpuMsPerMiB: [fb512k.serverCpuS, fb512k.agentCpuS].map((c) =>
        round((c * 1000) / mib, 1),
      ),
    });
  }
  return results;
}

const round = (x, digits = 0) => Number(x.toFixed(digits));

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const results = await singleDevice(sizes.length ? sizes : undefined);
  console.table(results);
  process.exit(0);
}
