/**
 * `fetchback-sim`'s flags: their declaration (with help text), and the parser that turns the
 * parsed strings into validated `SimulationOptions` before anything starts.
 */
import { withLimits } from '@fetchback/device-agent';
import { fbError } from '@fetchback/shared';
import { DEFAULT_URL } from '@fetchback/update-server';
import { type Command, Option } from 'commander';

import { FAULTS, PROFILES, resolveFaults } from './faults/profiles.js';
import { DEFAULT_SIMULATION, SIM_LIMITS, type SimulationOptions } from './simulation.js';

export interface CliValues {
  server?: string;
  token?: string;
  devices: string;
  class: string;
  prefix: string;
  faults: string;
  fault: string[];
  seed: string;
  stateDir: string;
  storage: string;
  broker?: string;
  firmwareVersion: string;
  window: string;
  chunkStallMs: string;
  healthTimeoutMs: string;
  installMs: string;
  healthCheckMs: string;
  bootMs: string;
  startConcurrency: string;
  report?: string;
  html?: string;
  duration?: string;
  untilIdle?: boolean;
  idleTimeout: string;
  progress: boolean;
  logLevel: string;
}

const d = DEFAULT_SIMULATION;

export function declareOptions(program: Command): Command {
  const collect = (value: string, previous: string[]) => [...previous, value];
  return program
    .option(
      '--server <url>',
      'update server HTTP base URL (env FETCHBACK_URL; default: the local `npm start` server)',
      process.env.FETCHBACK_URL ?? DEFAULT_URL,
    )
    .option(
      '--token <token>',
      'API token with the operator role (env FETCHBACK_TOKEN)',
      process.env.FETCHBACK_TOKEN,
    )
    .option('--devices <n>', 'number of virtual devices', '10')
    .option('--class <hw>', 'hardware class the devices register with', d.hardwareClass)
    .option('--prefix <name>', 'device ids are <prefix>-00001 …, tagged fleet=<prefix>', d.prefix)
    .option('--faults <profile>', `fault profile: ${Object.keys(PROFILES).join(', ')}`, 'none')
    .option('--fault <name=value>', 'set one fault on top of the profile (repeatable)', collect, [])
    .option(
      '--seed <n>',
      'seed of the fault plans; the same seed injects the same faults',
      String(d.seed),
    )
    .option(
      '--state-dir <dir>',
      'keeps device credentials (and dir storage) between runs',
      d.stateDir,
    )
    .addOption(
      new Option(
        '--storage <kind>',
        'memory: state and slots in memory, image bytes shared; dir: files under --state-dir',
      )
        .choices(['memory', 'dir'])
        .default(d.storage),
    )
    .option('--broker <url>', 'MQTT URL to use instead of the one the server hands out')
    .option(
      '--firmware-version <v>',
      'version the devices run on their first start',
      d.firmwareVersion,
    )
    .option(
      '--window <chunks>',
      'fetch requests in flight per device; 0 = the agent default (1 MiB worth)',
      '0',
    )
    .option(
      '--chunk-stall-ms <ms>',
      'no chunk for this long: the agent re-requests',
      String(SIM_LIMITS.chunkStallMs),
    )
    .option(
      '--health-timeout-ms <ms>',
      "the agent's health-check timeout",
      String(SIM_LIMITS.healthCheckTimeoutMs),
    )
    .option('--install-ms <ms>', 'time the simulated installer takes', String(d.installMs))
    .option('--health-check-ms <ms>', 'time a passing health check takes', String(d.healthCheckMs))
    .option(
      '--boot-ms <ms>',
      'mean time from a reboot or crash to the next agent start',
      String(d.bootMs),
    )
    .option(
      '--start-concurrency <n>',
      'devices connecting at once during start-up',
      String(d.startConcurrency),
    )
    .option('--report <file>', 'write the report as JSON')
    .option('--html <file>', 'write the report as a self-contained HTML page with the update curve')
    .option('--duration <s>', 'stop after this many seconds at the latest')
    .option('--until-idle', 'stop once every device finished its update and reported everything')
    .option(
      '--idle-timeout <s>',
      'with --until-idle: also stop after this long without any change',
      '120',
    )
    .option('--no-progress', 'no live progress line (it is off anyway when stderr is not a TTY)')
    .option(
      '--log-level <level>',
      'agent logs (pino JSON on stderr): silent, error, warn, info, debug',
      'silent',
    );
}

/** Help text after the flags: every fault and profile, with what its value means. */
export function faultHelp(): string {
  const width = Math.max(...FAULTS.map((f) => f.name.length));
  const faults = FAULTS.map((f) => {
    const unit = f.unit === 'ms' ? 'value in ms' : 'value 0..1';
    return `  ${f.name.padEnd(width)}  ${f.describe} (${unit})`;
  });
  const profiles = Object.entries(PROFILES).map(([name, p]) => {
    const set = Object.entries(p.rates)
      .filter(([, v]) => v > 0)
      .map(([k, v]) => `${k}=${v}`)
      .join(' ');
    return `  ${name.padEnd(width)}  ${p.describe}${set ? `\n  ${''.padEnd(width)}  ${set}` : ''}`;
  });
  return [
    '',
    'Faults (--fault name=value; each device draws its own from --seed):',
    ...faults,
    '',
    'Profiles (--faults name):',
    ...profiles,
    '',
    'Without --duration or --until-idle the run lasts until Ctrl-C; the report is written then.',
    'The report gives the times at which 50, 90 and 100 % of the fleet had committed and, when',
    'faults keep devices from committing by design (failing health checks, devices that go',
    'away), the time at which every device meant to commit had.',
    'Examples:',
    '  fetchback-sim --server http://localhost:8080 --token $FETCHBACK_TOKEN' +
      ' --devices 200 --until-idle',
    '  fetchback-sim ... --devices 1000 --faults chaos --fault latency=50' +
      ' --report run.json --html run.html',
  ].join('\n');
}

function int(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < min || n > max) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"${flag}" expected an integer in [${min}, ${max}], got ${value}`,
    );
  }
  return n;
}

/**
 * Validates the flags.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` naming the flag.
 */
export function toSimulationOptions(values: CliValues): SimulationOptions {
  if (!values.server) throw fbError('FB_ERR_ARGUMENT', '"--server" expected a URL, got nothing');
  const limits = withLimits({
    ...SIM_LIMITS,
    window: int(values.window, '--window', 0, 256),
    chunkStallMs: int(values.chunkStallMs, '--chunk-stall-ms', 100, 600_000),
    healthCheckTimeoutMs: int(values.healthTimeoutMs, '--health-timeout-ms', 100, 3_600_000),
    outbox: SIM_LIMITS.outbox,
  });
  return {
    ...DEFAULT_SIMULATION,
    server: values.server,
    ...(values.token ? { token: values.token } : {}),
    devices: int(values.devices, '--devices', 1, 100_000),
    hardwareClass: values.class,
    prefix: values.prefix,
    rates: resolveFaults(values.faults, values.fault),
    seed: int(values.seed, '--seed', 0, 2 ** 32 - 1),
    stateDir: values.stateDir,
    storage: values.storage as 'memory' | 'dir',
    ...(values.broker ? { brokerUrl: values.broker } : {}),
    firmwareVersion: values.firmwareVersion,
    limits,
    installMs: int(values.installMs, '--install-ms', 0, 600_000),
    healthCheckMs: int(values.healthCheckMs, '--health-check-ms', 0, 600_000),
    bootMs: int(values.bootMs, '--boot-ms', 0, 600_000),
    startConcurrency: int(values.startConcurrency, '--start-concurrency', 1, 10_000),
    ...(values.progress ? {} : { progress: false }),
  };
}
