/**
 * Runs the built agent (`device-agent/dist/cli.js`) as a child process. When the agent exits by
 * itself (its reboot hook), the harness starts it again, as systemd's `Restart=always` would.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export class AgentProcess {
  private child: ChildProcess | undefined;
  private readonly configPath: string;
  config: Record<string, unknown>;
  starts = 0;
  output = '';

  constructor(configPath: string, config: Record<string, unknown>) {
    this.configPath = configPath;
    this.config = config;
  }

  async start(): Promise<void> {
    await writeFile(this.configPath, JSON.stringify(this.config, null, 2));
    const child = spawn(process.execPath, [CLI, '--config', this.configPath], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.starts++;
    const keep = (b: Buffer) => {
      this.output = (this.output + b.toString()).slice(-20_000);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      this.child = undefined;
      // The reboot hook exits with 0: start again like the service manager.
      if (code === 0 && signal === null) void this.start();
    });
    this.child = child;
  }

  /** SIGKILL, as a power cut would; no restart. */
  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }

  /** SIGTERM and wait. */
  async stop(): Promise<number | null> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null) return child?.exitCode ?? null;
    return new Promise((resolve) => {
      child.once('exit', (code) => resolve(code));
      child.kill('SIGTERM');
    });
  }
}

export async function waitUntil(
  condition: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
