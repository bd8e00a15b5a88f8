/**
 * The trial's health check. The agent bounds every check with its own timeout as well, so a
 * simulator's check that never settles still ends in `FB_ERR_HEALTH_CHECK_TIMEOUT`.
 */
import { fbError } from '@fetchback/shared';

import { type InstallContext, hookEnvironment } from './installer.js';
import { runCommand } from './run-command.js';

export interface HealthCheck {
  /**
   * Resolves when the new firmware is healthy.
   *
   * @throws FetchbackError `FB_ERR_HEALTH_CHECK_FAILED` or `FB_ERR_HEALTH_CHECK_TIMEOUT`.
   */
  check(context: InstallContext, signal: AbortSignal): Promise<void>;
}

/** Always healthy: for setups without a check. */
export const alwaysHealthy: HealthCheck = { check: async () => {} };

/** A shell command that must exit 0 within `timeoutMs`. */
export class CommandHealthCheck implements HealthCheck {
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(command: string, timeoutMs: number) {
    this.command = command;
    this.timeoutMs = timeoutMs;
  }

  async check(context: InstallContext, signal: AbortSignal): Promise<void> {
    const result = await runCommand(this.command, {
      timeoutMs: this.timeoutMs,
      env: hookEnvironment(context),
      signal,
    });
    if (result.timedOut) throw fbError('FB_ERR_HEALTH_CHECK_TIMEOUT', `${this.timeoutMs} ms`);
    if (result.exitCode !== 0) {
      throw fbError(
        'FB_ERR_HEALTH_CHECK_FAILED',
        `exit ${String(result.exitCode)}: ${result.outputTail.slice(-120)}`,
      );
    }
  }
}
