/**
 * The steps after a verified download: install into the boot pointer, reboot, the trial with
 * its health check, and settling a resting state (mark good, or switch back).
 */
import { fbError, isFetchbackError } from '@fetchback/shared';
import type { Logger } from 'pino';

import { type Clock, sleep } from '../clock.js';
import type { HealthCheck } from '../install/health-check.js';
import type { InstallContext, Installer } from '../install/installer.js';
import type { SlotStorage } from '../storage/slot-storage.js';
import type { Job, TrustRecord } from './agent-state.js';
import type { Outcome } from './machine.js';

export interface InstallLimits {
  /** Time the health check may take, in milliseconds. */
  readonly healthCheckTimeoutMs: number;
  /** Starts in trial before the agent declares a boot loop. */
  readonly maxBootAttempts: number;
}

export interface InstallStepContext {
  readonly job: Job;
  readonly trust: TrustRecord;
  readonly installer: Installer;
  readonly healthCheck: HealthCheck;
  readonly slots: SlotStorage;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly limits: InstallLimits;
  readonly signal: AbortSignal;
}

export function installContextOf(job: Job, slots: SlotStorage): InstallContext {
  return {
    targetSlot: job.targetSlot,
    previousSlot: job.previousSlot,
    version: job.release.version,
    previousVersion: job.previousVersion,
    imagePath: slots.pathOf(job.targetSlot),
  };
}

/** `installing`: make the new slot boot next. */
export async function installStep(context: InstallStepContext): Promise<Outcome> {
  try {
    await context.installer.install(installContextOf(context.job, context.slots));
    return { event: 'installed' };
  } catch (err) {
    const code = isFetchbackError(err) ? err.code : 'FB_ERR_INSTALL_FAILED';
    return { event: 'install_failed', code, detail: (err as Error).message };
  }
}

/** `trial`: a boot loop rolls back at once; otherwise the health check decides. */
export async function trialStep(context: InstallStepContext): Promise<Outcome> {
  const { job, limits } = context;
  if (job.bootCount > limits.maxBootAttempts) {
    const detail = `${job.bootCount} starts in trial, limit ${limits.maxBootAttempts}`;
    return { event: 'boot_loop', code: 'FB_ERR_BOOT_LOOP', detail };
  }
  try {
    await checkHealth(context);
    return commitOutcome(context);
  } catch (err) {
    const code = isFetchbackError(err) ? err.code : 'FB_ERR_HEALTH_CHECK_FAILED';
    return { event: 'unhealthy', code, detail: (err as Error).message };
  }
}

/**
 * A healthy trial commits: the new version becomes the running one and its security version
 * the floor for every later release, persisted with the transition.
 */
function commitOutcome(context: InstallStepContext): Outcome {
  const { job, trust } = context;
  const securityVersion = Math.max(trust.securityVersion, job.release.securityVersion);
  return {
    event: 'healthy',
    firmwareVersion: job.release.version,
    trust: { ...trust, securityVersion },
  };
}

/** Runs the health check under the agent's own timeout, whatever the check does. */
async function checkHealth(context: InstallStepContext): Promise<void> {
  const timeoutMs = context.limits.healthCheckTimeoutMs;
  const abort = new AbortController();
  const onOuterAbort = () => abort.abort();
  context.signal.addEventListener('abort', onOuterAbort, { once: true });
  const timeout = sleep(context.clock, timeoutMs, abort.signal).then(() => {
    if (abort.signal.aborted) return;
    throw fbError('FB_ERR_HEALTH_CHECK_TIMEOUT', `${timeoutMs} ms`);
  });
  const check = context.healthCheck.check(
    installContextOf(context.job, context.slots),
    abort.signal,
  );
  try {
    await Promise.race([check, timeout]);
  } finally {
    abort.abort();
    context.signal.removeEventListener('abort', onOuterAbort);
    check.catch(() => undefined);
  }
}

/** `committed` and `rolled_back`: the installer's part, idempotent, repeated after a crash. */
export async function settleStep(
  state: 'committed' | 'rolled_back',
  context: InstallStepContext,
): Promise<void> {
  const install = installContextOf(context.job, context.slots);
  if (state === 'committed') await context.installer.markGood(install);
  else await context.installer.rollback(install);
}
