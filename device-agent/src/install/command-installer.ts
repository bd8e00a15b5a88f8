/**
 * An installer whose steps are shell commands, so RAUC, SWUpdate or a vendor tool plugs in
 * (`docs/device.md`, "Plugging in RAUC or SWUpdate"). Each command gets the hook environment
 * (`FETCHBACK_IMAGE`, `FETCHBACK_SLOT`, `FETCHBACK_VERSION` …) and must exit 0 to succeed.
 */
import { fbError } from '@fetchback/shared';

import { type InstallContext, type Installer, hookEnvironment } from './installer.js';
import { runCommand } from './run-command.js';

export interface CommandInstallerOptions {
  readonly install: string;
  /** Absent: nothing to do. */
  readonly markGood?: string;
  /** Absent: nothing to do (the boot loader falls back on its own). */
  readonly rollback?: string;
  /** Time allowed for each command, in milliseconds. */
  readonly timeoutMs: number;
}

export class CommandInstaller implements Installer {
  private readonly options: CommandInstallerOptions;

  constructor(options: CommandInstallerOptions) {
    this.options = options;
  }

  install(context: InstallContext): Promise<void> {
    return this.run('install', this.options.install, context);
  }

  async markGood(context: InstallContext): Promise<void> {
    if (this.options.markGood) await this.run('markGood', this.options.markGood, context);
  }

  async rollback(context: InstallContext): Promise<void> {
    if (this.options.rollback) await this.run('rollback', this.options.rollback, context);
  }

  private async run(step: string, command: string, context: InstallContext): Promise<void> {
    const result = await runCommand(command, {
      timeoutMs: this.options.timeoutMs,
      env: hookEnvironment(context),
    });
    if (result.exitCode === 0) return;
    const why = result.timedOut ? 'timed out' : `exit ${String(result.exitCode)}`;
    throw fbError('FB_ERR_INSTALL_FAILED', `${step} ${why}: ${result.outputTail.slice(-120)}`);
  }
}
