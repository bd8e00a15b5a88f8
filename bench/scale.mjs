// Scale benchmark: the largest fleet that one simulator process (this one) and one server child
// process (with its embedded broker) take through an update to completion on this machine. For
// each fleet size asked for, N virtual devices (each its own MQTT connection, on the real agent
// code) update from a small image (256 KiB by default); the figures are the wall time from the
// assignment to every device committed, whether all committed, and the memory per device on
// both sides (server = broker, simulator), connected and at the peak of the update.
//
// Baseline in the same run: raw MQTT moving the same bytes to the same number of mqtt.js
// clients, fleet-shaped (bench/lib/baselines.mjs `rawMqttFleetTransfer`).
//
//   node bench/scale.mjs [N ...]             (default: 2000; build first: npx tsc -b)
//
// Each connection takes a file descriptor in each process, and the raw baseline holds both ends
// of N connections in one process; a size whose descriptors do not fit `ulimit -n` is refused
// before it starts rather than failing half-way.
import { execFileSync } from 'node:child_process';

import { rawMqttFleetTransfer } from './lib/baselines.mjs';
import { measureFleetUpdate, round, startServerProcess } from './fleet-lib.mjs';

const KiB = 1024;
/** Descriptors a process needs besides its connections (files, pipes, the database). */
const SPARE_FDS = 200;

export async function scaleBenchmark({ sizes = [2000], imageBytes = 256 * KiB } = {}) {
  const log = (line) => process.stderr.write(`${line}\n`);
  const fdLimit = openFileLimit();
  const runs = [];
  for (const devices of sizes) {
    log(`scale: ${devices} devices, ${imageBytes} byte image (fd limit ${fdLimit ?? 'unknown'})`);
    runs.push(await scaleRun({ devices, imageBytes, fdLimit, log }));
  }
  const completed = runs.filter((r) => r.allCommitted).map((r) => r.devices);
  return {
    name: 'scale',
    imageBytes,
    fdLimit,
    largestCompleted: completed.length ? Math.max(...completed) : null,
    runs,
  };
}

async function scaleRun({ devices, imageBytes, fdLimit, log }) {
  if (fdLimit !== undefined && devices + SPARE_FDS > fdLimit) {
    return { devices, skipped: `needs ${devices + SPARE_FDS} descriptors, ulimit -n ${fdLimit}` };
  }
  const server = await startServerProcess({});
  let fleet;
  try {
    fleet = await measureFleetUpdate({
      server,
      devices,
      imageBytes,
      prefix: 'scale',
      startConcurrency: 200,
      timeoutMs: 30 * 60_000,
      log,
    });
  } finally {
    await server.stop();
  }
  const allCommitted = fleet.committed === devices;
  let baseline = null;
  if (fdLimit !== undefined && 2 * devices + SPARE_FDS > fdLimit) {
    baseline = { skipped: `needs ${2 * devices + SPARE_FDS} descriptors, ulimit -n ${fdLimit}` };
  } else {
    log('  baseline: raw MQTT, fleet-shaped, same clients and bytes');
    const raw = await rawMqttFleetTransfer(devices, imageBytes, fleet.chunkBytes);
    baseline = { seconds: round(raw.seconds), mbPerS: round(raw.mbPerS) };
  }
  return {
    ...fleet,
    allCommitted,
    baselines: { rawMqttFleetShaped: baseline },
    ratios: {
      wallVsRawFleetShaped: baseline.seconds ? round(fleet.wallSeconds / baseline.seconds) : null,
    },
  };
}

/** The soft limit on open files of this process (its children inherit it). */
function openFileLimit() {
  try {
    const text = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
    return text === 'unlimited' ? undefined : Number(text);
  } catch {
    return undefined;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const sizes = process.argv
    .slice(2)
    .map(Number)
    .filter((n) => n > 0);
  const result = await scaleBenchmark(sizes.length ? { sizes } : {});
  console.log(JSON.stringify(result, null, 2));
}
