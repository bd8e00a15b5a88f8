#!/usr/bin/env node
/**
 * `fetchback`: the operator CLI. Server URL and token come from `--url`/`--token`, else
 * `FETCHBACK_URL`/`FETCHBACK_TOKEN`, else `~/.config/fetchback/cli.json`.
 */
import { Command } from 'commander';

import { DEFAULT_URL } from './common.js';
import { registerDeviceCommands } from './device-commands.js';
import { registerKeysCommands } from './keys-command.js';
import { registerReleaseCommands } from './release-commands.js';
import { registerRolloutCommands } from './rollout.js';
import { registerServerCommand } from './server-command.js';
import { registerTokenCommands } from './token-commands.js';

export function buildProgram(): Command {
  const program = new Command('fetchback')
    .description('Fetchback over-the-air updates: server and operator CLI')
    .option('--url <url>', `server URL; env FETCHBACK_URL (default ${DEFAULT_URL})`)
    .option('--token <token>', 'API token; env FETCHBACK_TOKEN')
    .option('--json', 'print machine-readable JSON');
  registerServerCommand(program);
  registerKeysCommands(program);
  registerDeviceCommands(program);
  registerReleaseCommands(program);
  registerTokenCommands(program);
  registerRolloutCommands(program);
  return program;
}

await buildProgram().parseAsync(process.argv);
