// Slow-link benchmark: a few devices (10 by default) update from the same image (1 MiB by
// default) over a link with 50 ms of latency per direction (the simulator's `latency` fault, so
// 100 ms per round trip), twice, each time through its own server child with its embedded broker:
//
//   fetchback      Fetchback's defaults: 256 KiB chunks, 4 requests in flight (1 MiB window).
//   stop-and-wait  The defaults of AWS's MQTT OTA client, run as a configuration of our agent:
//                  4 KiB chunks (server option chunkBytes 4096), one request in flight (agent
//                  limits window 1). The agent asks for the next block only once the last
//                  arrived, as that client does.
//
// Reports both wall times (assignment to every device committed and reported) and their ratio.
// Alongside, the floor each configuration has on this link: round trips needed for the chunks
// alone (chunks / window, rounded up) times the round-trip time; that ignores the ACK steps,
// which both configurations pay alike.
//
//   node bench/slow-link.mjs [devices] [latencyMs]       (build first: npx tsc -b)
import { DEFAULT_LIMITS } from '../device-agent/dist/index.js';
import { measureFleetUpdate, round, startServerProcess } from './fleet-lib.mjs';

const MiB = 1024 * 1024;

/** The two configurations compared, as server overrides and agent limits. */
const CONFIGS = [
  // The window the agent derives from its byte budget for the server's 256 KiB chunks.
  {
    name: 'fetchback',
    server: {},
    limits: DEFAULT_LIMITS,
    window: DEFAULT_LIMITS.windowBytes / (256 * 1024),
  },
  {
    name: 'stopAndWait',
    server: { chunkBytes: 4096 },
    limits: Object.freeze({ ...DEFAULT_LIMITS, window: 1 }),
    window: 1,
  },
];

export async function slowLinkBenchmark({ devices = 10, imageBytes = MiB, latencyMs = 50 } = {}) {
  const log = (line) => process.stderr.write(`${line}\n`);
  const runs = {};
  for (const config of CONFIGS) {
    log(`slow link (${config.name}): ${devices} devices, ${imageBytes} bytes, ${latencyMs} ms`);
    runs[config.name] = await measureOne(config, { devices, imageBytes, latencyMs, log });
  }
  const fb = runs.fetchback;
  const saw = runs.stopAndWait;
  return {
    name: 'slow-link',
    devices,
    imageBytes,
    latencyMsPerDirection: latencyMs,
    fetchback: fb,
    stopAndWait: saw,
    ratios: {
      fetchbackOverStopAndWaitWall: round(fb.wallSeconds / saw.wallSeconds, 3),
      stopAndWaitOverFetchbackWall: round(saw.wallSeconds / fb.wallSeconds),
      stopAndWaitOverFetchbackP50: ratioOrNull(saw.commitSeconds.p50, fb.commitSeconds.p50),
    },
  };
}

async function measureOne(config, { devices, imageBytes, latencyMs, log }) {
  const server = await startServerProcess(config.server);
  let run;
  try {
    run = await measureFleetUpdate({
      server,
      devices,
      imageBytes,
      faults: [`latency=${latencyMs}`],
      limits: config.limits,
      prefix: `slow-${config.name.toLowerCase()}`,
      log,
    });
  } finally {
    await server.stop();
  }
  const chunks = Math.ceil(imageBytes / run.chunkBytes);
  const roundTrips = Math.ceil(chunks / config.window);
  return {
    chunkBytes: run.chunkBytes,
    window: config.window,
    committed: run.committed,
    endReason: run.endReason,
    wallSeconds: run.wallSeconds,
    commitSeconds: run.commitSeconds,
    chunkFloorSeconds: round((roundTrips * 2 * latencyMs) / 1000),
    bytesDelivered: run.bytesDelivered,
    serverCpuSeconds: run.serverCpuSeconds,
    serverMetrics: run.serverMetrics,
  };
}

const ratioOrNull = (a, b) => (a === null || b === null || b === 0 ? null : round(a / b));

if (import.meta.url === `file://${process.argv[1]}`) {
  const devices = Number(process.argv[2] ?? 10);
  const latencyMs = Number(process.argv[3] ?? 50);
  const result = await slowLinkBenchmark({ devices, latencyMs });
  console.log(JSON.stringify(result, null, 2));
}
