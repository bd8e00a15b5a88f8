/**
 * A device's fault plan: which of the per-device faults hit it and where, drawn once from the
 * fleet's rates with the device's own seeded randomness, so that a run can be repeated. The
 * plan also says how the device should end, which the report and the tests check.
 */
import type { Random } from '@fetchback/device-agent';

import type { LinkFaults } from './faulty-transport.js';
import type { FaultRates } from './profiles.js';
import { chance } from './random.js';
import type { HealthBehaviour } from '../device/sim-hooks.js';

/** Most clock skew a `clock-skew` device gets, either way. */
export const MAX_CLOCK_SKEW_MS = 5 * 60_000;

export interface DevicePlan {
  readonly link: LinkFaults;
  /** Link breaks per second (mean rate of a Poisson process); 0 for none. */
  readonly disconnectsPerS: number;
  /** Crash once when this share of the image's chunks has arrived. */
  readonly crashDownloadAt: number | undefined;
  /** Crash once inside the installer. */
  readonly crashInstall: boolean;
  readonly slowFlash: boolean;
  readonly health: HealthBehaviour;
  readonly clockSkewMs: number;
  /** Go away for good when this share of the chunks has arrived. */
  readonly vanishAt: number | undefined;
}

/** How a device should end its update. */
export type ExpectedEnd = 'committed' | 'rolled_back' | 'vanished';

export function planFaults(rates: FaultRates, random: Random): DevicePlan {
  const vanish = chance(random, rates.vanish);
  const fails = chance(random, rates['health-fail']);
  const hangs = !fails && chance(random, rates['health-hang']);
  return {
    link: {
      latencyMs: rates.latency,
      jitterMs: rates.jitter,
      dropIn: rates['drop-in'],
      dropOut: rates['drop-out'],
      corrupt: rates.corrupt,
    },
    disconnectsPerS: rates.disconnect,
    crashDownloadAt: chance(random, rates['crash-download']) ? 0.1 + 0.8 * random() : undefined,
    crashInstall: chance(random, rates['crash-install']),
    slowFlash: chance(random, rates['slow-flash']),
    health: fails ? 'fail' : hangs ? 'hang' : 'pass',
    clockSkewMs: chance(random, rates['clock-skew'])
      ? Math.round((random() * 2 - 1) * MAX_CLOCK_SKEW_MS)
      : 0,
    vanishAt: vanish ? 0.05 + 0.9 * random() : undefined,
  };
}

export function expectedEnd(plan: DevicePlan): ExpectedEnd {
  if (plan.vanishAt !== undefined) return 'vanished';
  return plan.health === 'pass' ? 'committed' : 'rolled_back';
}
