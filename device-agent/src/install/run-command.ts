/**
 * Runs a hook as a shell command with a timeout. The command runs in its own process group so
 * that a timeout kills it and everything it started (a hung `sleep` under `sh -c` included).
 */
import { spawn } from 'node:child_process';

export interface CommandResult {
  /** Exit code, or `undefined` when killed by a signal. */
  readonly exitCode: number | undefined;
  readonly timedOut: boolean;
  /** The last bytes of stdout and stderr, for the report's detail. */
  readonly outputTail: string;
}

export interface RunOptions {
  readonly timeoutMs: number;
  /** Added to the agent's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

const TAIL_BYTES = 200;

export function runCommand(command: string, options: RunOptions): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = spawn('/bin/sh', ['-c', command], {
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let tail = '';
    let timedOut = false;
    const keep = (chunk: Buffer) => {
      tail = (tail + chunk.toString('utf8')).slice(-TAIL_BYTES);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);

    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // Already gone.
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, options.timeoutMs);
    options.signal?.addEventListener('abort', killGroup, { once: true });

    const finish = (exitCode: number | undefined) => {
      clearTimeout(timer);
      options.signal?.removeEventListener('abort', killGroup);
      resolve({ exitCode, timedOut, outputTail: tail.trim() });
    };
    child.on('error', (err) => {
      tail = err.message;
      finish(undefined);
    });
    child.on('close', (code) => finish(code ?? undefined));
  });
}
