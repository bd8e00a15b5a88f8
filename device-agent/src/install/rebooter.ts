/**
 * The reboot hook. On a device it runs the reboot command; under systemd with the `exit`
 * rebooter the agent exits and `Restart=always` starts it again, which is all an `ab-dir`
 * application update needs. The simulator supplies its own.
 */
import { fbError } from '@fetchback/shared';

import { runCommand } from './run-command.js';

export interface Rebooter {
  /** Starts the reboot. The agent stops acting once this is called; it may return or not. */
  reboot(): Promise<void>;
}

/** Runs a command such as `systemctl reboot`. */
export class CommandRebooter implements Rebooter {
  private readonly command: string;
  private readonly timeoutMs: number;

  constructor(command: string, timeoutMs = 60_000) {
    this.command = command;
    this.timeoutMs = timeoutMs;
  }

  async reboot(): Promise<void> {
    const result = await runCommand(this.command, { timeoutMs: this.timeoutMs });
    if (result.exitCode !== 0) {
      throw fbError('FB_ERR_INSTALL_FAILED', `reboot exit ${String(result.exitCode)}`);
    }
  }
}

/** Exits the process; the service manager (or a test harness) starts the agent again. */
export class ExitRebooter implements Rebooter {
  private readonly exitCode: number;

  constructor(exitCode = 0) {
    this.exitCode = exitCode;
  }

  async reboot(): Promise<void> {
    process.exit(this.exitCode);
  }
}
