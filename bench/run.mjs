// `npm run bench`: every Fetchback benchmark in sequence, each against baselines measured in the
// same run, a summary table of the figures and ratios on stdout, and the full results as JSON.
//
//   npm run bench                                   (builds, then runs everything below)
//   node bench/run.mjs [--only single,fleet,slow,scale] [--devices N] [--scale N[,N...]]
//                      [--sizes MiB[,MiB...]] [--out file.json]
//
// What it measures (each module's header says how):
//   single  one real agent process downloads a 64 and a 256 MiB image through the embedded
//           broker, against raw MQTT publishes through a bare broker, the fetch pattern alone
//           through that broker, an HTTP download with curl, and the agent's own work over
//           plain TCP with no MQTT (bench/single-device.mjs); once more with each side on a
//           core of its own, and in 512 KiB chunks (not the default) for that trade-off;
//           --sizes changes the image sizes.
//   fleet   N virtual devices (--devices, 1,000 by default) each update from a 1 MiB image:
//           wall time to all committed, server CPU, server and simulator memory, against raw
//           MQTT moving the same bytes (bench/fleet.mjs).
//   slow    10 devices, 1 MiB, 50 ms latency per direction: Fetchback's defaults (256 KiB
//           chunks, 1 MiB window) against the stop-and-wait defaults of AWS's MQTT OTA client (4 KiB
//           blocks, one request at a time) run on our own agent (bench/slow-link.mjs).
//   scale   the largest fleet one simulator and one server take to completion: each size of
//           --scale (2,000 by default) with a 256 KiB image, memory per device on both sides,
//           against the raw-MQTT fleet-shaped transfer (bench/scale.mjs).
//
// Each benchmark runs in a child process of its own (a fresh heap and descriptor table, and
// its temporary files in a directory removed after it), so that one failing or leaking
// benchmark neither skews nor stops the next. A failed benchmark is reported as such, the
// others still run, and the exit code is 1. Progress goes to stderr; the JSON is written to
// --out (default: fetchback-bench-<time>.json in the OS temporary directory), and its path is
// printed last.
import { execFileSync, fork } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const SELF = fileURLToPath(import.meta.url);
const BENCHMARKS = ['single', 'fleet', 'slow', 'scale'];
/** A benchmark that runs longer than this is killed and reported as failed. */
const BENCHMARK_TIMEOUT_MS = 60 * 60_000;

/** Runs one benchmark by name, in this process (the child side). */
async function runBenchmark(name, args) {
  switch (name) {
    case 'single': {
      const { singleDevice } = await import('./single-device.mjs');
      return { name: 'single', sizes: await singleDevice(args.sizes) };
    }
    case 'fleet': {
      const { fleetBenchmark } = await import('./fleet.mjs');
      return fleetBenchmark({ devices: args.devices });
    }
    case 'slow': {
      const { slowLinkBenchmark } = await import('./slow-link.mjs');
      return slowLinkBenchmark({});
    }
    case 'scale': {
      const { scaleBenchmark } = await import('./scale.mjs');
      return scaleBenchmark({ sizes: args.scale });
    }
    default:
      throw new Error(`unknown benchmark ${name}`);
  }
}

/** Forks this file to run one benchmark; resolves with its result or `{ error }`. */
async function inChild(name, args) {
  const tempDir = await mkdtemp(join(tmpdir(), `fetchback-bench-${name}-`));
  const child = fork(SELF, ['--child', name, JSON.stringify(args)], {
    // The fleet benchmarks hold thousands of devices in the simulator's heap.
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    env: { ...process.env, TMPDIR: tempDir },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let result = { name, error: 'the benchmark process exited without a result' };
  child.on('message', (message) => (result = message));
  const timer = setTimeout(() => {
    result = { name, error: `killed after ${BENCHMARK_TIMEOUT_MS / 60_000} minutes` };
    child.kill('SIGKILL');
  }, BENCHMARK_TIMEOUT_MS);
  const [code, signal] = await once(child, 'exit');
  clearTimeout(timer);
  if (code !== 0 && !result.error) result = { name, error: `exited ${code ?? signal}` };
  // The server child notices its parent is gone and exits; give it a moment before removing
  // the directory it writes into.
  await new Promise((r) => setTimeout(r, 1000));
  await rm(tempDir, { recursive: true, force: true });
  return result;
}

async function childMain(name, argsJson) {
  try {
    const result = await runBenchmark(name, JSON.parse(argsJson));
    process.send({ ...result, name });
  } catch (err) {
    process.send({ name, error: err?.stack ?? String(err) });
  }
  // Timers a benchmark leaves behind (e.g. delayed clean-ups) must not keep the child alive.
  process.disconnect();
  process.exit(0);
}

function parseOptions(argv) {
  const { values } = parseArgs({
    args: argv,
    options: {
      only: { type: 'string' },
      devices: { type: 'string', default: '1000' },
      scale: { type: 'string', default: '2000' },
      sizes: { type: 'string', default: '64,256' },
      out: { type: 'string' },
    },
  });
  const only = values.only ? values.only.split(',').map((s) => s.trim()) : BENCHMARKS;
  for (const name of only) {
    if (!BENCHMARKS.includes(name)) {
      throw new Error(`"--only" expected names from ${BENCHMARKS.join(',')}, got ${name}`);
    }
  }
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return {
    only,
    out: resolve(values.out ?? join(tmpdir(), `fetchback-bench-${stamp}.json`)),
    args: {
      devices: positiveInt(values.devices, '--devices'),
      scale: values.scale.split(',').map((s) => positiveInt(s, '--scale')),
      sizes: values.sizes.split(',').map((s) => positiveInt(s, '--sizes')),
    },
  };
}

function positiveInt(text, flag) {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || n < 1) {
    throw new Error(`"${flag}" expected a positive integer, got ${text}`);
  }
  return n;
}

/** What the machine and checkout were when the figures were taken. */
function environment() {
  const git = (...args) => {
    try {
      return execFileSync('git', args, { encoding: 'utf8', stdio: 'pipe' }).trim();
    } catch {
      return null;
    }
  };
  return {
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    totalMemGiB: Math.round(totalmem() / 2 ** 30),
    commit: git('rev-parse', '--short', 'HEAD'),
    dirty: git('status', '--porcelain', '--untracked-files=no') !== '',
  };
}

/** Rows of the summary table: benchmark, figure, Fetchback, baseline, ratio. */
function summaryRows(result) {
  if (result.error) return [[result.name, 'FAILED', firstLine(result.error), '', '']];
  switch (result.name) {
    case 'single':
      return result.sizes.flatMap((s) =>
        [
          ['MB/s vs raw MQTT', s.fetchbackMBps, s.rawMqttMBps, s.ratioVsRawMqtt],
          ['MB/s vs raw fetch, 256 KiB x 4', s.fetchbackMBps, s.rawFetchMBps, s.ratioVsRawFetch],
          ['raw fetch, 64 KiB x 4 (the issue)', '', s.rawFetch64kMBps, ''],
          ['MB/s vs HTTP curl', s.fetchbackMBps, s.httpCurlMBps, s.ratioVsHttp],
          ['MB/s vs plain TCP, 256 KiB x 4', s.fetchbackMBps, s.plainTcpMBps, s.ratioVsPlainTcp],
          ['plain TCP, 64 KiB x 4', '', s.plainTcp64kMBps, ''],
          [
            'plain TCP 64 KiB: receive|hash|write|all',
            '',
            Object.values(s.plainTcp64kStepsMBps).join(' | '),
            '',
          ],
          ['agent peak RSS MiB', s.agentPeakRssMiB, '', ''],
          [
            'CPU ms per MiB, server | agent',
            `${s.serverCpuMsPerMiB} | ${s.agentCpuMsPerMiB}`,
            '',
            '',
          ],
          // Each side on a core of its own (bench/lib/cpu-pin.mjs).
          ...(s.pinned.skipped
            ? [['own cores: not measured', s.pinned.skipped, '', '']]
            : [
                [
                  'own cores: MB/s vs plain TCP',
                  s.pinned.fetchbackMBps,
                  s.pinned.plainTcpMBps,
                  s.pinned.ratioVsPlainTcp,
                ],
                [
                  'own cores: RSS MiB; CPU srv|agent',
                  `${s.pinned.agentPeakRssMiB}; ${s.pinned.cpuMsPerMiB.join(' | ')}`,
                  '',
                  '',
                ],
              ]),
          // Not the default: the same run in 512 KiB chunks, against the default's MB/s.
          [
            'MB/s, 512 KiB chunks x 2 vs default',
            s.chunks512kMBps,
            s.fetchbackMBps,
            s.chunks512kRatio,
          ],
          [
            '512 KiB chunks: RSS MiB; CPU srv|agent',
            `${s.chunks512kAgentPeakRssMiB}; ${s.chunks512kCpuMsPerMiB.join(' | ')}`,
            '',
            '',
          ],
        ].map((row) => [`single ${s.sizeMiB} MiB`, ...row]),
      );
    case 'fleet':
      return [
        ...fleetRows(`fleet ${result.devices}`, result, result.baselines.rawMqttFleetShaped),
        [
          `fleet ${result.devices}`,
          's vs raw MQTT, 1 client',
          result.wallSeconds,
          result.baselines.rawMqttOneSubscriber.seconds,
          result.ratios.wallVsRawOneSubscriber,
        ],
      ];
    case 'slow':
      return [
        [
          'slow link',
          'wall s, 50 ms each way',
          result.fetchback.wallSeconds,
          result.stopAndWait.wallSeconds,
          result.ratios.fetchbackOverStopAndWaitWall,
        ],
      ];
    case 'scale':
      return result.runs.flatMap((run) =>
        run.skipped
          ? [[`scale ${run.devices}`, 'skipped', run.skipped, '', '']]
          : fleetRows(`scale ${run.devices}`, run, run.baselines.rawMqttFleetShaped),
      );
    default:
      return [];
  }
}

function fleetRows(label, run, raw) {
  const m = run.memory;
  return [
    [label, 'committed', `${run.committed}/${run.devices}`, '', ''],
    [
      label,
      's to all committed vs raw MQTT',
      run.wallSeconds,
      raw.seconds ?? raw.skipped ?? '',
      run.ratios.wallVsRawFleetShaped ?? '',
    ],
    [
      label,
      'server CPU s (% of a core)',
      `${run.serverCpuSeconds} (${run.serverCpuPercentOfOneCore} %)`,
      '',
      '',
    ],
    [
      label,
      'KiB/device server, connected|peak',
      `${m.serverKiBPerDeviceConnected} | ${m.serverKiBPerDevicePeak}`,
      '',
      '',
    ],
    [
      label,
      'KiB/device sim, connected|peak',
      `${m.simKiBPerDeviceConnected} | ${m.simKiBPerDevicePeak}`,
      '',
      '',
    ],
  ];
}

const firstLine = (text) => String(text).split('\n')[0].slice(0, 60);

function formatTable(rows) {
  const header = ['benchmark', 'figure', 'fetchback', 'baseline', 'ratio'];
  const all = [header, ...rows].map((r) => r.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i].length)));
  const line = (r) =>
    r
      .map((c, i) => c.padEnd(widths[i]))
      .join('  ')
      .trimEnd();
  return [
    line(all[0]),
    widths.map((w) => '-'.repeat(w)).join('  '),
    ...all.slice(1).map(line),
  ].join('\n');
}

async function main() {
  const options = parseOptions(process.argv.slice(2));
  const log = (line) => process.stderr.write(`${line}\n`);
  const report = {
    startedAt: new Date().toISOString(),
    environment: environment(),
    args: options.args,
    loadAverageBefore: loadavg().map((x) => Math.round(x * 100) / 100),
    results: [],
  };
  for (const name of options.only) {
    log(`\n== ${name} ==`);
    const startedMs = Date.now();
    const result = await inChild(name, options.args);
    result.benchmarkSeconds = Math.round((Date.now() - startedMs) / 100) / 10;
    report.results.push(result);
    if (result.error) log(`${name} FAILED: ${result.error}`);
    await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);
  }
  report.loadAverageAfter = loadavg().map((x) => Math.round(x * 100) / 100);
  report.finishedAt = new Date().toISOString();
  await writeFile(options.out, `${JSON.stringify(report, null, 2)}\n`);

  console.log(`\nFetchback benchmarks (${report.environment.cpus} CPUs, node ${process.version})`);
  console.log('ratio = fetchback / baseline (for MB/s, above 1 is faster; for seconds, below 1)\n');
  console.log(formatTable(report.results.flatMap(summaryRows)));
  console.log(`\nfull results: ${options.out}`);
  return report.results.some((r) => r.error) ? 1 : 0;
}

if (process.argv[2] === '--child') {
  await childMain(process.argv[3], process.argv[4]);
} else {
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(`bench: ${err.message}`);
      process.exit(2);
    },
  );
}
