/**
 * What every CLI command shares: the server URL and token (flag > environment > config file
 * `~/.config/fetchback/cli.json`), the client, `--json` output, and one-line coded errors.
 */
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

import { isFetchbackError } from '@fetchback/shared';
import type { Command } from 'commander';

import { FetchbackClient } from './client.js';

export const DEFAULT_URL = 'http://127.0.0.1:8080';

export interface GlobalOptions {
  url?: string;
  token?: string;
  json?: boolean;
}

interface CliFile {
  url?: string;
  token?: string;
}

/** `FETCHBACK_CLI_CONFIG`, else `$XDG_CONFIG_HOME/fetchback/cli.json`, else `~/.config/...`. */
export function cliConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.FETCHBACK_CLI_CONFIG) return env.FETCHBACK_CLI_CONFIG;
  const base = env.XDG_CONFIG_HOME || join(homedir(), '.config');
  return join(base, 'fetchback', 'cli.json');
}

function readCliFile(): CliFile {
  try {
    return JSON.parse(readFileSync(cliConfigPath(), 'utf8')) as CliFile;
  } catch {
    return {};
  }
}

export function globalsOf(command: Command): GlobalOptions {
  return command.optsWithGlobals<GlobalOptions>();
}

/** The client for a command: flags, then the environment, then the config file. */
export function clientFor(command: Command): FetchbackClient {
  const globals = globalsOf(command);
  const file = readCliFile();
  return new FetchbackClient({
    url: globals.url ?? process.env.FETCHBACK_URL ?? file.url ?? DEFAULT_URL,
    token: globals.token ?? process.env.FETCHBACK_TOKEN ?? file.token,
  });
}

export function isJson(command: Command): boolean {
  return globalsOf(command).json === true;
}

/** Prints `value` as JSON with `--json`, else the human-readable `text`. */
export function print(command: Command, value: unknown, text: () => string): void {
  process.stdout.write(isJson(command) ? `${JSON.stringify(value, null, 2)}\n` : `${text()}\n`);
}

/** Aligns rows under headers. */
export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = [
    headers,
    ...rows.map((r) => r.map((c) => (c === null || c === undefined ? '-' : String(c)))),
  ];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  return cells
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/** Collects a repeatable option into an array. */
export function collect(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

/** Parses an integer flag. */
export function integer(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new Error(`expected an integer, got ${value}`);
  return n;
}

/**
 * Wraps a command action: a coded error prints one line (`fetchback: <message> [<code>]`, or
 * the problem as JSON with `--json`) and exits 1.
 */
export function action<A extends unknown[]>(
  fn: (...args: A) => Promise<void>,
): (...args: A) => Promise<void> {
  return async (...args: A) => {
    try {
      await fn(...args);
    } catch (err) {
      const command = args[args.length - 1] as Command;
      reportError(err, command);
      process.exitCode = 1;
    }
  };
}

export function reportError(err: unknown, command?: Command): void {
  const code = isFetchbackError(err) ? err.code : 'FB_ERR_INTERNAL';
  const message = (err as Error).message ?? String(err);
  if (command && isJson(command)) {
    process.stderr.write(`${JSON.stringify({ error: { code, message } })}\n`);
  } else {
    process.stderr.write(`fetchback: ${message} [${code}]\n`);
  }
}
