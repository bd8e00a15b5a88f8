/**
 * The faults the simulator injects, what each one's value means, and the named profiles that
 * combine them. `--faults PROFILE` starts from a profile; each `--fault name=value` then sets
 * one fault on top of it. Help text and `docs/simulator.md` are generated from `FAULTS`.
 */
import { fbError } from '@fetchback/shared';

export const FAULT_NAMES = [
  'latency',
  'jitter',
  'drop-in',
  'drop-out',
  'disconnect',
  'crash-download',
  'crash-install',
  'corrupt',
  'slow-flash',
  'health-fail',
  'health-hang',
  'clock-skew',
  'vanish',
] as const;
export type FaultName = (typeof FAULT_NAMES)[number];

/** How a fault's value reads: a probability in [0, 1], or a duration in milliseconds. */
export type FaultUnit = 'probability' | 'ms';

export interface FaultSpec {
  readonly name: FaultName;
  readonly unit: FaultUnit;
  /** One sentence for `--help`: what happens, and to what the value applies. */
  readonly describe: string;
}

export const FAULTS: readonly FaultSpec[] = [
  { name: 'latency', unit: 'ms', describe: 'delay added to every message, in each direction' },
  { name: 'jitter', unit: 'ms', describe: 'uniform random extra delay (0 to value) per message' },
  {
    name: 'drop-in',
    unit: 'probability',
    describe: 'each chunk or ACK_RESP to the device is lost on the way (QoS 1 traffic is not)',
  },
  {
    name: 'drop-out',
    unit: 'probability',
    describe: 'each message from the device (FETCH_REQ, ACK_REQ, STATUS) is lost on the way',
  },
  {
    name: 'disconnect',
    unit: 'probability',
    describe: 'per device and second: the TCP link breaks (last will fires), mqtt.js reconnects',
  },
  {
    name: 'crash-download',
    unit: 'probability',
    describe: 'share of devices that crash once mid-download and restart with their state kept',
  },
  {
    name: 'crash-install',
    unit: 'probability',
    describe: 'share of devices that crash once inside the installer and restart',
  },
  {
    name: 'corrupt',
    unit: 'probability',
    describe: 'each chunk arrives with a flipped byte (the agent must refuse and refetch it)',
  },
  {
    name: 'slow-flash',
    unit: 'probability',
    describe: 'share of devices whose slot writes take 2 to 20 ms each',
  },
  {
    name: 'health-fail',
    unit: 'probability',
    describe: 'share of devices whose health check fails on the new image (expect rolled back)',
  },
  {
    name: 'health-hang',
    unit: 'probability',
    describe: 'share of devices whose health check never answers (agent times out, rolls back)',
  },
  {
    name: 'clock-skew',
    unit: 'probability',
    describe: 'share of devices whose clock is off by up to 5 minutes either way',
  },
  {
    name: 'vanish',
    unit: 'probability',
    describe: 'share of devices that go away mid-update and never come back',
  },
];

export type FaultRates = Readonly<Record<FaultName, number>>;

const NONE: FaultRates = Object.freeze(
  Object.fromEntries(FAULT_NAMES.map((n) => [n, 0])) as Record<FaultName, number>,
);

/** Named combinations. Every profile lists all faults it sets; the rest are 0. */
export const PROFILES: Readonly<Record<string, { describe: string; rates: FaultRates }>> = {
  none: { describe: 'no faults', rates: NONE },
  'flaky-network': {
    describe: 'a mobile link: 20-80 ms, 1 % loss each way, a reconnect every few minutes',
    rates: withRates({
      latency: 20,
      jitter: 60,
      'drop-in': 0.01,
      'drop-out': 0.01,
      disconnect: 0.005,
    }),
  },
  'bad-devices': {
    describe: 'sound network, unsound devices: crashes, slow flash, failing health checks',
    rates: withRates({
      'crash-download': 0.05,
      'crash-install': 0.05,
      'slow-flash': 0.1,
      'health-fail': 0.05,
      'health-hang': 0.02,
      'clock-skew': 0.1,
    }),
  },
  chaos: {
    describe: 'every fault at once (the test fleet of simulator/test)',
    rates: withRates({
      latency: 5,
      jitter: 20,
      'drop-in': 0.01,
      'drop-out': 0.01,
      disconnect: 0.01,
      'crash-download': 0.05,
      'crash-install': 0.05,
      corrupt: 0.01,
      'slow-flash': 0.1,
      'health-fail': 0.05,
      'health-hang': 0.02,
      'clock-skew': 0.1,
      vanish: 0.02,
    }),
  },
};

function withRates(rates: Partial<Record<FaultName, number>>): FaultRates {
  return Object.freeze({ ...NONE, ...rates });
}

/**
 * The rates of `profile` with each `name=value` override applied.
 *
 * @throws FetchbackError `FB_ERR_ARGUMENT` for an unknown profile or fault, or a value out of
 *   range.
 */
export function resolveFaults(profile: string, overrides: readonly string[] = []): FaultRates {
  const base = PROFILES[profile];
  if (!base) {
    const known = Object.keys(PROFILES).join(', ');
    throw fbError('FB_ERR_ARGUMENT', `"--faults" expected one of ${known}, got ${profile}`);
  }
  const rates: Record<FaultName, number> = { ...base.rates };
  for (const override of overrides) {
    const [name, value] = parseOverride(override);
    rates[name] = value;
  }
  return Object.freeze(rates);
}

function parseOverride(text: string): [FaultName, number] {
  const match = /^([a-z-]+)=([0-9.]+)$/.exec(text);
  const spec = match && FAULTS.find((f) => f.name === match[1]);
  if (!match || !spec) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"--fault" expected name=value with a known name, got ${text}`,
    );
  }
  const value = Number(match[2]);
  const max = spec.unit === 'probability' ? 1 : 60_000;
  if (!Number.isFinite(value) || value < 0 || value > max) {
    throw fbError(
      'FB_ERR_ARGUMENT',
      `"--fault ${spec.name}" expected 0 to ${max}, got ${match[2]}`,
    );
  }
  return [spec.name, value];
}

/** The faults that are on, as `name=value` pairs (for reports). */
export function activeFaults(rates: FaultRates): Record<string, number> {
  return Object.fromEntries(Object.entries(rates).filter(([, v]) => v > 0));
}
